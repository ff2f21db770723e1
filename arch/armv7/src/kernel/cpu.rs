//! The CPU concern: idling, instruction-cache maintenance, the cycle
//! counter, breakpoints and guarded calls.

impl hal::Cpu for crate::arch::Armv7 {
    fn idle() {
        // WFI wakes for a pending interrupt even while IRQs are masked, so
        // one that arrives before it cannot be slept through; unmasking
        // then takes it.
        aarch32_cpu::asm::wfi();
        // SAFETY: the caller is ready for interrupts here; that is the
        // point of idling.
        unsafe { aarch32_cpu::interrupt::enable() };
        aarch32_cpu::interrupt::disable();
    }

    fn sync_instructions(kernel_address: usize, len: usize) {
        crate::memory::sync_instructions(kernel_address, len);
    }

    fn cycle_counter() -> u64 {
        crate::time::cycles() as u64
    }

    const CYCLE_COUNTER_BITS: u32 = 32;

    /// `bx lr`.
    const RETURN_INSTRUCTION: &'static [u8] = &[0x1e, 0xff, 0x2f, 0xe1];

    fn breakpoint() {
        // SAFETY: BKPT traps to the prefetch-abort handler, which reports
        // it and resumes at the next instruction.
        unsafe { core::arch::asm!("bkpt #0", options(nomem, nostack)) };
    }

    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), hal::Fault> {
        // SAFETY: the caller upholds the contract, which is the same.
        unsafe { crate::traps::catch_fault(f, arg) }
    }
}
