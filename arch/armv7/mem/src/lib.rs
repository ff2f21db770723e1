//! `memcpy`, `memmove` and `memset` (and their `__aeabi_*` forms) for
//! ARMv7-A, for the kernel and for user programs.
//!
//! The portable versions in `compiler_builtins` move a buffer that is not
//! word-aligned byte by byte or through shifts, about three instructions a
//! byte, and a network frame is copied several times on its way through
//! the driver, the kernel and the stack. These use `LDM`/`STM` when both
//! addresses are word-aligned and ARMv7's unaligned `LDR`/`STR` otherwise,
//! well under one instruction a byte. `compiler_builtins` defines its
//! versions as weak symbols, so these take their place at link time.
//!
//! Unaligned accesses need SCTLR.A clear (the kernel's boot code clears it
//! before any Rust code runs, for the kernel and user mode alike) and
//! Normal memory: these are not for unaligned copies to or from device
//! registers, which go through volatile accesses anyway.

#![no_std]

#[cfg(target_arch = "arm")]
core::arch::global_asm!(include_str!("mem.s"), options(raw));
