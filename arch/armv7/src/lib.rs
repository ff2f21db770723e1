//! Ferrite's ARMv7-A architecture support: the parts that are plain data and
//! logic, usable (and tested) on the host as well as in the kernel.
//! The kernel binary itself is under `src/kernel/`.

#![cfg_attr(not(any(test, feature = "board-dtb")), no_std)]

pub mod board;
pub mod dtb;
pub mod exit_status;
pub mod layout;
pub mod mmu;
