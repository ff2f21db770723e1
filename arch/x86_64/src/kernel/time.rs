//! The monotonic clock: the TSC, its rate measured against the legacy PIT.
//!
//! The PIT is used for calibration because both machines have it: microvm
//! has neither an HPET nor the port-0x61 gate of PC speaker timing, and
//! QEMU's TCG does not report the TSC rate in CPUID. Channel 0's count is
//! polled by latching, so no interrupt is needed.
//!
//! The clock runs from kernel entry at a nominal rate. [`calibrate`], once
//! the local APIC is mapped, measures the TSC and the APIC timer against
//! the PIT over a short window (a busy wait, and under QEMU's instruction
//! counting every nanosecond of it is an instruction of boot time): the
//! median of three windows of 50 us, good to a percent or two. That sets
//! the APIC timer's rate for good and the clock's for now. [`refine`],
//! called on every tick, then measures the TSC over 20 ms without waiting
//! (see `arch_x86_64::pit`), and the clock carries on from where it was at
//! the rate measured. Each rate change keeps the clock continuous; readers
//! take the three values the clock is made of under a sequence count.

use arch_x86_64::pit::{self, PIT_HZ, Refinement, Step};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use spin::Mutex;
use x86_64::instructions::port::Port;

/// How long each boot-time window lasts: 50 us. The median of three keeps
/// one window slowed by the host (or, under emulation, by translating
/// this code the first time) from setting the rates.
const CALIBRATION_PIT_TICKS: u32 = (PIT_HZ / 20_000) as u32;
const CALIBRATION_WINDOWS: usize = 3;

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
/// The TSC's rate the clock runs at.
static TSC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_TSC_HZ);
/// Odd while the three values above change.
static CLOCK_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// The refinement under way; `None` before calibration and once done.
static REFINEMENT: Mutex<Option<Refinement>> = Mutex::new(None);
/// What the refinement measured: the TSC's rate, the window's PIT ticks
/// and the windows it took (0 until it is done).
static REFINED_TSC_HZ: AtomicU64 = AtomicU64::new(0);
static REFINED_PIT_TICKS: AtomicU32 = AtomicU32::new(0);
static REFINED_WINDOWS: AtomicU32 = AtomicU32::new(0);
/// The rate the boot-time windows measured (0: none).
static CALIBRATED_TSC_HZ: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects; long mode guarantees it exists.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn read_pit() -> u16 {
    let mut command = Port::<u8>::new(pit::COMMAND);
    let mut data = Port::<u8>::new(pit::CHANNEL0);
    // SAFETY: the PIT ports belong to the kernel; latching has no effect
    // beyond freezing the value read next.
    unsafe {
        command.write(pit::LATCH_CHANNEL0);
        let low = data.read();
        let high = data.read();
        u16::from_le_bytes([low, high])
    }
}

/// Channel 0's status and count, latched together.
fn read_back_pit() -> (u8, u16) {
    let mut command = Port::<u8>::new(pit::COMMAND);
    let mut data = Port::<u8>::new(pit::CHANNEL0);
    // SAFETY: as in `read_pit`; the read-back command only latches.
    unsafe {
        command.write(pit::READ_BACK_CHANNEL0);
        let status = data.read();
        let low = data.read();
        let high = data.read();
        (status, u16::from_le_bytes([low, high]))
    }
}

/// Programs channel 0 with `mode` and `count`.
fn program_pit(mode: u8, count: u16) {
    let [low, high] = count.to_le_bytes();
    // SAFETY: channel 0's interrupt is masked (nothing routes IRQ 0), so
    // reprogramming it only changes what the kernel reads back.
    unsafe {
        Port::<u8>::new(pit::COMMAND).write(mode);
        Port::<u8>::new(pit::CHANNEL0).write(low);
        Port::<u8>::new(pit::CHANNEL0).write(high);
    }
}

/// What a window measured: TSC ticks, ticks of the other counter (which
/// counts down), and PIT ticks.
#[derive(Clone, Copy)]
struct Window {
    tsc: u64,
    other: u32,
    pit: u32,
}

impl Window {
    fn tsc_hz(&self) -> u64 {
        pit::rate_hz(self.tsc, self.pit).unwrap_or(0)
    }
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

/// From now on the clock runs at `hz`, continuing from its current value.
fn rebase(hz: u64) {
    let sequence = CLOCK_SEQUENCE.load(Ordering::Relaxed);
    let now = rdtsc();
    let now_ns = ns_at(now);
    CLOCK_SEQUENCE.store(sequence.wrapping_add(1), Ordering::Relaxed);
    fence(Ordering::Release);
    BASE_NS.store(now_ns, Ordering::Relaxed);
    BASE_TSC.store(now, Ordering::Relaxed);
    set_rate(hz);
    CLOCK_SEQUENCE.store(sequence.wrapping_add(2), Ordering::Release);
}

fn set_rate(hz: u64) {
    TSC_HZ.store(hz, Ordering::Relaxed);
    NS_PER_TICK_FP32.store(
        (1_000_000_000u128 << 32).div_ceil(hz as u128) as u64,
        Ordering::Relaxed,
    );
}

/// The TSC's rate the clock runs at.
pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

/// Measures the TSC's rate against the PIT, and `other`, a counter
/// counting down (the APIC timer), against the TSC, in the same windows;
/// the clock runs at the TSC's rate measured, continuing from its current
/// value, and [`refine`] measures it again, longer. Returns `other`'s
/// counts per TSC tick in 32.32 fixed point (read back to back with the
/// TSC, so good whatever the windows' error against the PIT), or `None` if
/// the PIT does not count (the clock then keeps the nominal rate).
pub fn calibrate(other: &dyn Fn() -> u32) -> Option<u64> {
    program_pit(pit::CHANNEL0_RATE_GENERATOR, 0xffff);
    let mut measured = [Window {
        tsc: 0,
        other: 0,
        pit: 0,
    }; CALIBRATION_WINDOWS];
    for slot in &mut measured {
        match measure_window(CALIBRATION_PIT_TICKS, other).filter(|w| w.tsc > 0 && w.pit > 0) {
            Some(window) => *slot = window,
            None => {
                log::warn!("PIT does not count; assuming a {FALLBACK_TSC_HZ} Hz TSC");
                return None;
            }
        }
    }
    measured.sort_unstable_by_key(Window::tsc_hz);
    let median = measured[CALIBRATION_WINDOWS / 2];
    let tsc_hz = median.tsc_hz();
    rebase(tsc_hz);
    CALIBRATED_TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    log::info!("TSC: {tsc_hz} Hz (against the PIT; refined over the first ticks)");
    start_refinement();
    Some(((median.other as u128) << 32).div_ceil(median.tsc as u128) as u64)
}

/// Starts a refinement window (again, for tests: its figures read 0 until
/// it is done).
pub fn start_refinement() {
    let mut refinement = REFINEMENT.lock();
    REFINED_TSC_HZ.store(0, Ordering::Relaxed);
    program_pit(pit::CHANNEL0_ONE_SHOT, pit::REFINEMENT_COUNT);
    *refinement = Some(Refinement::new(rdtsc()));
}

/// Takes one look at the refinement window, if one is under way: on a
/// window long enough the clock takes the rate it measured, and this
/// returns `true`. Called on every tick, with interrupts masked.
pub fn refine() -> bool {
    let Some(mut guard) = REFINEMENT.try_lock() else {
        return false;
    };
    let Some(refinement) = guard.as_mut() else {
        return false;
    };
    let (status, count) = read_back_pit();
    match refinement.read(status, count, rdtsc()) {
        Step::Running => {}
        Step::Restart => {
            program_pit(pit::CHANNEL0_ONE_SHOT, pit::REFINEMENT_COUNT);
            refinement.restart(rdtsc());
        }
        Step::Measured { tsc_hz, pit_ticks } => {
            rebase(tsc_hz);
            REFINED_PIT_TICKS.store(pit_ticks, Ordering::Relaxed);
            REFINED_WINDOWS.store(refinement.windows, Ordering::Relaxed);
            REFINED_TSC_HZ.store(tsc_hz, Ordering::Relaxed);
            *guard = None;
            return true;
        }
    }
    false
}

/// The TSC's rate as boot measured it and as the refinement did (0 until
/// done), the refinement's window in PIT ticks and the windows it took.
pub fn calibration() -> (u64, u64, u32, u32) {
    (
        CALIBRATED_TSC_HZ.load(Ordering::Relaxed),
        REFINED_TSC_HZ.load(Ordering::Relaxed),
        REFINED_PIT_TICKS.load(Ordering::Relaxed),
        REFINED_WINDOWS.load(Ordering::Relaxed),
    )
}

/// The clock's three values, consistent with each other.
fn clock_values() -> (u64, u64, u64) {
    loop {
        let sequence = CLOCK_SEQUENCE.load(Ordering::Acquire);
        let values = (
            BASE_NS.load(Ordering::Relaxed),
            BASE_TSC.load(Ordering::Relaxed),
            NS_PER_TICK_FP32.load(Ordering::Relaxed),
        );
        fence(Ordering::Acquire);
        if sequence & 1 == 0 && CLOCK_SEQUENCE.load(Ordering::Relaxed) == sequence {
            return values;
        }
        core::hint::spin_loop();
    }
}

fn ns_at(tsc: u64) -> u64 {
    let (base_ns, base_tsc, ns_per_tick) = clock_values();
    base_ns + ticks_to_ns(tsc.saturating_sub(base_tsc), ns_per_tick)
}

/// Nanoseconds since [`init`].
pub fn monotonic_ns() -> u64 {
    ns_at(rdtsc())
}

/// Nanoseconds since reset, when the TSC started at zero.
pub fn since_reset_ns() -> u64 {
    let (_, _, ns_per_tick) = clock_values();
    ticks_to_ns(rdtsc(), ns_per_tick)
}

fn ticks_to_ns(ticks: u64, ns_per_tick: u64) -> u64 {
    ((ticks as u128 * ns_per_tick as u128) >> 32) as u64
}
