//! The system calls, typed. Each returns what the kernel returned, with
//! errors as [`Error`]; see `docs/syscalls.md` for the contract.

use crate::arch;
use abi::{Error, Syscall};

fn call(number: Syscall, args: [usize; 6]) -> (usize, usize) {
    arch::syscall(number as usize, args)
}

fn checked(number: Syscall, args: [usize; 6]) -> Result<usize, Error> {
    abi::decode(call(number, args).0)
}

/// Makes a raw call with any number, for tests of the kernel's checks.
pub fn raw(number: usize, args: [usize; 6]) -> Result<usize, Error> {
    abi::decode(arch::syscall(number, args).0)
}

/// Ends the process with `status`.
pub fn exit(status: i32) -> ! {
    call(Syscall::Exit, [status as usize, 0, 0, 0, 0, 0]);
    unreachable!("exit returned")
}

/// Ends the calling thread.
pub fn thread_exit() -> ! {
    call(Syscall::ThreadExit, [0; 6]);
    unreachable!("thread_exit returned")
}

/// Writes bytes to the console; returns how many.
pub fn write(bytes: &[u8]) -> Result<usize, Error> {
    write_raw(bytes.as_ptr() as usize, bytes.len())
}

/// `write` with any pointer and length (for tests of the kernel's checks).
pub fn write_raw(address: usize, len: usize) -> Result<usize, Error> {
    checked(Syscall::Write, [address, len, 0, 0, 0, 0])
}

/// Reads console input into `buffer`, waiting for at least one byte.
pub fn read(buffer: &mut [u8]) -> Result<usize, Error> {
    read_raw(buffer.as_mut_ptr() as usize, buffer.len())
}

/// `read` with any pointer and length.
pub fn read_raw(address: usize, len: usize) -> Result<usize, Error> {
    checked(Syscall::Read, [address, len, 0, 0, 0, 0])
}

/// Lets other ready threads of the same or higher priority run.
pub fn yield_now() {
    call(Syscall::Yield, [0; 6]);
}

/// Waits at least `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    call(
        Syscall::Sleep,
        [ns as u32 as usize, (ns >> 32) as usize, 0, 0, 0, 0],
    );
}

/// Nanoseconds on the monotonic clock.
pub fn time_ns() -> u64 {
    let (low, high) = call(Syscall::Time, [0; 6]);
    (low as u64 & 0xffff_ffff) | ((high as u64) << 32)
}

/// Starts a thread at `entry(argument)` on the stack ending at `stack_top`.
pub fn thread_spawn(
    entry: usize,
    stack_top: usize,
    argument: usize,
) -> Result<(u32, abi::Handle), Error> {
    pair_call(Syscall::ThreadSpawn, [entry, stack_top, argument, 0, 0, 0])
        .map(|(tid, handle)| (tid as u32, handle as abi::Handle))
}

/// Maps `len` bytes of zeroed memory (anywhere for `address` 0).
pub fn map(address: usize, len: usize, protection: usize) -> Result<usize, Error> {
    checked(Syscall::Map, [address, len, protection, 0, 0, 0])
}

/// Unmaps memory mapped by [`map`].
pub fn unmap(address: usize, len: usize) -> Result<(), Error> {
    checked(Syscall::Unmap, [address, len, 0, 0, 0, 0]).map(|_| ())
}

/// `spawn`: the new process's id and a handle to it.
pub fn spawn_owned(
    name: &str,
    arguments: &str,
    flags: usize,
    handles: &[abi::Handle],
) -> Result<(u32, abi::Handle), Error> {
    let flags = flags | handles.len() << abi::SPAWN_HANDLES_SHIFT;
    pair_call(
        Syscall::Spawn,
        [
            name.as_ptr() as usize,
            name.len(),
            arguments.as_ptr() as usize,
            arguments.len(),
            flags,
            handles.as_ptr() as usize,
        ],
    )
    .map(|(pid, handle)| (pid as u32, handle as abi::Handle))
}

/// Makes a call that may deliver a message: the label and badge, or the
/// error, and the four words.
pub fn message_call(
    number: Syscall,
    args: [usize; 6],
) -> Result<(usize, usize, [usize; 4]), Error> {
    let (first, second, words) = arch::syscall_message(number as usize, args);
    abi::decode(first).map(|label| (label, second, words))
}

/// Makes a call whose second result is its value (`notification_wait`,
/// `notification_poll`, `cap_info`'s badge).
pub fn pair_call(number: Syscall, args: [usize; 6]) -> Result<(usize, usize), Error> {
    let (first, second) = call(number, args);
    abi::decode(first).map(|first| (first, second))
}

/// Waits for any child to end; writes its status.
pub fn wait_any(status: &mut abi::WaitStatus) -> Result<u32, Error> {
    wait_raw(status as *mut abi::WaitStatus as usize)
}

/// `wait` with any status pointer.
pub fn wait_raw(status_address: usize) -> Result<u32, Error> {
    checked(Syscall::Wait, [status_address, 0, 0, 0, 0, 0]).map(|pid| pid as u32)
}

/// This process's id.
pub fn process_id() -> u32 {
    call(Syscall::ProcessId, [0; 6]).0 as u32
}

/// Sets this thread's priority (0 lowest, 7 highest, 4 by default; above
/// 4 takes [`set_priority_with`]).
pub fn set_priority(priority: usize) -> Result<(), Error> {
    set_priority_with(priority, 0)
}

/// Sets this thread's priority, above the default if `control` names a
/// control capability with the right.
pub fn set_priority_with(priority: usize, control: abi::Handle) -> Result<(), Error> {
    checked(
        Syscall::SetPriority,
        [priority, control as usize, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// This thread's id.
pub fn thread_id() -> u32 {
    call(Syscall::ThreadId, [0; 6]).0 as u32
}

/// Writes information records into `buffer`; returns the bytes all of
/// them need.
pub fn info(kind: abi::InfoKind, buffer: &mut [u8]) -> Result<usize, Error> {
    info_raw(kind as usize, buffer.as_mut_ptr() as usize, buffer.len())
}

/// `info` with any pointer and length.
pub fn info_raw(kind: usize, address: usize, len: usize) -> Result<usize, Error> {
    checked(Syscall::Info, [kind, address, len, 0, 0, 0])
}

/// Ends the machine with `status`; `control` must name a control
/// capability with the power-off right. Returns only with the reason it
/// was refused.
pub fn power_off(control: abi::Handle, status: u8) -> Error {
    match checked(
        Syscall::PowerOff,
        [control as usize, status as usize, 0, 0, 0, 0],
    ) {
        Ok(_) => Error::InvalidArgument,
        Err(e) => e,
    }
}
