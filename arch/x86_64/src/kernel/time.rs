//! The monotonic clock: the TSC, its rate measured against the legacy PIT.
//!
//! The PIT is used for calibration because both machines have it: microvm
//! has neither an HPET nor the port-0x61 gate of PC speaker timing, and
//! QEMU's TCG does not report the TSC rate in CPUID. Channel 0's count is
//! polled by latching, so no interrupt is needed.
//!
//! The clock runs from kernel entry at a nominal rate; [`calibrate`], once
//! the local APIC is mapped, measures the TSC and the APIC timer against
//! the PIT in the same window (one wait for both: under QEMU's instruction
//! counting every nanosecond of waiting is an instruction of boot time) and
//! the clock carries on from where it was at the measured rate.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Channel 0, low then high byte, mode 2 (rate generator), binary.
const PIT_CHANNEL0_RATE_GENERATOR: u8 = 0x34;
const PIT_LATCH_CHANNEL0: u8 = 0x00;

/// How long to measure: 1 ms keeps boot short while one PIT tick, or a
/// poll's worth of delay in noticing the window's edges, is well under 1 %
/// (shorter windows measured QEMU's TSC 5 % apart between boots).
const CALIBRATION_PIT_TICKS: u32 = (PIT_HZ / 1000) as u32;

/// Polls allowed before concluding that the PIT does not count.
const MAX_PIT_POLLS: u32 = 5_000_000;

/// The rate assumed until calibration, and if the PIT does not count:
/// QEMU's nominal rate.
const FALLBACK_TSC_HZ: u64 = 1_000_000_000;

/// The clock is `BASE_NS + (tsc - BASE_TSC) * NS_PER_TICK`.
static BASE_TSC: AtomicU64 = AtomicU64::new(0);
static BASE_NS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds per TSC tick in 32.32 fixed point.
static NS_PER_TICK_FP32: AtomicU64 = AtomicU64::new(1 << 32);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; long mode guarantees it exists.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn read_pit() -> u16 {
    let mut command = Port::<u8>::new(PIT_COMMAND);
    let mut data = Port::<u8>::new(PIT_CHANNEL0);
    // SAFETY: the PIT ports belong to the kernel; latching has no effect
    // beyond freezing the value read next.
    unsafe {
        command.write(PIT_LATCH_CHANNEL0);
        let low = data.read();
        let high = data.read();
        u16::from_le_bytes([low, high])
    }
}

/// What a window measured: TSC ticks, ticks of the other counter (which
/// counts down), and PIT ticks.
struct Window {
    tsc: u64,
    other: u32,
    pit: u32,
}

/// Measures over a window of at least `window` PIT ticks, reading the TSC
/// and `other` at its edges.
fn measure_window(window: u32, other: &dyn Fn() -> u32) -> Option<Window> {
    // Start on a tick edge.
    let first = read_pit();
    let mut previous = (0..MAX_PIT_POLLS)
        .map(|_| read_pit())
        .find(|&count| count != first)?;
    let (start, other_start) = (rdtsc(), other());
    let mut elapsed = 0u32;
    let mut polls = 0u32;
    while elapsed < window {
        let now = read_pit();
        // The counter counts down and reloads at 0xffff.
        elapsed += previous.wrapping_sub(now) as u32;
        previous = now;
        polls += 1;
        if polls > MAX_PIT_POLLS {
            return None;
        }
    }
    Some(Window {
        tsc: rdtsc() - start,
        other: other_start.wrapping_sub(other()),
        pit: elapsed,
    })
}

/// Starts the clock at zero, at the nominal rate.
pub fn init() {
    BASE_TSC.store(rdtsc(), Ordering::Relaxed);
    set_rate(FALLBACK_TSC_HZ);
}

fn set_rate(hz: u64) {
    NS_PER_TICK_FP32.store(
        (1_000_000_000u128 << 32).div_ceil(hz as u128) as u64,
        Ordering::Relaxed,
    );
}

/// Measures the TSC's rate against the PIT, and that of `other`, a
/// counter counting down (the APIC timer), in the same window; from now on
/// the clock runs at the TSC's measured rate, continuing from its current
/// value. Returns `other`'s rate, or `None` if the PIT does not count (the
/// clock then keeps the nominal rate).
pub fn calibrate(other: &dyn Fn() -> u32) -> Option<u64> {
    // SAFETY: reprogramming channel 0 is harmless: its interrupt is masked
    // (interrupts are off and nothing has enabled IRQ 0).
    unsafe {
        Port::<u8>::new(PIT_COMMAND).write(PIT_CHANNEL0_RATE_GENERATOR);
        Port::<u8>::new(PIT_CHANNEL0).write(0xff);
        Port::<u8>::new(PIT_CHANNEL0).write(0xff);
    }
    // A short pass first: under emulation the first run of this code is
    // slowed by translation, which would skew the measurement.
    let measured = measure_window(CALIBRATION_PIT_TICKS / 8, other)
        .and_then(|_| measure_window(CALIBRATION_PIT_TICKS, other));
    let Some(window) = measured.filter(|w| w.tsc > 0 && w.pit > 0) else {
        log::warn!("PIT does not count; assuming a {FALLBACK_TSC_HZ} Hz TSC");
        return None;
    };
    let tsc_hz = window.tsc * PIT_HZ / window.pit as u64;
    let now = rdtsc();
    BASE_NS.store(ns_at(now), Ordering::Relaxed);
    BASE_TSC.store(now, Ordering::Relaxed);
    set_rate(tsc_hz);
    log::info!("TSC: {tsc_hz} Hz (against the PIT)");
    Some(window.other as u64 * PIT_HZ / window.pit as u64)
}

fn ns_at(tsc: u64) -> u64 {
    BASE_NS.load(Ordering::Relaxed)
        + ticks_to_ns(tsc.saturating_sub(BASE_TSC.load(Ordering::Relaxed)))
}

/// Nanoseconds since [`init`].
pub fn monotonic_ns() -> u64 {
    ns_at(rdtsc())
}

/// Nanoseconds since reset, when the TSC started at zero.
pub fn since_reset_ns() -> u64 {
    ticks_to_ns(rdtsc())
}

fn ticks_to_ns(ticks: u64) -> u64 {
    ((ticks as u128 * NS_PER_TICK_FP32.load(Ordering::Relaxed) as u128) >> 32) as u64
}
