//! The platform concern: the boot information from the PVH start info,
//! the capabilities, and how to end the machine.

use crate::arch::X86_64;
use crate::{interrupts, machine};
use arch_x86_64::{exit_status, layout, pvh};
use hal::boot::{MemoryMapBuilder, ReservedList};
use hal::{BootInfo, FirmwareTables, PhysRange};
use spin::Once;
use x86_64::instructions::{hlt, interrupts as cpu_interrupts, port::Port};

static BOOT_INFO: Once<BootInfo> = Once::new();

/// The command line is copied out of low memory into this buffer; longer
/// lines are refused (see `hal::boot::check_cmdline`).
const CMDLINE_CAPACITY: usize = hal::boot::MAX_CMDLINE;
static CMDLINE: Once<([u8; CMDLINE_CAPACITY], usize)> = Once::new();

unsafe extern "C" {
    static __kernel_phys_start: u8;
    static __kernel_phys_end: u8;
}

/// Physical memory through the boot page tables' kernel window.
struct KernelWindow;

impl pvh::PhysMemory for KernelWindow {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), pvh::Unreadable> {
        let fail = pvh::Unreadable {
            paddr,
            len: buf.len(),
        };
        let end = paddr.checked_add(buf.len() as u64).ok_or(fail)?;
        if end > layout::BOOT_MAPPED_SIZE {
            return Err(fail);
        }
        let source = (paddr + layout::KERNEL_VIRT_OFFSET) as *const u8;
        // SAFETY: the boot tables map [0, BOOT_MAPPED_SIZE) at the kernel
        // window, and the range was just checked to lie inside it. The
        // firmware's structures are not being written concurrently.
        unsafe { core::ptr::copy_nonoverlapping(source, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}

/// Reads the PVH start info into a [`BootInfo`]. The start info lives in low
/// memory that is never reused, but everything is copied all the same.
pub fn read_boot_info(start_info_paddr: u64) -> Result<BootInfo, pvh::PvhError> {
    let mut cmdline = [0u8; CMDLINE_CAPACITY];
    let mut memory = MemoryMapBuilder::new();
    let info = pvh::parse(&KernelWindow, start_info_paddr, &mut cmdline, &mut memory)?;
    let (cmdline, cmdline_len) = CMDLINE.call_once(|| (cmdline, info.cmdline_len));
    let (cmdline, cmdline_error) =
        match hal::boot::check_cmdline(&cmdline[..*cmdline_len], info.cmdline_truncated) {
            Ok(text) => (text, None),
            Err(error) => ("", Some(error)),
        };
    let (memory, memory_repairs) = memory.build();
    // Only the addresses of the linker-defined symbols are taken.
    let kernel_image = PhysRange {
        start: &raw const __kernel_phys_start as u64,
        end: &raw const __kernel_phys_end as u64,
    };
    let mut reserved = ReservedList::new();
    let pushed = reserved.push(
        "real-mode area",
        PhysRange {
            start: 0,
            end: layout::LOW_MEMORY_END,
        },
    ) && reserved.push("kernel image", kernel_image);
    debug_assert!(pushed, "the reserved list starts empty");
    Ok(BootInfo {
        machine: machine::detect(),
        cmdline,
        cmdline_error,
        memory,
        memory_repairs,
        firmware: match info.rsdp {
            Some(rsdp) => FirmwareTables::Acpi { rsdp },
            None => FirmwareTables::None,
        },
        kernel_image,
        reserved,
    })
}

/// Makes `boot` what [`hal::Platform::boot_info`] returns from now on.
pub fn set_boot_info(boot: BootInfo) {
    BOOT_INFO.call_once(|| boot);
}

impl hal::Platform for X86_64 {
    const ARCH: &'static str = "x86_64";
    /// EM_X86_64.
    const ELF_MACHINE: u16 = 62;

    fn init_devices() -> Result<(), &'static str> {
        interrupts::init()?;
        // Before the RTC is left to a driver.
        crate::timer::read_wall_clock();
        crate::pci::init();
        crate::devices::init();
        Ok(())
    }

    fn user_devices() -> &'static [hal::UserDevice] {
        crate::devices::user_devices()
    }

    fn port_read(port: u16, width: u8) -> Option<u32> {
        // SAFETY: the portable core reads only ports of devices it left to
        // user space (`user_devices`), for the holder of a capability.
        unsafe {
            match width {
                1 => Some(Port::<u8>::new(port).read() as u32),
                2 => Some(Port::<u16>::new(port).read() as u32),
                4 => Some(Port::<u32>::new(port).read()),
                _ => None,
            }
        }
    }

    fn port_write(port: u16, width: u8, value: u32) -> Option<()> {
        // SAFETY: as for `port_read`.
        unsafe {
            match width {
                1 => Port::<u8>::new(port).write(value as u8),
                2 => Port::<u16>::new(port).write(value as u16),
                4 => Port::<u32>::new(port).write(value),
                _ => return None,
            }
        }
        Some(())
    }

    fn capabilities() -> hal::Capabilities {
        let mut caps = hal::Capabilities {
            // Application processors are never started: they wait for an
            // INIT-SIPI-SIPI that does not come until SMP support.
            cpus_found: interrupts::cpus_in_madt().unwrap_or(0),
            cpus_used: 1,
            ..Default::default()
        };
        let (smep, smap) = crate::threads::protections();
        if !smep {
            caps.without.push("SMEP");
        }
        if !smap {
            caps.without.push("SMAP");
        }
        if !crate::asid::enabled() {
            caps.without.push("PCID");
        }
        if interrupts::cpus_in_madt().is_none() {
            caps.without
                .push("ACPI MADT (default interrupt controllers)");
        }
        caps
    }

    fn boot_info() -> &'static BootInfo {
        BOOT_INFO
            .get()
            .expect("boot info is recorded before the portable core starts")
    }

    fn exit(code: u8) -> ! {
        // SAFETY: the isa-debug-exit device ends the emulator; without it
        // (real hardware, or QEMU run without the device) the write is
        // ignored and the CPU halts below.
        unsafe {
            Port::<u32>::new(exit_status::DEBUG_EXIT_PORT).write(exit_status::port_value(code))
        };
        cpu_interrupts::disable();
        loop {
            hlt();
        }
    }
}
