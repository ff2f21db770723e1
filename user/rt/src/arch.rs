//! What differs between the CPUs: the entry code, the system-call
//! instruction, and a few instructions the tests need on purpose. This is
//! the only place in Ferrite that tests `target_arch`.

#[cfg(target_arch = "x86_64")]
mod imp {
    /// Entry: clears the frame pointer (ends backtraces), aligns the stack
    /// and calls `start` with the argument pointer and length the kernel
    /// put in rdi and rsi.
    #[unsafe(naked)]
    #[unsafe(no_mangle)]
    #[unsafe(link_section = ".text._start")]
    unsafe extern "C" fn _start() -> ! {
        core::arch::naked_asm!(
            "xor ebp, ebp",
            "and rsp, -16",
            "call {start}",
            "ud2",
            start = sym crate::start,
        )
    }

    /// Makes system call `number`; returns both result registers.
    #[inline(always)]
    pub fn syscall(number: usize, args: [usize; 6]) -> (usize, usize) {
        let (first, second);
        // SAFETY: the kernel preserves every register but rax, rdx (the
        // results) and rcx, r11 (which SYSCALL uses), and it never touches
        // user memory except through the pointers a call passes, as that
        // call documents.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") number => first,
                in("rdi") args[0],
                in("rsi") args[1],
                inlateout("rdx") args[2] => second,
                in("r10") args[3],
                in("r8") args[4],
                in("r9") args[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        (first, second)
    }

    /// Makes system call `number` that may deliver a message: both result
    /// registers and the four message registers (`rdi`, `rsi`, `r10`,
    /// `r8`), which the kernel leaves as they were when it delivers none.
    #[inline(always)]
    pub fn syscall_message(number: usize, args: [usize; 6]) -> (usize, usize, [usize; 4]) {
        let (first, second);
        let mut words = [args[0], args[1], args[3], args[4]];
        // SAFETY: as for `syscall`; the message registers are outputs too.
        unsafe {
            core::arch::asm!(
                "syscall",
                inlateout("rax") number => first,
                inlateout("rdi") words[0],
                inlateout("rsi") words[1],
                inlateout("rdx") args[2] => second,
                inlateout("r10") words[2],
                inlateout("r8") words[3],
                in("r9") args[5],
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        (first, second, words)
    }

    /// The time-stamp counter.
    pub fn cycle_counter() -> u64 {
        // SAFETY: RDTSC is allowed in user mode (CR4.TSD is clear).
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Whether integer division by zero traps (it does: #DE).
    pub const DIVISION_BY_ZERO_TRAPS: bool = true;

    /// How the kernel reports [`privileged_instruction`]: HLT in user mode
    /// is a general-protection fault.
    pub const PRIVILEGED_INSTRUCTION_FAULT: abi::FaultKind = abi::FaultKind::GeneralProtection;

    /// Divides with the CPU's instruction, without Rust's zero check.
    pub fn hardware_divide(dividend: usize, divisor: usize) -> usize {
        let quotient: usize;
        // SAFETY: DIV faults on a zero divisor, which is what tests ask
        // for; the kernel then ends the process.
        unsafe {
            core::arch::asm!(
                "div {divisor}",
                divisor = in(reg) divisor,
                inlateout("rax") dividend => quotient,
                inlateout("rdx") 0usize => _,
                options(nomem, nostack),
            );
        }
        quotient
    }

    /// Executes an undefined instruction (UD2).
    pub fn undefined_instruction() {
        // SAFETY: raises #UD; the kernel ends the process.
        unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    }

    /// Executes an instruction only the kernel may (HLT).
    pub fn privileged_instruction() {
        // SAFETY: raises #GP in user mode; the kernel ends the process.
        unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
    }
}

#[cfg(target_arch = "arm")]
mod imp {
    // Links the fast copy routines in place of compiler_builtins' own.
    use armv7_mem as _;

    /// Entry: clears the frame pointer, aligns the stack and calls `start`
    /// with the argument pointer and length the kernel put in r0 and r1.
    #[unsafe(naked)]
    #[unsafe(no_mangle)]
    #[unsafe(link_section = ".text._start")]
    unsafe extern "C" fn _start() -> ! {
        core::arch::naked_asm!(
            "mov fp, #0",
            "bic sp, sp, #7",
            "bl {start}",
            "udf #0",
            start = sym crate::start,
        )
    }

    /// Makes system call `number`; returns both result registers.
    #[inline(always)]
    pub fn syscall(number: usize, args: [usize; 6]) -> (usize, usize) {
        let (first, second);
        // SAFETY: the kernel preserves every register but r0 and r1 (the
        // results), and touches user memory only through the pointers a
        // call passes, as that call documents.
        unsafe {
            core::arch::asm!(
                "svc #0",
                in("r7") number,
                inlateout("r0") args[0] => first,
                inlateout("r1") args[1] => second,
                in("r2") args[2],
                in("r3") args[3],
                in("r4") args[4],
                in("r5") args[5],
                options(nostack),
            );
        }
        (first, second)
    }

    /// Makes system call `number` that may deliver a message: both result
    /// registers and the four message registers (r2-r5), which the kernel
    /// leaves as they were when it delivers none.
    #[inline(always)]
    pub fn syscall_message(number: usize, args: [usize; 6]) -> (usize, usize, [usize; 4]) {
        let (first, second);
        let mut words = [args[2], args[3], args[4], args[5]];
        // SAFETY: as for `syscall`; the message registers are outputs too.
        unsafe {
            core::arch::asm!(
                "svc #0",
                in("r7") number,
                inlateout("r0") args[0] => first,
                inlateout("r1") args[1] => second,
                inlateout("r2") words[0],
                inlateout("r3") words[1],
                inlateout("r4") words[2],
                inlateout("r5") words[3],
                options(nostack),
            );
        }
        (first, second, words)
    }

    /// The cycle counter, PMCCNTR (the kernel opens it to user mode).
    pub fn cycle_counter() -> u64 {
        let count: u32;
        // SAFETY: reading PMCCNTR from user mode is allowed by PMUSERENR.
        unsafe {
            core::arch::asm!("mrc p15, 0, {}, c9, c13, 0", out(reg) count, options(nomem, nostack))
        };
        count as u64
    }

    /// Whether integer division by zero traps: on ARMv7-A, UDIV and SDIV
    /// return zero instead. Rust's own check makes the program panic.
    pub const DIVISION_BY_ZERO_TRAPS: bool = false;

    /// How the kernel reports [`privileged_instruction`]: system-register
    /// access from user mode is an undefined instruction.
    pub const PRIVILEGED_INSTRUCTION_FAULT: abi::FaultKind = abi::FaultKind::IllegalInstruction;

    /// Divides with the CPU's instruction, without Rust's zero check.
    pub fn hardware_divide(dividend: usize, divisor: usize) -> usize {
        let quotient: usize;
        // SAFETY: UDIV has no side effects (a zero divisor gives zero).
        // The Cortex-A15 has it; the target's baseline does not assume it.
        unsafe {
            core::arch::asm!(
                ".arch_extension idiv",
                "udiv {q}, {n}, {d}",
                q = lateout(reg) quotient,
                n = in(reg) dividend,
                d = in(reg) divisor,
                options(nomem, nostack),
            );
        }
        quotient
    }

    /// Executes an undefined instruction (UDF).
    pub fn undefined_instruction() {
        // SAFETY: raises an undefined-instruction exception; the kernel
        // ends the process.
        unsafe { core::arch::asm!("udf #1", options(nomem, nostack)) };
    }

    /// Executes an instruction only the kernel may: reading SCTLR.
    pub fn privileged_instruction() {
        // SAFETY: undefined in user mode; the kernel ends the process.
        unsafe {
            core::arch::asm!("mrc p15, 0, {}, c1, c0, 0", out(reg) _, options(nomem, nostack))
        };
    }
}

pub use imp::*;

/// The cycles from `start` to `end`, both read with [`cycle_counter`],
/// across one wrap of the counter (PMCCNTR is 32 bits wide).
pub fn cycles_between(start: u64, end: u64) -> u64 {
    let mask = if size_of::<usize>() == 8 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    end.wrapping_sub(start) & mask
}
