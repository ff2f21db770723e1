//! Process system calls: `spawn`, `wait` and `power_off` (exit, threads
//! and priorities go straight to the task subsystem from the dispatcher).

use super::{Outcome, UserBuffer, in_space, one};
use crate::task::{self, Parent, SpawnOptions};
use abi::Error;
use hal::Arch;
use hal::trap::Access;

/// `name` and `arguments` are decoded: their lengths are within bounds.
pub(super) fn spawn<A: Arch>(
    name: UserBuffer,
    arguments: UserBuffer,
    inherit_privileges: bool,
) -> Outcome {
    let (name_len, arguments_len) = (name.len, arguments.len);
    let mut name_bytes = [0u8; abi::MAX_NAME_LENGTH];
    let mut argument_bytes = [0u8; abi::MAX_ARGUMENTS_LENGTH];
    in_space(|space| {
        name.read::<A>(space, 0, &mut name_bytes[..name_len])?;
        arguments.read::<A>(space, 0, &mut argument_bytes[..arguments_len])
    })?;
    let name = core::str::from_utf8(&name_bytes[..name_len]).map_err(|_| Error::InvalidArgument)?;
    let privileged = inherit_privileges && task::current_privileged();
    let pid = task::spawn::<A>(
        name,
        SpawnOptions {
            arguments: &argument_bytes[..arguments_len],
            parent: Parent::Process(task::current_pid()),
            privileged,
        },
    )?;
    one(pid as usize)
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

pub(super) fn power_off<A: Arch>(status: u8) -> Outcome {
    if !task::current_privileged() {
        return Err(Error::PermissionDenied);
    }
    crate::kprintln!(
        "ferrite: powered off by process {} with status {}",
        task::current_pid(),
        status
    );
    A::exit(status)
}
