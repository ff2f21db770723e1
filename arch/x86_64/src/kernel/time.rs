//! The monotonic clock: the TSC, its rate measured against the legacy PIT.
//!
//! The PIT is used for calibration because both machines have it: microvm
//! has neither an HPET nor the port-0x61 gate of PC speaker timing, and
//! QEMU's TCG does not report the TSC rate in CPUID. Channel 0's count is
//! polled by latching, so no interrupt is needed.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

const PIT_HZ: u64 = 1_193_182;
const PIT_CHANNEL0: u16 = 0x40;
const PIT_COMMAND: u16 = 0x43;
/// Channel 0, low then high byte, mode 2 (rate generator), binary.
const PIT_CHANNEL0_RATE_GENERATOR: u8 = 0x34;
const PIT_LATCH_CHANNEL0: u8 = 0x00;

/// How long to measure: 1 ms keeps boot short (under instruction counting
/// every nanosecond of busy-waiting is an instruction) while one PIT tick
/// of error is under 0.1 %.
const CALIBRATION_PIT_TICKS: u32 = (PIT_HZ / 1000) as u32;

/// Polls allowed before concluding that the PIT does not count.
const MAX_PIT_POLLS: u32 = 5_000_000;

/// Used when the PIT does not count: QEMU's nominal rate.
const FALLBACK_TSC_HZ: u64 = 1_000_000_000;

static TSC_AT_BOOT: AtomicU64 = AtomicU64::new(0);
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

/// Measures the TSC rate in Hz against the PIT; `None` if the PIT is absent.
fn measure_tsc_hz() -> Option<u64> {
    // SAFETY: reprogramming channel 0 is harmless: its interrupt is masked
    // (interrupts are off and nothing has enabled IRQ 0).
    unsafe {
        Port::<u8>::new(PIT_COMMAND).write(PIT_CHANNEL0_RATE_GENERATOR);
        Port::<u8>::new(PIT_CHANNEL0).write(0xff);
        Port::<u8>::new(PIT_CHANNEL0).write(0xff);
    }
    // A short pass first: under emulation the first run of this code is
    // slowed by translation, which would skew a short measurement.
    measure_window(CALIBRATION_PIT_TICKS / 8)?;
    let (tsc, pit) = measure_window(CALIBRATION_PIT_TICKS)?;
    Some(tsc * PIT_HZ / pit as u64)
}

/// TSC ticks and PIT ticks over a window of at least `window` PIT ticks.
fn measure_window(window: u32) -> Option<(u64, u32)> {
    // Start on a tick edge.
    let first = read_pit();
    let mut previous = (0..MAX_PIT_POLLS)
        .map(|_| read_pit())
        .find(|&count| count != first)?;
    let start = rdtsc();
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
    Some((rdtsc() - start, elapsed))
}

/// Calibrates the TSC and starts the monotonic clock at zero.
pub fn init() {
    let hz = match measure_tsc_hz() {
        Some(hz) if hz > 0 => hz,
        _ => {
            log::warn!("PIT does not count; assuming a {FALLBACK_TSC_HZ} Hz TSC");
            FALLBACK_TSC_HZ
        }
    };
    NS_PER_TICK_FP32.store(
        (1_000_000_000u128 << 32).div_ceil(hz as u128) as u64,
        Ordering::Relaxed,
    );
    TSC_AT_BOOT.store(rdtsc(), Ordering::Relaxed);
}

/// Nanoseconds since [`init`].
pub fn monotonic_ns() -> u64 {
    ticks_to_ns(rdtsc().saturating_sub(TSC_AT_BOOT.load(Ordering::Relaxed)))
}

/// Nanoseconds since reset, when the TSC started at zero.
pub fn since_reset_ns() -> u64 {
    ticks_to_ns(rdtsc())
}

fn ticks_to_ns(ticks: u64) -> u64 {
    ((ticks as u128 * NS_PER_TICK_FP32.load(Ordering::Relaxed) as u128) >> 32) as u64
}
