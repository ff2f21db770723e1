//! The first process. The kernel starts it with its mode as the argument:
//! `run` starts the shell (again, if it ends), `test` runs the user-level
//! test suite and `bench` the user-level benchmarks; init's exit status
//! becomes the machine's.

#![no_std]
#![no_main]

extern crate alloc;

mod bench;
mod tests;

use rt::process::Exit;
use rt::{println, sys};

rt::entry!(main);

fn main(mode: &str) -> i32 {
    match mode {
        "run" => run_shell(),
        "test" => tests::run(),
        "bench" => bench::run(),
        other => {
            println!("init: unknown mode {other:?} (expected run, test or bench)");
            2
        }
    }
}

/// Keeps a shell on the console, starting another whenever one ends (by
/// `exit` or otherwise). The shell may power the machine off, so it gets
/// init's privileges.
fn run_shell() -> i32 {
    loop {
        let pid = match sys::spawn("sh", "", abi::SPAWN_INHERIT_PRIVILEGES) {
            Ok(pid) => pid,
            Err(e) => {
                println!("init: cannot start the shell: {e}");
                return 1;
            }
        };
        match rt::process::wait(pid) {
            Ok((_, Exit::Code(0))) => println!("init: the shell exited; starting another"),
            Ok((_, exit)) => println!("init: the shell {exit}; starting another"),
            Err(e) => {
                println!("init: lost the shell: {e}");
                return 1;
            }
        }
    }
}
