//! Other processes: starting programs and learning how they ended.

use crate::sys;
use abi::{Error, ExitReason, FaultKind, WaitStatus};
use core::fmt;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// The kernel killed it for a fault.
    Fault {
        kind: FaultKind,
        address: u64,
        pc: u64,
    },
    /// Another process ended it.
    Killed,
}

impl Exit {
    fn from_status(status: &WaitStatus) -> Exit {
        match (status.exit_reason(), status.fault()) {
            (Some(ExitReason::Faulted), Some(kind)) => Exit::Fault {
                kind,
                address: status.fault_address,
                pc: status.fault_pc,
            },
            (Some(ExitReason::Faulted), None) => Exit::Fault {
                kind: FaultKind::Other,
                address: status.fault_address,
                pc: status.fault_pc,
            },
            (Some(ExitReason::Killed), _) => Exit::Killed,
            _ => Exit::Code(status.code),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Killed => write!(f, "killed"),
            Exit::Fault {
                kind: FaultKind::Injected,
                address,
                ..
            } => write!(f, "killed: fault injected by process {address}"),
            Exit::Fault { kind, address, pc } => {
                write!(f, "killed: {} at {address:#x} (pc {pc:#x})", kind.message())
            }
        }
    }
}

/// Starts program `name` with `arguments` and no capabilities.
pub fn spawn(name: &str, arguments: &str) -> Result<Child, Error> {
    start(name, arguments, &[])
}

/// Starts `name` with `handles` and waits for it.
pub fn run_with(name: &str, arguments: &str, handles: &[abi::Handle]) -> Result<Exit, Error> {
    start(name, arguments, handles)?.wait()
}

/// A child started with [`start`]: its id and a capability to it (deleted
/// when this is dropped).
#[derive(Debug)]
pub struct Child {
    pub pid: u32,
    handle: abi::Handle,
}

impl Child {
    /// The capability to the process.
    pub fn handle(&self) -> abi::Handle {
        self.handle
    }

    /// Ends the process (its parent then learns `Exit::Killed`).
    pub fn kill(&self) -> Result<(), Error> {
        kill(self.handle)
    }

    /// Ends the process as if it had faulted (fault injection: its parent
    /// learns a fault of kind `FaultKind::Injected`).
    pub fn crash(&self) -> Result<(), Error> {
        sys::raw(
            abi::Syscall::ProcessKill as usize,
            [self.handle as usize, abi::KILL_AS_FAULT, 0, 0, 0, 0],
        )
        .map(|_| ())
    }

    /// Has the kernel signal `bits` on `notification` when the process
    /// ends (before it is waited for).
    pub fn watch(&self, notification: &crate::ipc::Notification, bits: usize) -> Result<(), Error> {
        sys::raw(
            abi::Syscall::ProcessWatch as usize,
            [
                self.handle as usize,
                notification.handle() as usize,
                bits,
                0,
                0,
                0,
            ],
        )
        .map(|_| ())
    }

    /// Waits for the process to end, through its capability, and says how.
    pub fn wait(&self) -> Result<Exit, Error> {
        let mut status = abi::WaitStatus::default();
        sys::raw(
            abi::Syscall::ProcessWait as usize,
            [
                self.handle as usize,
                &mut status as *mut abi::WaitStatus as usize,
                0,
                0,
                0,
                0,
            ],
        )?;
        Ok(Exit::from_status(&status))
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = crate::ipc::cap_delete(self.handle);
    }
}

/// Starts program `name` with `arguments` and `handles`, keeping a
/// capability to it.
pub fn start(name: &str, arguments: &str, handles: &[abi::Handle]) -> Result<Child, Error> {
    start_with_flags(name, arguments, 0, handles)
}

/// [`start`] with `spawn` flags (such as `abi::SPAWN_QUOTA`).
pub fn start_with_flags(
    name: &str,
    arguments: &str,
    flags: usize,
    handles: &[abi::Handle],
) -> Result<Child, Error> {
    let (pid, handle) = sys::spawn_owned(name, arguments, flags, handles)?;
    Ok(Child { pid, handle })
}

/// Ends the process `process` names.
pub fn kill(process: abi::Handle) -> Result<(), Error> {
    sys::raw(
        abi::Syscall::ProcessKill as usize,
        [process as usize, 0, 0, 0, 0, 0],
    )
    .map(|_| ())
}

/// Waits for any child to end; returns its id and how it ended. A child
/// in particular is waited for through its handle ([`Child::wait`]).
pub fn wait_any() -> Result<(u32, Exit), Error> {
    let mut status = WaitStatus::default();
    let pid = sys::wait_any(&mut status)?;
    Ok((pid, Exit::from_status(&status)))
}

/// Starts `name` and waits for it.
pub fn run(name: &str, arguments: &str) -> Result<Exit, Error> {
    spawn(name, arguments)?.wait()
}

/// Reads records of type `T` from `info(kind)` into a vector. `T` must be
/// the record type the kernel writes for `kind` (see
/// [`abi::InfoKind::records`]).
fn info_records<T: abi::Record>(kind: abi::InfoKind) -> Result<alloc::vec::Vec<T>, Error> {
    let size = size_of::<T>();
    let mut capacity = 16;
    loop {
        let mut buffer = alloc::vec![0u8; capacity * size];
        let needed = sys::info(kind, &mut buffer)?;
        if needed <= buffer.len() {
            let count = needed / size;
            let records = buffer[..count * size]
                .chunks_exact(size)
                .filter_map(abi::read_record::<T>)
                .collect();
            return Ok(records);
        }
        capacity = needed.div_ceil(size);
    }
}

fn info_record<T: abi::Record>(kind: abi::InfoKind) -> Result<T, Error> {
    info_records::<T>(kind)?
        .first()
        .copied()
        .ok_or(Error::InvalidArgument)
}

/// The system as a whole.
pub fn system() -> Result<abi::SystemInfo, Error> {
    info_record(abi::InfoKind::System)
}

/// Memory use.
pub fn memory() -> Result<abi::MemoryInfo, Error> {
    info_record(abi::InfoKind::Memory)
}

/// Every process.
pub fn processes() -> Result<alloc::vec::Vec<abi::ProcessInfo>, Error> {
    info_records(abi::InfoKind::Processes)
}

/// The programs in the boot archive.
pub fn programs() -> Result<alloc::vec::Vec<abi::Name>, Error> {
    info_records(abi::InfoKind::Programs)
}

/// Every interrupt that has arrived, with its count.
pub fn interrupts() -> Result<alloc::vec::Vec<abi::IrqInfo>, Error> {
    info_records(abi::InfoKind::Interrupts)
}

/// The devices the kernel leaves to drivers.
pub fn devices() -> Result<alloc::vec::Vec<abi::DeviceInfo>, Error> {
    info_records(abi::InfoKind::Devices)
}
