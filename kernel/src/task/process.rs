//! Processes: starting programs and threads, ending and killing them,
//! and what their parents learn.

use super::*;

impl Scheduler {
    /// Marks every thread of process `slot` but the current one killed,
    /// waking those that wait so they can unwind.
    pub(super) fn kill_threads_of(&mut self, slot: usize) {
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
    pub(super) fn finish_process<A: Arch>(&mut self, slot: usize) {
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
pub(super) fn enough_frames() -> bool {
    mm::frames::counts().1 >= RESERVED_FRAMES + START_FRAMES
}

/// Frames a new process or thread takes at least (stacks, tables, image).
pub(super) const START_FRAMES: usize = 64;

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
        preemptions: 0,
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
pub(super) fn prepare_image<A: Arch>(
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

pub(super) fn new_user_thread<A: Arch>(entry: UserEntry) -> Result<Box<Thread>, Error> {
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
                return Err(Killed.into());
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
            preemptions: process.preemptions,
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
