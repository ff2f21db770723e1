//! Faults as the portable core sees them.

use core::fmt;

/// What the faulting access was doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Execute,
}

/// Why an access or instruction faulted: the kinds the ABI reports to a
/// parent whose child was killed, so the kernel and user space share one
/// list.
pub use abi::FaultKind;

/// A fault, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Why.
    pub kind: FaultKind,
    /// The access, for memory faults.
    pub access: Option<Access>,
    /// The faulting data address, or the fetch address for execute faults.
    pub address: usize,
    /// Address of the faulting instruction.
    pub pc: usize,
    /// The architecture's raw syndrome: vector and error code on x86_64
    /// (`vector << 32 | error`), the fault status register on ARMv7.
    pub detail: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.message())?;
        match self.access {
            Some(Access::Read) => write!(f, " reading {:#x}", self.address)?,
            Some(Access::Write) => write!(f, " writing {:#x}", self.address)?,
            Some(Access::Execute) => write!(f, " executing {:#x}", self.address)?,
            None => {}
        }
        write!(f, " at pc {:#x} (syndrome {:#x})", self.pc, self.detail)
    }
}
