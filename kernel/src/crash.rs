//! Deliberate kernel faults, for checking from the host that the kernel
//! reports them (`mode=crash crash.kind=...`). None of these return.

use core::hint::black_box;

/// What to do wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Read an unmapped address in kernel mode.
    PageFault,
    /// Recurse until the stack runs into its guard page.
    StackOverflow,
    /// The same on a kernel thread's own stack (not the boot stack).
    ThreadStackOverflow,
}

impl Kind {
    /// The kind named on the command line.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "page-fault" => Some(Kind::PageFault),
            "stack-overflow" => Some(Kind::StackOverflow),
            "thread-stack-overflow" => Some(Kind::ThreadStackOverflow),
            _ => None,
        }
    }
}

/// The address the page-fault crash reads: in the user half, with no user
/// space active, so nothing maps it.
pub const UNMAPPED_ADDRESS: usize = 0x1000;

fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(true) {
        recurse(depth + 1) + frame[7]
    } else {
        frame[3]
    }
}

/// A kernel thread's work: recursing until its stack overflows.
fn overflow(_: usize) {
    let depth = recurse(0);
    panic!("recursion returned at depth {depth}");
}

/// Faults as asked; the trap handler reports it and stops the machine.
pub fn run<A: hal::Arch>(kind: Kind) -> ! {
    log::info!("crashing on purpose: {kind:?}");
    match kind {
        Kind::PageFault => {
            // SAFETY: this read is meant to fault; the fault never returns.
            let value = unsafe { (UNMAPPED_ADDRESS as *const u64).read_volatile() };
            panic!("reading {UNMAPPED_ADDRESS:#x} did not fault (read {value:#x})");
        }
        Kind::StackOverflow => {
            let depth = recurse(0);
            panic!("recursion returned at depth {depth}");
        }
        Kind::ThreadStackOverflow => {
            if let Err(e) = crate::task::spawn_kernel_thread::<A>(
                "overflow",
                crate::task::DEFAULT_PRIORITY,
                overflow,
                0,
            ) {
                panic!("no thread to overflow the stack of: {e}");
            }
            // The boot thread waits, so the other runs.
            let _ = crate::task::sleep_until::<A>(u64::MAX);
            panic!("the overflowing thread came back");
        }
    }
}
