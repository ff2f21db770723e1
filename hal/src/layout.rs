//! Describing an architecture's memory layout once, as data, and checking
//! live mappings against it.
//!
//! Each architecture lists its virtual regions ([`Region`]) and physical
//! regions ([`PhysicalRegion`]). The kernel checks its page tables against
//! the list at boot, host tools check a running guest's tables against it,
//! and the documentation is generated from it.

use crate::mm::{MapFlags, MappedRange};

/// What a virtual region holds and how it must be mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    /// The kernel image: text read/execute, read-only data, and read/write
    /// data and bss, at [`ImageSections`] boundaries fixed at link time;
    /// anything else in the region up to the image's end (guard pages,
    /// gaps) unmapped. Past the image's end the region does not apply, so
    /// an image inside a larger mapping (a direct map) is judged as part of
    /// it there.
    KernelImage {
        /// `virtual - physical` for the image.
        phys_offset: u64,
    },
    /// Physical memory mapped linearly: `physical = virtual - phys_offset`.
    Linear {
        /// `virtual - physical`.
        phys_offset: u64,
        /// The only flags allowed.
        flags: MapFlags,
    },
    /// Mapped page by page at run time; each mapping must carry one of the
    /// allowed flag sets.
    Dynamic {
        /// Allowed flag sets.
        allowed: &'static [MapFlags],
    },
    /// Never mapped.
    Unmapped,
}

/// A named range of virtual addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Short name, unique within a layout.
    pub name: &'static str,
    /// First address.
    pub start: u64,
    /// First address past the region.
    pub end: u64,
    /// What it holds.
    pub contents: Contents,
    /// One line for the documentation.
    pub note: &'static str,
}

impl Region {
    /// Whether `addr` is inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// What a physical range is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhysicalKind {
    /// RAM (how much exists comes from the firmware).
    Ram,
    /// RAM or ROM that is never handed out.
    Reserved,
    /// Device registers.
    Mmio,
    /// Where the kernel image is loaded.
    KernelImage,
    /// Tables the firmware passes (device tree, ACPI).
    Firmware,
}

/// A named range of physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysicalRegion {
    /// Short name.
    pub name: &'static str,
    /// First address.
    pub start: u64,
    /// First address past the range.
    pub end: u64,
    /// What it is.
    pub kind: PhysicalKind,
    /// One line for the documentation.
    pub note: &'static str,
}

/// The kernel image's section boundaries (virtual, page-aligned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSections {
    /// Code: `[text.0, text.1)`.
    pub text: (u64, u64),
    /// Read-only data.
    pub rodata: (u64, u64),
    /// Data and bss.
    pub data: (u64, u64),
    /// Pages inside the data range left unmapped (stack guards).
    pub guards: &'static [(u64, u64)],
}

impl ImageSections {
    /// First address past the image.
    pub const fn end(&self) -> u64 {
        self.data.1
    }

    /// The flags an image page at `addr` must have; `None` if it must not be
    /// mapped.
    pub fn expected(&self, addr: u64) -> Option<MapFlags> {
        let inside = |r: (u64, u64)| r.0 <= addr && addr < r.1;
        if self.guards.iter().any(|&g| inside(g)) {
            None
        } else if inside(self.text) {
            Some(MapFlags::KERNEL_RX)
        } else if inside(self.rodata) {
            Some(MapFlags::KERNEL_RO)
        } else if inside(self.data) {
            Some(MapFlags::KERNEL_RW)
        } else {
            None
        }
    }
}

/// The linker symbols that bound the kernel image's sections, by name, for
/// host tools that read them from the kernel's ELF file (the kernel itself
/// takes their addresses directly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSymbols {
    /// Start of text.
    pub text: &'static str,
    /// Start of read-only data (end of text).
    pub rodata: &'static str,
    /// Start of data (end of read-only data).
    pub data: &'static str,
    /// End of the image.
    pub end: &'static str,
    /// One unmapped guard page starts at each of these.
    pub guards: &'static [&'static str],
}

/// How a mapping breaks the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Mapped where no region is.
    OutsideRegions(MappedRange),
    /// Mapped inside a region that must be empty there.
    MustBeUnmapped(MappedRange, &'static str),
    /// Flags not allowed by the region.
    WrongFlags(MappedRange, &'static str),
    /// A linear region mapping the wrong physical address.
    WrongPhysical(MappedRange, &'static str),
    /// Writable and executable.
    WriteExecute(MappedRange),
    /// A kernel-half page reachable from user mode.
    UserInKernel(MappedRange),
}

impl core::fmt::Display for Violation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let range = |f: &mut core::fmt::Formatter<'_>, m: &MappedRange| {
            write!(
                f,
                "{:#x}-{:#x} -> {:#x} [{}]",
                m.virt,
                m.virt_end(),
                m.phys,
                m.flags
            )
        };
        match self {
            Violation::OutsideRegions(m) => {
                write!(f, "mapping outside every region: ")?;
                range(f, m)
            }
            Violation::MustBeUnmapped(m, region) => {
                write!(f, "mapping in {region}, which must be unmapped there: ")?;
                range(f, m)
            }
            Violation::WrongFlags(m, region) => {
                write!(f, "flags not allowed in {region}: ")?;
                range(f, m)
            }
            Violation::WrongPhysical(m, region) => {
                write!(f, "{region} maps the wrong physical address: ")?;
                range(f, m)
            }
            Violation::WriteExecute(m) => {
                write!(f, "writable and executable: ")?;
                range(f, m)
            }
            Violation::UserInKernel(m) => {
                write!(f, "user-accessible kernel page: ")?;
                range(f, m)
            }
        }
    }
}

/// Checks one mapped range against `regions` (the first region containing
/// an address is the one that applies), reporting each violation. `image`
/// gives the kernel image's sections; `kernel_start` is where the kernel
/// half begins. Ranges are split at region and section boundaries, so a
/// coalesced range spanning several regions is judged piece by piece.
pub fn check(
    regions: &[Region],
    image: &ImageSections,
    kernel_start: u64,
    mapping: &MappedRange,
    report: &mut dyn FnMut(Violation),
) {
    if mapping.flags.is_write_execute() {
        report(Violation::WriteExecute(*mapping));
    }
    if mapping.virt >= kernel_start && mapping.flags.contains(MapFlags::USER) {
        report(Violation::UserInKernel(*mapping));
    }
    let mut virt = mapping.virt;
    let end = mapping.virt_end();
    while virt < end {
        let piece_phys = mapping.phys + (virt - mapping.virt);
        let applies = |r: &&Region| {
            r.contains(virt)
                && !(matches!(r.contents, Contents::KernelImage { .. }) && virt >= image.end())
        };
        let Some(region) = regions.iter().find(applies) else {
            // Up to the next region's start, if any.
            let next = regions
                .iter()
                .map(|r| r.start)
                .filter(|&s| s > virt)
                .min()
                .unwrap_or(end);
            let piece = MappedRange {
                virt,
                phys: piece_phys,
                size: next.min(end) - virt,
                ..*mapping
            };
            report(Violation::OutsideRegions(piece));
            virt = next.min(end);
            continue;
        };
        // Within a region, pieces end at the region's end or, in the image,
        // at the next section boundary.
        let mut piece_end = region.end.min(end);
        if let Contents::KernelImage { .. } = region.contents {
            piece_end = piece_end.min(image.end());
            let bounds = [image.text, image.rodata, image.data]
                .into_iter()
                .chain(image.guards.iter().copied())
                .flat_map(|(a, b)| [a, b]);
            if let Some(boundary) = bounds.filter(|&b| b > virt && b < piece_end).min() {
                piece_end = boundary;
            }
        }
        // An earlier-listed region starting inside this piece takes over there.
        if let Some(next) = regions
            .iter()
            .map(|r| r.start)
            .filter(|&s| s > virt && s < piece_end)
            .min()
        {
            piece_end = next;
        }
        let piece = MappedRange {
            virt,
            phys: piece_phys,
            size: piece_end - virt,
            ..*mapping
        };
        match region.contents {
            Contents::Unmapped => report(Violation::MustBeUnmapped(piece, region.name)),
            Contents::KernelImage { phys_offset } => match image.expected(virt) {
                None => report(Violation::MustBeUnmapped(piece, region.name)),
                Some(flags) => {
                    if piece.flags != flags {
                        report(Violation::WrongFlags(piece, region.name));
                    }
                    if piece.virt.wrapping_sub(piece.phys) != phys_offset {
                        report(Violation::WrongPhysical(piece, region.name));
                    }
                }
            },
            Contents::Linear { phys_offset, flags } => {
                if piece.flags != flags {
                    report(Violation::WrongFlags(piece, region.name));
                }
                if piece.virt.wrapping_sub(piece.phys) != phys_offset {
                    report(Violation::WrongPhysical(piece, region.name));
                }
            }
            Contents::Dynamic { allowed } => {
                if !allowed.contains(&piece.flags) {
                    report(Violation::WrongFlags(piece, region.name));
                }
            }
        }
        virt = piece_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL: u64 = 0x8000_0000;
    const REGIONS: [Region; 4] = [
        Region {
            name: "image",
            start: 0xc001_0000,
            end: 0xc100_0000,
            contents: Contents::KernelImage {
                phys_offset: 0x4000_0000,
            },
            note: "",
        },
        Region {
            name: "direct map",
            start: 0xc000_0000,
            end: 0xffff_ffff,
            contents: Contents::Linear {
                phys_offset: 0x4000_0000,
                flags: MapFlags::KERNEL_RW,
            },
            note: "",
        },
        Region {
            name: "mmio",
            start: 0xb000_0000,
            end: 0xb800_0000,
            contents: Contents::Dynamic {
                allowed: &[MapFlags::KERNEL_DEVICE],
            },
            note: "",
        },
        Region {
            name: "null",
            start: 0,
            end: 0x20_0000,
            contents: Contents::Unmapped,
            note: "",
        },
    ];
    const IMAGE: ImageSections = ImageSections {
        text: (0xc001_0000, 0xc002_0000),
        rodata: (0xc002_0000, 0xc003_0000),
        data: (0xc003_0000, 0xc005_0000),
        guards: &[(0xc004_0000, 0xc004_1000)],
    };

    fn violations(m: MappedRange) -> Vec<Violation> {
        let mut found = Vec::new();
        check(&REGIONS, &IMAGE, KERNEL, &m, &mut |v| found.push(v));
        found
    }

    fn range(virt: u64, size: u64, flags: MapFlags) -> MappedRange {
        MappedRange {
            virt,
            phys: virt.wrapping_sub(0x4000_0000),
            size,
            flags,
            page_size: 0x1000,
        }
    }

    #[test]
    fn past_the_image_the_direct_map_applies() {
        // RAM right after the image, inside the image region's window.
        assert!(violations(range(0xc005_0000, 0x10_0000, MapFlags::KERNEL_RW)).is_empty());
        // One range covering image data and the RAM after it.
        assert!(violations(range(0xc004_1000, 0x2_0000, MapFlags::KERNEL_RW)).is_empty());
    }

    #[test]
    fn a_correct_kernel_passes() {
        assert!(violations(range(0xc001_0000, 0x1_0000, MapFlags::KERNEL_RX)).is_empty());
        assert!(violations(range(0xc002_0000, 0x1_0000, MapFlags::KERNEL_RO)).is_empty());
        assert!(violations(range(0xc003_0000, 0x1_0000, MapFlags::KERNEL_RW)).is_empty());
        assert!(violations(range(0xc004_1000, 0xf000, MapFlags::KERNEL_RW)).is_empty());
        assert!(violations(range(0xc000_0000, 0x1_0000, MapFlags::KERNEL_RW)).is_empty());
        let device = MappedRange {
            virt: 0xb000_0000,
            phys: 0x1c09_0000,
            size: 0x1000,
            flags: MapFlags::KERNEL_DEVICE,
            page_size: 0x1000,
        };
        assert!(violations(device).is_empty());
    }

    #[test]
    fn each_kind_of_mistake_is_named() {
        // Writable text, spanning into rodata: both pieces are wrong.
        let v = violations(range(0xc001_f000, 0x2000, MapFlags::KERNEL_RW));
        assert!(
            matches!(v[..], [Violation::WrongFlags(a, "image"), Violation::WrongFlags(b, "image")] if a.size == 0x1000 && b.virt == 0xc002_0000)
        );
        // W+X anywhere.
        assert!(
            violations(range(
                0xc000_0000,
                0x1000,
                MapFlags::KERNEL_RW | MapFlags::EXECUTE
            ))
            .contains(&Violation::WriteExecute(range(
                0xc000_0000,
                0x1000,
                MapFlags::KERNEL_RW | MapFlags::EXECUTE
            )))
        );
        // A mapped guard page.
        assert!(matches!(
            violations(range(0xc004_0000, 0x1000, MapFlags::KERNEL_RW))[..],
            [Violation::MustBeUnmapped(_, "image")]
        ));
        // Cached MMIO.
        let cached = MappedRange {
            virt: 0xb000_0000,
            phys: 0x1c09_0000,
            size: 0x1000,
            flags: MapFlags::KERNEL_RW,
            page_size: 0x1000,
        };
        assert!(matches!(
            violations(cached)[..],
            [Violation::WrongFlags(_, "mmio")]
        ));
        // Direct map pointing at the wrong frame.
        let shifted = MappedRange {
            phys: 0x9000_0000,
            ..range(0xc000_0000, 0x1000, MapFlags::KERNEL_RW)
        };
        assert!(matches!(
            violations(shifted)[..],
            [Violation::WrongPhysical(_, "direct map")]
        ));
        // User-accessible kernel page.
        let user = range(0xc000_0000, 0x1000, MapFlags::KERNEL_RW | MapFlags::USER);
        assert!(violations(user).contains(&Violation::UserInKernel(user)));
        // Null page, and a hole between regions.
        assert!(matches!(
            violations(range(0x1000, 0x1000, MapFlags::KERNEL_RW))[..],
            [Violation::MustBeUnmapped(_, "null")]
        ));
        let hole = MappedRange {
            virt: 0x9000_0000,
            phys: 0,
            size: 0x1000,
            flags: MapFlags::KERNEL_RW,
            page_size: 0x1000,
        };
        assert!(matches!(
            violations(hole)[..],
            [Violation::OutsideRegions(_)]
        ));
    }
}
