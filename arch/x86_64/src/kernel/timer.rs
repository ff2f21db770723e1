//! The time concern as the HAL sees it: the clock (`time`), the wall
//! clock (the CMOS RTC) and the tick (the local APIC timer, owned by
//! `interrupts`). Kept apart from both so that neither imports the other.
//!
//! The RTC is read once, at boot, and the wall clock kept from there with
//! the monotonic clock: after boot the RTC belongs to whichever driver
//! init gives it to, and its index and data ports cannot be shared.

use spin::Once;

/// The wall clock at boot, and the monotonic clock then.
static WALL_CLOCK_AT: Once<Option<(u64, u64)>> = Once::new();

/// Reads the RTC for the wall clock.
pub fn read_wall_clock() {
    WALL_CLOCK_AT.call_once(|| {
        let seconds = drivers::cmos_rtc::read_time(&crate::ports::IoPorts)?.unix_seconds()?;
        Some((seconds, crate::time::monotonic_ns()))
    });
}

impl hal::Time for crate::arch::X86_64 {
    fn monotonic_ns() -> u64 {
        crate::time::monotonic_ns()
    }

    fn since_reset_ns() -> u64 {
        crate::time::since_reset_ns()
    }

    fn wall_clock_seconds() -> Option<u64> {
        let (seconds, at_ns) = (*WALL_CLOCK_AT.get()?)?;
        Some(seconds + (crate::time::monotonic_ns() - at_ns) / 1_000_000_000)
    }

    fn start_ticks(hz: u32) -> Result<usize, hal::TimerError> {
        crate::interrupts::start_ticks(hz)
    }

    fn stop_ticks() {
        crate::interrupts::stop_ticks();
    }

    fn acknowledge_tick() {
        // The local APIC timer needs only the end of interrupt. The tick
        // is also what reads the clock's refinement window.
        if crate::time::refine() {
            crate::interrupts::retime_ticks();
        }
    }
}
