//! Where the x86_64 kernel lives, physically and virtually. The linker script
//! and the boot code take their numbers from here.
//!
//! This file is also compiled into the build script, so it must stay plain
//! constants with no dependencies.

/// Physical load address of the kernel image: 2 MiB, above the real-mode
/// area and BIOS ROMs, and aligned so the image can be mapped with 2 MiB
/// pages.
pub const KERNEL_PHYS_BASE: u64 = 0x20_0000;

/// Virtual address = physical address + this, for the kernel image. The top
/// 2 GiB of the address space is what the `kernel` code model addresses with
/// sign-extended 32-bit displacements.
pub const KERNEL_VIRT_OFFSET: u64 = 0xffff_ffff_8000_0000;

/// The boot page tables map this much physical memory, from 0, both at its
/// identity and at [`KERNEL_VIRT_OFFSET`].
pub const BOOT_MAPPED_SIZE: u64 = 1 << 30;

/// Size of the stack the boot CPU runs on until the kernel makes its own.
pub const BOOT_STACK_SIZE: u64 = 64 * 1024;
