//! Threads, processes and the scheduler.
//!
//! A thread is a kernel stack plus saved state; a process is a user
//! address space plus the threads running in it. Kernel threads (the boot
//! thread, the idle thread, test threads) have no process.
//!
//! The kernel is not preemptible: it runs with interrupts masked, except
//! in the idle thread's wait and in kernel code that unmasks them
//! explicitly (the boot thread's tests). Interrupts therefore arrive while
//! a thread is in user mode or idle; the timer tick marks a reschedule as
//! needed, and the switch happens at the next return to user mode
//! ([`before_user_return`]) or in the idle loop. A thread that must wait
//! links itself into a list and switches away; whoever ends the wait makes
//! it ready again.
//!
//! Scheduling is by fixed priority with round robin among equals: the
//! highest non-empty run queue supplies the next thread, and a thread
//! that used up its time slice goes to the back of its queue.
//!
//! A process ends when its last thread ends. Killing a process marks all
//! its threads; each dies at its next return to user mode, so a thread
//! that was blocked in a system call first unwinds it normally and frees
//! what it held.

pub mod image;
mod process;
pub mod queue;
mod sched;
pub mod space;

pub use process::{
    SpawnOptions, exit_process, process_info, program_names, spawn, spawn_thread, wait_child,
    wait_kernel_child,
};
pub use sched::{
    exit_thread, set_priority, sleep_until, spawn_kernel_thread, start_ticking,
    wait_for_console_input, wake_console_readers, yield_now,
};
use sched::{idle_main, reap, schedule};

use crate::archive::Archive;
use crate::mm::{self, stack::KernelStack};
use crate::sync::IrqLock;
use crate::timer;
use abi::{Error, Name, layout};
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use hal::mm::MapFlags;
use hal::trap::{Access, FaultKind};
use hal::{Arch, Fault, RootTable, UserEntry};
use queue::{LinkTable, Links, List, ListId, RunQueues};
use space::{Region, RegionKind, UserSpace};
use spin::Once;

/// Scheduler ticks per second.
pub const TICK_HZ: u32 = 1000;
/// Ticks a thread runs before others of its priority get a turn.
pub const TIMESLICE_TICKS: u32 = 10;
/// The priority of user processes and kernel threads (0 lowest, 7 highest).
pub const DEFAULT_PRIORITY: u8 = 4;
/// Threads in the system, at most.
pub const MAX_THREADS: usize = 1024;
/// Processes (zombies included), at most.
pub const MAX_PROCESSES: usize = 256;
/// Threads in one process, at most.
pub const MAX_THREADS_PER_PROCESS: u32 = 64;
/// Frames user memory never takes, and that starting a process or thread
/// leaves free: what the kernel itself may still need (its heap, page
/// tables, stacks) when user programs have used everything else.
pub const RESERVED_FRAMES: usize = 256;

/// A thread id; ids are never reused.
pub type Tid = u32;
/// A process id; ids are never reused. 0 means "none".
pub type Pid = u32;

/// A blocked thread was killed while it waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Killed;

impl From<Killed> for abi::Error {
    fn from(_: Killed) -> Self {
        abi::Error::Interrupted
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    Running,
    Blocked,
    Dead,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this status.
    Exited(i32),
    /// The kernel killed it for this fault.
    Faulted(Fault),
    /// The kernel killed it because no memory was left for a page it was
    /// allowed to touch (at the fault's address).
    OutOfMemory(Fault),
}

impl ExitStatus {
    /// The record `wait` hands to user space.
    pub fn to_wait_status(self, pid: Pid) -> abi::WaitStatus {
        let mut status = abi::WaitStatus {
            pid,
            ..abi::WaitStatus::default()
        };
        match self {
            ExitStatus::Exited(code) => {
                status.reason = abi::ExitReason::Exited as u32;
                status.code = code;
            }
            ExitStatus::Faulted(fault) | ExitStatus::OutOfMemory(fault) => {
                status.reason = abi::ExitReason::Faulted as u32;
                status.fault_kind = match self {
                    ExitStatus::OutOfMemory(_) => FaultKind::OutOfMemory,
                    _ => fault.kind,
                } as u32;
                status.fault_access = match fault.access {
                    None => abi::FaultAccess::None,
                    Some(Access::Read) => abi::FaultAccess::Read,
                    Some(Access::Write) => abi::FaultAccess::Write,
                    Some(Access::Execute) => abi::FaultAccess::Execute,
                } as u32;
                status.fault_address = fault.address as u64;
                status.fault_pc = fault.pc as u64;
            }
        }
        status
    }
}

/// Who learns that a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// Nobody: the record goes as soon as the process ends.
    Orphan,
    /// A kernel thread, through [`wait_kernel_child`].
    Kernel,
    /// This process, through `wait`.
    Process(Pid),
}

struct Thread {
    tid: Tid,
    /// The process's slot; `None` for kernel threads.
    process: Option<usize>,
    name: &'static str,
    state: State,
    priority: u8,
    /// The kernel stack pointer while switched out.
    saved_sp: usize,
    /// `None` for the boot thread, which keeps the boot stack.
    #[expect(
        dead_code,
        reason = "owned so that dropping the thread frees the stack"
    )]
    stack: Option<KernelStack>,
    stack_top: usize,
    links: Links,
    slice_left: u32,
    /// When a sleeping thread is due, on the monotonic clock.
    wake_at: u64,
    killed: bool,
    /// A kernel thread's work.
    entry: Option<(fn(usize), usize)>,
    cpu_ticks: u64,
}

struct Process {
    pid: Pid,
    parent: Parent,
    name: Name,
    /// `None` once the process has ended.
    space: Option<UserSpace>,
    live_threads: u32,
    exit: Option<ExitStatus>,
    /// Ended, with its status waiting for the parent.
    zombie: bool,
    /// Its threads waiting in `wait` for a child.
    child_waiters: List,
    /// May power the machine off.
    privileged: bool,
    cpu_ticks: u64,
    /// Times one of its threads was switched out while still ready to run.
    preemptions: u64,
}

/// The thread table; entries stay at their index while they exist.
struct Threads(Vec<Option<Box<Thread>>>);

impl LinkTable for Threads {
    fn links(&mut self, index: usize) -> &mut Links {
        &mut self.0[index].as_mut().expect("listed threads exist").links
    }
}

/// Where a switch goes.
struct SwitchTo {
    save: *mut usize,
    load: usize,
    space: Option<RootTable>,
    stack_top: usize,
}

struct Scheduler {
    threads: Threads,
    processes: Vec<Option<Box<Process>>>,
    run: RunQueues,
    sleepers: List,
    console_readers: List,
    kernel_child_waiters: List,
    dead: List,
    current: usize,
    idle: usize,
    started: bool,
    next_tid: Tid,
    next_pid: Pid,
    live_threads: usize,
    /// The current thread asked to let others run: switching away from it
    /// now is not a preemption.
    yielding: bool,
}

static SCHEDULER: IrqLock<Scheduler> = IrqLock::new(Scheduler::new());
/// Set when a switch is due (time slice over, a more urgent thread woke,
/// the current thread was killed); checked on every return to user mode.
static NEED_RESCHED: AtomicBool = AtomicBool::new(false);
static CURRENT_PID: AtomicU32 = AtomicU32::new(0);
static CURRENT_TID: AtomicU32 = AtomicU32::new(0);
/// Nanoseconds from reset to the first return to user mode.
static FIRST_USER_NS: AtomicU64 = AtomicU64::new(0);
static ARCHIVE: Once<Archive<'static>> = Once::new();

/// Adopts the running boot code as the first kernel thread and creates the
/// idle thread. User programs will come from `archive`.
pub fn init<A: Arch>(archive: Archive<'static>) -> Result<(), Error> {
    ARCHIVE.call_once(|| archive);
    crate::inspect::set_kernel_root(A::kernel_root());
    let boot = new_thread("boot", None, None, 0, 0)?;
    let idle_stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    // SAFETY: the stack was just mapped and nothing uses it.
    let idle_sp = unsafe { A::prepare_kernel_thread(idle_stack.top(), idle_main::<A>, 0) };
    let idle_top = idle_stack.top();
    let idle = new_thread("idle", None, Some(idle_stack), idle_top, idle_sp)?;
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    if s.started {
        return Ok(());
    }
    let boot = s.insert_thread(boot)?;
    s.thread_mut(boot).state = State::Running;
    s.current = boot;
    CURRENT_TID.store(s.thread(boot).tid, Ordering::Relaxed);
    let idle = s.insert_thread(idle)?;
    s.thread_mut(idle).priority = 0;
    s.idle = idle;
    s.started = true;
    Ok(())
}

fn new_thread(
    name: &'static str,
    process: Option<usize>,
    stack: Option<KernelStack>,
    stack_top: usize,
    saved_sp: usize,
) -> Result<Box<Thread>, Error> {
    mm::heap::try_box(Thread {
        tid: 0,
        process,
        name,
        state: State::Ready,
        priority: DEFAULT_PRIORITY,
        saved_sp,
        stack,
        stack_top,
        links: Links::default(),
        slice_left: TIMESLICE_TICKS,
        wake_at: 0,
        killed: false,
        entry: None,
        cpu_ticks: 0,
    })
    .map_err(|_| Error::OutOfMemory)
}

/// The current process's id; 0 in a kernel thread.
pub fn current_pid() -> Pid {
    CURRENT_PID.load(Ordering::Relaxed)
}

/// The current thread's id.
pub fn current_tid() -> Tid {
    CURRENT_TID.load(Ordering::Relaxed)
}

/// Runs `f` on the current process's address space; `None` in a kernel
/// thread.
pub fn with_current_space<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Option<R> {
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let slot = s.current_process()?;
    s.process_mut(slot).space.as_mut().map(f)
}

/// Whether the current process may power the machine off.
pub fn current_privileged() -> bool {
    let s = SCHEDULER.lock();
    s.current_process()
        .is_some_and(|slot| s.process(slot).privileged)
}

/// Called on a new user thread's first run, before it enters user mode.
pub fn user_thread_started<A: Arch>() {
    reap();
    if FIRST_USER_NS.load(Ordering::Relaxed) == 0 {
        FIRST_USER_NS.store(A::since_reset_ns().max(1), Ordering::Relaxed);
    }
    before_user_return::<A>();
}

/// Called before every return to user mode: switches if a switch is due,
/// and ends the thread if it was killed.
#[inline]
pub fn before_user_return<A: Arch>() {
    if NEED_RESCHED.load(Ordering::Relaxed) {
        reschedule_before_user_return::<A>();
    }
}

fn current_killed() -> bool {
    let s = SCHEDULER.lock();
    s.thread(s.current).killed
}

#[cold]
fn reschedule_before_user_return<A: Arch>() {
    if current_killed() {
        exit_thread::<A>();
    }
    schedule::<A>();
    if current_killed() {
        exit_thread::<A>();
    }
}

/// Handles an exception from user mode: brings in a demand-zero page if
/// that is all it takes (and returns), or kills the process with a report.
pub fn user_fault<A: Arch>(fault: Fault, cause: &'static str) {
    let mut out_of_memory = false;
    if let (FaultKind::NotMapped, Some(access)) = (fault.kind, fault.access) {
        match with_current_space(|space| space.resolve_fault::<A>(fault.address, access)) {
            Some(Ok(())) => return,
            Some(Err(Error::OutOfMemory)) => out_of_memory = true,
            _ => {}
        }
    }
    let (pid, name) = {
        let s = SCHEDULER.lock();
        match s.current_process() {
            Some(slot) => (s.process(slot).pid, s.process(slot).name),
            None => (0, abi::name_from(s.thread(s.current).name)),
        }
    };
    crate::kprintln!(
        "ferrite: process {pid} ({}) killed: {cause}: {fault}{}",
        abi::name_str(&name),
        if out_of_memory {
            " (no memory left for the page)"
        } else {
            ""
        }
    );
    exit_process::<A>(if out_of_memory {
        ExitStatus::OutOfMemory(fault)
    } else {
        ExitStatus::Faulted(fault)
    })
}

/// (processes, threads) alive now.
pub fn counts() -> (usize, usize) {
    let s = SCHEDULER.lock();
    (s.process_count(), s.live_threads)
}

/// Nanoseconds from reset to the first entry to user mode (0: not yet).
pub fn first_user_ns() -> u64 {
    FIRST_USER_NS.load(Ordering::Relaxed)
}
