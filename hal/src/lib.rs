//! The boundary between Ferrite's portable core and the machine.
//!
//! The core never touches hardware: it calls these traits, one per concern,
//! and each architecture crate implements all of them on one zero-sized type.
//! Methods are associated functions because each concern is a singleton
//! (one console, one CPU, one interrupt controller); the core is generic over
//! the implementing type, so every call is static and can be inlined.
//!
//! The other direction has one door: the architecture enters the core only
//! through `kernel::entry`, whose functions are its complete list of
//! entries: `early` and `boot` at start-up, `system_call`, `interrupt` and
//! `spurious_interrupt`, `user_fault`, `before_user_return`,
//! `user_thread_started`, `kernel_breakpoint`, `kernel_fault_caught` and
//! `guarded_call_ended` for faults inside `Cpu::catch_fault`, and `panic`.
//!
//! Most of the core is generic over the architecture type. A few of the
//! architecture's functions are also installed once at boot as function
//! pointers (interrupt masking for `IrqLock`, console output, the clock,
//! and map/unmap/zero for memory): the code that needs them cannot carry a
//! type parameter (`Drop` impls such as a kernel stack's, the logger, the
//! panic report, statics shared with interrupt handlers). Both mechanisms
//! call the same HAL functions.

#![cfg_attr(not(any(test, feature = "build")), no_std)]

pub mod asid;
pub mod boot;
#[cfg(any(test, feature = "build"))]
pub mod build;
pub mod layout;
pub mod list;
pub mod mm;
pub mod rand;
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

    /// Turns on the receive interrupt and returns its interrupt number.
    /// Reading the received bytes (with [`read_byte`](Self::read_byte))
    /// acknowledges it at the device.
    fn enable_receive_interrupt() -> Result<usize, IrqError>;

    /// The console's UART as a device for a user-space console driver:
    /// its registers and its receive line (routed, masked). The kernel
    /// keeps writing its own log and panic reports to it, polled.
    fn user_device() -> Option<UserDevice>;
}

/// Why an interrupt operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// No such interrupt on this machine.
    NoSuchIrq(usize),
    /// The interrupt cannot be raised in software.
    NotRaisable(usize),
    /// The device or controller is missing or did not answer.
    NoDevice,
}

impl core::fmt::Display for IrqError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IrqError::NoSuchIrq(irq) => write!(f, "no interrupt {irq}"),
            IrqError::NotRaisable(irq) => write!(f, "interrupt {irq} cannot be raised in software"),
            IrqError::NoDevice => write!(f, "device missing"),
        }
    }
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

    /// `[start, end)` of the kernel-stack window, from the layout.
    const KERNEL_STACKS: (usize, usize);
    /// `[start, end)` of the dynamic-mapping window, from the layout.
    const KERNEL_DYNAMIC: (usize, usize);
    /// First address past user space, which starts at 0.
    const USER_END: usize;

    /// The `[start, end)` of a kernel window.
    fn kernel_window(window: KernelWindow) -> (usize, usize) {
        match window {
            KernelWindow::Stacks => Self::KERNEL_STACKS,
            KernelWindow::Dynamic => Self::KERNEL_DYNAMIC,
        }
    }

    /// The `[start, end)` of user space.
    fn user_range() -> (usize, usize) {
        (0, Self::USER_END)
    }

    /// Maps one page of `page_size` at `virt` to `phys`. The policy both
    /// architectures share is checked here once (user pages only in user
    /// spaces, none in the kernel half; the flag rules of
    /// [`MapFlags::check_encodable`] in the encoders), then
    /// [`map_raw`](Self::map_raw) does the architecture's part.
    fn map(
        space: Space,
        virt: usize,
        phys: u64,
        page_size: usize,
        flags: MapFlags,
        frames: &dyn FrameSource,
    ) -> Result<(), MapError> {
        flags.check_space(space)?;
        Self::map_raw(space, virt, phys, page_size, flags, frames)
    }

    /// [`map`](Self::map) with the flags checked against the space.
    fn map_raw(
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

    /// Changes the flags of the page at `virt`, checked as for
    /// [`map`](Self::map).
    fn protect(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError> {
        flags.check_space(space)?;
        Self::protect_raw(space, virt, flags)
    }

    /// [`protect`](Self::protect) with the flags checked against the space.
    fn protect_raw(space: Space, virt: usize, flags: MapFlags) -> Result<(), MapError>;

    /// A new user address space, empty in its user half.
    fn create_space(frames: &dyn FrameSource) -> Result<RootTable, MapError>;

    /// Frees a user address space's page tables (not the frames its pages
    /// map). It must not be active.
    fn destroy_space(root: RootTable, frames: &dyn FrameSource);

    /// Makes `space` the current user half; `None` leaves only the kernel.
    fn activate(space: Option<RootTable>);

    /// The physical address of the kernel's root table (x86_64: its PML4;
    /// ARMv7: the TTBR1 table), for host inspection tools.
    fn kernel_root() -> u64;

    /// Zeroes whole pages at `kernel_address` (page-aligned, `len` a
    /// multiple of the page size), for fresh frames. Architectures with a
    /// faster way than a plain memset use it here.
    ///
    /// # Safety
    /// The range must be mapped, writable kernel memory nothing else uses.
    unsafe fn zero_pages(kernel_address: usize, len: usize) {
        // SAFETY: passed on to the caller.
        unsafe { core::ptr::write_bytes(kernel_address as *mut u8, 0, len) }
    }

    /// Maps `size` bytes of device registers at `paddr` uncached; returns
    /// the virtual address of `paddr`.
    fn map_device(paddr: u64, size: usize, frames: &dyn FrameSource) -> Result<usize, MapError>;

    /// Walks the live kernel half and checks it against the architecture's
    /// layout, passing each violation to `report`; returns how many there
    /// were, or why the tables could not be walked.
    fn check_layout(report: &mut dyn FnMut(layout::Violation)) -> Result<usize, &'static str>;
}

/// Interrupts: masking them on the current CPU, and the interrupt
/// controller. Interrupt numbers are the architecture's (x86_64: vector
/// minus 32; ARMv7: GIC interrupt ID); the architecture calls the portable
/// core's dispatcher with them and signals end of interrupt itself.
pub trait Interrupts {
    /// Interrupt numbers run from 0 to this minus 1.
    const IRQ_COUNT: usize;

    /// An interrupt no device uses, which [`raise`](Self::raise) can raise.
    const SOFTWARE_IRQ: usize;

    /// Raises interrupt `irq` on this CPU through the interrupt controller
    /// (a self-IPI, a software-generated interrupt).
    fn raise(irq: usize) -> Result<(), IrqError>;

    /// Masks or unmasks interrupt line `irq` at the interrupt controller.
    fn set_masked(irq: usize, masked: bool) -> Result<(), IrqError>;

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

/// Why the periodic timer could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerError {
    /// The rate is zero or beyond what the timer can do.
    UnsupportedRate(u32),
    /// No timer device.
    NoDevice,
}

impl core::fmt::Display for TimerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            TimerError::UnsupportedRate(hz) => write!(f, "the timer cannot tick at {hz} Hz"),
            TimerError::NoDevice => write!(f, "no timer device"),
        }
    }
}

/// Time: the monotonic clock, the wall clock and the periodic timer.
pub trait Time {
    /// Nanoseconds on a clock that never goes backwards.
    fn monotonic_ns() -> u64;

    /// Nanoseconds since the CPU left reset, from the counter that starts
    /// there (the TSC; the ARM generic counter). Under QEMU's `-icount
    /// shift=0` this is the guest's instruction count.
    fn since_reset_ns() -> u64;

    /// Seconds since 1970-01-01 UTC from the real-time clock, if there is
    /// one and it reads sensibly.
    fn wall_clock_seconds() -> Option<u64>;

    /// Starts the periodic timer at `hz` ticks per second and returns the
    /// interrupt each tick raises.
    fn start_ticks(hz: u32) -> Result<usize, TimerError>;

    /// Stops the periodic timer.
    fn stop_ticks();

    /// Acknowledges a tick at the timer device (from the tick's handler).
    fn acknowledge_tick();
}

/// Control of the executing CPU.
pub trait Cpu {
    /// Called with interrupts disabled: enables them and waits for one,
    /// with no gap in which an interrupt could be taken before the wait
    /// starts (and then sleep through). Returns with interrupts disabled,
    /// after the interrupt's handler ran.
    fn idle();

    /// Makes instructions just written through the kernel's alias
    /// `[kernel_address, +len)` visible to instruction fetch at any other
    /// mapping of the same memory (cache maintenance on ARMv7; nothing on
    /// x86_64, whose caches are coherent with instruction fetch).
    fn sync_instructions(kernel_address: usize, len: usize);

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

    /// Executes a breakpoint instruction; the trap handler reports it and
    /// execution continues after it.
    fn breakpoint();

    /// Runs `f(arg)`; a kernel fault inside it ends the call with `Err`
    /// instead of a panic.
    ///
    /// # Safety
    /// If `f` faults, its frames are abandoned where they stand: it must
    /// hold no locks and own nothing that needs dropping. Calls do not nest.
    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), Fault>;
}

/// Where a new user thread starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserEntry {
    /// Its first instruction.
    pub pc: usize,
    /// Its initial stack pointer.
    pub sp: usize,
    /// Values for the first two argument registers.
    pub args: [usize; 2],
}

/// Threads: each has a kernel stack, and the kernel switches between them
/// by switching stacks.
///
/// While a thread runs in user mode, the top of its kernel stack is free;
/// a trap from user mode saves the user registers there. The
/// architecture enters the portable core through `kernel::entry` at these
/// points: `user_thread_started` on a new user thread's first run, before
/// it enters user mode; `system_call`; `user_fault` for an exception from
/// user mode; `before_user_return` just before any return to user mode
/// after an interrupt or system call (the preemption point).
pub trait Threads {
    /// Prepares the kernel stack ending at `kernel_stack_top` so that the
    /// first [`switch`](Self::switch) to it enters user mode at `entry`, in
    /// the address space active then. Returns the saved stack pointer.
    ///
    /// # Safety
    /// The stack must be mapped, unused and large enough.
    unsafe fn prepare_user_thread(kernel_stack_top: usize, entry: UserEntry) -> usize;

    /// Prepares a kernel stack so that the first switch to it calls
    /// `main(argument)` in kernel mode with interrupts disabled.
    ///
    /// # Safety
    /// As for [`prepare_user_thread`](Self::prepare_user_thread).
    unsafe fn prepare_kernel_thread(
        kernel_stack_top: usize,
        main: extern "C" fn(usize) -> !,
        argument: usize,
    ) -> usize;

    /// Saves the current thread's kernel context on its stack, stores the
    /// stack pointer at `save`, and resumes the thread whose saved stack
    /// pointer is `load`. Returns when some thread switches back to `save`.
    ///
    /// # Safety
    /// Interrupts must be disabled; `load` must come from a prepare call
    /// or an earlier switch, and its thread must not be running.
    unsafe fn switch(save: *mut usize, load: usize);

    /// Makes `top` the kernel stack that traps from user mode use: that of
    /// the thread about to run.
    fn set_kernel_stack(top: usize);

    /// Puts a system call's results (`results`, and a message's `words`)
    /// where the thread whose kernel stack ends at `kernel_stack_top`
    /// finds them when it returns to user mode from its system call frame:
    /// it blocked in the call with all its user registers in that frame
    /// (the IPC fast path), and resumes from it.
    ///
    /// # Safety
    /// That thread is not running, and blocked that way.
    unsafe fn write_frame_results(kernel_stack_top: usize, results: [usize; 2], words: [usize; 4]);
}

/// What the kernel runs on, and what it runs without, for the banner.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// CPUs the firmware describes; 0 when it does not say.
    pub cpus_found: u32,
    /// CPUs the kernel runs on (one until SMP support).
    pub cpus_used: u32,
    /// Features the kernel uses where present, missing on this machine.
    pub without: list::FixedList<&'static str, 4>,
}

/// Where a device's registers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceRegisters {
    /// Memory-mapped, at physical `base`, `size` bytes.
    Memory { base: u64, size: u64 },
    /// I/O ports `base` to `base + count - 1`.
    Ports { base: u16, count: u16 },
}

impl Default for DeviceRegisters {
    fn default() -> Self {
        DeviceRegisters::Memory { base: 0, size: 0 }
    }
}

/// A device the kernel does not use, which user-space drivers may have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserDevice {
    /// What it is, e.g. `virtio-mmio`.
    pub name: &'static str,
    pub registers: DeviceRegisters,
    /// Its interrupt line (a portable interrupt number), routed to this CPU
    /// and masked.
    pub irq: Option<usize>,
    /// For a PCI function's BAR: which function and BAR.
    pub pci: Option<PciBar>,
}

/// A BAR of a PCI function, as the device listing names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciBar {
    /// Bus, device and function, as `bus << 8 | device << 3 | function`.
    pub function: u16,
    pub vendor: u16,
    pub device: u16,
    /// Class, subclass and programming interface, as `class << 16 |
    /// subclass << 8 | prog_if`.
    pub class: u32,
    /// The BAR's index, 0 to 5, or [`PciBar::CONFIG`].
    pub bar: u8,
}

impl PciBar {
    /// [`PciBar::bar`] of the function's configuration space.
    pub const CONFIG: u8 = abi::PCI_CONFIG as u8;
}

/// The devices [`Platform::user_devices`] lists.
pub type UserDevices = list::FixedList<UserDevice, 64>;

/// How the machine was started and how to leave it.
pub trait Platform {
    /// Short architecture name, as used on the command line of `cargo xtask`.
    const ARCH: &'static str;

    /// The ELF machine number of programs this CPU runs.
    const ELF_MACHINE: u16;

    /// What the boot firmware or loader told the kernel.
    fn boot_info() -> &'static BootInfo;

    /// Sets up what needs the kernel's memory management: interrupt
    /// controllers, timers and the real-time clock. Interrupts stay masked.
    fn init_devices() -> Result<(), &'static str>;

    /// CPUs found and used, and features missing; complete once
    /// [`Platform::init_devices`] has run.
    fn capabilities() -> Capabilities;

    /// The devices the kernel leaves to user space (never RAM, never the
    /// kernel's interrupt controllers, timer, clock or console); complete
    /// once [`Platform::init_devices`] has run.
    fn user_devices() -> &'static [UserDevice];

    /// Reads `width` bytes (1, 2 or 4) from I/O port `port`; `None` where
    /// the CPU has no I/O ports or the width is not one of those.
    fn port_read(port: u16, width: u8) -> Option<u32>;

    /// Writes the low `width` bytes of `value` to I/O port `port`; `None`
    /// as for [`Platform::port_read`].
    fn port_write(port: u16, width: u8, value: u32) -> Option<()>;

    /// Ends the machine with a status: 0 means success. Under QEMU this exits
    /// the emulator with a status the host can read back.
    fn exit(code: u8) -> !;
}

/// Everything the portable core needs from an architecture.
pub trait Arch: Console + Memory + Interrupts + Time + Cpu + Threads + Platform + 'static {}

impl<T> Arch for T where T: Console + Memory + Interrupts + Time + Cpu + Threads + Platform + 'static
{}
