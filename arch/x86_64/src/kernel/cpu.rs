//! The CPU concern: idling, the cycle counter, breakpoints and guarded
//! calls.

use x86_64::instructions::interrupts as cpu_interrupts;

impl hal::Cpu for crate::arch::X86_64 {
    fn idle() {
        // STI takes effect after the next instruction, so no interrupt can
        // be taken between it and HLT.
        cpu_interrupts::enable_and_hlt();
        cpu_interrupts::disable();
    }

    fn sync_instructions(_kernel_address: usize, _len: usize) {
        // Instruction fetch is coherent with data writes on x86_64.
    }

    fn cycle_counter() -> u64 {
        crate::time::rdtsc()
    }

    const CYCLE_COUNTER_BITS: u32 = 64;

    const RETURN_INSTRUCTION: &'static [u8] = &[0xc3];

    fn breakpoint() {
        x86_64::instructions::interrupts::int3();
    }

    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), hal::Fault> {
        // SAFETY: the caller upholds the contract, which is the same.
        unsafe { crate::traps::catch_fault(f, arg) }
    }
}
