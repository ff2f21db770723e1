//! The devices the kernel leaves to user-space drivers, as the device tree
//! lists them: every VirtIO-MMIO transport and every SP804 but the first
//! (the tick). A device whose registers share a page with one the kernel
//! uses, or whose interrupt is not a shared peripheral interrupt the GIC
//! has, is left out, with a warning.

use crate::interrupts;
use arch_armv7::board;
use arch_armv7::dtb::{DeviceNode, DeviceTreeInfo, Reg};
use hal::{DeviceRegisters, UserDevice, UserDevices};
use spin::Once;

static DEVICES: Once<UserDevices> = Once::new();

const PAGE: u64 = 4096;

fn pages(reg: &Reg) -> (u64, u64) {
    let start = reg.address & !(PAGE - 1);
    let end = reg.address.saturating_add(reg.size).div_ceil(PAGE) * PAGE;
    (start, end)
}

/// Lists the devices; run once the GIC is set up (every line masked).
pub fn init(info: &DeviceTreeInfo) {
    let mut kernel_uses = [None; 5];
    kernel_uses[0] = info.console_uart.map(|uart| uart.reg);
    kernel_uses[1] = info.sp804.map(|timer| timer.reg);
    kernel_uses[2] = info.pl031.map(|rtc| rtc.reg);
    kernel_uses[3] = info.gic.map(|gic| gic.distributor);
    kernel_uses[4] = info.gic.map(|gic| gic.cpu_interface);
    let kernel_irqs = [info.console_uart, info.sp804, info.pl031];
    let lines = interrupts::gic_lines().unwrap_or(0);
    let refusal = |node: &DeviceNode| -> Option<&'static str> {
        let (start, end) = pages(&node.reg);
        let shares_a_page = kernel_uses.iter().flatten().any(|reg| {
            let (kernel_start, kernel_end) = pages(reg);
            start < kernel_end && kernel_start < end
        });
        if shares_a_page {
            return Some("its registers share a page with a device the kernel uses");
        }
        let irq = node.interrupts.as_slice().first()?;
        if *irq < board::SPI_BASE || *irq >= lines {
            return Some("its interrupt is not a shared peripheral interrupt of the GIC");
        }
        let taken = kernel_irqs
            .iter()
            .flatten()
            .any(|device| device.interrupts.as_slice().contains(irq));
        taken.then_some("its interrupt is one the kernel uses")
    };
    let mut devices = UserDevices::default();
    let found = info
        .spare_sp804s
        .as_slice()
        .iter()
        .map(|node| ("sp804", node))
        .chain(
            info.virtio_mmio
                .as_slice()
                .iter()
                .map(|node| ("virtio-mmio", node)),
        );
    for (name, node) in found {
        if let Some(reason) = refusal(node) {
            log::warn!(
                "{name} at {:#x} is not left to drivers: {reason}",
                node.reg.address
            );
            continue;
        }
        devices.push(UserDevice {
            name,
            registers: DeviceRegisters::Memory {
                base: node.reg.address,
                size: node.reg.size,
            },
            irq: node.interrupts.as_slice().first().map(|&irq| irq as usize),
            pci: None,
        });
    }
    DEVICES.call_once(|| devices);
}

pub fn user_devices() -> &'static [UserDevice] {
    DEVICES.get().map_or(&[], |devices| devices.as_slice())
}
