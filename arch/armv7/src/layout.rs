//! Where the ARMv7 kernel lives, physically and virtually. The linker script
//! and the boot code take their numbers from here.
//!
//! This file is also compiled into the build script, so it must stay plain
//! constants with no dependencies.

/// Physical base of RAM on vexpress-a15.
pub const RAM_BASE: u32 = 0x8000_0000;

/// Physical address the boot code is linked and loaded at. The 64 KiB below
/// it, at the base of RAM, is where QEMU places the device tree.
pub const KERNEL_LOAD_PHYS: u32 = 0x8001_0000;

/// Virtual address = physical address + this, for the kernel image and the
/// direct map of RAM.
pub const KERNEL_VIRT_OFFSET: u32 = 0x4000_0000;

/// Where the base of RAM appears in the kernel's address space.
pub const KERNEL_VIRT_BASE: u32 = RAM_BASE + KERNEL_VIRT_OFFSET;

/// The boot page table maps this much RAM from its base at
/// [`KERNEL_VIRT_BASE`]: the image, its stacks and the device tree.
pub const BOOT_MAPPED_SIZE: u32 = 16 << 20;

/// Device registers are mapped into this window, one 1 MiB section at a
/// time, in the order the kernel finds them.
pub const MMIO_WINDOW_BASE: u32 = 0xf000_0000;

/// Size of the device window.
pub const MMIO_WINDOW_SIZE: u32 = 128 << 20;

/// Stack sizes for each processor mode the kernel runs in.
pub const SVC_STACK_SIZE: u32 = 64 * 1024;
/// IRQ, abort, undefined and FIQ modes each get a stack this size.
pub const EXCEPTION_STACK_SIZE: u32 = 16 * 1024;
