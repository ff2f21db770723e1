//! The devices the kernel leaves to user-space drivers on x86_64:
//! - the CMOS real-time clock (ports 0x70-0x71, ISA interrupt 8), once the
//!   kernel has read the wall clock from it at boot;
//! - on `microvm`, the VirtIO-MMIO transports: QEMU puts 24 of them at
//!   0xfeb00000, 0x200 apart, and describes them only in AML, which the
//!   kernel does not interpret (their interrupts come with the VirtIO
//!   drivers);
//! - on `q35`, the HPET, where the ACPI HPET table puts it (the kernel
//!   keeps time with the TSC and ticks with the local APIC).

use crate::{acpi, interrupts, machine};
use hal::{DeviceRegisters, FirmwareTables, Platform, UserDevice, UserDevices};
use spin::Once;

static DEVICES: Once<UserDevices> = Once::new();

const CMOS_PORTS: u16 = 0x70;
const CMOS_ISA_IRQ: u8 = 8;
const VIRTIO_MMIO_BASE: u64 = 0xfeb0_0000;
const VIRTIO_MMIO_STRIDE: u64 = 0x200;
const VIRTIO_MMIO_TRANSPORTS: u64 = 24;
/// The HPET's register block (its specification's size).
const HPET_SIZE: u64 = 0x400;

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
    });
    match machine::detect() {
        "microvm" => {
            for n in 0..VIRTIO_MMIO_TRANSPORTS {
                devices.push(UserDevice {
                    name: "virtio-mmio",
                    registers: DeviceRegisters::Memory {
                        base: VIRTIO_MMIO_BASE + n * VIRTIO_MMIO_STRIDE,
                        size: VIRTIO_MMIO_STRIDE,
                    },
                    irq: None,
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
                });
            }
        }
    }
    DEVICES.call_once(|| devices);
}

pub fn user_devices() -> &'static [UserDevice] {
    DEVICES.get().map_or(&[], |devices| devices.as_slice())
}
