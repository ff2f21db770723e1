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
pub mod queue;
pub mod space;

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
}

impl Scheduler {
    const fn new() -> Scheduler {
        Scheduler {
            threads: Threads(Vec::new()),
            processes: Vec::new(),
            run: RunQueues::new(),
            sleepers: List::new(ListId::Sleep),
            console_readers: List::new(ListId::ConsoleInput),
            kernel_child_waiters: List::new(ListId::KernelChildWait),
            dead: List::new(ListId::Dead),
            current: 0,
            idle: 0,
            started: false,
            next_tid: 1,
            next_pid: 1,
            live_threads: 0,
        }
    }

    fn thread(&self, index: usize) -> &Thread {
        self.threads.0[index].as_deref().expect("thread exists")
    }

    fn thread_mut(&mut self, index: usize) -> &mut Thread {
        self.threads.0[index].as_deref_mut().expect("thread exists")
    }

    fn process(&self, slot: usize) -> &Process {
        self.processes[slot].as_deref().expect("process exists")
    }

    fn process_mut(&mut self, slot: usize) -> &mut Process {
        self.processes[slot].as_deref_mut().expect("process exists")
    }

    fn find_process(&self, pid: Pid) -> Option<usize> {
        self.processes
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.pid == pid))
    }

    fn current_process(&self) -> Option<usize> {
        self.thread(self.current).process
    }

    fn process_count(&self) -> usize {
        self.processes.iter().flatten().count()
    }

    /// Puts `thread` in a free slot.
    fn insert_thread(&mut self, mut thread: Box<Thread>) -> Result<usize, Error> {
        if self.live_threads >= MAX_THREADS {
            return Err(Error::LimitReached);
        }
        thread.tid = self.next_tid;
        let index = match self.threads.0.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.threads
                    .0
                    .try_reserve(1)
                    .map_err(|_| Error::OutOfMemory)?;
                self.threads.0.push(None);
                self.threads.0.len() - 1
            }
        };
        self.next_tid += 1;
        self.threads.0[index] = Some(thread);
        self.live_threads += 1;
        Ok(index)
    }

    /// Puts `process` in a free slot.
    fn insert_process(&mut self, process: Box<Process>) -> Result<usize, Box<Process>> {
        if self.process_count() >= MAX_PROCESSES {
            return Err(process);
        }
        let slot = match self.processes.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                if self.processes.try_reserve(1).is_err() {
                    return Err(process);
                }
                self.processes.push(None);
                self.processes.len() - 1
            }
        };
        self.processes[slot] = Some(process);
        Ok(slot)
    }

    /// Makes a new or waiting thread ready to run, and asks for a switch
    /// if it should run before the current thread.
    fn make_ready(&mut self, index: usize) {
        let thread = self.thread_mut(index);
        thread.state = State::Ready;
        let priority = thread.priority;
        self.run.push(&mut self.threads, index, priority);
        if self.current == self.idle || priority > self.thread(self.current).priority {
            NEED_RESCHED.store(true, Ordering::Relaxed);
        }
    }

    /// Takes `index` out of whatever list holds it.
    fn unlink(&mut self, index: usize) {
        let Some(list) = self.thread(index).links.list() else {
            return;
        };
        let threads = &mut self.threads;
        match list {
            ListId::Run(priority) => self.run.remove(threads, index, priority),
            ListId::Sleep => self.sleepers.remove(threads, index),
            ListId::ConsoleInput => self.console_readers.remove(threads, index),
            ListId::KernelChildWait => self.kernel_child_waiters.remove(threads, index),
            ListId::Dead => self.dead.remove(threads, index),
            ListId::ChildWait(slot) => {
                let process = self.processes[slot as usize]
                    .as_deref_mut()
                    .expect("waiters' process exists");
                process.child_waiters.remove(threads, index);
            }
        }
    }

    /// Wakes every thread in `list`.
    fn wake_all(&mut self, list: ListId) {
        loop {
            let threads = &mut self.threads;
            let woken = match list {
                ListId::ConsoleInput => self.console_readers.pop_front(threads),
                ListId::KernelChildWait => self.kernel_child_waiters.pop_front(threads),
                ListId::ChildWait(slot) => match self.processes[slot as usize].as_deref_mut() {
                    Some(process) => process.child_waiters.pop_front(threads),
                    None => None,
                },
                _ => None,
            };
            match woken {
                Some(index) => self.make_ready(index),
                None => break,
            }
        }
    }

    /// Blocks the current thread in `list` (sorted by deadline for the
    /// sleep list). The caller then calls [`schedule`].
    fn block_current(&mut self, list: ListId) {
        let current = self.current;
        self.thread_mut(current).state = State::Blocked;
        let threads = &mut self.threads;
        match list {
            ListId::Sleep => self.sleepers.insert_sorted(threads, current, |t, i| {
                t.0[i].as_ref().map_or(0, |t| t.wake_at)
            }),
            ListId::ConsoleInput => self.console_readers.push_back(threads, current),
            ListId::KernelChildWait => self.kernel_child_waiters.push_back(threads, current),
            ListId::ChildWait(slot) => {
                let process = self.processes[slot as usize]
                    .as_deref_mut()
                    .expect("the waiting process exists");
                process.child_waiters.push_back(threads, current);
            }
            ListId::Run(_) | ListId::Dead => unreachable!("not a wait list"),
        }
    }

    /// Marks every thread of process `slot` but the current one killed,
    /// waking those that wait so they can unwind.
    fn kill_threads_of(&mut self, slot: usize) {
        let current = self.current;
        for index in 0..self.threads.0.len() {
            let Some(thread) = self.threads.0[index].as_deref_mut() else {
                continue;
            };
            if thread.process != Some(slot) || index == current || thread.state == State::Dead {
                continue;
            }
            thread.killed = true;
            if thread.state == State::Blocked {
                self.unlink(index);
                self.make_ready(index);
            }
        }
    }

    /// Ends process `slot`, whose last thread has ended: frees its memory,
    /// keeps its status for its parent and tells the parent.
    fn finish_process<A: Arch>(&mut self, slot: usize) {
        let process = self.process_mut(slot);
        process.exit.get_or_insert(ExitStatus::Exited(0));
        if let Some(space) = process.space.take() {
            crate::inspect::remove_process(process.pid);
            space.destroy::<A>();
        }
        process.zombie = true;
        let (pid, parent) = (process.pid, process.parent);
        // Its children have nobody to report to now.
        for other in 0..self.processes.len() {
            let Some(child) = self.processes[other].as_deref_mut() else {
                continue;
            };
            if child.parent == Parent::Process(pid) {
                child.parent = Parent::Orphan;
                if child.zombie {
                    self.processes[other] = None;
                }
            }
        }
        match parent {
            Parent::Process(parent) => match self.find_process(parent) {
                Some(parent_slot) => self.wake_all(ListId::ChildWait(parent_slot as u32)),
                None => self.processes[slot] = None,
            },
            Parent::Kernel => self.wake_all(ListId::KernelChildWait),
            Parent::Orphan => self.processes[slot] = None,
        }
    }

    /// Chooses the next thread and makes it current; `None` if the
    /// current thread goes on.
    fn pick_next(&mut self) -> Option<SwitchTo> {
        NEED_RESCHED.store(false, Ordering::Relaxed);
        let previous = self.current;
        if previous != self.idle && self.thread(previous).state == State::Running {
            self.thread_mut(previous).state = State::Ready;
            let priority = self.thread(previous).priority;
            self.run.push(&mut self.threads, previous, priority);
        }
        let next = self.run.pop(&mut self.threads).unwrap_or(self.idle);
        let thread = self.thread_mut(next);
        thread.state = State::Running;
        thread.slice_left = TIMESLICE_TICKS;
        if thread.killed {
            // It dies at its next return to user mode.
            NEED_RESCHED.store(true, Ordering::Relaxed);
        }
        if next == previous {
            return None;
        }
        let (load, stack_top, process) = (thread.saved_sp, thread.stack_top, thread.process);
        let tid = thread.tid;
        let space = process.and_then(|slot| self.process(slot).space.as_ref().map(UserSpace::root));
        CURRENT_TID.store(tid, Ordering::Relaxed);
        CURRENT_PID.store(
            process.map_or(0, |slot| self.process(slot).pid),
            Ordering::Relaxed,
        );
        self.current = next;
        if previous == self.idle {
            self.thread_mut(previous).state = State::Ready;
        }
        Some(SwitchTo {
            save: &raw mut self.thread_mut(previous).saved_sp,
            load,
            space,
            stack_top,
        })
    }
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

/// Starts the scheduler's tick.
pub fn start_ticking<A: Arch>() -> Result<(), timer::StartError> {
    timer::start::<A>(TICK_HZ, Some(tick::<A>))
}

fn tick<A: Arch>() {
    let now = A::monotonic_ns();
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    if !s.started {
        return;
    }
    let current = s.current;
    let thread = s.thread_mut(current);
    thread.cpu_ticks += 1;
    thread.slice_left = thread.slice_left.saturating_sub(1);
    let (expired, process) = (thread.slice_left == 0, thread.process);
    if let Some(slot) = process {
        s.process_mut(slot).cpu_ticks += 1;
    }
    if expired && current != s.idle {
        NEED_RESCHED.store(true, Ordering::Relaxed);
    }
    while let Some(index) = s.sleepers.front() {
        if s.thread(index).wake_at > now {
            break;
        }
        s.sleepers.remove(&mut s.threads, index);
        s.make_ready(index);
    }
}

/// Switches to the most urgent ready thread, if it is not the current one
/// (which, if still running, goes to the back of its queue).
fn schedule<A: Arch>() {
    let enabled = A::enabled();
    A::disable();
    let target = SCHEDULER.lock().pick_next();
    if let Some(to) = target {
        // Kernel threads run in whatever address space is active.
        if to.space.is_some() {
            A::activate(to.space);
        }
        A::set_kernel_stack(to.stack_top);
        // SAFETY: interrupts are masked; `load` was stored by a switch or
        // a prepare call; `save` points into the previous thread's boxed
        // record, which stays until it is reaped, after this switch.
        unsafe { A::switch(to.save, to.load) };
        reap();
    }
    if enabled {
        A::enable();
    }
}

/// Frees the kernel stacks of threads that have ended (never the one in
/// use: a thread ends by switching away from itself).
fn reap() {
    loop {
        let dead = {
            let mut guard = SCHEDULER.lock();
            let s = &mut *guard;
            match s.dead.front() {
                Some(index) if index != s.current => {
                    s.dead.remove(&mut s.threads, index);
                    s.threads.0[index].take()
                }
                _ => break,
            }
        };
        drop(dead);
    }
}

extern "C" fn idle_main<A: Arch>(_: usize) -> ! {
    reap();
    loop {
        if NEED_RESCHED.load(Ordering::Relaxed) {
            schedule::<A>();
        } else {
            A::idle();
        }
    }
}

extern "C" fn kernel_thread_main<A: Arch>(_: usize) -> ! {
    reap();
    let entry = {
        let s = SCHEDULER.lock();
        s.thread(s.current).entry
    };
    if let Some((work, argument)) = entry {
        work(argument);
    }
    exit_thread::<A>()
}

/// Starts a kernel thread running `work(argument)` at `priority`; it ends
/// when `work` returns.
pub fn spawn_kernel_thread<A: Arch>(
    name: &'static str,
    priority: u8,
    work: fn(usize),
    argument: usize,
) -> Result<Tid, Error> {
    if priority as usize >= queue::PRIORITIES {
        return Err(Error::InvalidArgument);
    }
    let stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    let top = stack.top();
    // SAFETY: the stack was just mapped and nothing uses it.
    let sp = unsafe { A::prepare_kernel_thread(top, kernel_thread_main::<A>, 0) };
    let mut thread = new_thread(name, None, Some(stack), top, sp)?;
    thread.entry = Some((work, argument));
    thread.priority = priority;
    let mut s = SCHEDULER.lock();
    let index = s.insert_thread(thread)?;
    let tid = s.thread(index).tid;
    s.make_ready(index);
    Ok(tid)
}

/// Lets other ready threads of the same priority run.
pub fn yield_now<A: Arch>() {
    schedule::<A>();
}

/// Sets the current thread's priority. Only privileged processes (and
/// kernel threads) may go above [`DEFAULT_PRIORITY`]. A lower priority
/// takes effect at once: a more urgent ready thread runs.
pub fn set_priority<A: Arch>(priority: usize) -> Result<(), Error> {
    if priority >= queue::PRIORITIES {
        return Err(Error::InvalidArgument);
    }
    {
        let mut guard = SCHEDULER.lock();
        let s = &mut *guard;
        let privileged = s
            .current_process()
            .is_none_or(|slot| s.process(slot).privileged);
        if priority > DEFAULT_PRIORITY as usize && !privileged {
            return Err(Error::PermissionDenied);
        }
        let current = s.current;
        s.thread_mut(current).priority = priority as u8;
    }
    schedule::<A>();
    Ok(())
}

/// Waits until the monotonic clock reaches `deadline_ns` (the scheduler's
/// tick must be running).
pub fn sleep_until<A: Arch>(deadline_ns: u64) -> Result<(), Killed> {
    loop {
        if A::monotonic_ns() >= deadline_ns {
            return Ok(());
        }
        {
            let mut s = SCHEDULER.lock();
            let current = s.current;
            if s.thread(current).killed {
                return Err(Killed);
            }
            s.thread_mut(current).wake_at = deadline_ns;
            s.block_current(ListId::Sleep);
        }
        schedule::<A>();
    }
}

/// Ends the current thread; a process whose last thread this is ends with
/// it (status 0 unless it was set already).
pub fn exit_thread<A: Arch>() -> ! {
    {
        let mut guard = SCHEDULER.lock();
        let s = &mut *guard;
        let current = s.current;
        s.thread_mut(current).state = State::Dead;
        s.dead.push_back(&mut s.threads, current);
        s.live_threads -= 1;
        if let Some(slot) = s.thread(current).process {
            let process = s.process_mut(slot);
            process.live_threads -= 1;
            if process.live_threads == 0 {
                s.finish_process::<A>(slot);
            }
        }
    }
    schedule::<A>();
    unreachable!("an ended thread was resumed")
}

/// Ends the current process with `status` (unless it is ending already):
/// its other threads are killed, then this one ends.
pub fn exit_process<A: Arch>(status: ExitStatus) -> ! {
    {
        let mut guard = SCHEDULER.lock();
        let s = &mut *guard;
        if let Some(slot) = s.current_process() {
            s.process_mut(slot).exit.get_or_insert(status);
            s.kill_threads_of(slot);
        }
    }
    exit_thread::<A>()
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

/// Wakes the threads waiting for console input (from its interrupt).
pub fn wake_console_readers() {
    let mut s = SCHEDULER.lock();
    if s.started {
        s.wake_all(ListId::ConsoleInput);
    }
}

/// Waits for console input to arrive. The caller checks for input with
/// interrupts masked before calling, so none can slip in between.
pub fn wait_for_console_input<A: Arch>() -> Result<(), Killed> {
    {
        let mut s = SCHEDULER.lock();
        if s.thread(s.current).killed {
            return Err(Killed);
        }
        s.block_current(ListId::ConsoleInput);
    }
    schedule::<A>();
    if current_killed() {
        return Err(Killed);
    }
    Ok(())
}

/// What `spawn` gives a new process.
#[derive(Clone, Copy, Debug)]
pub struct SpawnOptions<'a> {
    /// Bytes copied to the top of its stack; their address and length are
    /// its entry point's two arguments.
    pub arguments: &'a [u8],
    /// Who learns how it ended.
    pub parent: Parent,
    /// Whether it may power the machine off.
    pub privileged: bool,
}

/// Whether there is room to start a process or thread beyond the reserve.
fn enough_frames() -> bool {
    mm::frames::counts().1 >= RESERVED_FRAMES + START_FRAMES
}

/// Frames a new process or thread takes at least (stacks, tables, image).
const START_FRAMES: usize = 64;

/// Starts program `name` from the boot archive in a new process.
pub fn spawn<A: Arch>(name: &str, options: SpawnOptions<'_>) -> Result<Pid, Error> {
    let archive = ARCHIVE.get().copied().unwrap_or(Archive::EMPTY);
    let image = archive.find(name).ok_or(Error::NotFound)?;
    let plan = image::plan(image, image::Target::native(A::ELF_MACHINE)).map_err(|e| {
        log::warn!("program {name:?} cannot run: {e}");
        Error::BadImage
    })?;
    if options.arguments.len() > abi::MAX_ARGUMENTS_LENGTH {
        return Err(Error::TooLong);
    }
    {
        let s = SCHEDULER.lock();
        if s.process_count() >= MAX_PROCESSES || s.live_threads >= MAX_THREADS {
            return Err(Error::LimitReached);
        }
    }
    if !enough_frames() {
        return Err(Error::OutOfMemory);
    }
    // The record first: a user space has no destructor (freeing it needs
    // the architecture), so from here every failure path destroys it.
    let mut process = mm::heap::try_box(Process {
        pid: 0,
        parent: options.parent,
        name: abi::name_from(name),
        space: None,
        live_threads: 1,
        exit: None,
        zombie: false,
        child_waiters: List::new(ListId::ChildWait(0)),
        privileged: options.privileged,
        cpu_ticks: 0,
    })
    .map_err(|_| Error::OutOfMemory)?;
    let mut space = UserSpace::new::<A>()?;
    let stack_pointer = match prepare_image::<A>(&mut space, image, &plan, options.arguments) {
        Ok(sp) => sp,
        Err(e) => {
            space.destroy::<A>();
            return Err(e);
        }
    };
    let entry = UserEntry {
        pc: plan.entry,
        sp: stack_pointer,
        args: [stack_pointer, options.arguments.len()],
    };
    let mut thread = match new_user_thread::<A>(entry) {
        Ok(thread) => thread,
        Err(e) => {
            space.destroy::<A>();
            return Err(e);
        }
    };
    process.space = Some(space);
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    process.pid = s.next_pid;
    let inserted = s.insert_process(process).and_then(|slot| {
        thread.process = Some(slot);
        s.process_mut(slot).child_waiters = List::new(ListId::ChildWait(slot as u32));
        match s.insert_thread(thread) {
            Ok(index) => Ok((slot, index)),
            Err(_) => Err(s.processes[slot].take().expect("just inserted")),
        }
    });
    match inserted {
        Ok((slot, index)) => {
            s.next_pid += 1;
            s.make_ready(index);
            let process = s.process(slot);
            if let Some(space) = &process.space {
                crate::inspect::add_process(process.pid, process.name, space.root().0);
            }
            Ok(process.pid)
        }
        Err(mut process) => {
            drop(guard);
            if let Some(space) = process.space.take() {
                space.destroy::<A>();
            }
            Err(Error::LimitReached)
        }
    }
}

/// Loads a checked image, adds the main stack and copies the arguments to
/// its top; returns the initial stack pointer.
fn prepare_image<A: Arch>(
    space: &mut UserSpace,
    image: &[u8],
    plan: &image::Plan,
    arguments: &[u8],
) -> Result<usize, Error> {
    space.load::<A>(image, plan)?;
    space.add_region(Region {
        start: layout::STACK_BASE,
        end: layout::IMAGE_END,
        flags: MapFlags::USER_RW,
        kind: RegionKind::Stack,
    })?;
    let stack_pointer = (layout::STACK_TOP - arguments.len()) & !15;
    space.write::<A>(stack_pointer, arguments)?;
    Ok(stack_pointer)
}

fn new_user_thread<A: Arch>(entry: UserEntry) -> Result<Box<Thread>, Error> {
    let stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    let top = stack.top();
    // SAFETY: the stack was just mapped and nothing uses it.
    let sp = unsafe { A::prepare_user_thread(top, entry) };
    new_thread("user", None, Some(stack), top, sp)
}

/// Starts a thread in the current process at `entry(argument)` with stack
/// pointer `stack_top`.
pub fn spawn_thread<A: Arch>(
    entry: usize,
    stack_top: usize,
    argument: usize,
) -> Result<Tid, Error> {
    let (user_start, user_end) = A::user_range();
    if !(user_start..user_end).contains(&entry) || !(user_start..=user_end).contains(&stack_top) {
        return Err(Error::BadAddress);
    }
    {
        let s = SCHEDULER.lock();
        let slot = s.current_process().ok_or(Error::InvalidArgument)?;
        if s.process(slot).live_threads >= MAX_THREADS_PER_PROCESS {
            return Err(Error::LimitReached);
        }
    }
    if !enough_frames() {
        return Err(Error::OutOfMemory);
    }
    let mut thread = new_user_thread::<A>(UserEntry {
        pc: entry,
        sp: stack_top,
        args: [argument, 0],
    })?;
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let slot = s.current_process().ok_or(Error::InvalidArgument)?;
    thread.process = Some(slot);
    let index = s.insert_thread(thread)?;
    s.process_mut(slot).live_threads += 1;
    let tid = s.thread(index).tid;
    s.make_ready(index);
    Ok(tid)
}

/// Waits for a child of the current process to end: child `pid`, or any
/// child for `None`. Returns its id and how it ended, and forgets it.
/// `before_collecting` runs just before the record is dropped, with the
/// caller's address space (to store the status); its error keeps the
/// child for a later wait.
pub fn wait_child<A: Arch>(
    pid: Option<Pid>,
    mut before_collecting: impl FnMut(&mut UserSpace, Pid, ExitStatus) -> Result<(), Error>,
) -> Result<(Pid, ExitStatus), Error> {
    loop {
        {
            let mut guard = SCHEDULER.lock();
            let s = &mut *guard;
            let me = s.current_process().ok_or(Error::InvalidArgument)?;
            let my_pid = s.process(me).pid;
            let mut any = false;
            let mut ended = None;
            for (slot, child) in s.processes.iter().enumerate() {
                let Some(child) = child.as_deref() else {
                    continue;
                };
                if child.parent != Parent::Process(my_pid) || pid.is_some_and(|p| p != child.pid) {
                    continue;
                }
                any = true;
                if child.zombie {
                    ended = Some(slot);
                    break;
                }
            }
            if let Some(slot) = ended {
                let child = s.process(slot);
                let (child_pid, status) = (child.pid, child.exit.unwrap_or(ExitStatus::Exited(0)));
                let space = s
                    .process_mut(me)
                    .space
                    .as_mut()
                    .ok_or(Error::InvalidArgument)?;
                before_collecting(space, child_pid, status)?;
                s.processes[slot] = None;
                return Ok((child_pid, status));
            }
            if !any {
                return Err(if pid.is_some() {
                    Error::NotFound
                } else {
                    Error::NoChildren
                });
            }
            if s.thread(s.current).killed {
                return Err(Error::InvalidArgument);
            }
            s.block_current(ListId::ChildWait(me as u32));
        }
        schedule::<A>();
    }
}

/// From a kernel thread: waits for process `pid`, started with
/// [`Parent::Kernel`], to end, and forgets it.
pub fn wait_kernel_child<A: Arch>(pid: Pid) -> Result<ExitStatus, Error> {
    loop {
        {
            let mut guard = SCHEDULER.lock();
            let s = &mut *guard;
            let slot = s.find_process(pid).ok_or(Error::NotFound)?;
            let process = s.process(slot);
            if process.parent != Parent::Kernel {
                return Err(Error::NotFound);
            }
            if process.zombie {
                let status = process.exit.unwrap_or(ExitStatus::Exited(0));
                s.processes[slot] = None;
                return Ok(status);
            }
            s.block_current(ListId::KernelChildWait);
        }
        schedule::<A>();
    }
}

/// One line of `ps`.
pub fn process_info() -> Result<Vec<abi::ProcessInfo>, Error> {
    let s = SCHEDULER.lock();
    let mut out = Vec::new();
    let mut runnable = Vec::new();
    out.try_reserve(s.process_count())
        .map_err(|_| Error::OutOfMemory)?;
    runnable
        .try_reserve(s.processes.len())
        .map_err(|_| Error::OutOfMemory)?;
    runnable.resize(s.processes.len(), false);
    for thread in s.threads.0.iter().flatten() {
        if let (Some(slot), State::Running | State::Ready) = (thread.process, thread.state) {
            runnable[slot] = true;
        }
    }
    for (slot, process) in s.processes.iter().enumerate() {
        let Some(process) = process.as_deref() else {
            continue;
        };
        let blocked = !runnable[slot];
        out.push(abi::ProcessInfo {
            pid: process.pid,
            parent: match process.parent {
                Parent::Process(pid) => pid,
                _ => 0,
            },
            threads: process.live_threads,
            state: if process.zombie {
                abi::ProcessState::Zombie
            } else if blocked {
                abi::ProcessState::Blocked
            } else {
                abi::ProcessState::Running
            } as u32,
            resident_pages: process
                .space
                .as_ref()
                .map_or(0, |s| s.resident_pages() as u64),
            cpu_ticks: process.cpu_ticks,
            name: process.name,
        });
    }
    Ok(out)
}

/// The names of the programs in the boot archive.
pub fn program_names() -> Result<Vec<Name>, Error> {
    let archive = ARCHIVE.get().copied().unwrap_or(Archive::EMPTY);
    let mut names = Vec::new();
    names
        .try_reserve(archive.len())
        .map_err(|_| Error::OutOfMemory)?;
    names.extend(archive.names().map(abi::name_from));
    Ok(names)
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
