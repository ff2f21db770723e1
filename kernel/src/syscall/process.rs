//! Process system calls: `spawn`, `wait`, `power_off` and `set_priority`
//! (exit and threads go straight to the task subsystem from the
//! dispatcher).

use super::cap::{insert, object, with_table};
use super::{Outcome, UserBuffer, in_space, one, two};
use crate::object::Object;
use crate::object::cap::{CapTable, Capability};
use crate::object::notification::{self, Notification};
use crate::task::{self, Parent, SpawnOptions};
use abi::{Error, Handle, ObjectKind};
use alloc::boxed::Box;
use alloc::sync::Arc;
use hal::Arch;
use hal::trap::Access;

/// The child's capability table: a copy of each capability `handles`
/// lists (each needs the grant right), in order.
fn child_table(handles: &[Handle]) -> Result<CapTable, Error> {
    let mut table = CapTable::new();
    let copies = with_table(|parent| {
        let mut copies = alloc::vec::Vec::new();
        copies
            .try_reserve(handles.len())
            .map_err(|_| Error::OutOfMemory)?;
        for &handle in handles {
            let capability = parent.get(handle)?;
            if capability.rights() & abi::RIGHT_GRANT == 0 {
                return Err(Error::MissingRight);
            }
            copies.push(capability.derive(capability.rights(), 0)?);
        }
        Ok(copies)
    });
    // A failure above drops the copies made, outside the lock.
    for capability in copies? {
        if let Err((error, capability)) = table.insert(capability) {
            drop(capability);
            return Err(error);
        }
    }
    Ok(table)
}

/// `name`, `arguments` and `handles` are decoded: their lengths are within
/// bounds.
pub(super) fn spawn<A: Arch>(
    name: UserBuffer,
    arguments: UserBuffer,
    handles: UserBuffer,
    quota_first: bool,
) -> Outcome {
    let (name_len, arguments_len) = (name.len, arguments.len);
    let mut name_bytes = [0u8; abi::MAX_NAME_LENGTH];
    let mut argument_bytes = [0u8; abi::MAX_ARGUMENTS_LENGTH];
    let mut handle_bytes = [0u8; abi::MAX_SPAWN_HANDLES * size_of::<Handle>()];
    in_space(|space| {
        name.read::<A>(space, 0, &mut name_bytes[..name_len])?;
        arguments.read::<A>(space, 0, &mut argument_bytes[..arguments_len])?;
        handles.read::<A>(space, 0, &mut handle_bytes[..handles.len])
    })?;
    let handles: alloc::vec::Vec<Handle> = handle_bytes[..handles.len]
        .chunks_exact(size_of::<Handle>())
        .map(|b| Handle::from_ne_bytes(b.try_into().expect("handle-sized")))
        .collect();
    // Room for the child's handle first: once it runs, it is not undone.
    if !with_table(|parent| Ok(parent.has_room()))? {
        return Err(Error::TableFull);
    }
    // The child's quota: the one given (the first handle), or the caller's.
    let quota = match quota_first {
        true => match object(handles[0], ObjectKind::Quota, abi::RIGHT_GRANT)? {
            Object::Quota(quota) => Some(quota),
            _ => return Err(Error::WrongType),
        },
        false => task::current_quota(),
    };
    let table = child_table(&handles)?;
    let name = core::str::from_utf8(&name_bytes[..name_len]).map_err(|_| Error::InvalidArgument)?;
    let pid = task::spawn::<A>(
        name,
        SpawnOptions {
            arguments: &argument_bytes[..arguments_len],
            parent: Parent::Process(task::current_pid()),
            resources: Some(task::ipc::Resources::new(Box::new(table))),
            quota,
        },
    )?;
    let handle = insert(Capability::new(
        Object::Process(pid),
        abi::PROCESS_RIGHTS,
        0,
    ))?;
    two(pid as usize, handle as usize)
}

pub(super) fn wait<A: Arch>(child: Option<task::Pid>, status: Option<UserBuffer>) -> Outcome {
    if let Some(status) = status {
        in_space(|space| status.check::<A>(space, Access::Write))?;
    }
    let (pid, _) = task::wait_child::<A>(child, |space, pid, exit| match status {
        Some(status) => status.write::<A>(space, 0, abi::record_bytes(&exit.to_wait_status(pid))),
        None => Ok(()),
    })?;
    one(pid as usize)
}

/// Whether a priority above the default is allowed: `control`, if given,
/// must be a control capability with `RIGHT_RAISE_PRIORITY`.
fn may_raise(control_handle: Option<Handle>) -> Result<bool, Error> {
    match control_handle {
        Some(handle) => control(handle, abi::RIGHT_RAISE_PRIORITY).map(|()| true),
        None => Ok(false),
    }
}

/// Checks that `control` names a control capability with `right`.
fn control(control: Handle, right: abi::Rights) -> Result<(), Error> {
    with_table(|table| {
        table
            .get(control)?
            .check(ObjectKind::Control, right)
            .map(|_| ())
    })
}

pub(super) fn power_off<A: Arch>(handle: Handle, status: u8) -> Outcome {
    control(handle, abi::RIGHT_POWER_OFF)?;
    crate::kprintln!(
        "ferrite: powered off by process {} with status {}",
        task::current_pid(),
        status
    );
    A::exit(status)
}

pub(super) fn set_priority<A: Arch>(priority: usize, handle: Option<Handle>) -> Outcome {
    task::set_priority::<A>(priority, may_raise(handle)?)?;
    one(0)
}

pub(super) fn spawn_thread<A: Arch>(entry: usize, stack_top: usize, argument: usize) -> Outcome {
    // Room for the handle first: a thread started is not taken back.
    if !with_table(|table| Ok(table.has_room()))? {
        return Err(Error::TableFull);
    }
    let thread = task::spawn_thread::<A>(entry, stack_top, argument)?;
    let capability = Capability::new(Object::Thread(thread), abi::THREAD_RIGHTS, 0);
    two(thread.tid() as usize, insert(capability)? as usize)
}

pub(super) fn thread_set_priority<A: Arch>(
    handle: Handle,
    priority: usize,
    control_handle: Option<Handle>,
) -> Outcome {
    let Object::Thread(thread) = object(handle, ObjectKind::Thread, abi::RIGHT_SCHEDULE)? else {
        return Err(Error::WrongType);
    };
    task::set_priority_of::<A>(thread, priority, may_raise(control_handle)?)?;
    one(0)
}

pub(super) fn wait_handle<A: Arch>(handle: Handle, status: Option<UserBuffer>) -> Outcome {
    let Object::Process(pid) = object(handle, ObjectKind::Process, abi::RIGHT_WAIT)? else {
        return Err(Error::WrongType);
    };
    wait::<A>(Some(pid), status)
}

pub(super) fn kill<A: Arch>(handle: Handle, as_fault: bool) -> Outcome {
    let Object::Process(pid) = object(handle, ObjectKind::Process, abi::RIGHT_KILL)? else {
        return Err(Error::WrongType);
    };
    let how = match as_fault {
        true => task::Kill::AsFault,
        false => task::Kill::Plain,
    };
    task::kill_process::<A>(pid, how)?;
    one(0)
}

/// A process's end, told to a notification.
struct SignalOnExit {
    notification: Arc<Notification>,
    bits: usize,
}

impl task::OnExit for SignalOnExit {
    fn ended(self: Box<Self>) {
        notification::signal(&self.notification, self.bits);
    }
}

pub(super) fn watch(process: Handle, notification: Handle, bits: usize) -> Outcome {
    let Object::Process(pid) = object(process, ObjectKind::Process, abi::RIGHT_WAIT)? else {
        return Err(Error::WrongType);
    };
    let Object::Notification(notification) =
        object(notification, ObjectKind::Notification, abi::RIGHT_SIGNAL)?
    else {
        return Err(Error::WrongType);
    };
    let on_exit = crate::mm::heap::try_box(SignalOnExit { notification, bits })
        .map_err(|_| Error::OutOfMemory)?;
    task::watch_process(pid, on_exit)?;
    one(0)
}
