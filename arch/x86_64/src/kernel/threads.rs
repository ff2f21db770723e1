//! Threads and user mode: stack switching, new threads' first run, and the
//! SYSCALL/SYSRET path with its model-specific registers.

use crate::arch::X86_64;
use crate::gdt;
use crate::traps::TrapFrame;
use arch_x86_64::layout;
use core::sync::atomic::{AtomicU64, Ordering};
use hal::UserEntry;
use kernel::task::Resume;
use x86_64::VirtAddr;
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;

/// The `vector` a system call's frame carries: beyond every real vector.
pub const SYSCALL_VECTOR: u64 = 256;

core::arch::global_asm!(
    include_str!("threads.s"),
    USER_DATA_SELECTOR = const USER_DATA_SELECTOR,
    USER_CODE_SELECTOR = const USER_CODE_SELECTOR,
    SYSCALL_VECTOR = const SYSCALL_VECTOR,
    SYSCALL_CALL = const abi::Syscall::Call as u64,
    SYSCALL_REPLY_RECV = const abi::Syscall::ReplyRecv as u64,
    RESUME_CONTEXT_SPACE = const RESUME_CONTEXT_SPACE,
    options(att_syntax)
);

/// Bytes below a fast-path call's frame: the kernel context a general
/// wake-up resumes at (seven words: what `x86_64_switch` pops and the
/// return address), rounded up to keep the stack 16-byte aligned.
const RESUME_CONTEXT_SPACE: usize = 64;
/// Where the resume context starts, below the frame.
const RESUME_CONTEXT_BYTES: usize = 56;

/// GDT index 3 (user data) and 4 (user code), requested privilege 3; the
/// order `gdt::init` appends them in. `init` checks them.
const USER_DATA_SELECTOR: u64 = 0x1b;
const USER_CODE_SELECTOR: u64 = 0x23;

/// Interrupts on, and bit 1, which is always set.
const USER_RFLAGS: u64 = 0x202;

unsafe extern "C" {
    fn x86_64_switch(save: *mut usize, load: usize);
    fn user_thread_start();
    fn kernel_thread_start();
    fn syscall_entry();
    fn x86_64_resume_frame(frame: *mut TrapFrame) -> !;
    fn x86_64_resume_context(sp: usize) -> !;
    static mut syscall_kernel_rsp: u64;
}

/// Whether SMEP and SMAP are on, for the boot log and the tests.
static PROTECTIONS: AtomicU64 = AtomicU64::new(0);

/// Sets up SYSCALL/SYSRET, supervisor-mode execution and access
/// prevention where the CPU has them, and traps on x87/SSE use (user
/// programs are built without floating point, so the kernel keeps no FPU
/// state for them; an instruction that would need it faults instead).
pub fn init() {
    let selectors = gdt::selectors();
    assert_eq!(selectors.user_data.0 as u64, USER_DATA_SELECTOR);
    assert_eq!(selectors.user_code.0 as u64, USER_CODE_SELECTOR);
    Star::write(
        selectors.user_code,
        selectors.user_data,
        selectors.kernel_code,
        selectors.kernel_data,
    )
    .expect("the GDT's order is what SYSRET expects");
    LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
    // Entering the kernel masks interrupts and single-stepping and clears
    // the direction and alignment-check flags.
    SFMask::write(
        RFlags::INTERRUPT_FLAG
            | RFlags::TRAP_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::ALIGNMENT_CHECK
            | RFlags::NESTED_TASK,
    );
    // SAFETY: enabling SYSCALL changes nothing until one executes, and
    // LSTAR/STAR are set.
    unsafe { Efer::update(|efer| efer.insert(EferFlags::SYSTEM_CALL_EXTENSIONS)) };

    let (smep, smap) = cpu_protections();
    let mut cr4 = Cr4Flags::empty();
    if smep {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if smap {
        cr4 |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: the kernel never executes user pages, and reaches user
    // memory only through the direct map, so neither protection can stop
    // it. No FPU state exists to lose.
    unsafe {
        Cr4::update(|flags| flags.insert(cr4));
        Cr0::update(|flags| flags.insert(Cr0Flags::EMULATE_COPROCESSOR));
    }
    PROTECTIONS.store(cr4.bits(), Ordering::Relaxed);
    log::info!(
        "user mode: syscall/sysret; SMEP {}, SMAP {}",
        if cr4.contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION) {
            "on"
        } else {
            "not available"
        },
        if cr4.contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION) {
            "on"
        } else {
            "not available"
        },
    );
}

/// Whether the CPU offers SMEP and SMAP (CPUID leaf 7).
pub fn cpu_protections() -> (bool, bool) {
    let features = core::arch::x86_64::__cpuid_count(7, 0);
    (features.ebx & (1 << 7) != 0, features.ebx & (1 << 20) != 0)
}

/// Whether SMEP and SMAP are enabled.
pub fn protections() -> (bool, bool) {
    let cr4 = Cr4Flags::from_bits_truncate(PROTECTIONS.load(Ordering::Relaxed));
    (
        cr4.contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION),
        cr4.contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION),
    )
}

/// Pushes `value` onto the downward-growing stack at `*sp`.
///
/// # Safety
/// The word below `*sp` must be mapped and unused.
unsafe fn push(sp: &mut usize, value: usize) {
    *sp -= 8;
    // SAFETY: passed on to the caller.
    unsafe { (*sp as *mut usize).write(value) };
}

/// Pushes what `x86_64_switch` pops: six callee-saved registers under a
/// return address.
///
/// # Safety
/// As for [`push`], for seven words.
unsafe fn push_switch_frame(sp: &mut usize, resume: usize, r12: usize, r13: usize) -> usize {
    // SAFETY: passed on to the caller.
    unsafe {
        push(sp, resume);
        for value in [0, 0, r12, r13, 0, 0] {
            // rbp, rbx, r12, r13, r14, r15 in push order.
            push(sp, value);
        }
    }
    *sp
}

impl hal::Threads for X86_64 {
    unsafe fn prepare_user_thread(kernel_stack_top: usize, entry: UserEntry) -> usize {
        let frame_address = kernel_stack_top - size_of::<TrapFrame>();
        let frame = TrapFrame {
            rdi: entry.args[0] as u64,
            rsi: entry.args[1] as u64,
            rip: entry.pc as u64,
            cs: USER_CODE_SELECTOR,
            rflags: USER_RFLAGS,
            rsp: entry.sp as u64,
            ss: USER_DATA_SELECTOR,
            ..TrapFrame::zeroed()
        };
        // SAFETY: the caller gives a mapped, unused stack; the frame sits
        // at its 16-byte-aligned top.
        unsafe { (frame_address as *mut TrapFrame).write(frame) };
        let mut sp = frame_address;
        // SAFETY: as above; the switch frame goes below the trap frame.
        unsafe { push_switch_frame(&mut sp, user_thread_start as *const () as usize, 0, 0) }
    }

    unsafe fn prepare_kernel_thread(
        kernel_stack_top: usize,
        main: extern "C" fn(usize) -> !,
        argument: usize,
    ) -> usize {
        // After the return into kernel_thread_start the stack is 16-byte
        // aligned, as the call it makes requires.
        let mut sp = kernel_stack_top & !15;
        // SAFETY: the caller gives a mapped, unused stack.
        unsafe {
            push_switch_frame(
                &mut sp,
                kernel_thread_start as *const () as usize,
                main as usize,
                argument,
            )
        }
    }

    unsafe fn switch(save: *mut usize, load: usize) {
        // SAFETY: passed on to the caller.
        unsafe { x86_64_switch(save, load) }
    }

    fn set_kernel_stack(top: usize) {
        gdt::set_kernel_stack(top as u64);
        // SAFETY: read only by syscall_entry, which runs with interrupts
        // off, as callers of this do.
        unsafe { (&raw mut syscall_kernel_rsp).write(top as u64) };
    }

    #[inline(always)]
    unsafe fn write_frame_results(kernel_stack_top: usize, results: [usize; 2], words: [usize; 4]) {
        // SAFETY: as the caller promises, the thread is switched out with
        // its system call frame at the top of its kernel stack, untouched
        // until it runs.
        let frame = unsafe { &mut *frame_below(kernel_stack_top) };
        write_results(frame, results, Some(words));
    }
}

/// The system call frame at the top of the kernel stack ending at `top`.
#[inline(always)]
fn frame_below(top: usize) -> *mut TrapFrame {
    (top - size_of::<TrapFrame>()) as *mut TrapFrame
}

/// Called by `user_thread_start` before a new user thread's first return
/// to user mode.
#[unsafe(no_mangle)]
extern "C" fn x86_64_user_thread_started() {
    kernel::entry::user_thread_started::<X86_64>();
}

/// Handles a system call; returns non-zero if SYSRET may return: the
/// return address is one SYSRET cannot fault on (a non-canonical RCX
/// would make it fault in kernel mode). The kernel never changes a system
/// call frame's segments.
#[unsafe(no_mangle)]
extern "C" fn x86_64_syscall(frame: &mut TrapFrame) -> u64 {
    let returned = kernel::entry::system_call::<X86_64>(frame.rax as usize, arguments(frame));
    write_results(frame, returned.results, returned.message);
    kernel::entry::before_user_return::<X86_64>();
    (frame.rip < layout::USER_ANON_END) as u64
}

/// A call's arguments, as `abi::CALLING_CONVENTIONS` lists them.
#[inline(always)]
fn arguments(frame: &TrapFrame) -> [usize; 6] {
    [
        frame.rdi as usize,
        frame.rsi as usize,
        frame.rdx as usize,
        frame.r10 as usize,
        frame.r8 as usize,
        frame.r9 as usize,
    ]
}

/// Puts a call's results, and a message's words, where the caller finds
/// them: the result registers, and the message registers as
/// `abi::CALLING_CONVENTIONS` lists them.
#[inline(always)]
fn write_results(frame: &mut TrapFrame, [first, second]: [usize; 2], message: Option<[usize; 4]>) {
    frame.rax = first as u64;
    frame.rdx = second as u64;
    if let Some([w0, w1, w2, w3]) = message {
        frame.rdi = w0 as u64;
        frame.rsi = w1 as u64;
        frame.r10 = w2 as u64;
        frame.r8 = w3 as u64;
    }
}

/// The IPC fast path, from `fast_syscall`: hands the CPU to the partner
/// and resumes it, or returns to decline.
#[unsafe(no_mangle)]
extern "C" fn x86_64_fast_syscall(frame: &mut TrapFrame) {
    let args = arguments(frame);
    let resume_sp = frame as *mut TrapFrame as usize - RESUME_CONTEXT_BYTES;
    match kernel::entry::fast_system_call::<X86_64>(frame.rax as usize, args, resume_sp) {
        None => {}
        // SAFETY: the partner blocked on the fast path, its frame complete
        // at the top of its stack; this stack's thread has blocked, to be
        // resumed at its own context.
        Some(Resume::Frame { stack_top }) => unsafe { x86_64_resume_frame(frame_below(stack_top)) },
        // SAFETY: `sp` is the partner's context, saved when it switched
        // out, as a switch would load it.
        Some(Resume::Context { sp }) => unsafe { x86_64_resume_context(sp) },
    }
}

/// A thread that blocked on the fast path, woken the general way (see
/// `ipc_resume` in threads.s): its call's results.
#[unsafe(no_mangle)]
extern "C" fn x86_64_ipc_resumed(frame: &mut TrapFrame) {
    let returned = kernel::entry::ipc_resumed();
    write_results(frame, returned.results, returned.message);
    kernel::entry::before_user_return::<X86_64>();
}
