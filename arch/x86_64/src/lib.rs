//! Ferrite's x86_64 architecture support: the parts that are plain data and
//! logic, usable (and tested) on the host as well as in the kernel.
//! The kernel binary itself is under `src/kernel/`.

#![cfg_attr(not(test), no_std)]

pub mod exit_status;
pub mod layout;
pub mod madt;
pub mod mcfg;
pub mod paging;
pub mod pit;
pub mod pvh;
pub mod q35_intx;
pub mod sdt;
