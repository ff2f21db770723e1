//! VMSAv7 short-descriptor translation table entries.
//!
//! Encoded by hand: `aarch32-cpu` describes only L1 section entries and only
//! builds when targeting ARM, while the host-side tools decode tables too.
//! The kernel runs with TEX remap off (SCTLR.TRE = 0) and the access flag
//! off (SCTLR.AFE = 0), so TEX/C/B and AP\[2:0\] mean what the tables say.

/// How memory behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    /// Normal memory, inner and outer write-back write-allocate, shareable.
    Normal,
    /// Shareable device memory: uncached, accesses neither merged nor
    /// reordered; never executable.
    Device,
}

/// Who may access a mapping, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Kernel read/write, no user access.
    KernelReadWrite,
    /// Kernel read-only, no user access.
    KernelReadOnly,
    /// Kernel and user read/write.
    UserReadWrite,
    /// Kernel and user read-only.
    UserReadOnly,
}

impl Access {
    /// (APX, AP\[1:0\]).
    const fn bits(self) -> (u32, u32) {
        match self {
            Access::KernelReadWrite => (0, 0b01),
            Access::KernelReadOnly => (1, 0b01),
            Access::UserReadWrite => (0, 0b11),
            Access::UserReadOnly => (1, 0b11),
        }
    }
}

/// A section (1 MiB) mapping's attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionAttributes {
    /// Memory type.
    pub memory: MemoryType,
    /// Permissions.
    pub access: Access,
    /// Whether instructions may be fetched.
    pub executable: bool,
    /// Global (kept in the TLB across address-space switches).
    pub global: bool,
}

const SECTION: u32 = 0b10;
const B: u32 = 1 << 2;
const C: u32 = 1 << 3;
const XN: u32 = 1 << 4;
const AP_SHIFT: u32 = 10;
const TEX_SHIFT: u32 = 12;
const APX: u32 = 1 << 15;
const S: u32 = 1 << 16;
const NG: u32 = 1 << 17;

/// Size of a section.
pub const SECTION_SIZE: u32 = 1 << 20;

/// The L1 entry mapping the section at physical `paddr` (aligned down to
/// 1 MiB) with `attrs`. Device memory is never executable.
pub const fn section(paddr: u32, attrs: SectionAttributes) -> u32 {
    let (apx, ap) = attrs.access.bits();
    let mut entry = (paddr & !(SECTION_SIZE - 1)) | SECTION | (ap << AP_SHIFT);
    if apx != 0 {
        entry |= APX;
    }
    match attrs.memory {
        MemoryType::Normal => entry |= (0b001 << TEX_SHIFT) | C | B | S,
        MemoryType::Device => entry |= B | XN,
    }
    if !attrs.executable {
        entry |= XN;
    }
    if !attrs.global {
        entry |= NG;
    }
    entry
}

/// Decodes an L1 section entry; `None` for other entry types or attribute
/// combinations the kernel never writes.
pub const fn decode_section(entry: u32) -> Option<(u32, SectionAttributes)> {
    if entry & 0b11 != SECTION || entry & (1 << 18) != 0 {
        return None; // not a section, or a supersection
    }
    let tex = (entry >> TEX_SHIFT) & 0b111;
    let memory = match (tex, entry & C != 0, entry & B != 0) {
        (0b001, true, true) => MemoryType::Normal,
        (0b000, false, true) => MemoryType::Device,
        _ => return None,
    };
    let access = match (entry & APX != 0, (entry >> AP_SHIFT) & 0b11) {
        (false, 0b01) => Access::KernelReadWrite,
        (true, 0b01) => Access::KernelReadOnly,
        (false, 0b11) => Access::UserReadWrite,
        (true, 0b11) => Access::UserReadOnly,
        _ => return None,
    };
    let attrs = SectionAttributes {
        memory,
        access,
        executable: entry & XN == 0,
        global: entry & NG == 0,
    };
    Some((entry & !(SECTION_SIZE - 1), attrs))
}

/// Attributes of the boot mapping of the kernel image: the boot code cannot
/// yet tell text from data, so it is executable until the kernel refines it.
pub const BOOT_KERNEL_SECTION: SectionAttributes = SectionAttributes {
    memory: MemoryType::Normal,
    access: Access::KernelReadWrite,
    executable: true,
    global: true,
};

/// TTBR0/TTBR1 walk attributes: inner and outer write-back write-allocate
/// (IRGN = 01 as bits 6 and 0, RGN = 01 at bits 4:3), non-shareable.
pub const TTBR_WALK_WRITE_BACK: u32 = 0x48;

/// Attributes of device register sections.
pub const DEVICE_SECTION: SectionAttributes = SectionAttributes {
    memory: MemoryType::Device,
    access: Access::KernelReadWrite,
    executable: false,
    global: true,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        // Kernel RWX normal memory: TEX=001 C B, AP=01, S.
        assert_eq!(section(0x8000_0000, BOOT_KERNEL_SECTION), 0x8001_140e);
        // Device: B, XN, AP=01.
        assert_eq!(section(0x1c09_0000, DEVICE_SECTION), 0x1c00_0416);
    }

    #[test]
    fn every_attribute_combination_round_trips() {
        for memory in [MemoryType::Normal, MemoryType::Device] {
            for access in [
                Access::KernelReadWrite,
                Access::KernelReadOnly,
                Access::UserReadWrite,
                Access::UserReadOnly,
            ] {
                for executable in [false, true] {
                    for global in [false, true] {
                        let attrs = SectionAttributes {
                            memory,
                            access,
                            executable,
                            global,
                        };
                        let entry = section(0x1230_0000, attrs);
                        let expected = SectionAttributes {
                            executable: executable && memory == MemoryType::Normal,
                            ..attrs
                        };
                        assert_eq!(decode_section(entry), Some((0x1230_0000, expected)));
                    }
                }
            }
        }
    }

    #[test]
    fn other_entry_types_do_not_decode_as_sections() {
        assert_eq!(decode_section(0), None);
        assert_eq!(decode_section(0x8000_0001), None, "page table pointer");
        assert_eq!(decode_section(0x8004_0002), None, "supersection");
    }
}
