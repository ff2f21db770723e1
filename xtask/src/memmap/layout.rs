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

    /// The region `addr` is in (the first listed that contains it), where the kernel image's region counts
    /// only up to the image's real end (`image_end`): past it, on ARM,
    /// the image's window is the direct map.
    fn region_for_label(&self, addr: u64, image_end: u64) -> Option<&'static Region> {
        self.virtual_regions.iter().find(|r| {
            r.contains(addr)
                && !(matches!(r.contents, Contents::KernelImage { .. }) && addr >= image_end)
        })
    }

    /// `range` cut where the region it is in changes, each piece with the
    /// name of its region (see `region_for_label`), so that no line of a
    /// listing is named after a region it only starts in.
    pub fn label_pieces(
        &self,
        range: &MappedRange,
        image_end: u64,
    ) -> Vec<(MappedRange, &'static str)> {
        let end = range.virt_end();
        let mut cuts: Vec<u64> = self
            .virtual_regions
            .iter()
            .flat_map(|r| [r.start, r.end])
            .chain([image_end])
            .filter(|&c| range.virt < c && c < end)
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces: Vec<(MappedRange, &'static str)> = Vec::new();
        let mut start = range.virt;
        for stop in cuts.into_iter().chain([end]) {
            let piece = MappedRange {
                virt: start,
                phys: range.phys + (start - range.virt),
                size: stop - start,
                ..*range
            };
            let name = self
                .region_for_label(start, image_end)
                .map_or("(none)", |r| r.name);
            // Neighbouring pieces in the same region stay one line.
            match pieces.last_mut() {
                Some((last, last_name)) if *last_name == name => last.size += piece.size,
                _ => pieces.push((piece, name)),
            }
            start = stop;
        }
        pieces
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

#[cfg(test)]
mod tests {
    use super::*;
    use hal::mm::MapFlags;

    #[test]
    fn the_direct_map_past_the_arm_image_is_labelled_as_such() {
        let layout = ArchLayout::of(Arch::Arm);
        let image_end = 0xc020_0000;
        // One linear run from inside the image past its end and its window.
        let range = MappedRange {
            virt: 0xc010_0000,
            phys: 0x8010_0000,
            size: 0x0800_0000,
            flags: MapFlags::KERNEL_RW,
            page_size: 0x10_0000,
        };
        let pieces = layout.label_pieces(&range, image_end);
        let names: Vec<&str> = pieces.iter().map(|(_, n)| *n).collect();
        assert_eq!(names, ["kernel image", "direct map"]);
        let (first, second) = (&pieces[0].0, &pieces[1].0);
        assert_eq!((first.virt, first.virt_end()), (0xc010_0000, image_end));
        assert_eq!((second.virt, second.phys), (image_end, 0x8020_0000));
        assert_eq!(second.virt_end(), range.virt_end());
        // A range inside one region stays whole.
        let inside = MappedRange {
            virt: 0xd000_0000,
            ..range
        };
        assert_eq!(layout.label_pieces(&inside, image_end).len(), 1);
    }
}
