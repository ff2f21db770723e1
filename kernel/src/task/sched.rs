//! Scheduling: the thread and process tables behind one lock, choosing
//! the next thread and switching to it, the tick, sleeping, and blocking
//! in wait queues.

use super::process::{Pid, Processes};
use super::queue::{Place, RunQueues, ThreadList};
use super::space::UserSpace;
use super::thread::{
    DEFAULT_PRIORITY, Killed, PRIORITIES, State, TIMESLICE_TICKS, Thread, ThreadRef, Threads, Tid,
};
use super::wait::WaitQueue;
use crate::mm::stack::KernelStack;
use crate::sync::IrqLock;
use crate::timer;
use abi::Error;
use alloc::boxed::Box;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use hal::{Arch, RootTable};

/// Scheduler ticks per second.
pub const TICK_HZ: u32 = 1000;

/// Where a switch goes.
pub(super) struct SwitchTo {
    save: *mut usize,
    load: usize,
    space: Option<RootTable>,
    stack_top: usize,
}

pub(super) struct Scheduler {
    pub(super) threads: Threads,
    pub(super) processes: Processes,
    pub(super) run: RunQueues,
    sleepers: ThreadList,
    /// Threads whose IPC wait has a deadline, soonest first, by their
    /// deadline links (see `timeout`).
    pub(super) deadlines: ThreadList,
    dead: ThreadList,
    pub(super) current: usize,
    idle: usize,
    pub(super) started: bool,
    /// The current thread asked to let others run: switching away from it
    /// now is not a preemption.
    yielding: bool,
}

/// The scheduler behind its lock, and beside it what is read without the
/// lock: one static, so that a switch reaches all of it from one address
/// (a 32-bit Arm build spends two instructions on each static's).
pub(super) struct SchedulerStatic {
    locked: IrqLock<Scheduler>,
    /// Set when a switch is due (time slice over, a more urgent thread
    /// woke, the current thread was killed); checked on every return to
    /// user mode.
    need_resched: AtomicBool,
    current_pid: AtomicU32,
    current_tid: AtomicU32,
    /// Ended threads whose stacks are not yet freed, so that a switch
    /// need not look when there are none.
    dead_threads: AtomicUsize,
}

impl core::ops::Deref for SchedulerStatic {
    type Target = IrqLock<Scheduler>;

    fn deref(&self) -> &IrqLock<Scheduler> {
        &self.locked
    }
}

pub(super) static SCHEDULER: SchedulerStatic = SchedulerStatic {
    locked: IrqLock::new(Scheduler::new()),
    need_resched: AtomicBool::new(false),
    current_pid: AtomicU32::new(0),
    current_tid: AtomicU32::new(0),
    dead_threads: AtomicUsize::new(0),
};
/// Nanoseconds from reset to the first return to user mode.
static FIRST_USER_NS: AtomicU64 = AtomicU64::new(0);

impl Scheduler {
    pub(super) const fn new() -> Scheduler {
        Scheduler {
            threads: Threads::new(),
            processes: Processes::new(),
            run: RunQueues::new(),
            sleepers: ThreadList::new(),
            deadlines: ThreadList::new(),
            dead: ThreadList::new(),
            current: 0,
            idle: 0,
            started: false,
            yielding: false,
        }
    }

    #[inline]
    pub(super) fn thread(&self, index: usize) -> &Thread {
        self.threads.get(index)
    }

    #[inline]
    pub(super) fn thread_mut(&mut self, index: usize) -> &mut Thread {
        self.threads.get_mut(index)
    }

    #[inline]
    pub(super) fn current_process(&self) -> Option<usize> {
        self.thread(self.current).process
    }

    #[inline]
    pub(super) fn current_killed(&self) -> bool {
        self.thread(self.current).killed
    }

    /// Takes `boot` as the running thread and `idle` as the thread that
    /// runs when no other is ready.
    pub(super) fn adopt(&mut self, boot: Box<Thread>, idle: Box<Thread>) -> Result<(), Error> {
        // The tables' room, taken whole now: the kernel heap then holds
        // as much after a burst of processes as before it.
        self.threads.reserve_all()?;
        self.processes.reserve_all()?;
        let boot = self.threads.insert(boot)?;
        self.thread_mut(boot).state = State::Running;
        self.current = boot;
        self.threads.set_current(boot);
        SCHEDULER
            .current_tid
            .store(self.thread(boot).tid, Ordering::Relaxed);
        let idle = self.threads.insert(idle)?;
        self.thread_mut(idle).priority = 0;
        self.idle = idle;
        self.started = true;
        Ok(())
    }

    /// The current thread lets others run: the switch that follows is not
    /// a preemption.
    pub(super) fn note_yield(&mut self) {
        self.yielding = true;
    }

    /// Whether ready thread `index` should run before the current one.
    pub(super) fn preempts(&self, index: usize) -> bool {
        self.current == self.idle
            || self.thread(index).priority > self.thread(self.current).priority
    }

    /// Makes a new or waiting thread ready to run, and asks for a switch
    /// if it should run before the current thread.
    pub(super) fn make_ready(&mut self, index: usize) {
        let thread = self.thread_mut(index);
        thread.state = State::Ready;
        let priority = thread.priority;
        self.run.push(&mut self.threads, index, priority);
        if self.preempts(index) {
            SCHEDULER.need_resched.store(true, Ordering::Relaxed);
        }
    }

    /// Takes `index` out of whatever list holds it.
    pub(super) fn unlink(&mut self, index: usize) {
        let threads = &mut self.threads;
        match threads.place_of(index) {
            None => {}
            Some(Place::Run(priority)) => self.run.remove(threads, index, priority),
            Some(Place::Sleep) => self.sleepers.remove(threads, index),
            Some(Place::Dead) => self.dead.remove(threads, index),
            // Only deadline links say so; a thread's main links never do.
            Some(Place::Deadline) => {}
            Some(Place::Queue(address)) => {
                // SAFETY: the thread waits in that queue now.
                let queue = unsafe { WaitQueue::at(address) };
                queue.remove(threads, index);
            }
        }
    }

    /// Blocks the current thread in `queue`. The caller then calls
    /// [`schedule`].
    #[inline]
    pub(super) fn block_current_in(&mut self, queue: Pin<&WaitQueue>) {
        queue.block(&mut self.threads, self.current);
    }

    /// Makes every thread waiting in `queue` ready; returns how many.
    pub(super) fn wake_all_in(&mut self, queue: &WaitQueue) -> usize {
        let mut woken = 0;
        while let Some(index) = queue.pop(&mut self.threads) {
            self.make_ready(index);
            woken += 1;
        }
        woken
    }

    /// Blocks the current thread until the monotonic clock reaches
    /// `deadline`, behind threads due earlier or at the same time.
    pub(super) fn block_current_until(&mut self, deadline: u64) {
        let current = self.current;
        let thread = self.thread_mut(current);
        thread.state = State::Blocked;
        thread.wake_at = deadline;
        self.sleepers
            .insert_sorted(&mut self.threads, current, Place::Sleep, |t, i| {
                t.get(i).wake_at
            });
    }

    /// Ends the current thread: it stays in the dead list until its stack
    /// can be freed. Returns its process's slot.
    pub(super) fn end_current(&mut self) -> Option<usize> {
        self.disarm_timeout();
        let current = self.current;
        self.threads.mark_ended(current);
        self.dead.push_back(&mut self.threads, current, Place::Dead);
        SCHEDULER.dead_threads.fetch_add(1, Ordering::Relaxed);
        self.thread(current).process
    }

    /// Takes an ended thread out of the tables, unless it is the current
    /// one (a thread ends by switching away from itself).
    pub(super) fn take_dead(&mut self) -> Option<Box<Thread>> {
        let index = self.dead.front().filter(|&index| index != self.current)?;
        self.dead.remove(&mut self.threads, index);
        SCHEDULER.dead_threads.fetch_sub(1, Ordering::Relaxed);
        self.threads.take(index)
    }

    /// One tick at monotonic time `now`: charges the current thread,
    /// ends its time slice when it is used up, and wakes the sleepers
    /// that are due.
    pub(super) fn tick(&mut self, now: u64) {
        let current = self.current;
        let thread = self.thread_mut(current);
        thread.cpu_ticks += 1;
        thread.slice_left = thread.slice_left.saturating_sub(1);
        let (expired, process) = (thread.slice_left == 0, thread.process);
        if let Some(slot) = process {
            self.processes.get_mut(slot).cpu_ticks += 1;
        }
        if expired && current != self.idle {
            SCHEDULER.need_resched.store(true, Ordering::Relaxed);
        }
        while let Some(index) = self.sleepers.front() {
            if self.thread(index).wake_at > now {
                break;
            }
            self.sleepers.remove(&mut self.threads, index);
            self.make_ready(index);
        }
        self.expire_timeouts(now);
    }

    /// Chooses the next thread and makes it current; `None` if the
    /// current thread goes on.
    pub(super) fn pick_next(&mut self) -> Option<SwitchTo> {
        SCHEDULER.need_resched.store(false, Ordering::Relaxed);
        let previous = self.current;
        let yielded = core::mem::replace(&mut self.yielding, false);
        let still_ready = previous != self.idle && self.thread(previous).state == State::Running;
        if still_ready {
            self.thread_mut(previous).state = State::Ready;
            let priority = self.thread(previous).priority;
            self.run.push(&mut self.threads, previous, priority);
        }
        let next = self.run.pop(&mut self.threads).unwrap_or(self.idle);
        if next == previous {
            start_running(self.thread_mut(next));
            return None;
        }
        if still_ready
            && !yielded
            && let Some(slot) = self.thread(previous).process
        {
            self.processes.get_mut(slot).preemptions += 1;
        }
        if previous == self.idle {
            self.thread_mut(previous).state = State::Ready;
        }
        Some(self.enter(next))
    }

    /// Makes `next` (not the current thread) current; where to switch.
    #[inline]
    fn enter(&mut self, next: usize) -> SwitchTo {
        let (previous, next_thread) = self.threads.pair_mut(self.current, next);
        let to = enter(&mut self.current, previous, (next, next_thread));
        self.threads.set_current(next);
        to
    }
}

/// Makes thread `next` (not the current one, `previous`) current: the
/// scheduler's `current` is `current`. Returns where to switch. Apart from
/// the scheduler so that a caller holding both records (the IPC fast path)
/// need not look them up again.
#[inline(always)]
pub(super) fn enter(
    current: &mut usize,
    previous: &mut Thread,
    (next, thread): (usize, &mut Thread),
) -> SwitchTo {
    let (previous_pid, save) = (previous.pid, &raw mut previous.saved_sp);
    start_running(thread);
    let (load, stack_top, tid, pid) = (thread.saved_sp, thread.stack_top, thread.tid, thread.pid);
    // A thread of the process that ran last finds its space active
    // (kernel threads run in any space, and kernel code may switch it,
    // so after one it is switched anyway). Pids name processes one to
    // one, and are 0 for kernel threads.
    let space = match previous_pid == pid {
        true => None,
        false => thread.space,
    };
    SCHEDULER.current_tid.store(tid, Ordering::Relaxed);
    SCHEDULER.current_pid.store(pid, Ordering::Relaxed);
    *current = next;
    SwitchTo {
        save,
        load,
        space,
        stack_top,
    }
}

/// Adopts the running boot code as the first kernel thread and creates the
/// idle thread.
pub(super) fn init<A: Arch>() -> Result<(), Error> {
    let boot = Thread::new("boot", None, 0, 0)?;
    let idle_stack = KernelStack::new().map_err(|_| Error::OutOfMemory)?;
    let idle_top = idle_stack.top();
    // SAFETY: the stack was just mapped and nothing uses it.
    let idle_sp = unsafe { A::prepare_kernel_thread(idle_top, idle_main::<A>, 0) };
    let idle = Thread::new("idle", Some(idle_stack), idle_top, idle_sp)?;
    let mut s = SCHEDULER.lock();
    if s.started {
        return Ok(());
    }
    s.adopt(boot, idle)
}

/// Starts the scheduler's tick.
pub fn start_ticking<A: Arch>() -> Result<(), timer::StartError> {
    timer::start::<A>(TICK_HZ, Some(tick::<A>))
}

fn tick<A: Arch>() {
    let now = A::monotonic_ns();
    let mut s = SCHEDULER.lock();
    if s.started {
        s.tick(now);
    }
}

/// Whether a switch is due at the next return to user mode.
#[inline]
pub(super) fn switch_due() -> bool {
    SCHEDULER.need_resched.load(Ordering::Relaxed)
}

/// Switches to the most urgent ready thread, if it is not the current one
/// (which, if still running, goes to the back of its queue).
pub(super) fn schedule<A: Arch>() {
    let enabled = A::enabled();
    A::disable();
    let target = SCHEDULER.lock().pick_next();
    if let Some(to) = target {
        switch::<A>(to);
    }
    if enabled {
        A::enable();
    }
}

/// Switches to `to`, with interrupts masked and the lock let go; returns
/// when the current thread runs again.
/// Marks `thread` running, with a fresh time slice.
#[inline]
fn start_running(thread: &mut Thread) {
    thread.state = State::Running;
    thread.slice_left = TIMESLICE_TICKS;
    if thread.killed {
        // It dies at its next return to user mode.
        SCHEDULER.need_resched.store(true, Ordering::Relaxed);
    }
}

impl SwitchTo {
    /// The top of the next thread's kernel stack.
    pub(super) fn stack_top(&self) -> usize {
        self.stack_top
    }

    /// The kernel context the next thread resumes at.
    pub(super) fn load(&self) -> usize {
        self.load
    }
}

/// Everything a switch to `to` does but the switch of stacks: its address
/// space, and its kernel stack for traps.
#[inline(always)]
pub(super) fn enter_address_space<A: Arch>(to: &SwitchTo) {
    if to.space.is_some() {
        A::activate(to.space);
    }
    A::set_kernel_stack(to.stack_top);
}

pub(super) fn switch<A: Arch>(to: SwitchTo) {
    enter_address_space::<A>(&to);
    // SAFETY: interrupts are masked; `load` was stored by a switch or a
    // prepare call; `save` points into the previous thread's boxed record,
    // which stays until it is reaped, after this switch.
    unsafe { A::switch(to.save, to.load) };
    reap();
}

/// Frees the kernel stacks of threads that have ended.
#[inline(always)]
pub(super) fn reap() {
    if SCHEDULER.dead_threads.load(Ordering::Relaxed) != 0 {
        reap_dead();
    }
}

#[cold]
fn reap_dead() {
    loop {
        let dead = SCHEDULER.lock().take_dead();
        match dead {
            Some(thread) => drop(thread),
            None => break,
        }
    }
}

/// Cycle-counter ticks spent waiting in the idle thread.
static IDLE_CYCLES: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// Cycle-counter ticks the CPU has spent idle (the wake-up's interrupt
/// handling included, a few hundred instructions per wake).
pub fn idle_cycles() -> u64 {
    IDLE_CYCLES.load(core::sync::atomic::Ordering::Relaxed)
}

extern "C" fn idle_main<A: Arch>(_: usize) -> ! {
    reap();
    loop {
        if switch_due() {
            schedule::<A>();
        } else {
            let start = A::cycle_counter();
            A::idle();
            let idle = A::cycles_between(start, A::cycle_counter());
            IDLE_CYCLES.fetch_add(idle, core::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Lets other ready threads of the same or higher priority run (the caller
/// goes to the back of its priority's queue).
pub fn yield_now<A: Arch>() {
    SCHEDULER.lock().note_yield();
    schedule::<A>();
}

/// Sets the current thread's priority. User threads go above
/// [`DEFAULT_PRIORITY`] only if `may_raise` (the caller checked a
/// capability); kernel threads always may. A lower priority takes effect
/// at once: a more urgent ready thread runs.
pub fn set_priority<A: Arch>(priority: usize, may_raise: bool) -> Result<(), Error> {
    let (me, kernel_thread) = {
        let s = SCHEDULER.lock();
        (
            s.threads.reference(s.current),
            s.current_process().is_none(),
        )
    };
    set_priority_of::<A>(me, priority, may_raise || kernel_thread)
}

/// Sets the priority of thread `target` (any process's); raising it above
/// the default needs `may_raise`. A ready thread moves to its new run
/// queue; one that now outranks the running thread preempts it.
pub fn set_priority_of<A: Arch>(
    target: ThreadRef,
    priority: usize,
    may_raise: bool,
) -> Result<(), Error> {
    let priority = u8::try_from(priority)
        .ok()
        .filter(|&p| (p as usize) < PRIORITIES)
        .ok_or(Error::InvalidArgument)?;
    if priority > DEFAULT_PRIORITY && !may_raise {
        return Err(Error::PermissionDenied);
    }
    {
        let mut guard = SCHEDULER.lock();
        let s = &mut *guard;
        if s.threads.alive(target).is_none() {
            return Err(Error::NotFound);
        }
        let index = target.index;
        if s.thread(index).state == State::Ready {
            s.unlink(index);
            s.thread_mut(index).priority = priority;
            s.make_ready(index);
        } else {
            s.thread_mut(index).priority = priority;
        }
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
            if s.current_killed() {
                return Err(Killed);
            }
            s.block_current_until(deadline_ns);
        }
        schedule::<A>();
    }
}

/// Waits in `queue` until a [`wake_all`] on it. The caller checks, with
/// interrupts masked, that what it waits for has not happened yet, so no
/// wake-up can slip in between. A killed thread returns [`Killed`] at
/// once or when the kill wakes it.
pub fn wait_on<A: Arch>(queue: Pin<&WaitQueue>) -> Result<(), Killed> {
    {
        let mut s = SCHEDULER.lock();
        if s.current_killed() {
            return Err(Killed);
        }
        s.block_current_in(queue);
    }
    schedule::<A>();
    if SCHEDULER.lock().current_killed() {
        return Err(Killed);
    }
    Ok(())
}

/// Makes every thread waiting in `queue` ready (also from an interrupt
/// handler); returns how many there were.
pub fn wake_all(queue: &WaitQueue) -> usize {
    let mut s = SCHEDULER.lock();
    if !s.started {
        return 0;
    }
    s.wake_all_in(queue)
}

/// The current process's id; 0 in a kernel thread.
pub fn current_pid() -> Pid {
    SCHEDULER.current_pid.load(Ordering::Relaxed)
}

/// The current thread's id.
pub fn current_tid() -> Tid {
    SCHEDULER.current_tid.load(Ordering::Relaxed)
}

/// Runs `f` on the current process's address space; `None` in a kernel
/// thread.
pub fn with_current_space<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Option<R> {
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let slot = s.current_process()?;
    s.processes.get_mut(slot).space.as_mut().map(f)
}

/// [`with_current_space`] for `f` that takes pages out of the space: the
/// IPC-buffer frames its threads' payloads were copied through are
/// looked up again afterwards, in case one of them went.
pub fn unmapping_in_current_space<R>(f: impl FnOnce(&mut UserSpace) -> R) -> Option<R> {
    let mut guard = SCHEDULER.lock();
    let s = &mut *guard;
    let slot = s.current_process()?;
    let result = s.processes.get_mut(slot).space.as_mut().map(f)?;
    for thread in s.threads.iter_mut() {
        if thread.process == Some(slot) {
            thread.ipc.buffer_frame = 0;
        }
    }
    Some(result)
}

/// The quota the current process's memory is charged to; `None` in a
/// kernel thread or a process charged to none.
pub fn current_quota() -> Option<alloc::sync::Arc<crate::mm::quota::Quota>> {
    let s = SCHEDULER.lock();
    let slot = s.current_process()?;
    s.processes.get(slot).quota.clone()
}

/// (processes, threads) alive now.
pub fn counts() -> (usize, usize) {
    let s = SCHEDULER.lock();
    (s.processes.count(), s.threads.live())
}

/// One record per process, for `ps`.
pub fn process_info() -> Result<alloc::vec::Vec<abi::ProcessInfo>, Error> {
    let s = SCHEDULER.lock();
    s.processes.info(&s.threads)
}

/// Notes the first entry to user mode, at `since_reset_ns`.
pub(super) fn note_user_entry(since_reset_ns: u64) {
    if FIRST_USER_NS.load(Ordering::Relaxed) == 0 {
        FIRST_USER_NS.store(since_reset_ns.max(1), Ordering::Relaxed);
    }
}

/// Nanoseconds from reset to the first entry to user mode (0: not yet).
pub fn first_user_ns() -> u64 {
    FIRST_USER_NS.load(Ordering::Relaxed)
}
