//! CP15 system registers `aarch32-cpu` does not describe, declared through
//! its `SysReg` traits so they are accessed the same way as the rest.

use aarch32_cpu::register::{SysReg, SysRegRead, SysRegWrite};

macro_rules! register {
    ($(#[$doc:meta])* $name:ident, crn $crn:literal, crm $crm:literal, op2 $op2:literal) => {
        $(#[$doc])*
        pub struct $name;

        impl SysReg for $name {
            const CP: u32 = 15;
            const CRN: u32 = $crn;
            const OP1: u32 = 0;
            const CRM: u32 = $crm;
            const OP2: u32 = $op2;
        }
    };
}

register!(
    /// TTBR1: the translation table for the kernel half.
    Ttbr1, crn 2, crm 0, op2 1
);
impl SysRegRead for Ttbr1 {}
impl SysRegWrite for Ttbr1 {}

register!(
    /// TTBCR: where TTBR0 stops translating (N), and whether TTBR0 walks
    /// are enabled (PD0).
    Ttbcr, crn 2, crm 0, op2 2
);
impl SysRegRead for Ttbcr {}
impl SysRegWrite for Ttbcr {}

register!(
    /// TLBIMVAA: invalidates the TLB entries for one virtual address,
    /// whatever their ASID.
    TlbiMvaa, crn 8, crm 7, op2 3
);
impl SysRegWrite for TlbiMvaa {}

register!(
    /// TLBIASID: invalidates the TLB entries of one ASID.
    TlbiAsid, crn 8, crm 7, op2 2
);
impl SysRegWrite for TlbiAsid {}

register!(
    /// CONTEXTIDR: the current ASID (bits 7:0).
    Contextidr, crn 13, crm 0, op2 1
);
impl SysRegRead for Contextidr {}
impl SysRegWrite for Contextidr {}

register!(
    /// ATS1CPR: translates a virtual address as a privileged read; the
    /// result lands in PAR.
    Ats1Cpr, crn 7, crm 8, op2 0
);
impl SysRegWrite for Ats1Cpr {}

/// TTBCR.PD0: no walks through TTBR0 (no user half).
pub const TTBCR_PD0: u32 = 1 << 4;
