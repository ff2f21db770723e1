//! What the portable core keeps of traps the architectures handle.

use core::sync::atomic::{AtomicU64, Ordering};

static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// Called by the architecture for a breakpoint; execution then continues.
pub fn breakpoint(pc: usize) {
    BREAKPOINTS.fetch_add(1, Ordering::Relaxed);
    log::info!("breakpoint at {pc:#x}");
}

/// Breakpoints taken so far.
pub fn breakpoints() -> u64 {
    BREAKPOINTS.load(Ordering::Relaxed)
}
