//! Scheduling: choosing the next thread, switching to it, the tick,
//! sleeping and waiting, and the threads' ends.

use super::*;

impl Scheduler {
    pub(super) const fn new() -> Scheduler {
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
            yielding: false,
        }
    }

    pub(super) fn thread(&self, index: usize) -> &Thread {
        self.threads.0[index].as_deref().expect("thread exists")
    }

    pub(super) fn thread_mut(&mut self, index: usize) -> &mut Thread {
        self.threads.0[index].as_deref_mut().expect("thread exists")
    }

    pub(super) fn process(&self, slot: usize) -> &Process {
        self.processes[slot].as_deref().expect("process exists")
    }

    pub(super) fn process_mut(&mut self, slot: usize) -> &mut Process {
        self.processes[slot].as_deref_mut().expect("process exists")
    }

    pub(super) fn find_process(&self, pid: Pid) -> Option<usize> {
        self.processes
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.pid == pid))
    }

    pub(super) fn current_process(&self) -> Option<usize> {
        self.thread(self.current).process
    }

    pub(super) fn process_count(&self) -> usize {
        self.processes.iter().flatten().count()
    }

    /// Puts `thread` in a free slot.
    pub(super) fn insert_thread(&mut self, mut thread: Box<Thread>) -> Result<usize, Error> {
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
    pub(super) fn insert_process(&mut self, process: Box<Process>) -> Result<usize, Box<Process>> {
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
    pub(super) fn make_ready(&mut self, index: usize) {
        let thread = self.thread_mut(index);
        thread.state = State::Ready;
        let priority = thread.priority;
        self.run.push(&mut self.threads, index, priority);
        if self.current == self.idle || priority > self.thread(self.current).priority {
            NEED_RESCHED.store(true, Ordering::Relaxed);
        }
    }

    /// Takes `index` out of whatever list holds it.
    pub(super) fn unlink(&mut self, index: usize) {
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
    pub(super) fn wake_all(&mut self, list: ListId) {
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
    pub(super) fn block_current(&mut self, list: ListId) {
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

    /// Chooses the next thread and makes it current; `None` if the
    /// current thread goes on.
    pub(super) fn pick_next(&mut self) -> Option<SwitchTo> {
        NEED_RESCHED.store(false, Ordering::Relaxed);
        let previous = self.current;
        let yielded = core::mem::replace(&mut self.yielding, false);
        let still_ready = previous != self.idle && self.thread(previous).state == State::Running;
        if still_ready {
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
        if still_ready
            && !yielded
            && let Some(slot) = self.thread(previous).process
        {
            self.process_mut(slot).preemptions += 1;
        }
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

/// Starts the scheduler's tick.
pub fn start_ticking<A: Arch>() -> Result<(), timer::StartError> {
    timer::start::<A>(TICK_HZ, Some(tick::<A>))
}

pub(super) fn tick<A: Arch>() {
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
pub(super) fn schedule<A: Arch>() {
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
pub(super) fn reap() {
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

pub(super) extern "C" fn idle_main<A: Arch>(_: usize) -> ! {
    reap();
    loop {
        if NEED_RESCHED.load(Ordering::Relaxed) {
            schedule::<A>();
        } else {
            A::idle();
        }
    }
}

pub(super) extern "C" fn kernel_thread_main<A: Arch>(_: usize) -> ! {
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

/// Lets other ready threads of the same or higher priority run (the caller
/// goes to the back of its priority's queue).
pub fn yield_now<A: Arch>() {
    SCHEDULER.lock().yielding = true;
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
