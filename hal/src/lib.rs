//! The boundary between Ferrite's portable core and the machine.
//!
//! The core never touches hardware: it calls these traits, one per concern,
//! and each architecture crate implements all of them on one zero-sized type.
//! Methods are associated functions because each concern is a singleton
//! (one console, one CPU, one interrupt controller); the core is generic over
//! the implementing type, so every call is static and can be inlined.

#![cfg_attr(not(test), no_std)]

pub mod boot;
pub mod layout;
pub mod mm;
pub mod trap;

pub use boot::{BootInfo, FirmwareTables, MemoryKind, MemoryMap, MemoryRegion, PhysRange};
pub use mm::{FrameSource, MapError, MapFlags, RootTable, Space, Translation};
pub use trap::Fault;

/// The kernel's text console: a serial port on every supported machine.
pub trait Console {
    /// Writes all of `bytes`, waiting for the device as needed. `\n` is sent
    /// as-is; the console layer above adds carriage returns.
    fn write_bytes(bytes: &[u8]);

    /// Returns a received byte if one is waiting, without blocking.
    fn read_byte() -> Option<u8>;
}

/// Kernel address ranges the portable core manages itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelWindow {
    /// Where kernel stacks are mapped, slot by slot.
    Stacks,
    /// Where temporary kernel mappings go.
    Dynamic,
}

/// Physical and virtual memory: the direct map and the address-space API.
///
/// Every address space shares the kernel half; [`Space::User`] spaces add a
/// user half of their own. Page-table frames come from the caller's
/// [`FrameSource`]. W^X holds for every mapping: writable and executable
/// flags together are refused.
pub trait Memory {
    /// Page sizes `map` accepts, smallest first.
    const PAGE_SIZES: &'static [usize];

    /// The direct-map address of physical `paddr`, if RAM there is mapped.
    fn phys_to_virt(paddr: u64) -> Option<usize>;

    /// The physical address behind a direct-map or kernel-image address.
    fn virt_to_phys(vaddr: usize) -> Option<u64>;

    /// The `[start, end)` of a kernel window.
    fn kernel_window(window: KernelWindow) -> (usize, usize);

    /// The `[start, end)` of user space.
    fn user_range() -> (usize, usize);

    /// Maps one page of `page_size` at `virt` to `phys`.
    fn map(
        space: Space,
        virt: usize,
        phys: u64,
        page_size: usize,
        flags: MapFlags,
        frames: &dyn FrameSource,
    ) -> Result<(), MapError>;

    /// Unmaps the page at `virt`, returning what it mapped.
    fn unmap(space: Space, virt: usize) -> Result<Translation, MapError>;

    /// Where `virt` leads.
    fn translate(space: Space, virt: usize) -> Option<Translation>;

    /// Changes the flags of the page at `virt`.
    fn protect(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError>;

    /// A new user address space, empty in its user half.
    fn create_space(frames: &dyn FrameSource) -> Result<RootTable, MapError>;

    /// Frees a user address space's page tables (not the frames its pages
    /// map). It must not be active.
    fn destroy_space(root: RootTable, frames: &dyn FrameSource);

    /// Makes `space` the current user half; `None` leaves only the kernel.
    fn activate(space: Option<RootTable>);

    /// Maps `size` bytes of device registers at `paddr` uncached; returns
    /// the virtual address of `paddr`.
    fn map_device(paddr: u64, size: usize, frames: &dyn FrameSource) -> Result<usize, MapError>;

    /// Walks the live kernel half and checks it against the architecture's
    /// layout, passing each violation to `report`; returns how many there
    /// were, or why the tables could not be walked.
    fn check_layout(report: &mut dyn FnMut(layout::Violation)) -> Result<usize, &'static str>;
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

    /// The CPU's cycle counter, for measuring short intervals: the TSC on
    /// x86_64, PMCCNTR on ARMv7. Under QEMU with `-icount shift=0` both
    /// count guest instructions. It wraps at 2^[`CYCLE_COUNTER_BITS`](Self::CYCLE_COUNTER_BITS);
    /// take differences with [`cycles_between`](Self::cycles_between).
    fn cycle_counter() -> u64;

    /// Width of the cycle counter.
    const CYCLE_COUNTER_BITS: u32;

    /// Counts from `start` to `end`, across at most one wrap.
    fn cycles_between(start: u64, end: u64) -> u64 {
        let mask = if Self::CYCLE_COUNTER_BITS >= 64 {
            u64::MAX
        } else {
            (1 << Self::CYCLE_COUNTER_BITS) - 1
        };
        end.wrapping_sub(start) & mask
    }

    /// The bytes of an instruction that returns to the caller, for tests
    /// that place code in memory.
    const RETURN_INSTRUCTION: &'static [u8];

    /// Runs `f(arg)`; a kernel fault inside it ends the call with `Err`
    /// instead of a panic.
    ///
    /// # Safety
    /// If `f` faults, its frames are abandoned where they stand: it must
    /// hold no locks and own nothing that needs dropping. Calls do not nest.
    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), Fault>;
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
