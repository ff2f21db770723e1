//! Processes: the record of each one, the table that holds them, and how
//! a process ended.
//!
//! A process is a user address space plus the threads running in it. It
//! ends when its last thread ends; its record stays, as a zombie, until
//! whoever it reports to ([`Parent`]) has learnt how it ended.

use super::space::UserSpace;
use super::thread::{State, Threads};
use super::wait::WaitQueue;
use crate::mm;
use crate::mm::quota::Quota;
use abi::{Error, Name};
use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::pin::Pin;
use hal::Fault;
use hal::trap::{Access, FaultKind};

use super::resources::{OwnedResources, ResourcesAt};
pub use super::resources::{Resources, ResourcesType};

/// A process id; ids are never reused. 0 means "none".
pub type Pid = u32;

/// Processes (zombies included), at most.
pub const MAX_PROCESSES: usize = 256;
/// Threads in one process, at most.
pub const MAX_THREADS_PER_PROCESS: u32 = 64;

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
    /// Another process ended it.
    Killed,
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
            ExitStatus::Killed => status.reason = abi::ExitReason::Killed as u32,
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
    /// A kernel thread, through `wait_kernel_child`.
    Kernel,
    /// This process, through `wait`.
    Process(Pid),
}

pub(super) struct Process {
    pub(super) pid: Pid,
    pub(super) parent: Parent,
    pub(super) name: Name,
    /// `None` once the process has ended.
    pub(super) space: Option<UserSpace>,
    pub(super) live_threads: u32,
    pub(super) exit: Option<ExitStatus>,
    /// Ended, with its status waiting for the parent.
    pub(super) zombie: bool,
    /// Its threads waiting in `wait` for a child. Boxed so that it stays
    /// in place while the record moves into the table.
    pub(super) child_waiters: Pin<Box<WaitQueue>>,
    pub(super) cpu_ticks: u64,
    /// Times one of its threads was switched out while still ready to run.
    pub(super) preemptions: u64,
    /// Its capabilities, dropped (outside the scheduler's lock) when it
    /// ends.
    resources: Option<OwnedResources>,
    /// The quota its memory is charged to, if any.
    pub(super) quota: Option<Arc<Quota>>,
    /// Told when it has ended (`process_watch`).
    pub(super) on_exit: Option<Box<dyn OnExit>>,
}

/// What a process's end is told to (a notification, for a supervisor):
/// run once it is a zombie, outside the scheduler's lock.
pub trait OnExit: Send {
    fn ended(self: Box<Self>);
}

impl Process {
    /// A process with one (future) thread and no address space yet.
    pub(super) fn new(
        name: &str,
        parent: Parent,
        resources: Option<Resources>,
    ) -> Result<Box<Process>, Error> {
        let child_waiters = mm::heap::try_box(WaitQueue::new()).map_err(|_| Error::OutOfMemory)?;
        mm::heap::try_box(Process {
            pid: 0,
            parent,
            name: abi::name_from(name),
            space: None,
            live_threads: 1,
            exit: None,
            zombie: false,
            child_waiters: Box::into_pin(child_waiters),
            cpu_ticks: 0,
            preemptions: 0,
            resources: resources.map(OwnedResources::new),
            quota: None,
            on_exit: None,
        })
        .map_err(|_| Error::OutOfMemory)
    }

    /// Where its resources are, for its threads to keep.
    pub(super) fn resources_at(&self) -> Option<ResourcesAt> {
        self.resources.as_ref().map(OwnedResources::at)
    }

    /// Takes its resources, when it has ended: no thread of it reaches
    /// them any more.
    pub(super) fn take_resources(&mut self) -> Option<Resources> {
        self.resources.take().map(OwnedResources::into_resources)
    }

    /// How it ended; a process that ended without saying exited with 0.
    pub(super) fn exit_status(&self) -> ExitStatus {
        self.exit.unwrap_or(ExitStatus::Exited(0))
    }
}

/// The process table: records stay at their slot while they exist, and
/// ids count up from 1.
pub(super) struct Processes {
    slots: Vec<Option<Box<Process>>>,
    next_pid: Pid,
}

impl Processes {
    pub(super) const fn new() -> Processes {
        Processes {
            slots: Vec::new(),
            next_pid: 1,
        }
    }

    pub(super) fn get(&self, slot: usize) -> &Process {
        self.slots[slot].as_deref().expect("process exists")
    }

    pub(super) fn get_mut(&mut self, slot: usize) -> &mut Process {
        self.slots[slot].as_deref_mut().expect("process exists")
    }

    /// The slot of process `pid`.
    pub(super) fn find(&self, pid: Pid) -> Option<usize> {
        self.iter()
            .find(|(_, p)| p.pid == pid)
            .map(|(slot, _)| slot)
    }

    /// Records in the table, zombies included.
    pub(super) fn count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// Records by slot.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Process)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| Some((slot, p.as_deref()?)))
    }

    /// Reserves room for every slot the table may have.
    pub(super) fn reserve_all(&mut self) -> Result<(), Error> {
        let more = MAX_PROCESSES.saturating_sub(self.slots.len());
        self.slots
            .try_reserve_exact(more)
            .map_err(|_| Error::OutOfMemory)
    }

    /// Puts `process` in a free slot and gives it the next id.
    pub(super) fn insert(&mut self, mut process: Box<Process>) -> Result<usize, Box<Process>> {
        if self.count() >= MAX_PROCESSES {
            return Err(process);
        }
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                if self.slots.try_reserve(1).is_err() {
                    return Err(process);
                }
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        process.pid = self.next_pid;
        self.next_pid += 1;
        self.slots[slot] = Some(process);
        Ok(slot)
    }

    /// Takes the record at `slot` out of the table.
    pub(super) fn remove(&mut self, slot: usize) -> Option<Box<Process>> {
        self.slots.get_mut(slot)?.take()
    }

    /// Gives the children of `pid` nobody to report to, and forgets those
    /// that have ended already.
    pub(super) fn orphan_children_of(&mut self, pid: Pid) {
        for slot in self.slots.iter_mut() {
            let Some(child) = slot.as_deref_mut() else {
                continue;
            };
            if child.parent == Parent::Process(pid) {
                child.parent = Parent::Orphan;
                if child.zombie {
                    *slot = None;
                }
            }
        }
    }

    /// The ended child of `parent` that a `wait` for `filter` (a pid, or
    /// any child) collects now: `Ok(None)` if such a child lives but none
    /// has ended.
    pub(super) fn ended_child(
        &self,
        parent: Pid,
        filter: Option<Pid>,
    ) -> Result<Option<usize>, Error> {
        let mut any = false;
        for (slot, child) in self.iter() {
            if child.parent != Parent::Process(parent) || filter.is_some_and(|p| p != child.pid) {
                continue;
            }
            if child.zombie {
                return Ok(Some(slot));
            }
            any = true;
        }
        match (any, filter) {
            (true, _) => Ok(None),
            (false, Some(_)) => Err(Error::NotFound),
            (false, None) => Err(Error::NoChildren),
        }
    }

    /// One `ps` record per process; a process none of whose `threads`
    /// can run is shown blocked.
    pub(super) fn info(&self, threads: &Threads) -> Result<Vec<abi::ProcessInfo>, Error> {
        let mut runnable = Vec::new();
        runnable
            .try_reserve(self.slots.len())
            .map_err(|_| Error::OutOfMemory)?;
        runnable.resize(self.slots.len(), false);
        for (_, thread) in threads.iter() {
            if let (Some(slot), State::Running | State::Ready) = (thread.process, thread.state) {
                runnable[slot] = true;
            }
        }
        let mut out = Vec::new();
        out.try_reserve(self.count())
            .map_err(|_| Error::OutOfMemory)?;
        for (slot, process) in self.iter() {
            out.push(abi::ProcessInfo {
                pid: process.pid,
                parent: match process.parent {
                    Parent::Process(pid) => pid,
                    _ => 0,
                },
                threads: process.live_threads,
                state: if process.zombie {
                    abi::ProcessState::Zombie
                } else if runnable[slot] {
                    abi::ProcessState::Running
                } else {
                    abi::ProcessState::Blocked
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
}
