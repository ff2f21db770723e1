//! The monotonic clock, the generic timer's physical count at CNTFRQ; and
//! the CPU's cycle counter, PMCCNTR, for measuring short intervals.

use aarch32_cpu::register::{CntPct, Cntfrq};
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
    let value: u32;
    // SAFETY: reads PMCCNTR, enabled by `init`.
    unsafe {
        core::arch::asm!("mrc p15, 0, {}, c9, c13, 0", out(reg) value, options(nomem, nostack))
    };
    value
}

/// Starts the monotonic clock at zero and the cycle counter.
pub fn init() {
    // PMCR: enable counters (E) and reset the cycle counter (C);
    // PMCNTENSET: enable the cycle counter (bit 31).
    // SAFETY: PMU configuration only; nothing else uses the PMU.
    unsafe {
        core::arch::asm!(
            "mcr p15, 0, {pmcr}, c9, c12, 0",
            "mcr p15, 0, {enable}, c9, c12, 1",
            "isb",
            pmcr = in(reg) 0b101u32,
            enable = in(reg) 1u32 << 31,
            options(nostack)
        );
    }
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
    let counts = count().saturating_sub(COUNT_AT_BOOT.load(Ordering::Relaxed));
    ((counts as u128 * NS_PER_COUNT_FP32.load(Ordering::Relaxed) as u128) >> 32) as u64
}
