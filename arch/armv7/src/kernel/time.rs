//! The monotonic clock, the generic timer's physical count at CNTFRQ; and
//! the CPU's cycle counter, PMCCNTR, for measuring short intervals.

use aarch32_cpu::register::{CntPct, Cntfrq, Pmccntr, Pmcntenset, Pmcr};
use core::sync::atomic::{AtomicU64, Ordering};

static COUNT_AT_BOOT: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per count in 32.32 fixed point.
static NS_PER_COUNT_FP32: AtomicU64 = AtomicU64::new(0);

/// The generic timer's physical count.
pub fn count() -> u64 {
    CntPct::read().0
}

/// The cycle counter (32 bits).
pub fn cycles() -> u32 {
    Pmccntr::read().0
}

/// Starts the monotonic clock at zero and the cycle counter.
pub fn init() {
    // PMCR: enable counters (E) and reset the cycle counter (C);
    // PMCNTENSET: enable the cycle counter (bit 31).
    // SAFETY: PMU configuration only; nothing else uses the PMU.
    unsafe {
        Pmcr::write(Pmcr(0b101));
        Pmcntenset::write(Pmcntenset(1 << 31));
    }
    aarch32_cpu::asm::isb();
    // Firmware sets CNTFRQ; QEMU reports 62.5 MHz. Zero would be a broken
    // firmware: fall back to QEMU's value rather than divide by zero.
    let hz = match Cntfrq::read().0 {
        0 => 62_500_000,
        hz => hz as u64,
    };
    NS_PER_COUNT_FP32.store(
        ((1_000_000_000u128 << 32) / hz as u128) as u64,
        Ordering::Relaxed,
    );
    COUNT_AT_BOOT.store(count(), Ordering::Relaxed);
}

/// Nanoseconds since [`init`].
pub fn monotonic_ns() -> u64 {
    counts_to_ns(count().saturating_sub(COUNT_AT_BOOT.load(Ordering::Relaxed)))
}

/// Nanoseconds since reset, when the generic counter started at zero.
pub fn since_reset_ns() -> u64 {
    counts_to_ns(count())
}

fn counts_to_ns(counts: u64) -> u64 {
    ((counts as u128 * NS_PER_COUNT_FP32.load(Ordering::Relaxed) as u128) >> 32) as u64
}
