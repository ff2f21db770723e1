//! The monotonic clock: the generic timer's physical count, at CNTFRQ.

use aarch32_cpu::register::{CntPct, Cntfrq};
use core::sync::atomic::{AtomicU64, Ordering};

static COUNT_AT_BOOT: AtomicU64 = AtomicU64::new(0);
static COUNTER_HZ: AtomicU64 = AtomicU64::new(1);
/// Nanoseconds per count in 32.32 fixed point.
static NS_PER_COUNT_FP32: AtomicU64 = AtomicU64::new(0);

/// The generic timer's physical count.
pub fn count() -> u64 {
    CntPct::read().0
}

/// Starts the monotonic clock at zero.
pub fn init() {
    // Firmware sets CNTFRQ; QEMU reports 62.5 MHz. Zero would be a broken
    // firmware: fall back to QEMU's value rather than divide by zero.
    let hz = match Cntfrq::read().0 {
        0 => 62_500_000,
        hz => hz as u64,
    };
    COUNTER_HZ.store(hz, Ordering::Relaxed);
    NS_PER_COUNT_FP32.store(
        ((1_000_000_000u128 << 32) / hz as u128) as u64,
        Ordering::Relaxed,
    );
    COUNT_AT_BOOT.store(count(), Ordering::Relaxed);
}

/// The counter's rate in Hz.
pub fn counter_hz() -> u64 {
    COUNTER_HZ.load(Ordering::Relaxed)
}

/// Nanoseconds since [`init`].
pub fn monotonic_ns() -> u64 {
    let counts = count().saturating_sub(COUNT_AT_BOOT.load(Ordering::Relaxed));
    ((counts as u128 * NS_PER_COUNT_FP32.load(Ordering::Relaxed) as u128) >> 32) as u64
}
