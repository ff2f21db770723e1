//! What the inspector needs to know of each architecture, all taken from
//! the architecture libraries: the canonical layout, how the kernel image
//! is placed, and how to walk its tables.

use super::ram::Ram;
use crate::machine::Arch;
use hal::layout::{Contents, ImageSymbols, PhysicalRegion, Region};
use hal::mm::MappedRange;

/// Tables a walk may read before the hierarchy counts as corrupt (a full
/// x86_64 space of 4 KiB pages over a few GiB needs far fewer).
pub const MAX_TABLES: usize = 20_000;

pub struct ArchLayout {
    pub virtual_regions: &'static [Region],
    pub physical_regions: &'static [PhysicalRegion],
    pub image_symbols: ImageSymbols,
    /// Kernel virtual address minus physical, for the image.
    pub image_offset: u64,
    /// First address of the kernel half.
    pub kernel_start: u64,
    /// Hex digits in a virtual address.
    pub digits: usize,
}

impl ArchLayout {
    pub fn of(arch: Arch) -> ArchLayout {
        match arch {
            Arch::X64 => {
                use arch_x86_64::layout as l;
                ArchLayout {
                    virtual_regions: l::VIRTUAL,
                    physical_regions: l::PHYSICAL,
                    image_symbols: l::IMAGE_SYMBOLS,
                    image_offset: l::KERNEL_VIRT_OFFSET,
                    kernel_start: l::KERNEL_SPACE_START,
                    digits: 16,
                }
            }
            Arch::Arm => {
                use arch_armv7::layout as l;
                ArchLayout {
                    virtual_regions: l::VIRTUAL,
                    physical_regions: l::PHYSICAL,
                    image_symbols: l::IMAGE_SYMBOLS,
                    image_offset: l::KERNEL_VIRT_OFFSET as u64,
                    kernel_start: l::KERNEL_SPACE_START as u64,
                    digits: 8,
                }
            }
        }
    }

    /// The linear (direct-map) region: its range, offset and flags.
    pub fn direct_map(&self) -> Option<&'static Region> {
        self.virtual_regions
            .iter()
            .find(|r| matches!(r.contents, Contents::Linear { .. }))
    }

    /// The kernel image's region.
    pub fn image_region(&self) -> Option<&'static Region> {
        self.virtual_regions
            .iter()
            .find(|r| matches!(r.contents, Contents::KernelImage { .. }))
    }

    /// The region `addr` falls in (the first listed that contains it).
    pub fn region_of(&self, addr: u64) -> Option<&'static Region> {
        self.virtual_regions.iter().find(|r| r.contains(addr))
    }
}

/// Which half of an address space a walk covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Half {
    Kernel,
    User,
}

/// Walks the tables at `root` for `half`, returning coalesced ranges in
/// address order, or why the walk stopped (with what was found before).
pub fn walk(arch: Arch, ram: &Ram, root: u64, half: Half) -> (Vec<MappedRange>, Option<String>) {
    let mut ranges = Vec::new();
    let result = match arch {
        Arch::X64 => {
            let first_kernel = arch_x86_64::paging::KERNEL_HALF_FIRST_INDEX;
            let indices = match half {
                Half::Kernel => first_kernel..512,
                Half::User => 0..first_kernel,
            };
            arch_x86_64::paging::walk(ram, root, indices, MAX_TABLES, &mut |r| ranges.push(r))
                .map_err(|e| e.to_string())
        }
        Arch::Arm => {
            use arch_armv7::layout as l;
            let Ok(l1) = u32::try_from(root) else {
                return (ranges, Some(format!("root {root:#x} beyond 32 bits")));
            };
            let indices = match half {
                Half::Kernel => (l::KERNEL_SPACE_START >> 20, 4096),
                Half::User => (0, l::USER_END >> 20),
            };
            let tables = arch_armv7::mmu::Tables { l1, indices };
            arch_armv7::mmu::walk(&tables, ram, &mut |r| ranges.push(r)).map_err(|e| e.to_string())
        }
    };
    (ranges, result.err())
}
