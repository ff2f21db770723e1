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

/// Why an access or instruction faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Nothing is mapped at the address.
    NotMapped,
    /// Mapped, but the access is not allowed.
    Permission,
    /// Misaligned access where alignment is required.
    Alignment,
    /// An instruction the CPU does not know, or may not run here.
    IllegalInstruction,
    /// Integer division by zero.
    DivideByZero,
    /// A breakpoint instruction.
    Breakpoint,
    /// x86_64's general-protection fault: a privileged instruction, an I/O
    /// port, or a non-canonical address.
    GeneralProtection,
    /// Anything else (with the architecture's own code in `detail`).
    Other,
}

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
        let kind = match self.kind {
            FaultKind::NotMapped => "page not mapped",
            FaultKind::Permission => "permission denied",
            FaultKind::Alignment => "misaligned access",
            FaultKind::IllegalInstruction => "illegal instruction",
            FaultKind::DivideByZero => "division by zero",
            FaultKind::Breakpoint => "breakpoint",
            FaultKind::GeneralProtection => "general protection fault",
            FaultKind::Other => "fault",
        };
        write!(f, "{kind}")?;
        match self.access {
            Some(Access::Read) => write!(f, " reading {:#x}", self.address)?,
            Some(Access::Write) => write!(f, " writing {:#x}", self.address)?,
            Some(Access::Execute) => write!(f, " executing {:#x}", self.address)?,
            None => {}
        }
        write!(f, " at pc {:#x} (syndrome {:#x})", self.pc, self.detail)
    }
}
