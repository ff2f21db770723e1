//! System calls: each call of the ABI in the `abi` crate. A call is first
//! decoded (`decode`: the registers become a typed [`Call`], with every
//! check the arguments alone allow), then performed by the module of its
//! group (`console`, `memory`, `process`, `time`, `info`), which checks
//! what needs the caller's memory or the system's state. Pointers are
//! never dereferenced: user memory is reached through the caller's address
//! space ([`UserSpace`]), which checks every page, so a bad pointer or
//! length yields an error code.

mod cap;
mod console;
mod decode;
mod device;
pub mod fastpath;
mod info;
mod ipc;
mod memory;
mod process;
mod time;

#[cfg(test)]
mod tests;

use crate::task::space::UserSpace;
use crate::task::{self, ExitStatus};
use abi::{Error, Syscall};
use decode::Call;
use hal::Arch;
use hal::trap::Access;

/// Bytes moved per step between user memory and the console.
const CHUNK: usize = 256;

/// What a call hands back: the two result registers and, for calls that
/// deliver a message, the four message registers (the others keep their
/// values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Returned {
    pub results: [usize; 2],
    pub message: Option<[usize; 4]>,
}

impl Returned {
    fn error(error: Error) -> Returned {
        Returned {
            results: [error.encode(), 0],
            message: None,
        }
    }
}

type Outcome = Result<Returned, Error>;

fn one(value: usize) -> Outcome {
    two(value, 0)
}

fn two(first: usize, second: usize) -> Outcome {
    Ok(Returned {
        results: [first, second],
        message: None,
    })
}

/// A delivered message: label and badge in the results, words in the
/// message registers.
fn message(message: task::Message) -> Outcome {
    Ok(Returned {
        results: [message.label, message.badge],
        message: Some(message.words),
    })
}

/// Carries out system call `number` with `args`; returns the result
/// registers. Called by the architecture's entry path (which tries the IPC
/// fast path, [`fastpath`], for `call` and `reply_recv` first). The calls
/// that only read a value are answered here, inline in the entry path;
/// the rest are decoded, then performed.
#[inline(always)]
pub fn handle<A: Arch>(number: usize, args: [usize; 6]) -> Returned {
    // Compared one by one, so that the null call's path is two compares.
    let value = if number == Syscall::ProcessId as usize {
        task::current_pid() as usize
    } else if number == Syscall::ThreadId as usize {
        task::current_tid() as usize
    } else {
        return handle_other::<A>(number, args);
    };
    Returned {
        results: [value, 0],
        message: None,
    }
}

#[inline(never)]
fn handle_other<A: Arch>(number: usize, args: [usize; 6]) -> Returned {
    decode::decode(number, args, A::user_range().1)
        .and_then(perform::<A>)
        .unwrap_or_else(Returned::error)
}

#[inline(always)]
fn perform<A: Arch>(call: Call) -> Outcome {
    match call {
        Call::ProcessId => one(task::current_pid() as usize),
        Call::ThreadId => one(task::current_tid() as usize),
        Call::Exit(status) => task::exit_process::<A>(ExitStatus::Exited(status)),
        Call::ThreadExit => task::exit_thread::<A>(),
        Call::Write(text) => console::write::<A>(text),
        Call::Read(into) => console::read::<A>(into),
        Call::Yield => {
            task::yield_now::<A>();
            one(0)
        }
        Call::Sleep { ns } => time::sleep::<A>(ns),
        Call::Time => {
            let ns = A::monotonic_ns();
            two(ns as u32 as usize, (ns >> 32) as usize)
        }
        Call::ThreadSpawn {
            entry,
            stack_top,
            argument,
        } => process::spawn_thread::<A>(entry, stack_top, argument),
        Call::Map(request) => memory::map::<A>(request),
        Call::Unmap { start, end } => memory::unmap::<A>(start, end),
        Call::Spawn {
            name,
            arguments,
            handles,
            quota,
        } => process::spawn::<A>(name, arguments, handles, quota),
        Call::Wait { status } => process::wait::<A>(None, status),
        Call::Info { kind, buffer } => info::info::<A>(kind, buffer),
        Call::PowerOff { control, status } => process::power_off::<A>(control, status),
        Call::SetPriority { priority, control } => process::set_priority::<A>(priority, control),
        Call::EndpointCreate => cap::create_endpoint(),
        Call::NotificationCreate => cap::create_notification(),
        Call::CapCopy {
            handle,
            rights,
            badge,
        } => cap::copy(handle, rights, badge),
        Call::CapDelete { handle } => cap::delete(handle),
        Call::CapInfo { handle } => cap::info(handle),
        Call::Send {
            handle,
            message,
            transfer,
            nonblocking,
        } => ipc::send::<A>(handle, message, transfer, nonblocking),
        Call::Recv {
            handle,
            nonblocking,
        } => ipc::receive::<A>(handle, nonblocking),
        Call::Invoke {
            handle,
            message,
            transfer,
        } => ipc::call::<A>(handle, message, transfer),
        Call::Reply { message, transfer } => ipc::reply::<A>(message, transfer),
        Call::ReplyRecv {
            handle,
            message,
            transfer,
        } => ipc::reply_receive::<A>(handle, message, transfer),
        Call::Signal { handle, bits } => ipc::signal(handle, bits),
        Call::NotificationWait { handle } => ipc::wait::<A>(handle),
        Call::NotificationPoll { handle } => ipc::poll(handle),
        Call::MemoryCreate { size, contiguous } => memory::create(size, contiguous),
        Call::MemoryMap {
            handle,
            start,
            writable,
        } => memory::map_object::<A>(handle, start, writable),
        Call::MemoryUnmap { start } => memory::unmap_object::<A>(start),
        Call::MemoryPhysical { handle } => memory::physical(handle),
        Call::NotificationBind { handle } => ipc::bind(handle),
        Call::ProcessKill { handle, as_fault } => process::kill::<A>(handle, as_fault),
        Call::IpcBuffer { address } => ipc::set_buffer::<A>(address),
        Call::IrqClaim {
            control,
            irq,
            notification,
            bits,
        } => device::claim::<A>(control, irq, notification, bits),
        Call::IrqAck { handle } => device::acknowledge(handle),
        Call::MemoryDevice {
            handle,
            offset,
            size,
        } => device::memory(handle, offset, size),
        Call::PortIn {
            handle,
            port,
            width,
        } => device::port_in::<A>(handle, port, width),
        Call::PortOut {
            handle,
            port,
            width,
            value,
        } => device::port_out::<A>(handle, port, width, value),
        Call::ThreadSetPriority {
            handle,
            priority,
            control,
        } => process::thread_set_priority::<A>(handle, priority, control),
        Call::ProcessWait { handle, status } => process::wait_handle::<A>(handle, status),
        Call::QuotaSplit { handle, pages } => memory::split_quota(handle, pages),
        Call::QuotaInfo { handle } => memory::quota_info(handle),
        Call::ProcessWatch {
            process,
            notification,
            bits,
        } => process::watch(process, notification, bits),
        Call::IpcTimeout { ns } => {
            task::ipc::set_timeout(ns);
            one(0)
        }
    }
}

/// A buffer in the caller's memory: the address and length as passed.
/// Decoding checks only lengths; the space checks every use of the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UserBuffer {
    address: usize,
    len: usize,
}

impl UserBuffer {
    fn new(address: usize, len: usize) -> Self {
        UserBuffer { address, len }
    }

    /// Checks that all of the buffer allows `access`, bringing in pages.
    fn check<A: Arch>(self, space: &mut UserSpace, access: Access) -> Result<(), Error> {
        space.check::<A>(self.address, self.len, access)
    }

    /// Checks that regions with `access` cover the buffer (pages are not
    /// brought in).
    fn covers<A: Arch>(self, space: &UserSpace, access: Access) -> Result<(), Error> {
        space.covers::<A>(self.address, self.len, access)
    }

    /// Copies `out.len()` bytes from `offset` into the buffer into `out`.
    fn read<A: Arch>(
        self,
        space: &mut UserSpace,
        offset: usize,
        out: &mut [u8],
    ) -> Result<(), Error> {
        space.read::<A>(
            self.address.checked_add(offset).ok_or(Error::BadAddress)?,
            out,
        )
    }

    /// Copies `data` to `offset` into the buffer.
    fn write<A: Arch>(
        self,
        space: &mut UserSpace,
        offset: usize,
        data: &[u8],
    ) -> Result<(), Error> {
        space.write::<A>(
            self.address.checked_add(offset).ok_or(Error::BadAddress)?,
            data,
        )
    }
}

/// Runs `f` on the caller's address space.
fn in_space<R>(f: impl FnOnce(&mut UserSpace) -> Result<R, Error>) -> Result<R, Error> {
    task::with_current_space(f).unwrap_or(Err(Error::InvalidArgument))
}

/// [`in_space`] for `f` that unmaps pages.
fn unmapping<R>(f: impl FnOnce(&mut UserSpace) -> Result<R, Error>) -> Result<R, Error> {
    task::unmapping_in_current_space(f).unwrap_or(Err(Error::InvalidArgument))
}
