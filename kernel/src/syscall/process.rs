//! Process system calls: `spawn`, `wait` and `power_off` (exit, threads
//! and priorities go straight to the task subsystem from the dispatcher).

use super::{Outcome, UserBuffer, in_space, one};
use crate::task::{self, Parent, SpawnOptions};
use abi::Error;
use hal::Arch;
use hal::trap::Access;

pub(super) fn spawn<A: Arch>(name: UserBuffer, arguments: UserBuffer, flags: usize) -> Outcome {
    let (name_len, arguments_len) = (name.len, arguments.len);
    if name_len == 0 || flags & !abi::SPAWN_INHERIT_PRIVILEGES != 0 {
        return Err(Error::InvalidArgument);
    }
    if name_len > abi::MAX_NAME_LENGTH || arguments_len > abi::MAX_ARGUMENTS_LENGTH {
        return Err(Error::TooLong);
    }
    let mut name_bytes = [0u8; abi::MAX_NAME_LENGTH];
    let mut argument_bytes = [0u8; abi::MAX_ARGUMENTS_LENGTH];
    in_space(|space| {
        name.read::<A>(space, 0, &mut name_bytes[..name_len])?;
        arguments.read::<A>(space, 0, &mut argument_bytes[..arguments_len])
    })?;
    let name = core::str::from_utf8(&name_bytes[..name_len]).map_err(|_| Error::InvalidArgument)?;
    let privileged = flags & abi::SPAWN_INHERIT_PRIVILEGES != 0 && task::current_privileged();
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

pub(super) fn wait<A: Arch>(pid: usize, status: UserBuffer) -> Outcome {
    let filter = match pid {
        0 => None,
        pid => Some(u32::try_from(pid).map_err(|_| Error::NotFound)?),
    };
    // A null status address means the caller does not want the status.
    let wanted = status.address != 0;
    if wanted {
        in_space(|space| status.check::<A>(space, Access::Write))?;
    }
    let (pid, _) = task::wait_child::<A>(filter, |space, pid, exit| {
        if !wanted {
            return Ok(());
        }
        status.write::<A>(space, 0, abi::record_bytes(&exit.to_wait_status(pid)))
    })?;
    one(pid as usize)
}

pub(super) fn power_off<A: Arch>(status: usize) -> Outcome {
    if !task::current_privileged() {
        return Err(Error::PermissionDenied);
    }
    crate::kprintln!(
        "ferrite: powered off by process {} with status {}",
        task::current_pid(),
        status as u8
    );
    A::exit(status as u8)
}
