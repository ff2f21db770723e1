//! The first process. The kernel starts it with its mode as the argument:
//! `run` starts the shell (again, if it ends), `test` runs the user-level
//! test suite and `bench` the user-level benchmarks; init's exit status
//! becomes the machine's. The kernel command line's `init.` words follow
//! the mode (`run net.ip=10.0.2.15/24`): options for the services init
//! starts.

#![no_std]
#![no_main]

extern crate alloc;

/// Fails the test with the message (and where) unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{} ({}:{})", format_args!($($arg)+), file!(), line!()));
        }
    };
}

/// Fails the test showing both values unless they are equal.
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $what:expr) => {{
        let (left, right) = (&$left, &$right);
        ensure!(left == right, "{}: {:?} != {:?}", $what, left, right);
    }};
}

/// Turns a failed call's error into a test failure that says what failed.
fn fail<E: core::fmt::Display>(what: &str) -> impl FnOnce(E) -> alloc::string::String + '_ {
    move |e| alloc::format!("{what}: {e}")
}

mod bench;
mod bench_devices;
mod device;
mod drivers;
mod fuzz;
mod ipc;
mod names;
mod quota;
mod supervisor;
mod tests;

use rt::process::Exit;
use rt::{println, sys};

rt::entry!(main);

/// The options after the mode.
static OPTIONS: spin::Once<alloc::string::String> = spin::Once::new();

/// The value of option `key` (`key=value`), if given.
pub fn option(key: &str) -> Option<&'static str> {
    OPTIONS
        .get()?
        .split_ascii_whitespace()
        .filter_map(|word| word.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .next_back()
}

fn main(arguments: &str) -> i32 {
    let (mode, options) = arguments.split_once(' ').unwrap_or((arguments, ""));
    OPTIONS.call_once(|| options.into());
    if matches!(mode, "run" | "test" | "bench") {
        if let Err(e) = names::start() {
            println!("init: cannot start the name service: {e}");
            return 1;
        }
        if let Err(e) = supervisor::start() {
            println!("init: cannot start the supervisor: {e}");
            return 1;
        }
    }
    if matches!(mode, "run" | "test") {
        drivers::start();
        drivers::wait_until_up();
        drivers::start_stacks();
    }
    match mode {
        "run" => run_shell(),
        "test" => run_tests(),
        "bench" => bench::run(),
        "fuzz" => fuzz::run(),
        other => {
            println!("init: unknown mode {other:?} (expected run, test, bench or fuzz)");
            2
        }
    }
}

/// Keeps a shell on the console, starting another whenever one ends (by
/// `exit` or otherwise). The shell may power the machine off, so it gets
/// init's control capability, and a capability to the name service to
/// find servers by.
fn run_shell() -> i32 {
    loop {
        let names = match names::capability(rt::names::CLIENT) {
            Ok(names) => names,
            Err(e) => {
                println!("init: no name service for the shell: {e}");
                return 1;
            }
        };
        let started = rt::process::start("sh", "", &[abi::INIT_CONTROL, names]);
        let _ = rt::ipc::cap_delete(names);
        let shell = match started {
            Ok(shell) => shell,
            Err(e) => {
                println!("init: cannot start the shell: {e}");
                return 1;
            }
        };
        match shell.wait() {
            Ok(Exit::Code(0)) => println!("init: the shell exited; starting another"),
            Ok(exit) => println!("init: the shell {exit}; starting another"),
            Err(e) => {
                println!("init: lost the shell: {e}");
                return 1;
            }
        }
    }
}

/// What a user-level test returns: why it failed, if it did.
pub type Outcome = Result<(), alloc::string::String>;

/// A user-level test.
pub struct Test {
    pub name: &'static str,
    pub run: fn() -> Outcome,
}

/// Runs every test; returns the exit status (0: all passed).
fn run_tests() -> i32 {
    let tests = tests::TESTS
        .iter()
        .chain(ipc::TESTS)
        .chain(device::TESTS)
        .chain(names::TESTS)
        .chain(quota::TESTS)
        .chain(drivers::TESTS)
        .chain(supervisor::TESTS);
    println!("utest: begin {}", tests.clone().count());
    let (mut passed, mut failed) = (0, 0);
    for test in tests {
        let started = sys::time_ns();
        match (test.run)() {
            Ok(()) => {
                let ms = (sys::time_ns() - started) as f64 / 1e6;
                println!("utest: pass {} {ms:.3} ms", test.name);
                passed += 1;
            }
            Err(message) => {
                println!("utest: fail {}: {message}", test.name);
                failed += 1;
            }
        }
    }
    println!("utest: end {passed} passed {failed} failed");
    i32::from(failed > 0)
}
