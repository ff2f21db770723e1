//! The platform concern: the boot information from the device tree, the
//! capabilities, and how to end the machine.

use crate::arch::Armv7;
use crate::interrupts;
use arch_armv7::dtb::{self, DeviceTreeInfo};
use arch_armv7::{board, exit_status, layout};
use hal::boot::{MemoryMapBuilder, ReservedList};
use hal::{BootInfo, FirmwareTables, MemoryKind, PhysRange};
use spin::Once;

static BOOT_INFO: Once<BootInfo> = Once::new();

unsafe extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
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
    crate::device_tree::keep(blob, info);
    Ok(boot)
}

/// Makes `boot` what [`hal::Platform::boot_info`] returns from now on.
pub fn set_boot_info(boot: BootInfo) {
    BOOT_INFO.call_once(|| boot);
}

impl hal::Platform for Armv7 {
    const ARCH: &'static str = "armv7";
    /// EM_ARM.
    const ELF_MACHINE: u16 = 40;

    fn init_devices() -> Result<(), &'static str> {
        interrupts::init()?;
        if let Some((_, info)) = crate::device_tree::get() {
            crate::devices::init(info);
        }
        Ok(())
    }

    fn user_devices() -> &'static [hal::UserDevice] {
        crate::devices::user_devices()
    }

    /// The CPU has no I/O ports.
    fn port_read(_port: u16, _width: u8) -> Option<u32> {
        None
    }

    fn port_write(_port: u16, _width: u8, _value: u32) -> Option<()> {
        None
    }

    fn capabilities() -> hal::Capabilities {
        // The boot code parks every core but core 0 (see boot.s).
        hal::Capabilities {
            cpus_found: crate::device_tree::get().map_or(0, |(_, info)| info.cpus),
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
