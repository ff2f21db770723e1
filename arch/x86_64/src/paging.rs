//! x86_64 four-level page tables: translating portable mapping flags to
//! page-table flags and back, and walking a hierarchy to list what it maps.
//!
//! The walker reads tables through [`PhysRead`], so the kernel walks its own
//! tables through the direct map and host tools walk a guest's tables from
//! a copy of its RAM. Table entries are the `x86_64` crate's types.

use hal::mm::{MapError, MapFlags, MappedRange};
use x86_64::structures::paging::PageTableFlags as F;

/// Entries per table.
pub const ENTRIES: usize = 512;
/// Bytes mapped by one entry at each level (index 0 = PT .. 3 = PML4).
pub const ENTRY_SPAN: [u64; 4] = [1 << 12, 1 << 21, 1 << 30, 1 << 39];
/// Physical address bits of an entry (bits 12..51).
pub const ADDRESS_MASK: u64 = 0x000f_ffff_ffff_f000;
/// The first PML4 index of the kernel half.
pub const KERNEL_HALF_FIRST_INDEX: usize = 256;

/// Leaf-entry flags for `flags`. Refuses what the kernel never maps:
/// unreadable, writable and executable (W^X holds for every mapping),
/// executable device memory.
pub fn leaf_flags(flags: MapFlags) -> Result<F, MapError> {
    flags.check_encodable()?;
    let mut leaf = F::PRESENT;
    if flags.contains(MapFlags::WRITE) {
        leaf |= F::WRITABLE;
    }
    if flags.contains(MapFlags::USER) {
        leaf |= F::USER_ACCESSIBLE;
    }
    if !flags.contains(MapFlags::EXECUTE) {
        leaf |= F::NO_EXECUTE;
    }
    if flags.contains(MapFlags::GLOBAL) {
        leaf |= F::GLOBAL;
    }
    if flags.contains(MapFlags::DEVICE) {
        // PCD and PWT select PAT entry 3, uncached, in the default PAT.
        leaf |= F::NO_CACHE | F::WRITE_THROUGH;
    }
    Ok(leaf)
}

/// Flags for intermediate tables: permissive, so the leaf decides (x86 takes
/// the most restrictive combination along the walk).
pub fn table_flags(user: bool) -> F {
    if user {
        F::PRESENT | F::WRITABLE | F::USER_ACCESSIBLE
    } else {
        F::PRESENT | F::WRITABLE
    }
}

/// The effective flags of a mapping whose entries along the walk have
/// `path` flags (top level first, leaf last).
pub fn effective_flags(path: &[F]) -> MapFlags {
    let all = |flag| path.iter().all(|f| f.contains(flag));
    let leaf = path.last().copied().unwrap_or(F::empty());
    let mut flags = MapFlags::READ;
    if all(F::WRITABLE) {
        flags |= MapFlags::WRITE;
    }
    if all(F::USER_ACCESSIBLE) {
        flags |= MapFlags::USER;
    }
    if !path.iter().any(|f| f.contains(F::NO_EXECUTE)) {
        flags |= MapFlags::EXECUTE;
    }
    if leaf.contains(F::GLOBAL) {
        flags |= MapFlags::GLOBAL;
    }
    // With the default PAT: PCD is uncached, PWT alone write-through.
    if leaf.contains(F::NO_CACHE) {
        flags |= MapFlags::DEVICE;
    } else if leaf.contains(F::WRITE_THROUGH) {
        flags |= MapFlags::WRITE_THROUGH;
    }
    flags
}

/// Reads 64-bit words of physical memory.
pub trait PhysRead {
    /// The word at `paddr` (8-byte aligned), or `None` if unreadable.
    fn read_u64(&self, paddr: u64) -> Option<u64>;
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A table lies outside readable memory.
    Unreadable(u64),
    /// More tables than the limit: the hierarchy is corrupt (for example,
    /// tables that refer to each other in a cycle).
    TooManyTables(usize),
}

impl core::fmt::Display for WalkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WalkError::Unreadable(paddr) => write!(f, "page table at {paddr:#x} is not readable"),
            WalkError::TooManyTables(n) => {
                write!(f, "more than {n} page tables: corrupt hierarchy")
            }
        }
    }
}

/// The canonical virtual address of PML4 index `index`.
pub const fn pml4_base(index: usize) -> u64 {
    let addr = (index as u64) << 39;
    if index >= KERNEL_HALF_FIRST_INDEX {
        addr | 0xffff_0000_0000_0000
    } else {
        addr
    }
}

struct Walk<'a, R: PhysRead> {
    memory: &'a R,
    tables_left: usize,
    limit: usize,
    pending: Option<MappedRange>,
    emit: &'a mut dyn FnMut(MappedRange),
}

impl<R: PhysRead> Walk<'_, R> {
    fn push(&mut self, range: MappedRange) {
        match &mut self.pending {
            Some(pending) if pending.continued_by(&range) => pending.size += range.size,
            pending => {
                if let Some(done) = pending.replace(range) {
                    (self.emit)(done);
                }
            }
        }
    }

    /// Visits the table at `table` (level 3 = PML4), covering virtual
    /// addresses from `base`, with the flags of the entries above it.
    fn table(
        &mut self,
        table: u64,
        level: usize,
        base: u64,
        indices: (usize, usize),
        path: &mut [F; 4],
    ) -> Result<(), WalkError> {
        if self.tables_left == 0 {
            return Err(WalkError::TooManyTables(self.limit));
        }
        self.tables_left -= 1;
        for index in indices.0..indices.1 {
            let entry = self
                .memory
                .read_u64(table + index as u64 * 8)
                .ok_or(WalkError::Unreadable(table))?;
            let flags = F::from_bits_truncate(entry);
            if !flags.contains(F::PRESENT) {
                continue;
            }
            let virt = if level == 3 {
                pml4_base(index)
            } else {
                base + index as u64 * ENTRY_SPAN[level]
            };
            path[3 - level] = flags;
            let leaf = level == 0 || (level < 3 && flags.contains(F::HUGE_PAGE));
            if leaf {
                let span = ENTRY_SPAN[level];
                // Large pages keep PAT in bit 12; their frame is span-aligned.
                let phys = entry & ADDRESS_MASK & !(span - 1);
                self.push(MappedRange {
                    virt,
                    phys,
                    size: span,
                    flags: effective_flags(&path[..=3 - level]),
                    page_size: span,
                });
            } else {
                self.table(entry & ADDRESS_MASK, level - 1, virt, (0, ENTRIES), path)?;
            }
        }
        Ok(())
    }
}

/// Lists the mappings under the PML4 at `root`, for PML4 entries in
/// `indices` (for example `256..512` for the kernel half), as coalesced
/// ranges in address order. At most `max_tables` tables are read.
pub fn walk(
    memory: &impl PhysRead,
    root: u64,
    indices: core::ops::Range<usize>,
    max_tables: usize,
    emit: &mut dyn FnMut(MappedRange),
) -> Result<(), WalkError> {
    let mut walk = Walk {
        memory,
        tables_left: max_tables,
        limit: max_tables,
        pending: None,
        emit,
    };
    let mut path = [F::empty(); 4];
    let indices = (indices.start.min(ENTRIES), indices.end.min(ENTRIES));
    let result = walk.table(root, 3, 0, indices, &mut path);
    if let Some(last) = walk.pending.take() {
        (walk.emit)(last);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use x86_64::structures::paging::mapper::{Mapper, OffsetPageTable};
    use x86_64::structures::paging::{
        FrameAllocator, Page, PageTable, PhysFrame, Size2MiB, Size4KiB,
    };
    use x86_64::{PhysAddr, VirtAddr};

    /// Guest physical memory on the host: `frames` 4 KiB frames from 0.
    struct Ram {
        frames: Vec<PageTable>,
        next_free: usize,
    }

    impl Ram {
        fn new(frames: usize) -> Ram {
            Ram {
                frames: (0..frames).map(|_| PageTable::new()).collect(),
                next_free: 1,
            }
        }
        fn offset(&self) -> VirtAddr {
            VirtAddr::from_ptr(self.frames.as_ptr())
        }
        fn mapper(&mut self) -> OffsetPageTable<'static> {
            let offset = self.offset();
            // SAFETY: frame 0 is the PML4; all frames are addressed through
            // the buffer at `offset`, which outlives the test's use of it.
            unsafe { OffsetPageTable::new(&mut *(self.frames.as_mut_ptr()), offset) }
        }
    }

    impl PhysRead for Ram {
        fn read_u64(&self, paddr: u64) -> Option<u64> {
            let table = self.frames.get((paddr / 4096) as usize)?;
            Some(
                table[(paddr % 4096 / 8) as usize].addr().as_u64()
                    | table[(paddr % 4096 / 8) as usize].flags().bits(),
            )
        }
    }

    struct Frames<'a>(&'a mut usize, usize);

    // SAFETY: hands out each frame of the test RAM once.
    unsafe impl FrameAllocator<Size4KiB> for Frames<'_> {
        fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
            (*self.0 < self.1).then(|| {
                *self.0 += 1;
                PhysFrame::containing_address(PhysAddr::new((*self.0 as u64 - 1) * 4096))
            })
        }
    }

    fn all_ranges(ram: &Ram, indices: core::ops::Range<usize>) -> Vec<MappedRange> {
        let mut out = Vec::new();
        walk(ram, 0, indices, 1000, &mut |r| out.push(r)).unwrap();
        out
    }

    #[test]
    fn walker_reads_back_what_the_mapper_wrote() {
        let mut ram = Ram::new(64);
        let mut next = ram.next_free;
        let count = ram.frames.len();
        let mut mapper = ram.mapper();
        let mut frames = Frames(&mut next, count);
        let kernel = 0xffff_8000_0000_0000u64;
        // Two adjacent 4 KiB kernel pages, physically contiguous: one range.
        for i in 0..2u64 {
            let page = Page::<Size4KiB>::containing_address(VirtAddr::new(kernel + i * 4096));
            let frame = PhysFrame::containing_address(PhysAddr::new(0x10_0000 + i * 4096));
            let flags = leaf_flags(MapFlags::KERNEL_RW).unwrap();
            // SAFETY: test tables only.
            unsafe {
                mapper.map_to_with_table_flags(page, frame, flags, table_flags(false), &mut frames)
            }
            .unwrap()
            .ignore();
        }
        // A 2 MiB device page and a user code page.
        let big = Page::<Size2MiB>::containing_address(VirtAddr::new(kernel + (1 << 30)));
        let flags = leaf_flags(MapFlags::KERNEL_DEVICE).unwrap();
        // SAFETY: test tables only.
        unsafe {
            mapper.map_to_with_table_flags(
                big,
                PhysFrame::containing_address(PhysAddr::new(0xfe00_0000)),
                flags,
                table_flags(false),
                &mut frames,
            )
        }
        .unwrap()
        .ignore();
        let user = Page::<Size4KiB>::containing_address(VirtAddr::new(0x20_1000));
        let flags = leaf_flags(MapFlags::USER_RX).unwrap();
        // SAFETY: test tables only.
        unsafe {
            mapper.map_to_with_table_flags(
                user,
                PhysFrame::containing_address(PhysAddr::new(0x30_0000)),
                flags,
                table_flags(true),
                &mut frames,
            )
        }
        .unwrap()
        .ignore();

        let kernel_ranges = all_ranges(&ram, 256..512);
        assert_eq!(
            kernel_ranges,
            vec![
                MappedRange {
                    virt: kernel,
                    phys: 0x10_0000,
                    size: 0x2000,
                    flags: MapFlags::KERNEL_RW,
                    page_size: 4096
                },
                MappedRange {
                    virt: kernel + (1 << 30),
                    phys: 0xfe00_0000,
                    size: 1 << 21,
                    flags: MapFlags::KERNEL_DEVICE,
                    page_size: 1 << 21
                },
            ]
        );
        assert_eq!(
            all_ranges(&ram, 0..256),
            vec![MappedRange {
                virt: 0x20_1000,
                phys: 0x30_0000,
                size: 4096,
                flags: MapFlags::USER_RX,
                page_size: 4096
            }]
        );
    }

    #[test]
    fn flags_round_trip_through_entries() {
        for flags in [
            MapFlags::KERNEL_RO,
            MapFlags::KERNEL_RW,
            MapFlags::KERNEL_RX,
            MapFlags::KERNEL_DEVICE,
            MapFlags::USER_RO,
            MapFlags::USER_RW,
            MapFlags::USER_RX,
        ] {
            let leaf = leaf_flags(flags).unwrap();
            let path = [table_flags(flags.contains(MapFlags::USER)); 3];
            assert_eq!(effective_flags(&[path[0], path[1], path[2], leaf]), flags);
        }
        assert_eq!(leaf_flags(MapFlags::WRITE), Err(MapError::BadFlags));
        assert_eq!(
            leaf_flags(MapFlags::KERNEL_DEVICE | MapFlags::EXECUTE),
            Err(MapError::BadFlags)
        );
        assert_eq!(
            leaf_flags(MapFlags::KERNEL_RW | MapFlags::EXECUTE),
            Err(MapError::BadFlags)
        );
    }

    #[test]
    fn effective_flags_take_the_most_restrictive_path() {
        let leaf = leaf_flags(MapFlags::USER_RW).unwrap();
        // A read-only, kernel-only directory above makes the page kernel read-only.
        let restrictive = F::PRESENT | F::NO_EXECUTE;
        assert_eq!(
            effective_flags(&[table_flags(true), restrictive, table_flags(true), leaf]),
            MapFlags::READ
        );
    }

    #[test]
    fn cycles_and_bad_pointers_are_reported() {
        let mut ram = Ram::new(4);
        // Every entry of the PML4 points back at it: read as a hierarchy,
        // that is 512^3 tables. The limit stops the walk.
        let flags = table_flags(false);
        for i in 0..ENTRIES {
            ram.frames[0][i].set_addr(PhysAddr::new(0), flags);
        }
        assert_eq!(
            walk(&ram, 0, 0..512, 100, &mut |_| {}),
            Err(WalkError::TooManyTables(100))
        );
        // PML4[1] points beyond RAM.
        let mut ram = Ram::new(4);
        ram.frames[0][1].set_addr(PhysAddr::new(0x4000_0000), flags);
        assert_eq!(
            walk(&ram, 0, 0..512, 100, &mut |_| {}),
            Err(WalkError::Unreadable(0x4000_0000))
        );
    }

    /// Raw words: RAM of `frames` frames holding anything at all.
    struct RawRam(Vec<u64>);

    impl PhysRead for RawRam {
        fn read_u64(&self, paddr: u64) -> Option<u64> {
            self.0.get(usize::try_from(paddr / 8).ok()?).copied()
        }
    }

    #[test]
    fn hostile_tables_end_the_walk_with_an_error_or_a_bounded_map() {
        // Random words in a small RAM: entries point anywhere (beyond RAM,
        // back up the hierarchy, at themselves), with any flags. Every
        // walk must end, within the table limit, without panicking, and
        // report only ranges that lie in the address space it walked.
        let mut rng = hal::rand::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = || rng.next();
        for round in 0..300 {
            let frames = 8;
            let mut words: Vec<u64> = (0..frames * 512).map(|_| next()).collect();
            // Keep most addresses inside the RAM, so walks go deep.
            for word in words.iter_mut() {
                if *word % 4 != 0 {
                    *word = (*word & !ADDRESS_MASK) | (*word % frames as u64) << 12;
                }
            }
            let ram = RawRam(words);
            let mut ranges = 0usize;
            let result = walk(
                &ram,
                (round % frames) as u64 * 4096,
                0..512,
                200,
                &mut |r| {
                    assert!(r.size > 0);
                    ranges += 1;
                },
            );
            match result {
                Ok(()) | Err(WalkError::TooManyTables(200)) | Err(WalkError::Unreadable(_)) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
            assert!(ranges <= 200 * 512);
        }
    }
}
