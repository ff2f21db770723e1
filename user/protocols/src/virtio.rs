//! VirtIO devices as init finds them: which kind a transport holds, and
//! the service its driver offers.

/// The VirtIO-MMIO magic value ("virt"), at offset 0.
pub const MMIO_MAGIC: u32 = 0x7472_6976;
/// Offsets of the MMIO registers init reads to find the device.
pub const MMIO_MAGIC_OFFSET: usize = 0x0;
pub const MMIO_VERSION_OFFSET: usize = 0x4;
pub const MMIO_DEVICE_ID_OFFSET: usize = 0x8;
/// The PCI vendor of VirtIO functions.
pub const PCI_VENDOR: u16 = 0x1af4;

/// The kinds of device there are drivers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Network,
    Block,
    Entropy,
}

impl Kind {
    /// The kind with VirtIO device id `id`.
    pub fn from_device_id(id: u32) -> Option<Kind> {
        match id {
            1 => Some(Kind::Network),
            2 => Some(Kind::Block),
            4 => Some(Kind::Entropy),
            _ => None,
        }
    }

    /// The kind of a PCI function with these ids: modern (0x1040 plus the
    /// device id) or transitional (0x1000 net, 0x1001 block, 0x1005 rng).
    pub fn from_pci(vendor: u16, device: u16) -> Option<Kind> {
        if vendor != PCI_VENDOR {
            return None;
        }
        match device {
            0x1000 => Some(Kind::Network),
            0x1001 => Some(Kind::Block),
            0x1005 => Some(Kind::Entropy),
            0x1040..=0x107f => Kind::from_device_id(u32::from(device - 0x1040)),
            _ => None,
        }
    }

    /// The service name of the first device of the kind.
    pub fn service(self) -> &'static str {
        match self {
            Kind::Network => "net",
            Kind::Block => "blk",
            Kind::Entropy => "rng",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_from_mmio_and_pci_ids() {
        assert_eq!(Kind::from_device_id(4), Some(Kind::Entropy));
        assert_eq!(Kind::from_device_id(0), None);
        assert_eq!(Kind::from_device_id(16), None);
        assert_eq!(Kind::from_pci(0x1af4, 0x1005), Some(Kind::Entropy));
        assert_eq!(Kind::from_pci(0x1af4, 0x1042), Some(Kind::Block));
        assert_eq!(Kind::from_pci(0x1af4, 0x1041), Some(Kind::Network));
        assert_eq!(Kind::from_pci(0x1af4, 0x1050), None);
        assert_eq!(Kind::from_pci(0x8086, 0x1001), None);
    }
}
