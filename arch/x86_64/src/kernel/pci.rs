//! PCI on `q35`: configuration space through ECAM (where the ACPI MCFG
//! puts it), every function found at boot, its BARs checked or placed
//! (`drivers::pci::bars`) before any is used.
//!
//! The windows BARs may lie in are those QEMU's q35 routes to PCI: below
//! 4 GiB, from the top of RAM there to the I/O APIC; above, from the top
//! of RAM (or 4 GiB) up to 1 TiB; ports above the ISA ones (0x100), new
//! BARs from 0x1000 (firmware puts some below: SeaBIOS the SMBus
//! controller's at 0x700). Nothing in them may overlap what the firmware's
//! memory map lists, the local APIC, the I/O APICs, the HPET or the ECAM
//! range itself, nor the serial ports (the kernel's console among them),
//! VGA's, the configuration ports or the chipset's power-management
//! block.

use crate::{acpi, interrupts};
use arch_x86_64::mcfg::EcamRegion;
use drivers::pci::Address;
use drivers::pci::bars::{self, Bar, Range, Reserved, Space, State};
use drivers::pci::config::{self, ConfigSpace, Function};
use hal::list::FixedList;
use hal::{FirmwareTables, Memory, MemoryKind, Platform};
use kernel::mm::frames::KernelFrames;
use spin::{Mutex, Once};

/// Functions and BARs kept, at most.
const MAX_FUNCTIONS: usize = 64;
const MAX_BARS: usize = 96;
/// Where q35's 32-bit PCI window ends: the first I/O APIC.
const LOW_WINDOW_END: u64 = 0xfec0_0000;
const HIGH_WINDOW_END: u64 = 1 << 40;
/// Ports: where new BARs go first, then the rest above the ISA range.
const IO_WINDOWS: [Range; 2] = [Range::new(0x1000, 0x1_0000), Range::new(0x100, 0x1000)];
/// Ports below 0x1000 that are not PCI's: COM2, VGA, COM1, the
/// configuration ports, and q35's power-management block (PMBASE 0x600,
/// 128 ports, as QEMU's ICH9 and its firmware set it).
const FIXED_PORTS: [(&str, u64, u64); 5] = [
    ("a serial port", 0x2f8, 0x300),
    ("VGA", 0x3b0, 0x3e0),
    ("a serial port", 0x3f8, 0x400),
    ("the power-management block", 0x600, 0x680),
    ("the configuration ports", 0xcf8, 0xd00),
];
const LOCAL_APIC_SIZE: u64 = 0x1000;
const IO_APIC_SIZE: u64 = 0x1000;
const HPET_SIZE: u64 = 0x400;

/// What the boot-time scan found.
pub struct Bus {
    pub functions: FixedList<Function, MAX_FUNCTIONS>,
    pub bars: FixedList<Bar, MAX_BARS>,
    /// Functions left with decoding off because a BAR of theirs was
    /// refused.
    pub refused: usize,
    /// Where configuration space is.
    pub ecam: EcamRegion,
}

impl Bus {
    /// Whether every BAR of the function at `address` is sound (so its
    /// decoding is on).
    pub fn is_sound(&self, address: Address) -> bool {
        self.bars
            .as_slice()
            .iter()
            .filter(|b| b.owner == address)
            .all(|b| b.state != State::Refused)
    }

    /// The physical address of the function's page of configuration
    /// space.
    pub fn config_page(&self, address: Address) -> Option<u64> {
        self.ecam
            .function_address(address.bus, address.device, address.function)
    }
}

static BUS: Once<Bus> = Once::new();

/// Configuration space through one ECAM region, each bus mapped (1 MiB,
/// uncached) the first time it is touched.
struct Ecam {
    region: EcamRegion,
    buses: Mutex<FixedList<(u8, usize), 16>>,
}

impl Ecam {
    /// The virtual address of `function`'s configuration space.
    fn function_address(&self, function: Address) -> Option<usize> {
        let physical =
            self.region
                .function_address(function.bus, function.device, function.function)?;
        let bus_base = physical & !((1 << 20) - 1);
        let mut buses = self.buses.lock();
        let virt = match buses
            .as_slice()
            .iter()
            .find(|(bus, _)| *bus == function.bus)
        {
            Some(&(_, virt)) => virt,
            None => {
                let virt =
                    crate::arch::X86_64::map_device(bus_base, 1 << 20, &KernelFrames).ok()?;
                buses.push((function.bus, virt));
                virt
            }
        };
        Some(virt + (physical - bus_base) as usize)
    }
}

impl ConfigSpace for Ecam {
    fn read(&self, function: Address, offset: u16) -> u32 {
        match self.function_address(function) {
            // SAFETY: a mapped, uncached page of configuration space;
            // `offset` is below 4096 and aligned.
            Some(virt) => unsafe { ((virt + offset as usize) as *const u32).read_volatile() },
            None => u32::MAX,
        }
    }

    fn write(&self, function: Address, offset: u16, value: u32) {
        if let Some(virt) = self.function_address(function) {
            // SAFETY: as in `read`.
            unsafe { ((virt + offset as usize) as *mut u32).write_volatile(value) };
        }
    }
}

/// Scans the buses the MCFG lists, checks and places every BAR, and turns
/// decoding on for each function whose BARs are all sound. Once, at boot.
pub fn init() {
    let rsdp = match crate::arch::X86_64::boot_info().firmware {
        FirmwareTables::Acpi { rsdp } => rsdp,
        _ => return,
    };
    let regions = match acpi::read_mcfg(rsdp) {
        Ok(regions) => regions,
        Err(e) => {
            log::warn!("PCI: the MCFG is unusable ({e}); no PCI devices");
            return;
        }
    };
    // Segment 0 only: q35 has no other.
    let Some(&region) = regions.as_slice().iter().find(|r| r.segment == 0) else {
        return;
    };
    let ecam = Ecam {
        region,
        buses: Mutex::new(FixedList::default()),
    };
    let mut bus = Bus {
        functions: FixedList::default(),
        bars: FixedList::default(),
        refused: 0,
        ecam: region,
    };
    config::scan(&ecam, region.first_bus, region.last_bus, |function| {
        bus.functions.push(function)
    });
    for function in bus.functions.as_slice() {
        config::read_bars(&ecam, function, |bar| bus.bars.push(bar));
    }
    if bus.functions.dropped + bus.bars.dropped > 0 {
        // Their decoding stays as the firmware left it: unchecked, unused.
        log::warn!(
            "PCI: {} functions and {} BARs beyond what the kernel keeps were left alone",
            bus.functions.dropped,
            bus.bars.dropped
        );
    }
    let (windows, reserved) = layout(&region);
    bars::plan(
        bus.bars.as_mut_slice(),
        windows.as_slice(),
        reserved.as_slice(),
        |refusal| log::warn!("{refusal}: the device stays off"),
    );
    for bar in bus
        .bars
        .as_slice()
        .iter()
        .filter(|b| b.state == State::Placed)
    {
        config::write_bar(&ecam, bar);
    }
    for function in bus.functions.as_slice() {
        let sound = bus.is_sound(function.address);
        config::set_decoding(&ecam, function.address, sound);
        bus.refused += usize::from(!sound);
        log::debug!(
            "PCI {} {:04x}:{:04x} class {:02x}.{:02x}{}",
            function.address,
            function.vendor,
            function.device,
            function.class,
            function.subclass,
            if sound { "" } else { " (off)" }
        );
    }
    let placed = bus
        .bars
        .as_slice()
        .iter()
        .filter(|b| b.state == State::Placed)
        .count();
    log::info!(
        "PCI: {} functions, {} BARs ({placed} placed, the rest as the firmware left them), {} devices off",
        bus.functions.as_slice().len(),
        bus.bars.as_slice().len(),
        bus.refused
    );
    BUS.call_once(|| bus);
}

/// The windows BARs may lie in, and what they must stay clear of.
fn layout(region: &EcamRegion) -> (FixedList<(Space, Range), 4>, FixedList<Reserved, 48>) {
    let boot = crate::arch::X86_64::boot_info();
    let mut reserved = FixedList::default();
    let (mut low_top, mut top) = (0u64, 0u64);
    for entry in boot.memory.regions() {
        let range = Range::new(entry.range.start, entry.range.end);
        reserved.push(Reserved {
            what: "memory the firmware lists",
            space: Space::Memory,
            range,
        });
        // Reserved address space (QEMU reserves the 12 GiB below 1 TiB
        // with much RAM) bounds no window: it only must not be overlapped.
        if entry.kind == MemoryKind::Reserved {
            continue;
        }
        top = top.max(range.end);
        if range.start < 1 << 32 && range.end <= LOW_WINDOW_END {
            low_top = low_top.max(range.end);
        }
    }
    let (local_apic, io_apics) = interrupts::controller_addresses();
    let mut fixed = |what, start: u64, size: u64| {
        reserved.push(Reserved {
            what,
            space: Space::Memory,
            range: Range::new(start, start + size),
        });
    };
    fixed("the local APIC", local_apic, LOCAL_APIC_SIZE);
    for &address in io_apics.as_slice() {
        fixed("an I/O APIC", address, IO_APIC_SIZE);
    }
    if let FirmwareTables::Acpi { rsdp } = boot.firmware
        && let Some(hpet) = acpi::hpet_address(rsdp)
    {
        fixed("the HPET", hpet, HPET_SIZE);
    }
    fixed("the ECAM range", region.base, region.size());
    for (what, start, end) in FIXED_PORTS {
        reserved.push(Reserved {
            what,
            space: Space::Io,
            range: Range::new(start, end),
        });
    }
    let mut windows = FixedList::default();
    windows.push((Space::Memory, Range::new(low_top, LOW_WINDOW_END)));
    windows.push((Space::Memory, Range::new(top.max(1 << 32), HIGH_WINDOW_END)));
    for window in IO_WINDOWS {
        windows.push((Space::Io, window));
    }
    (windows, reserved)
}

/// What the boot-time scan found; `None` without PCI (microvm).
pub fn bus() -> Option<&'static Bus> {
    BUS.get()
}
