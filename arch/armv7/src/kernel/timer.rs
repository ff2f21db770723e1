//! The time concern as the HAL sees it: the clock (`time`), and the wall
//! clock and the tick (the PL031 and the SP804, owned by `interrupts`).
//! Kept apart from both so that neither imports the other.

use crate::{interrupts, time};

impl hal::Time for crate::arch::Armv7 {
    fn monotonic_ns() -> u64 {
        time::monotonic_ns()
    }

    fn since_reset_ns() -> u64 {
        time::since_reset_ns()
    }

    fn wall_clock_seconds() -> Option<u64> {
        interrupts::wall_clock_seconds()
    }

    fn start_ticks(hz: u32) -> Result<usize, hal::TimerError> {
        interrupts::start_ticks(hz)
    }

    fn stop_ticks() {
        interrupts::stop_ticks();
    }

    fn acknowledge_tick() {
        interrupts::acknowledge_tick();
    }
}
