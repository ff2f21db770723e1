//! Which QEMU machine this is.

use x86_64::instructions::port::Port;

const PCI_CONFIG_ADDRESS: u16 = 0xcf8;
const PCI_CONFIG_DATA: u16 = 0xcfc;
const Q35_HOST_BRIDGE: u32 = 0x29c0_8086;
const I440FX_HOST_BRIDGE: u32 = 0x1237_8086;

/// Vendor and device ID of PCI 00:00.0, if there is a PCI bus.
fn pci_host_bridge_id() -> Option<u32> {
    // SAFETY: the configuration mechanism #1 ports are unassigned on
    // machines without PCI (they read all ones) and otherwise belong to the
    // kernel; reading register 0 of device 0 has no side effects.
    let id = unsafe {
        Port::<u32>::new(PCI_CONFIG_ADDRESS).write(0x8000_0000);
        Port::<u32>::new(PCI_CONFIG_DATA).read()
    };
    (id != 0xffff_ffff && id != 0).then_some(id)
}

/// The machine model, told apart by its PCI host bridge. `microvm` is the
/// supported machine without PCI.
pub fn detect() -> &'static str {
    match pci_host_bridge_id() {
        Some(Q35_HOST_BRIDGE) => "q35",
        Some(I440FX_HOST_BRIDGE) => "pc",
        Some(_) => "unknown-pci",
        None => "microvm",
    }
}
