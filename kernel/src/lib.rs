//! Ferrite's portable core.
//!
//! Everything here is architecture-neutral: it reaches the machine only
//! through the traits of the `hal` crate, implemented by one type per
//! architecture. The architecture crate owns the boot path and enters the
//! core only through [`entry`] (boot, system calls, interrupts, user
//! faults, returns to user mode, kernel faults, panics).
//!
//! The parts, each with a small public surface:
//! - [`task`]: threads and processes (records and tables), the scheduler,
//!   wait queues (kept by whatever threads wait for), spawning and ending,
//!   user address spaces and program loading;
//! - [`syscall`]: each call decoded into a typed call, then performed by
//!   the module of its group;
//! - [`object`]: kernel objects reached through capabilities (endpoints,
//!   notifications) and the per-process capability table;
//! - [`mm`]: frames (a buddy allocator), the heap (grown from frames),
//!   kernel stacks; [`irq`], [`timer`] and [`clock`]: interrupts and time;
//! - [`console`] (output) and [`console_input`] (the receive ring and its
//!   readers); [`archive`], the boot archive of user programs;
//! - [`ktest`] and the portable in-kernel tests, [`bench`] the in-kernel
//!   benchmarks; `fake_arch`, a pretend machine for host unit tests.
//!
//! No module refers to a sibling that refers back to it (`cargo xtask
//! lint` checks).

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod archive;
pub mod bench;
pub mod clock;
pub mod cmdline;
pub mod console;
pub mod console_input;
pub mod crash;
pub mod entry;
#[cfg(test)]
pub mod fake_arch;
pub mod fault_catch;
pub mod fixed_string;
pub mod inspect;
pub mod irq;
pub mod ktest;
pub mod logger;
pub mod mm;
pub mod object;
pub mod panic;
mod suite;
pub mod sync;
pub mod syscall;
pub mod task;
pub mod timer;
pub mod trap;

use cmdline::Cmdline;
use hal::{Arch, BootInfo, FirmwareTables, MemoryKind, boot::ByteSize};

/// The kernel's version, as printed in the banner.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The boot archive of user programs (see [`archive`]), empty when the
/// kernel was built without them.
pub static USER_PROGRAMS: &[u8] = &PAGE_ALIGNED_PROGRAMS.0;

/// Bytes aligned to a page.
#[repr(C, align(4096))]
struct PageAligned<T: ?Sized>(T);

/// `include_bytes!` aligns to one byte. Where the archive then lands
/// decides how fast its programs are copied out (ARMv7's memcpy moves
/// words only between equally aligned addresses), so a change anywhere
/// in the kernel could slow the boot by a tenth.
static PAGE_ALIGNED_PROGRAMS: &PageAligned<[u8]> = &PageAligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/user-programs.far"
)));

/// Statuses the kernel exits with; the host maps them back to names.
pub mod exit_code {
    /// Everything asked for was done; every test passed.
    pub const SUCCESS: u8 = 0;
    /// The test suite ran and at least one test failed.
    pub const TESTS_FAILED: u8 = 1;
    /// The kernel panicked.
    pub const PANIC: u8 = 2;
    /// The command line asked for something the kernel cannot do.
    pub const BAD_CMDLINE: u8 = 3;
    /// The boot path found the machine unusable (for example, no usable
    /// memory map or a malformed device tree).
    pub const BOOT_FAILURE: u8 = 4;
    /// The init process could not start, or was killed by a fault.
    pub const INIT_FAILED: u8 = 5;

    /// A name for `code`, for reports.
    pub fn name(code: u8) -> &'static str {
        match code {
            SUCCESS => "success",
            TESTS_FAILED => "tests failed",
            PANIC => "kernel panic",
            BAD_CMDLINE => "bad command line",
            BOOT_FAILURE => "boot failure",
            INIT_FAILED => "init failed",
            _ => "other",
        }
    }
}

/// What the kernel does once booted, chosen by `mode=` on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Start init, which starts the shell.
    Run,
    /// Run the in-kernel test suite and exit with its verdict.
    Test,
    /// Start init, which runs the user-level test suite; exit with its
    /// verdict.
    UserTest,
    /// Run init's benchmarks, then the kernel's, and exit.
    Bench,
    /// Start init, which runs the system-call fuzzer (`init.fuzz.seed=`,
    /// `init.fuzz.calls=`) and checks that no memory was lost; exit with
    /// its verdict.
    Fuzz,
    /// Exit at once with the given status, so the host can check that
    /// statuses survive the trip through the emulator.
    Exit(u8),
    /// Fault on purpose, so the host can check the report.
    Crash(crash::Kind),
}

impl Mode {
    /// Reads the mode from the command line; anything unknown is an error.
    pub fn from_cmdline(cmdline: &Cmdline<'_>) -> Result<Mode, &'static str> {
        match cmdline.get("mode") {
            None | Some("run") => Ok(Mode::Run),
            Some("test") => Ok(Mode::Test),
            Some("user-test") => Ok(Mode::UserTest),
            Some("bench") => Ok(Mode::Bench),
            Some("fuzz") => Ok(Mode::Fuzz),
            Some("crash") => match cmdline.get("crash.kind").and_then(crash::Kind::parse) {
                Some(kind) => Ok(Mode::Crash(kind)),
                None => Err(
                    "mode=crash needs crash.kind=page-fault|stack-overflow|thread-stack-overflow",
                ),
            },
            Some("exit") => match cmdline.get("exit.code").map(str::parse::<u8>) {
                Some(Ok(code)) => Ok(Mode::Exit(code)),
                _ => Err("mode=exit needs exit.code=<0-255>"),
            },
            Some(_) => {
                Err("unknown mode (expected run, test, user-test, bench, fuzz, crash or exit)")
            }
        }
    }
}

/// Connects printing, logging and the clock to `A`. The architecture calls
/// this as soon as its console works, so that even boot failures are
/// reported; calling it again does nothing.
pub fn init_early<A: Arch>() {
    sync::install::<A>();
    console::install::<A>();
    clock::install::<A>();
    logger::install();
}

/// The portable entry point. `arch_tests` are the architecture's own
/// in-kernel tests, run after the portable ones in test mode.
pub fn kmain<A: Arch>(arch_tests: &[ktest::Test]) -> ! {
    init_early::<A>();
    let boot = A::boot_info();
    print_banner::<A>(boot);
    if let Some(error) = boot.cmdline_error {
        // Running with part of the line, or none, would run something else
        // than was asked.
        log::error!("refusing to boot: {error}");
        A::exit(exit_code::BAD_CMDLINE);
    }
    if let Err(error) = mm::init::<A>() {
        log::error!("memory management cannot start: {error}");
        A::exit(exit_code::BOOT_FAILURE);
    }
    if let Err(error) = A::init_devices() {
        log::error!("devices cannot start: {error}");
        A::exit(exit_code::BOOT_FAILURE);
    }
    print_capabilities(&A::capabilities());
    let programs = archive::Archive::parse(USER_PROGRAMS).unwrap_or_else(|error| {
        log::error!("boot archive unusable ({error}); no user programs");
        archive::Archive::EMPTY
    });
    if let Err(error) = task::init::<A>(programs) {
        log::error!("threads cannot start: {error}");
        A::exit(exit_code::BOOT_FAILURE);
    }

    let cmdline = Cmdline::new(boot.cmdline);
    match Mode::from_cmdline(&cmdline) {
        Ok(Mode::Run) => run_init::<A>(&cmdline.init_argument("run")),
        Ok(Mode::UserTest) => run_init::<A>(&cmdline.init_argument("test")),
        Ok(Mode::Fuzz) => run_init::<A>(&cmdline.init_argument("fuzz")),
        Ok(Mode::Test) => {
            let portable = suite::portable::<A>();
            let verdict = ktest::run(&[portable.as_slice(), arch_tests]);
            A::exit(if verdict.all_passed() {
                exit_code::SUCCESS
            } else {
                exit_code::TESTS_FAILED
            })
        }
        Ok(Mode::Bench) => {
            // User benchmarks first, so that the boot measurement covers
            // only the boot; then the kernel's, with the tick stopped.
            let status = init_status::<A>(&cmdline.init_argument("bench"));
            bench::run::<A>();
            A::exit(status)
        }
        Ok(Mode::Crash(kind)) => crash::run::<A>(kind),
        Ok(Mode::Exit(code)) => {
            log::info!("exiting with status {code} as asked");
            A::exit(code)
        }
        Err(message) => {
            log::error!("command line {:?}: {message}", boot.cmdline);
            A::exit(exit_code::BAD_CMDLINE)
        }
    }
}

/// Starts the init process with `argument` (its mode, then the command
/// line's `init.` options), then ends the machine with init's status.
fn run_init<A: Arch>(argument: &str) -> ! {
    A::exit(init_status::<A>(argument))
}

/// Starts the init process with `argument` and the tick, with the
/// console's input left to a user-space driver; waits for init to end and returns the machine status that stands for
/// how it ended. The tick is stopped again.
fn init_status<A: Arch>(argument: &str) -> u8 {
    // Console input is the console driver's, in user space; the kernel
    // keeps writing its log to the UART.
    object::device::hand_over_console();
    if let Err(e) = task::start_ticking::<A>() {
        log::error!("no scheduler tick: {e}");
        return exit_code::BOOT_FAILURE;
    }
    // Init's quota: every frame free now. A limit, not a reservation:
    // the kernel's reserve and its own records come out of the same free
    // frames, so memory may run out before the quota does (and the
    // process whose fault then finds no frame is killed).
    let Ok(quota) = mm::quota::Quota::root(mm::frames::counts().1) else {
        log::error!("no memory for init's quota");
        return exit_code::BOOT_FAILURE;
    };
    let options = task::SpawnOptions {
        arguments: argument.as_bytes(),
        parent: task::Parent::Kernel,
        resources: Some(task::ipc::Resources::new(alloc::boxed::Box::new(
            object::cap::CapTable::for_init(
                object::device::user_devices::<A>(),
                alloc::sync::Arc::clone(&quota),
            ),
        ))),
        quota: Some(quota),
    };
    let status = match task::spawn::<A>("init", options) {
        Ok(pid) => {
            log::info!("boot complete; init is process {pid}");
            task::wait_kernel_child::<A>(pid)
        }
        Err(error) => Err(error),
    };
    timer::stop::<A>();
    match status {
        Ok(task::ExitStatus::Exited(code)) => {
            log::info!("init exited with status {code}");
            code.clamp(0, 255) as u8
        }
        Ok(ended) => {
            // Init supervises every service: without it nothing restarts
            // a driver or the shell, so the machine ends, and says why.
            let how = match ended {
                task::ExitStatus::Faulted(fault) => alloc::format!("killed by a fault: {fault}"),
                task::ExitStatus::OutOfMemory(_) => "killed: out of memory for a page".into(),
                _ => "killed".into(),
            };
            log::error!(
                "init, the supervisor, was {how}; ending the machine with status {} ({})",
                exit_code::INIT_FAILED,
                exit_code::name(exit_code::INIT_FAILED)
            );
            exit_code::INIT_FAILED
        }
        Err(error) => {
            log::error!("init failed: {error}");
            exit_code::INIT_FAILED
        }
    }
}

/// The banner's CPU line and what the kernel runs without.
fn print_capabilities(caps: &hal::Capabilities) {
    match caps.cpus_found {
        0 => kprintln!(
            "cpus: {} used; the firmware does not say how many there are",
            caps.cpus_used
        ),
        found if found > caps.cpus_used => kprintln!(
            "cpus: {found} found, {} used (no SMP support yet: the others stay parked)",
            caps.cpus_used
        ),
        found => kprintln!("cpus: {found} found, {} used", caps.cpus_used),
    }
    if !caps.without.as_slice().is_empty() {
        kprint!("running without:");
        for (n, feature) in caps.without.as_slice().iter().enumerate() {
            kprint!("{}{feature}", if n == 0 { " " } else { ", " });
        }
        kprintln!();
    }
}

fn print_banner<A: Arch>(boot: &BootInfo) {
    kprintln!(
        "Ferrite {VERSION} ({arch}, QEMU {machine})",
        arch = A::ARCH,
        machine = boot.machine
    );
    kprintln!("command line: {:?}", boot.cmdline);
    kprintln!("memory map:");
    for region in boot.memory.regions() {
        kprintln!("  {region}");
    }
    kprintln!(
        "memory: {} usable, {} RAM in total",
        ByteSize(boot.memory.total(MemoryKind::Usable)),
        ByteSize(boot.memory.total_ram())
    );
    if !boot.memory_repairs.is_clean() {
        log::warn!("firmware memory map repaired: {:?}", boot.memory_repairs);
    }
    match boot.firmware {
        FirmwareTables::Acpi { rsdp } => kprintln!("firmware tables: ACPI, RSDP at {rsdp:#x}"),
        FirmwareTables::DeviceTree { address, size } => {
            kprintln!("firmware tables: device tree at {address:#x}, {size} bytes")
        }
        FirmwareTables::None => kprintln!("firmware tables: none"),
    }
    kprintln!("reserved:");
    for reserved in boot.reserved.as_slice() {
        kprintln!(
            "  {:#014x}-{:#014x} {:<16} {}",
            reserved.range.start,
            reserved.range.end,
            ByteSize(reserved.range.size()),
            reserved.name
        );
    }
}
