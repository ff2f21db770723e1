//! The devices the kernel leaves to user-space drivers on x86_64:
//! - the CMOS real-time clock (ports 0x70-0x71, ISA interrupt 8), once the
//!   kernel has read the wall clock from it at boot;
//! - on `microvm`, the VirtIO-MMIO transports at 0xfeb00000, 0x200 apart,
//!   which QEMU describes only in AML (the kernel does not interpret it):
//!   with ACPI and a second I/O APIC (the default), 24 of them on global
//!   interrupts 24 to 47; with ACPI and one I/O APIC, 8 on 16 to 23;
//!   without ACPI, 8 on 5 to 12. Their lines are level-triggered;
//! - on `q35`, the HPET, where the ACPI HPET table puts it (the kernel
//!   keeps time with the TSC and ticks with the local APIC), and, for each
//!   PCI function (see `pci`) whose BARs are all sound, its page of
//!   configuration space with its INTx line, and each of its BARs.

use crate::{acpi, interrupts, machine};
use drivers::ioapic::Signal;
use hal::{DeviceRegisters, FirmwareTables, PciBar, Platform, UserDevice, UserDevices};
use spin::Once;

static DEVICES: Once<UserDevices> = Once::new();

const CMOS_PORTS: u16 = 0x70;
const CMOS_ISA_IRQ: u8 = 8;
const VIRTIO_MMIO_BASE: u64 = 0xfeb0_0000;
const VIRTIO_MMIO_STRIDE: u64 = 0x200;

/// microvm's VirtIO-MMIO transports: how many, and the global interrupt
/// of the first (the others follow), as QEMU lays them out.
fn virtio_layout() -> (u64, u32) {
    match interrupts::io_apics() {
        Some((2.., true)) => (24, 24),
        Some((_, true)) => (8, 16),
        _ => (8, 5),
    }
}
/// The HPET's register block (its specification's size).
const HPET_SIZE: u64 = 0x400;
/// A PCI function's configuration space in ECAM.
const CONFIG_PAGE: u64 = 0x1000;

/// Lists the devices; run once the interrupt controllers are set up.
pub fn init() {
    let mut devices = UserDevices::default();
    let rtc_irq = interrupts::route_isa(CMOS_ISA_IRQ)
        .map_err(|e| log::warn!("the RTC's interrupt cannot be routed: {e}"))
        .ok();
    devices.push(UserDevice {
        name: "cmos-rtc",
        registers: DeviceRegisters::Ports {
            base: CMOS_PORTS,
            count: 2,
        },
        irq: rtc_irq,
        pci: None,
    });
    match machine::detect() {
        "microvm" => {
            let (transports, first_gsi) = virtio_layout();
            for n in 0..transports {
                let gsi = first_gsi + n as u32;
                let signal = Signal {
                    active_low: false,
                    level: true,
                };
                // Without ACPI the transports' lines overlap the ISA ones:
                // a line the RTC has is not shared.
                let irq = if rtc_irq == Some(interrupts::gsi_irq(gsi)) {
                    log::warn!(
                        "VirtIO transport {n} shares the RTC's line {gsi}: left without one"
                    );
                    None
                } else {
                    interrupts::route_gsi(gsi, signal)
                        .map_err(|e| log::warn!("a VirtIO transport's line cannot be routed: {e}"))
                        .ok()
                };
                devices.push(UserDevice {
                    name: "virtio-mmio",
                    registers: DeviceRegisters::Memory {
                        base: VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_STRIDE,
                        size: VIRTIO_MMIO_STRIDE,
                    },
                    irq,
                    pci: None,
                });
            }
        }
        _ => {
            let hpet = match crate::arch::X86_64::boot_info().firmware {
                FirmwareTables::Acpi { rsdp } => acpi::hpet_address(rsdp),
                _ => None,
            };
            if let Some(base) = hpet {
                devices.push(UserDevice {
                    name: "hpet",
                    registers: DeviceRegisters::Memory {
                        base,
                        size: HPET_SIZE,
                    },
                    irq: None,
                    pci: None,
                });
            }
        }
    }
    push_pci(&mut devices);
    DEVICES.call_once(|| devices);
}

/// For each PCI function that decodes: its configuration space (with its
/// interrupt line) and each BAR, named by its class.
fn push_pci(devices: &mut UserDevices) {
    use drivers::pci::bars::{Space, State};
    let Some(bus) = crate::pci::bus() else {
        return;
    };
    for function in bus.functions.as_slice() {
        let address = function.address;
        if !bus.is_sound(address) {
            continue;
        }
        let pci = |bar| PciBar {
            function: u16::from(address.bus) << 8
                | u16::from(address.device) << 3
                | u16::from(address.function),
            vendor: function.vendor,
            device: function.device,
            class: u32::from(function.class) << 16
                | u32::from(function.subclass) << 8
                | u32::from(function.prog_if),
            bar,
        };
        let name = pci_name(function.class, function.vendor);
        if let Some(page) = bus.config_page(address) {
            devices.push(UserDevice {
                name,
                registers: DeviceRegisters::Memory {
                    base: page,
                    size: CONFIG_PAGE,
                },
                irq: intx_line(address, function.interrupt_pin),
                pci: Some(pci(PciBar::CONFIG)),
            });
        }
        let placed = |b: &&drivers::pci::bars::Bar| {
            b.owner == address && matches!(b.state, State::Trusted | State::Placed)
        };
        for bar in bus.bars.as_slice().iter().filter(placed) {
            let registers = match bar.space {
                Space::Memory => DeviceRegisters::Memory {
                    base: bar.base,
                    size: bar.size,
                },
                Space::Io => DeviceRegisters::Ports {
                    base: bar.base as u16,
                    count: bar.size.min(0x1_0000 - bar.base) as u16,
                },
            };
            devices.push(UserDevice {
                name,
                registers,
                irq: None,
                pci: Some(pci(bar.index)),
            });
        }
    }
}

/// A function's INTx line, routed (masked) as q35 wires it; `None` for a
/// function without a pin or one behind a bridge.
fn intx_line(address: drivers::pci::Address, pin: u8) -> Option<usize> {
    if address.bus != 0 {
        return None;
    }
    let gsi = arch_x86_64::q35_intx::gsi(address.device, pin)?;
    let signal = Signal {
        active_low: false,
        level: true,
    };
    interrupts::route_gsi(gsi, signal)
        .map_err(|e| log::warn!("PCI {address}'s interrupt cannot be routed: {e}"))
        .ok()
}

/// What a PCI function is, by its class (and VirtIO by its vendor).
fn pci_name(class: u8, vendor: u16) -> &'static str {
    match (vendor, class) {
        (0x1af4, _) => "pci-virtio",
        (_, 0x01) => "pci-storage",
        (_, 0x02) => "pci-network",
        (_, 0x03) => "pci-display",
        (_, 0x06) => "pci-bridge",
        (_, 0x0c) => "pci-serial-bus",
        _ => "pci-device",
    }
}

pub fn user_devices() -> &'static [UserDevice] {
    DEVICES.get().map_or(&[], |devices| devices.as_slice())
}
