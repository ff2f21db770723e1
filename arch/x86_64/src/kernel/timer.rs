//! The time concern as the HAL sees it: the clock (`time`), the wall
//! clock (the CMOS RTC) and the tick (the local APIC timer, owned by
//! `interrupts`). Kept apart from both so that neither imports the other.

impl hal::Time for crate::arch::X86_64 {
    fn monotonic_ns() -> u64 {
        crate::time::monotonic_ns()
    }

    fn since_reset_ns() -> u64 {
        crate::time::since_reset_ns()
    }

    fn wall_clock_seconds() -> Option<u64> {
        drivers::cmos_rtc::read_time(&crate::ports::IoPorts)?.unix_seconds()
    }

    fn start_ticks(hz: u32) -> Result<usize, hal::TimerError> {
        crate::interrupts::start_ticks(hz)
    }

    fn stop_ticks() {
        crate::interrupts::stop_ticks();
    }

    fn acknowledge_tick() {
        // The local APIC timer needs only the end of interrupt.
    }
}
