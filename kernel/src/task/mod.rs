//! Threads, processes and the scheduler, one concern per module:
//! - `thread` and `process`: the records and their tables; `resources`:
//!   what a process holds beyond them, reached from its threads;
//! - `queue`: lists threaded through the thread table, and the run queues;
//! - `wait`: wait queues, kept by whatever threads wait for;
//! - `sched`: the lock over both tables, choosing and switching threads,
//!   the tick, sleeping, and blocking in wait queues;
//! - `spawn`: starting processes and threads; `exit`: their ends, kills
//!   and faults, and what parents learn;
//! - `ipc`: what kernel objects need to pass messages between threads;
//!   `timeout`: the deadlines of IPC waits;
//! - `space` and `image`: user address spaces and loading programs.
//!
//! The kernel is not preemptible: it runs with interrupts masked, except
//! in the idle thread's wait and in kernel code that unmasks them
//! explicitly (the boot thread's tests). Interrupts therefore arrive while
//! a thread is in user mode or idle; the timer tick marks a reschedule as
//! needed, and the switch happens at the next return to user mode
//! ([`before_user_return`]) or in the idle loop. A thread that must wait
//! blocks in the [`WaitQueue`] of what it waits for and switches away;
//! whoever ends the wait makes it ready again.
//!
//! Scheduling is by fixed priority with round robin among equals: the
//! highest non-empty run queue supplies the next thread, and a thread
//! that used up its time slice goes to the back of its queue.

mod exit;
pub mod image;
pub mod ipc;
mod process;
mod queue;
mod resources;
mod sched;
pub mod space;
mod spawn;
mod thread;
mod timeout;
mod wait;

#[cfg(test)]
mod tests;

pub use exit::{
    Kill, before_user_return, exit_process, exit_thread, kill_process, user_fault,
    user_thread_started, wait_child, wait_kernel_child, watch_process,
};
pub use process::{ExitStatus, MAX_PROCESSES, MAX_THREADS_PER_PROCESS, OnExit, Parent, Pid};
pub use sched::{
    TICK_HZ, counts, current_pid, current_quota, current_tid, first_user_ns, idle_cycles,
    process_info, set_priority, set_priority_of, sleep_until, start_ticking,
    unmapping_in_current_space, wait_on, wake_all, with_current_space, yield_now,
};
pub use spawn::{
    RESERVED_FRAMES, SpawnOptions, program_names, spawn, spawn_kernel_thread, spawn_thread,
};
pub use thread::{
    Bound, DEFAULT_PRIORITY, Killed, MAX_THREADS, Message, PRIORITIES, Resume, TIMESLICE_TICKS,
    ThreadRef, Tid, Transfer,
};
pub use wait::WaitQueue;

use crate::archive::Archive;
use hal::Arch;

/// Adopts the running boot code as the first kernel thread and creates the
/// idle thread. User programs will come from `archive`.
pub fn init<A: Arch>(archive: Archive<'static>) -> Result<(), abi::Error> {
    spawn::set_archive(archive);
    crate::inspect::set_kernel_root(A::kernel_root());
    sched::init::<A>()
}
