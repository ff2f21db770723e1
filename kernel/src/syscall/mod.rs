//! System calls: each call of the ABI in the `abi` crate. The dispatcher
//! decodes the registers into typed arguments (user buffers become
//! [`UserBuffer`]s, time halves a `u64`); one module per group of calls
//! (`console`, `memory`, `process`, `time`, `info`) checks and performs
//! them. Pointers are never dereferenced: user memory is reached through
//! the caller's address space ([`UserSpace`]), which checks every page, so
//! a bad pointer or length yields an error code.

mod console;
mod info;
mod memory;
mod process;
mod time;

use crate::task::space::UserSpace;
use crate::task::{self, ExitStatus};
use abi::{Error, Syscall};
use hal::Arch;
use hal::trap::Access;

/// Bytes moved per step between user memory and the console.
const CHUNK: usize = 256;

type Outcome = Result<[usize; 2], Error>;

fn one(value: usize) -> Outcome {
    Ok([value, 0])
}

/// Carries out system call `number` with `args`; returns the two result
/// registers. Called by the architecture's entry path. The calls that
/// only read a value are answered here, inline in the entry path; the
/// rest go through [`dispatch`].
#[inline(always)]
pub fn handle<A: Arch>(number: usize, args: [usize; 6]) -> [usize; 2] {
    const PROCESS_ID: usize = Syscall::ProcessId as usize;
    const THREAD_ID: usize = Syscall::ThreadId as usize;
    match number {
        PROCESS_ID => [task::current_pid() as usize, 0],
        THREAD_ID => [task::current_tid() as usize, 0],
        _ => handle_other::<A>(number, args),
    }
}

#[inline(never)]
fn handle_other<A: Arch>(number: usize, args: [usize; 6]) -> [usize; 2] {
    let outcome = match Syscall::from_number(number) {
        Some(call) => dispatch::<A>(call, args),
        None => Err(Error::UnknownSyscall),
    };
    outcome.unwrap_or_else(|e| [e.encode(), 0])
}

fn dispatch<A: Arch>(call: Syscall, a: [usize; 6]) -> Outcome {
    match call {
        Syscall::ProcessId | Syscall::ThreadId => unreachable!("answered inline in `handle`"),
        Syscall::Exit => task::exit_process::<A>(ExitStatus::Exited(a[0] as i32)),
        Syscall::ThreadExit => task::exit_thread::<A>(),
        Syscall::Write => console::write::<A>(UserBuffer::new(a[0], a[1])),
        Syscall::Read => console::read::<A>(UserBuffer::new(a[0], a[1])),
        Syscall::Yield => {
            task::yield_now::<A>();
            one(0)
        }
        Syscall::Sleep => time::sleep::<A>((a[0] as u64 & 0xffff_ffff) | ((a[1] as u64) << 32)),
        Syscall::Time => {
            let ns = A::monotonic_ns();
            Ok([ns as u32 as usize, (ns >> 32) as usize])
        }
        Syscall::ThreadSpawn => one(task::spawn_thread::<A>(a[0], a[1], a[2])? as usize),
        Syscall::Map => memory::map::<A>(a[0], a[1], a[2]),
        Syscall::Unmap => memory::unmap::<A>(a[0], a[1]),
        Syscall::Spawn => process::spawn::<A>(
            UserBuffer::new(a[0], a[1]),
            UserBuffer::new(a[2], a[3]),
            a[4],
        ),
        Syscall::Wait => {
            process::wait::<A>(a[0], UserBuffer::new(a[1], size_of::<abi::WaitStatus>()))
        }
        Syscall::Info => info::info::<A>(a[0], UserBuffer::new(a[1], a[2])),
        Syscall::PowerOff => process::power_off::<A>(a[0]),
        Syscall::SetPriority => {
            task::set_priority::<A>(a[0])?;
            one(0)
        }
    }
}

/// A buffer in the caller's memory: the address and length as passed.
/// Nothing is checked on decoding (each call checks in its own order, so
/// errors stay what the ABI documents); the space checks every use.
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
