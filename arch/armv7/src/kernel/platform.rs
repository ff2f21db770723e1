//! The ARMv7 architecture type, [`Armv7`], with the boot information and
//! most of its HAL implementations.

use crate::{console, interrupts, time, traps};
use arch_armv7::dtb::{self, DeviceTreeInfo, DtbError};
use arch_armv7::{board, exit_status, layout};
use hal::boot::{MemoryMapBuilder, ReservedList};
use hal::{BootInfo, FirmwareTables, MemoryKind, PhysRange};
use spin::Once;

/// The ARMv7 architecture, as the portable core sees it.
pub struct Armv7;

static BOOT_INFO: Once<BootInfo> = Once::new();
static DEVICE_TREE: Once<(&'static [u8], DeviceTreeInfo<'static>)> = Once::new();

unsafe extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
}

/// The kernel virtual address of physical `paddr` if the boot mapping of
/// RAM covers `[paddr, paddr + len)`.
fn boot_mapped(paddr: u64, len: u64) -> Option<usize> {
    let start = layout::RAM_BASE as u64;
    let end = start + layout::BOOT_MAPPED_SIZE as u64;
    (paddr >= start && paddr.checked_add(len)? <= end)
        .then(|| (paddr + layout::KERNEL_VIRT_OFFSET as u64) as usize)
}

/// Finds the device tree: where the loader's r2 points, else at the base
/// of RAM (where QEMU puts it for ELF images). The blob must lie in the
/// boot-mapped RAM. It is returned writable so NOPs can be stripped in place.
pub fn find_device_tree(loader_dtb: u32) -> Result<&'static mut [u8], DtbError> {
    let mut last_error = DtbError::BadMagic(0);
    for candidate in [loader_dtb as u64, layout::RAM_BASE as u64] {
        if candidate == 0 {
            continue;
        }
        let Some(header) = boot_mapped(candidate, 8) else {
            continue;
        };
        // SAFETY: the 8 header bytes are inside the boot mapping of RAM.
        let header = unsafe { core::slice::from_raw_parts(header as *const u8, 8) };
        let size = match dtb::total_size(header) {
            Ok(size) => size,
            Err(error) => {
                last_error = error;
                continue;
            }
        };
        let Some(virt) = boot_mapped(candidate, size as u64) else {
            return Err(DtbError::Truncated);
        };
        // SAFETY: the whole blob is inside the boot mapping of RAM, which
        // nothing else uses; this is the only reference made to it.
        return Ok(unsafe { core::slice::from_raw_parts_mut(virt as *mut u8, size) });
    }
    Err(last_error)
}

/// Why the device tree's description of memory cannot be used.
pub enum BootInputProblem {
    Tree(dtb::MemoryError),
    Memory(hal::boot::BootInputError),
}

impl core::fmt::Display for BootInputProblem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootInputProblem::Tree(e) => e.fmt(f),
            BootInputProblem::Memory(e) => e.fmt(f),
        }
    }
}

/// Builds the [`BootInfo`] from the device tree, refusing memory
/// descriptions that cannot hold the running kernel.
pub fn read_boot_info(
    blob: &'static [u8],
    info: DeviceTreeInfo<'static>,
) -> Result<BootInfo, BootInputProblem> {
    info.check_memory().map_err(BootInputProblem::Tree)?;
    let mut memory = MemoryMapBuilder::new();
    for reg in info.memory.as_slice() {
        memory.add(reg.address, reg.size, MemoryKind::Usable);
    }
    for reg in info.reserved.as_slice() {
        memory.add(reg.address, reg.size, MemoryKind::Reserved);
    }
    if info.memory.dropped + info.reserved.dropped > 0 || info.skipped_nodes > 0 {
        log::warn!(
            "device tree: {} memory and {} reserved ranges dropped, {} nodes not understood",
            info.memory.dropped,
            info.reserved.dropped,
            info.skipped_nodes
        );
    }
    let (memory, memory_repairs) = memory.build();
    let kernel_image = PhysRange {
        start: &raw const __kernel_phys_start as u64,
        end: &raw const __kernel_phys_end as u64,
    };
    let machine = if info.compatible == board::COMPATIBLE[0] {
        board::MACHINE
    } else {
        info.compatible
    };
    let blob_paddr = blob.as_ptr() as u64 - layout::KERNEL_VIRT_OFFSET as u64;
    let mut reserved = ReservedList::new();
    let direct_map_end = layout::RAM_BASE as u64 + layout::DIRECT_MAP_MAX as u64;
    let ram_end = memory
        .regions()
        .iter()
        .filter(|r| r.kind.is_ram())
        .map(|r| r.range.end)
        .max()
        .unwrap_or(0);
    let mut pushed = reserved.push(
        "device tree",
        PhysRange {
            start: blob_paddr,
            end: blob_paddr + blob.len() as u64,
        },
    ) && reserved.push("kernel image", kernel_image);
    if ram_end > direct_map_end {
        log::warn!("RAM above {direct_map_end:#x} is beyond the direct map and stays unused");
        pushed &= reserved.push(
            "RAM beyond the direct map",
            PhysRange {
                start: direct_map_end,
                end: ram_end,
            },
        );
    }
    debug_assert!(pushed, "the reserved list starts empty");
    let (cmdline, cmdline_error) = match hal::boot::check_cmdline(info.bootargs, false) {
        Ok(text) => (text, None),
        Err(error) => ("", Some(error)),
    };
    let boot = BootInfo {
        machine,
        cmdline,
        cmdline_error,
        memory,
        memory_repairs,
        firmware: FirmwareTables::DeviceTree {
            address: blob_paddr,
            size: blob.len() as u64,
        },
        kernel_image,
        reserved,
    };
    boot.check_memory().map_err(BootInputProblem::Memory)?;
    DEVICE_TREE.call_once(|| (blob, info));
    Ok(boot)
}

/// Makes `boot` what [`hal::Platform::boot_info`] returns from now on.
pub fn set_boot_info(boot: BootInfo) {
    BOOT_INFO.call_once(|| boot);
}

/// The device tree and what was read from it.
pub fn device_tree() -> Option<&'static (&'static [u8], DeviceTreeInfo<'static>)> {
    DEVICE_TREE.get()
}

/// Masks IRQ and FIQ on this CPU.
pub fn disable_interrupts() {
    aarch32_cpu::interrupt::disable();
}

impl hal::Console for Armv7 {
    fn write_bytes(bytes: &[u8]) {
        console::write_bytes(bytes);
    }

    fn read_byte() -> Option<u8> {
        console::read_byte()
    }

    fn enable_receive_interrupt() -> Result<usize, hal::IrqError> {
        let irq = interrupts::console_irq()?;
        console::enable_receive_interrupt();
        Ok(irq)
    }
}

impl hal::Interrupts for Armv7 {
    const IRQ_COUNT: usize = kernel::irq::MAX_IRQS;
    const SOFTWARE_IRQ: usize = interrupts::SOFTWARE_SGI as usize;

    fn raise(irq: usize) -> Result<(), hal::IrqError> {
        interrupts::raise(irq)
    }

    fn set_masked(irq: usize, masked: bool) -> Result<(), hal::IrqError> {
        interrupts::set_masked(irq, masked)
    }

    fn enable() {
        // SAFETY: enabling IRQs is what the caller asked for; the kernel's
        // handlers are responsible for being ready.
        unsafe { aarch32_cpu::interrupt::enable() };
    }

    fn disable() {
        aarch32_cpu::interrupt::disable();
    }

    fn enabled() -> bool {
        !aarch32_cpu::register::Cpsr::read().i()
    }
}

impl hal::Time for Armv7 {
    fn monotonic_ns() -> u64 {
        time::monotonic_ns()
    }

    fn since_reset_ns() -> u64 {
        time::since_reset_ns()
    }

    fn wall_clock_seconds() -> Option<u64> {
        interrupts::wall_clock_seconds()
    }

    fn start_ticks(hz: u32) -> Result<usize, hal::TimerError> {
        interrupts::start_ticks(hz)
    }

    fn stop_ticks() {
        interrupts::stop_ticks();
    }

    fn acknowledge_tick() {
        interrupts::acknowledge_tick();
    }
}

impl hal::Cpu for Armv7 {
    fn idle() {
        // WFI wakes for a pending interrupt even while IRQs are masked, so
        // one that arrives before it cannot be slept through; unmasking
        // then takes it.
        aarch32_cpu::asm::wfi();
        // SAFETY: the caller is ready for interrupts here; that is the
        // point of idling.
        unsafe { aarch32_cpu::interrupt::enable() };
        aarch32_cpu::interrupt::disable();
    }

    fn sync_instructions(kernel_address: usize, len: usize) {
        crate::memory::sync_instructions(kernel_address, len);
    }

    fn cycle_counter() -> u64 {
        time::cycles() as u64
    }

    const CYCLE_COUNTER_BITS: u32 = 32;

    /// `bx lr`.
    const RETURN_INSTRUCTION: &'static [u8] = &[0x1e, 0xff, 0x2f, 0xe1];

    fn breakpoint() {
        // SAFETY: BKPT traps to the prefetch-abort handler, which reports
        // it and resumes at the next instruction.
        unsafe { core::arch::asm!("bkpt #0", options(nomem, nostack)) };
    }

    unsafe fn catch_fault(f: extern "C" fn(usize), arg: usize) -> Result<(), hal::Fault> {
        // SAFETY: the caller upholds the contract, which is the same.
        unsafe { traps::catch_fault(f, arg) }
    }
}

impl hal::Platform for Armv7 {
    const ARCH: &'static str = "armv7";
    /// EM_ARM.
    const ELF_MACHINE: u16 = 40;

    fn init_devices() -> Result<(), &'static str> {
        interrupts::init()
    }

    fn capabilities() -> hal::Capabilities {
        // The boot code parks every core but core 0 (see boot.s).
        hal::Capabilities {
            cpus_found: device_tree().map_or(0, |(_, info)| info.cpus),
            cpus_used: 1,
            ..Default::default()
        }
    }

    fn boot_info() -> &'static BootInfo {
        BOOT_INFO
            .get()
            .expect("boot info is recorded before the portable core starts")
    }

    fn exit(code: u8) -> ! {
        let block = [
            exit_status::ADP_STOPPED_APPLICATION_EXIT,
            exit_status::subcode(code),
        ];
        // SAFETY: with QEMU's -semihosting, this SVC ends the emulator; the
        // block outlives the call. The SVC may clobber lr if it is taken as
        // an exception instead.
        unsafe {
            core::arch::asm!(
                "svc #0x123456",
                in("r0") exit_status::SYS_EXIT_EXTENDED,
                in("r1") block.as_ptr(),
                out("lr") _,
                options(nostack)
            );
        }
        aarch32_cpu::interrupt::disable();
        loop {
            aarch32_cpu::asm::wfi();
        }
    }
}
