//! The door from the architecture into the portable core: every path by
//! which control arrives from the machine enters here, and nowhere else.
//!
//! | event | entry |
//! |---|---|
//! | boot, once the arch can print and knows memory | [`boot`] (after [`early`]) |
//! | system call | [`system_call`] |
//! | interrupt (or a spurious one) | [`interrupt`], [`spurious_interrupt`] |
//! | exception in user mode | [`user_fault`] |
//! | any return to user mode | [`before_user_return`] |
//! | a new user thread's first run | [`user_thread_started`] |
//! | breakpoint in the kernel | [`kernel_breakpoint`] |
//! | fault inside a guarded kernel call | [`kernel_fault_caught`], [`guarded_call_ended`] |
//! | panic | [`panic`] |
//!
//! The architecture also uses the core's services (the frame allocator as
//! a page-table frame source, the heap as the global allocator, the
//! console and exit codes); those are not entries.

use hal::{Arch, Fault};

/// Connects printing, logging and the clock to `A`, so that even boot
/// failures are reported; see [`crate::init_early`].
pub fn early<A: Arch>() {
    crate::init_early::<A>();
}

/// The portable kernel's start, with the architecture's own in-kernel
/// tests; see [`crate::kmain`].
pub fn boot<A: Arch>(arch_tests: &[crate::ktest::Test]) -> ! {
    crate::kmain::<A>(arch_tests)
}

/// A system call: `number` and its arguments; returns the two result
/// registers.
#[inline(always)]
pub fn system_call<A: Arch>(number: usize, args: [usize; 6]) -> crate::syscall::Returned {
    crate::syscall::handle::<A>(number, args)
}

/// The IPC fast path for system call `number` with `args`, tried first by
/// the architecture's entry: `None` if the call must go the general way
/// ([`system_call`]); otherwise the calling thread has blocked and will
/// resume at the kernel context `resume_sp` (which the architecture
/// prepares, below the call's frame, to end in [`ipc_resumed`]), and the
/// architecture resumes the thread returned.
#[inline(always)]
pub fn fast_system_call<A: Arch>(
    number: usize,
    args: [usize; 6],
    resume_sp: usize,
) -> Option<crate::task::Resume> {
    crate::syscall::fastpath::try_ipc::<A>(number, args, resume_sp)
}

/// A thread that blocked on the fast path runs again, woken the general
/// way: what its call returns. The architecture writes it into the call's
/// frame, calls [`before_user_return`] and returns to user mode.
pub fn ipc_resumed() -> crate::syscall::Returned {
    crate::syscall::fastpath::resumed()
}

/// Interrupt `irq` arrived (interrupts masked); runs its handler.
pub fn interrupt<A: Arch>(irq: usize) {
    crate::irq::dispatch::<A>(irq);
}

/// The controller withdrew an interrupt it had signalled.
pub fn spurious_interrupt() {
    crate::irq::spurious();
}

/// An exception in user mode; returns only if it was resolved (a page
/// brought in), otherwise the process is killed.
pub fn user_fault<A: Arch>(fault: Fault, cause: &'static str) {
    crate::task::user_fault::<A>(fault, cause);
}

/// Before every return to user mode: a due switch, a killed thread's end.
#[inline]
pub fn before_user_return<A: Arch>() {
    crate::task::before_user_return::<A>();
}

/// A new user thread's first run, before it enters user mode.
pub fn user_thread_started<A: Arch>() {
    crate::task::user_thread_started::<A>();
}

/// A breakpoint in kernel code at `pc`; execution then continues.
pub fn kernel_breakpoint(pc: usize) {
    crate::trap::breakpoint(pc);
}

/// A kernel fault inside a guarded call (see `hal::Cpu::catch_fault`):
/// recorded before the call is abandoned.
pub fn kernel_fault_caught(fault: Fault) {
    crate::fault_catch::record(fault);
}

/// A guarded call ended, by returning or (`faulted`) by a fault.
pub fn guarded_call_ended(faulted: bool) -> Result<(), Fault> {
    crate::fault_catch::outcome(faulted)
}

/// A panic: reports it (the architecture then stops the machine).
pub fn panic(info: &core::panic::PanicInfo<'_>) {
    crate::panic::report(info);
}
