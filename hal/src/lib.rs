//! The boundary between Ferrite's portable core and the machine.
//!
//! The core never touches hardware: it calls these traits, one per concern,
//! and each architecture crate implements all of them on one zero-sized type.
//! Methods are associated functions because each concern is a singleton
//! (one console, one CPU, one interrupt controller); the core is generic over
//! the implementing type, so every call is static and can be inlined.

#![cfg_attr(not(test), no_std)]

pub mod boot;

pub use boot::{BootInfo, FirmwareTables, MemoryKind, MemoryMap, MemoryRegion, PhysRange};

/// The kernel's text console: a serial port on every supported machine.
pub trait Console {
    /// Writes all of `bytes`, waiting for the device as needed. `\n` is sent
    /// as-is; the console layer above adds carriage returns.
    fn write_bytes(bytes: &[u8]);

    /// Returns a received byte if one is waiting, without blocking.
    fn read_byte() -> Option<u8>;
}

/// Physical and virtual memory as the kernel sees it.
pub trait Memory {
    /// The kernel virtual address at which physical address `paddr` can be
    /// read and written, if the kernel maps it.
    fn phys_to_virt(paddr: u64) -> Option<usize>;
}

/// Masking and unmasking interrupts on the current CPU.
pub trait Interrupts {
    /// Enables interrupt delivery on this CPU.
    fn enable();
    /// Disables interrupt delivery on this CPU.
    fn disable();
    /// Whether interrupts are currently enabled on this CPU.
    fn enabled() -> bool;

    /// Runs `f` with interrupts disabled, restoring the previous state after.
    fn without<R>(f: impl FnOnce() -> R) -> R {
        let was_enabled = Self::enabled();
        Self::disable();
        let result = f();
        if was_enabled {
            Self::enable();
        }
        result
    }
}

/// Time since boot.
pub trait Time {
    /// Nanoseconds on a clock that never goes backwards.
    fn monotonic_ns() -> u64;
}

/// Control of the executing CPU.
pub trait Cpu {
    /// Waits until an interrupt arrives (or returns at once if one is pending).
    fn wait_for_interrupt();

    /// A free-running counter for measuring short intervals: the TSC on
    /// x86_64, the generic timer's count on ARMv7. Its rate is
    /// `cycle_counter_hz`.
    fn cycle_counter() -> u64;

    /// Ticks per second of `cycle_counter`.
    fn cycle_counter_hz() -> u64;
}

/// How the machine was started and how to leave it.
pub trait Platform {
    /// Short architecture name, as used on the command line of `cargo xtask`.
    const ARCH: &'static str;

    /// What the boot firmware or loader told the kernel.
    fn boot_info() -> &'static BootInfo;

    /// Ends the machine with a status: 0 means success. Under QEMU this exits
    /// the emulator with a status the host can read back.
    fn exit(code: u8) -> !;
}

/// Everything the portable core needs from an architecture.
pub trait Arch: Console + Memory + Interrupts + Time + Cpu + Platform + 'static {}

impl<T> Arch for T where T: Console + Memory + Interrupts + Time + Cpu + Platform + 'static {}
