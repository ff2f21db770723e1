//! System calls: each call of the ABI in the `abi` crate, with its
//! arguments checked. Pointers are never dereferenced: user memory is
//! reached through the caller's address space ([`UserSpace`]), which
//! checks every page, so a bad pointer or length yields an error code.

use crate::task::space::UserSpace;
use crate::task::{self, ExitStatus, Parent, SpawnOptions};
use crate::{console, irq, mm, timer};
use abi::{Error, InfoKind, Syscall, layout};
use alloc::vec::Vec;
use hal::Arch;
use hal::mm::{MapFlags, PAGE_SIZE};
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
        Syscall::Write => write::<A>(a[0], a[1]),
        Syscall::Read => read::<A>(a[0], a[1]),
        Syscall::Yield => {
            task::yield_now::<A>();
            one(0)
        }
        Syscall::Sleep => sleep::<A>(a[0], a[1]),
        Syscall::Time => {
            let ns = A::monotonic_ns();
            Ok([ns as u32 as usize, (ns >> 32) as usize])
        }
        Syscall::ThreadSpawn => one(task::spawn_thread::<A>(a[0], a[1], a[2])? as usize),
        Syscall::Map => map::<A>(a[0], a[1], a[2]),
        Syscall::Unmap => unmap::<A>(a[0], a[1]),
        Syscall::Spawn => spawn::<A>(a[0], a[1], a[2], a[3], a[4]),
        Syscall::Wait => wait::<A>(a[0], a[1]),
        Syscall::Info => info::<A>(a[0], a[1], a[2]),
        Syscall::PowerOff => power_off::<A>(a[0]),
        Syscall::SetPriority => {
            task::set_priority::<A>(a[0])?;
            one(0)
        }
    }
}

/// Runs `f` on the caller's address space.
fn in_space<R>(f: impl FnOnce(&mut UserSpace) -> Result<R, Error>) -> Result<R, Error> {
    task::with_current_space(f).unwrap_or(Err(Error::InvalidArgument))
}

fn write<A: Arch>(address: usize, len: usize) -> Outcome {
    if len > abi::MAX_WRITE_LENGTH {
        return Err(Error::TooLong);
    }
    // All or nothing: the whole buffer is checked before any is written.
    in_space(|space| space.check::<A>(address, len, Access::Read))?;
    let mut buffer = [0u8; CHUNK];
    let mut done = 0;
    while done < len {
        let piece = &mut buffer[..(len - done).min(CHUNK)];
        in_space(|space| space.read::<A>(address + done, piece))?;
        console::write_text(piece);
        done += piece.len();
    }
    one(len)
}

fn read<A: Arch>(address: usize, capacity: usize) -> Outcome {
    if capacity == 0 {
        return one(0);
    }
    // Only the bytes that arrive are written (and their pages brought in).
    in_space(|space| space.covers::<A>(address, capacity, Access::Write))?;
    loop {
        // Interrupts are masked in system calls, so no input can arrive
        // between finding none and starting to wait.
        let mut buffer = [0u8; CHUNK];
        let mut count = 0;
        while count < capacity.min(CHUNK) {
            match console::read_input() {
                Some(byte) => {
                    buffer[count] = byte;
                    count += 1;
                }
                None => break,
            }
        }
        if count > 0 {
            in_space(|space| space.write::<A>(address, &buffer[..count]))?;
            return one(count);
        }
        task::wait_for_console_input::<A>()?;
    }
}

fn sleep<A: Arch>(low: usize, high: usize) -> Outcome {
    let ns = (low as u64 & 0xffff_ffff) | ((high as u64) << 32);
    if ns == 0 {
        task::yield_now::<A>();
        return one(0);
    }
    let deadline = A::monotonic_ns().saturating_add(ns);
    task::sleep_until::<A>(deadline)?;
    one(0)
}

/// The page-rounded length and mapping flags of a `map` request.
fn anonymous_request(len: usize, protection: usize) -> Result<(usize, MapFlags), Error> {
    if protection & !(abi::PROT_READ | abi::PROT_WRITE) != 0 || len == 0 {
        return Err(Error::InvalidArgument);
    }
    let len = len
        .checked_next_multiple_of(PAGE_SIZE)
        .ok_or(Error::InvalidArgument)?;
    let flags = if protection & abi::PROT_WRITE != 0 {
        MapFlags::USER_RW
    } else {
        MapFlags::USER_RO
    };
    Ok((len, flags))
}

/// Checks that `[address, address + len)` is page-aligned and inside the
/// anonymous-memory window.
fn anonymous_range<A: Arch>(address: usize, len: usize) -> Result<usize, Error> {
    let end = address.checked_add(len).ok_or(Error::InvalidArgument)?;
    if !address.is_multiple_of(PAGE_SIZE) || address < layout::ANON_START || end > A::user_range().1
    {
        return Err(Error::InvalidArgument);
    }
    Ok(end)
}

fn map<A: Arch>(address: usize, len: usize, protection: usize) -> Outcome {
    let (len, flags) = anonymous_request(len, protection)?;
    let start = in_space(|space| {
        let start = if address == 0 {
            space
                .find_gap(len, layout::ANON_START, A::user_range().1)
                .ok_or(Error::OutOfMemory)?
        } else {
            anonymous_range::<A>(address, len)?;
            address
        };
        space.map_anonymous(start, len, flags)?;
        Ok(start)
    })?;
    one(start)
}

fn unmap<A: Arch>(address: usize, len: usize) -> Outcome {
    let (len, _) = anonymous_request(len, abi::PROT_READ)?;
    let end = anonymous_range::<A>(address, len)?;
    in_space(|space| space.unmap_anonymous::<A>(address, end))?;
    one(0)
}

fn spawn<A: Arch>(
    name_address: usize,
    name_len: usize,
    arguments_address: usize,
    arguments_len: usize,
    flags: usize,
) -> Outcome {
    if name_len == 0 || flags & !abi::SPAWN_INHERIT_PRIVILEGES != 0 {
        return Err(Error::InvalidArgument);
    }
    if name_len > abi::MAX_NAME_LENGTH || arguments_len > abi::MAX_ARGUMENTS_LENGTH {
        return Err(Error::TooLong);
    }
    let mut name = [0u8; abi::MAX_NAME_LENGTH];
    let mut arguments = [0u8; abi::MAX_ARGUMENTS_LENGTH];
    in_space(|space| {
        space.read::<A>(name_address, &mut name[..name_len])?;
        space.read::<A>(arguments_address, &mut arguments[..arguments_len])
    })?;
    let name = core::str::from_utf8(&name[..name_len]).map_err(|_| Error::InvalidArgument)?;
    let privileged = flags & abi::SPAWN_INHERIT_PRIVILEGES != 0 && task::current_privileged();
    let pid = task::spawn::<A>(
        name,
        SpawnOptions {
            arguments: &arguments[..arguments_len],
            parent: Parent::Process(task::current_pid()),
            privileged,
        },
    )?;
    one(pid as usize)
}

fn wait<A: Arch>(pid: usize, status_address: usize) -> Outcome {
    let filter = match pid {
        0 => None,
        pid => Some(u32::try_from(pid).map_err(|_| Error::NotFound)?),
    };
    let size = size_of::<abi::WaitStatus>();
    if status_address != 0 {
        in_space(|space| space.check::<A>(status_address, size, Access::Write))?;
    }
    let (pid, _) = task::wait_child::<A>(filter, |space, pid, status| {
        if status_address == 0 {
            return Ok(());
        }
        space.write::<A>(
            status_address,
            abi::record_bytes(&status.to_wait_status(pid)),
        )
    })?;
    one(pid as usize)
}

/// Writes as many whole records as fit in `capacity` bytes at `address`;
/// returns the bytes all of them take, so the caller can retry with room.
fn put_records<A: Arch, T: abi::Record>(address: usize, capacity: usize, records: &[T]) -> Outcome {
    let size = size_of::<T>();
    let fit = (capacity / size).min(records.len());
    in_space(|space| {
        // The whole buffer must be writable user memory, even where
        // nothing is written; pages come in only where records go.
        space.covers::<A>(address, capacity, Access::Write)?;
        space.check::<A>(address, fit * size, Access::Write)?;
        for (n, record) in records[..fit].iter().enumerate() {
            space.write::<A>(address + n * size, abi::record_bytes(record))?;
        }
        Ok(())
    })?;
    one(size_of_val(records))
}

fn info<A: Arch>(kind: usize, address: usize, capacity: usize) -> Outcome {
    match InfoKind::from_number(kind).ok_or(Error::InvalidArgument)? {
        InfoKind::System => {
            let (processes, threads) = task::counts();
            let record = abi::SystemInfo {
                version: abi::name_from(crate::VERSION),
                arch: abi::name_from(A::ARCH),
                machine: abi::name_from(A::boot_info().machine),
                uptime_ns: A::monotonic_ns(),
                tick_hz: timer::rate_hz(),
                processes: processes as u32,
                threads: threads as u32,
                reserved: 0,
                first_user_ns: task::first_user_ns(),
                // The kernel's own read-only data: certainly mapped.
                kernel_address: crate::VERSION.as_ptr() as u64,
            };
            put_records::<A, _>(address, capacity, &[record])
        }
        InfoKind::Memory => {
            let stats = mm::stats();
            let record = abi::MemoryInfo {
                page_size: PAGE_SIZE as u64,
                total_frames: stats.total_frames as u64,
                free_frames: stats.free_frames as u64,
                heap_total: stats.heap_total as u64,
                heap_used: stats.heap_used as u64,
                table_frames: stats.table_frames as u64,
            };
            put_records::<A, _>(address, capacity, &[record])
        }
        InfoKind::Processes => put_records::<A, _>(address, capacity, &task::process_info()?),
        InfoKind::Interrupts => {
            let mut records = Vec::new();
            let mut failed = false;
            irq::for_each_count(|irq, count| {
                if records.try_reserve(1).is_err() {
                    failed = true;
                    return;
                }
                records.push(abi::IrqInfo {
                    irq: irq as u32,
                    reserved: 0,
                    count,
                    name: abi::name_from(irq::name(irq)),
                });
            });
            if failed {
                return Err(Error::OutOfMemory);
            }
            put_records::<A, _>(address, capacity, &records)
        }
        InfoKind::Programs => {
            let names = task::program_names()?;
            put_records::<A, _>(address, capacity, &names)
        }
    }
}

fn power_off<A: Arch>(status: usize) -> Outcome {
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
