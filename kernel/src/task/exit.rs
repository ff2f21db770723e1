//! The ends of threads and processes: exit, kill, faults, and what
//! parents learn.
//!
//! Killing a process marks all its threads; each dies at its next return
//! to user mode, so a thread that was blocked in a system call first
//! unwinds it normally and frees what it held.

use super::process::{ExitStatus, OnExit, Parent, Pid, Resources};
use super::sched::{self, SCHEDULER, Scheduler, schedule};
use super::space::UserSpace;
use super::thread::{Killed, State};
use super::wait::WaitQueue;
use abi::Error;
use alloc::boxed::Box;
use core::pin::Pin;
use hal::trap::FaultKind;
use hal::{Arch, Fault};

/// Kernel threads waiting for a process they started to end.
pub(super) static KERNEL_CHILD_WAITERS: WaitQueue = WaitQueue::new();

impl Scheduler {
    /// Marks every thread of process `slot` but the current one killed,
    /// waking those that wait so they can unwind.
    pub(super) fn kill_threads_of(&mut self, slot: usize) {
        let current = self.current;
        for index in self.threads.indices() {
            if index == current || !self.threads.exists(index) {
                continue;
            }
            let thread = self.thread_mut(index);
            if thread.process != Some(slot) || thread.state == State::Dead {
                continue;
            }
            thread.killed = true;
            if thread.state == State::Blocked {
                self.unlink(index);
                self.make_ready(index);
            }
        }
    }

    /// Ends the current thread; returns the slot of its process if that
    /// ended with it. A caller it owed a reply gets [`Error::PeerDied`].
    pub(super) fn exit_current(&mut self) -> Option<usize> {
        let current = self.current;
        if let Some(caller) = self.thread_mut(current).ipc.caller.take()
            && self.awaits_reply(caller)
        {
            self.end_wait(caller, Err(Error::PeerDied));
        }
        let slot = self.end_current()?;
        let process = self.processes.get_mut(slot);
        process.live_threads -= 1;
        (process.live_threads == 0).then_some(slot)
    }

    /// Ends process `slot`, whose last thread has ended: frees its memory,
    /// keeps its status for its parent and tells the parent. Returns its
    /// resources and its watch, for the caller to drop and tell once it
    /// has let go of the lock.
    #[must_use = "resources are dropped outside the scheduler's lock"]
    pub(super) fn finish_process<A: Arch>(&mut self, slot: usize) -> Ended {
        let process = self.processes.get_mut(slot);
        process.exit.get_or_insert(ExitStatus::Exited(0));
        let ended = Ended {
            resources: process.take_resources(),
            on_exit: process.on_exit.take(),
        };
        let space = process.space.take();
        if let Some(space) = space {
            crate::inspect::remove_process(process.pid);
            space.destroy::<A>();
        }
        let process = self.processes.get_mut(slot);
        process.zombie = true;
        let (pid, parent) = (process.pid, process.parent);
        self.processes.orphan_children_of(pid);
        match parent {
            Parent::Process(parent) => match self.processes.find(parent) {
                Some(parent_slot) => {
                    while let Some(index) = self
                        .processes
                        .get(parent_slot)
                        .child_waiters
                        .pop(&mut self.threads)
                    {
                        self.make_ready(index);
                    }
                }
                None => drop(self.processes.remove(slot)),
            },
            Parent::Kernel => {
                self.wake_all_in(&KERNEL_CHILD_WAITERS);
            }
            Parent::Orphan => drop(self.processes.remove(slot)),
        }
        ended
    }

    /// Swaps `on_exit` with what process `pid`'s end is told to: `on_exit`
    /// is left with what it replaced, or (on an error) itself, to drop
    /// outside the lock. `NotFound` once the process has ended.
    pub(super) fn watch(
        &mut self,
        pid: Pid,
        on_exit: &mut Option<Box<dyn OnExit>>,
    ) -> Result<(), Error> {
        let slot = self.processes.find(pid).ok_or(Error::NotFound)?;
        let process = self.processes.get_mut(slot);
        if process.zombie {
            return Err(Error::NotFound);
        }
        core::mem::swap(&mut process.on_exit, on_exit);
        Ok(())
    }
}

/// What an ended process leaves: its resources and its watch.
#[must_use = "resources are dropped outside the scheduler's lock"]
pub(super) struct Ended {
    resources: Option<Resources>,
    on_exit: Option<Box<dyn OnExit>>,
}

impl Ended {
    /// Drops the resources (which may wake threads), then tells the watch.
    pub(super) fn release(self) {
        drop(self.resources);
        if let Some(on_exit) = self.on_exit {
            on_exit.ended();
        }
    }
}

/// Tells `on_exit` when process `pid` ends (replacing what was told
/// before). `NotFound` if it has ended.
pub fn watch_process(pid: Pid, on_exit: Box<dyn OnExit>) -> Result<(), Error> {
    let mut swapped = Some(on_exit);
    let result = SCHEDULER.lock().watch(pid, &mut swapped);
    // What was replaced, or refused, goes outside the lock.
    drop(swapped);
    result
}

/// Ends the current thread; a process whose last thread this is ends with
/// it (status 0 unless it was set already).
pub fn exit_thread<A: Arch>() -> ! {
    let ended = {
        let mut s = SCHEDULER.lock();
        s.exit_current().map(|slot| s.finish_process::<A>(slot))
    };
    // Dropping capabilities may wake threads, and a watch signals: both
    // take the lock.
    if let Some(ended) = ended {
        ended.release();
    }
    schedule::<A>();
    unreachable!("an ended thread was resumed")
}

/// Ends the current process with `status` (unless it is ending already):
/// its other threads are killed, then this one ends.
pub fn exit_process<A: Arch>(status: ExitStatus) -> ! {
    {
        let mut s = SCHEDULER.lock();
        if let Some(slot) = s.current_process() {
            s.processes.get_mut(slot).exit.get_or_insert(status);
            s.kill_threads_of(slot);
        }
    }
    exit_thread::<A>()
}

/// How [`kill_process`] ends a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kill {
    /// Status [`ExitStatus::Killed`].
    Plain,
    /// As if it had faulted ([`FaultKind::Injected`], the fault address
    /// the killer's pid), reported like a fault.
    AsFault,
}

/// Ends process `pid`: its threads end at their next return to user mode.
/// `NotFound` if it has ended already.
pub fn kill_process<A: Arch>(pid: Pid, how: Kill) -> Result<(), Error> {
    let (suicide, name, killer) = {
        let mut s = SCHEDULER.lock();
        let killer = s
            .current_process()
            .map_or(0, |slot| s.processes.get(slot).pid);
        let slot = s.processes.find(pid).ok_or(Error::NotFound)?;
        let process = s.processes.get_mut(slot);
        if process.zombie {
            return Err(Error::NotFound);
        }
        let status = match how {
            Kill::Plain => ExitStatus::Killed,
            Kill::AsFault => ExitStatus::Faulted(Fault {
                kind: FaultKind::Injected,
                access: None,
                address: killer as usize,
                pc: 0,
                detail: 0,
            }),
        };
        process.exit.get_or_insert(status);
        let name = process.name;
        s.kill_threads_of(slot);
        (s.current_process() == Some(slot), name, killer)
    };
    if how == Kill::AsFault {
        crate::kprintln!(
            "ferrite: process {pid} ({}) killed: fault injected by process {killer}",
            abi::name_str(&name)
        );
    }
    if suicide {
        exit_thread::<A>();
    }
    Ok(())
}

/// Called before every return to user mode: switches if a switch is due,
/// and ends the thread if it was killed.
#[inline]
pub fn before_user_return<A: Arch>() {
    if sched::switch_due() {
        reschedule_before_user_return::<A>();
    }
}

fn current_killed() -> bool {
    SCHEDULER.lock().current_killed()
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

/// Called on a new user thread's first run, before it enters user mode.
pub fn user_thread_started<A: Arch>() {
    sched::reap();
    sched::note_user_entry(A::since_reset_ns());
    before_user_return::<A>();
}

/// Handles an exception from user mode: brings in a demand-zero page if
/// that is all it takes (and returns), or kills the process with a report.
pub fn user_fault<A: Arch>(fault: Fault, cause: &'static str) {
    let mut out_of_memory = false;
    if let (FaultKind::NotMapped, Some(access)) = (fault.kind, fault.access) {
        match sched::with_current_space(|space| space.resolve_fault::<A>(fault.address, access)) {
            Some(Ok(())) => return,
            Some(Err(Error::OutOfMemory)) => out_of_memory = true,
            _ => {}
        }
    }
    let (pid, name) = {
        let s = SCHEDULER.lock();
        match s.current_process() {
            Some(slot) => (s.processes.get(slot).pid, s.processes.get(slot).name),
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
            let my_pid = s.processes.get(me).pid;
            if let Some(slot) = s.processes.ended_child(my_pid, pid)? {
                let child = s.processes.get(slot);
                let (child_pid, status) = (child.pid, child.exit_status());
                let space = s
                    .processes
                    .get_mut(me)
                    .space
                    .as_mut()
                    .ok_or(Error::InvalidArgument)?;
                before_collecting(space, child_pid, status)?;
                drop(s.processes.remove(slot));
                return Ok((child_pid, status));
            }
            if s.current_killed() {
                return Err(Killed.into());
            }
            let queue = s.processes.get(me).child_waiters.as_ref();
            queue.block(&mut s.threads, s.current);
        }
        schedule::<A>();
    }
}

/// From a kernel thread: waits for process `pid`, started with
/// [`Parent::Kernel`], to end, and forgets it.
pub fn wait_kernel_child<A: Arch>(pid: Pid) -> Result<ExitStatus, Error> {
    loop {
        {
            let mut s = SCHEDULER.lock();
            let slot = s.processes.find(pid).ok_or(Error::NotFound)?;
            let process = s.processes.get(slot);
            if process.parent != Parent::Kernel {
                return Err(Error::NotFound);
            }
            if process.zombie {
                let status = process.exit_status();
                drop(s.processes.remove(slot));
                return Ok(status);
            }
            s.block_current_in(Pin::static_ref(&KERNEL_CHILD_WAITERS));
        }
        schedule::<A>();
    }
}
