//! Threads and user mode: stack switching, new threads' first run, and
//! system calls (SVC from user mode).

use crate::arch::Armv7;
use crate::traps::{self, TrapFrame};
use hal::UserEntry;

core::arch::global_asm!(include_str!("threads.s"), options(raw));

unsafe extern "C" {
    fn armv7_switch(save: *mut usize, load: usize);
    fn user_thread_start();
    fn kernel_thread_start();
}

/// CPSR for a new user thread: User mode, ARM state, IRQs and FIQs on.
const USER_CPSR: u32 = 0x10;
/// CPSR's Thumb bit, set for an entry point with bit 0 set.
const THUMB: u32 = 1 << 5;

/// Words `armv7_switch` keeps on a stack: TPIDRURW, r4-r11, lr.
const SWITCH_WORDS: usize = 10;

/// Lets user mode read the cycle counter (PMCCNTR) for measurements.
pub fn init() {
    // SAFETY: PMUSERENR.EN only opens PMU reads (and counter control) to
    // user mode; the kernel uses the PMU for measurement only.
    unsafe { aarch32_cpu::register::Pmuserenr::write(aarch32_cpu::register::Pmuserenr(1)) };
}

/// Pushes `words` onto the downward-growing stack at `*sp`, first word at
/// the lowest address.
///
/// # Safety
/// The words below `*sp` must be mapped and unused.
unsafe fn push_words(sp: &mut usize, words: &[usize]) {
    *sp -= size_of_val(words);
    // SAFETY: passed on to the caller.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), *sp as *mut usize, words.len()) };
}

impl hal::Threads for Armv7 {
    unsafe fn prepare_user_thread(kernel_stack_top: usize, entry: UserEntry) -> usize {
        let frame_address = (kernel_stack_top & !7) - size_of::<TrapFrame>();
        let thumb = if entry.pc & 1 != 0 { THUMB } else { 0 };
        let mut r = [0; 13];
        r[0] = entry.args[0] as u32;
        r[1] = entry.args[1] as u32;
        let frame = TrapFrame::new_user(
            r,
            entry.sp as u32,
            (entry.pc & !1) as u32,
            USER_CPSR | thumb,
        );
        // SAFETY: the caller gives a mapped, unused stack; the frame sits
        // at its 8-byte-aligned top.
        unsafe { (frame_address as *mut TrapFrame).write(frame) };
        // TPIDRURW, r4-r11 and the return address the switch pops.
        let mut sp = frame_address;
        let mut words = [0; SWITCH_WORDS];
        words[SWITCH_WORDS - 1] = user_thread_start as *const () as usize;
        // SAFETY: as above, just below the frame.
        unsafe { push_words(&mut sp, &words) };
        sp
    }

    unsafe fn prepare_kernel_thread(
        kernel_stack_top: usize,
        main: extern "C" fn(usize) -> !,
        argument: usize,
    ) -> usize {
        // The words popped must leave the stack 8-byte aligned for the
        // call kernel_thread_start makes.
        let mut sp = (kernel_stack_top & !7) - (SWITCH_WORDS * 4) % 8;
        let mut words = [0; SWITCH_WORDS];
        words[1] = main as usize; // r4
        words[2] = argument; // r5
        words[SWITCH_WORDS - 1] = kernel_thread_start as *const () as usize;
        // SAFETY: the caller gives a mapped, unused stack.
        unsafe { push_words(&mut sp, &words) };
        sp
    }

    unsafe fn switch(save: *mut usize, load: usize) {
        // SAFETY: passed on to the caller.
        unsafe { armv7_switch(save, load) }
    }

    fn set_kernel_stack(_top: usize) {
        // The kernel runs in SVC mode, whose stack pointer is the current
        // thread's kernel stack already; exceptions from user mode save
        // their frame on it.
    }

    #[inline(always)]
    unsafe fn write_frame_results(kernel_stack_top: usize, results: [usize; 2], words: [usize; 4]) {
        // SAFETY: as the caller promises, the thread is switched out with
        // its system call frame at the top of its kernel stack, untouched
        // until it runs.
        let frame = unsafe { &mut *traps::frame_below(kernel_stack_top) };
        traps::write_results(frame, results, Some(words));
    }
}

/// Called by `user_thread_start` before a new user thread's first return
/// to user mode.
#[unsafe(no_mangle)]
extern "C" fn armv7_user_thread_started() {
    kernel::entry::user_thread_started::<Armv7>();
}
