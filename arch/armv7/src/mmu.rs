//! VMSAv7 short-descriptor translation tables: entry encodings, a mapper
//! and a walker.
//!
//! Written here: `aarch32-cpu` describes only L1 section entries and builds
//! only for ARM targets, while host tools decode tables too. The kernel runs
//! with TEX remap off (SCTLR.TRE = 0) and the access flag off (SCTLR.AFE =
//! 0), so TEX/C/B and AP\[2:0\] mean what the tables say.
//!
//! Tables are reached through [`TableMemory`], so the same code edits the
//! kernel's live tables (through the direct map) and test tables on the
//! host. L2 tables are 1 KiB; one 4 KiB frame holds the four L2 tables of a
//! 4 MiB-aligned group of L1 entries, so no side bookkeeping is needed.

use hal::mm::{FrameSource, MapError, MapFlags, MappedRange, Translation};

/// Size of a section (an L1 entry's span).
pub const SECTION_SIZE: u32 = 1 << 20;
/// Size of a small page.
pub const PAGE_SIZE: u32 = 4096;
/// Entries in an L2 table.
pub const L2_ENTRIES: u32 = 256;
/// Bytes in an L2 table.
pub const L2_TABLE_SIZE: u32 = L2_ENTRIES * 4;
/// TTBR0/TTBR1 walk attributes: inner and outer write-back write-allocate
/// (IRGN = 01 as bits 6 and 0, RGN = 01 at bits 4:3), non-shareable.
pub const TTBR_WALK_WRITE_BACK: u32 = 0x48;

/// Memory attributes and permissions, as the bits both L1 sections and L2
/// small pages carry (at different positions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Attributes {
    apx: bool,
    ap: u32,
    tex: u32,
    c: bool,
    b: bool,
    shareable: bool,
    execute_never: bool,
    not_global: bool,
}

impl Attributes {
    /// Refuses what the kernel never maps: unreadable, writable and
    /// executable (W^X holds for every mapping), executable device memory.
    fn from_flags(flags: MapFlags) -> Result<Attributes, MapError> {
        flags.check_encodable()?;
        let (apx, ap) = match (
            flags.contains(MapFlags::USER),
            flags.contains(MapFlags::WRITE),
        ) {
            (false, true) => (false, 0b01),
            (false, false) => (true, 0b01),
            (true, true) => (false, 0b11),
            (true, false) => (true, 0b11),
        };
        let device = flags.contains(MapFlags::DEVICE);
        Ok(Attributes {
            apx,
            ap,
            // Normal: TEX=001 C B = write-back write-allocate. Device: TEX=000
            // C=0 B=1 = shareable device.
            tex: if device { 0b000 } else { 0b001 },
            c: !device,
            b: true,
            shareable: !device,
            execute_never: !flags.contains(MapFlags::EXECUTE),
            not_global: !flags.contains(MapFlags::GLOBAL),
        })
    }

    /// The portable flags; `None` for combinations the kernel never writes.
    fn to_flags(self) -> Option<MapFlags> {
        let mut flags = match (self.apx, self.ap) {
            (false, 0b01) => MapFlags::READ | MapFlags::WRITE,
            (true, 0b01) => MapFlags::READ,
            (false, 0b11) => MapFlags::READ | MapFlags::WRITE | MapFlags::USER,
            (true, 0b11) => MapFlags::READ | MapFlags::USER,
            _ => return None,
        };
        match (self.tex, self.c, self.b) {
            // Write-back (with or without write-allocate).
            (0b001, true, true) | (0b000, true, true) => {}
            (0b000, true, false) => flags |= MapFlags::WRITE_THROUGH,
            // Shareable device, strongly ordered, normal non-cacheable.
            (0b000, false, true) | (0b000, false, false) | (0b001, false, false) => {
                flags |= MapFlags::DEVICE
            }
            _ => return None,
        }
        if !self.execute_never {
            flags |= MapFlags::EXECUTE;
        }
        if !self.not_global {
            flags |= MapFlags::GLOBAL;
        }
        Some(flags)
    }
}

/// Bit positions of the shared fields in each descriptor format.
struct Layout {
    b: u32,
    c: u32,
    xn: u32,
    ap: u32,
    tex: u32,
    apx: u32,
    s: u32,
    ng: u32,
    kind: u32,
    address_mask: u32,
}

const SECTION_LAYOUT: Layout = Layout {
    b: 2,
    c: 3,
    xn: 4,
    ap: 10,
    tex: 12,
    apx: 15,
    s: 16,
    ng: 17,
    kind: 0b10,
    address_mask: !(SECTION_SIZE - 1),
};

const SMALL_PAGE_LAYOUT: Layout = Layout {
    b: 2,
    c: 3,
    xn: 0,
    ap: 4,
    tex: 6,
    apx: 9,
    s: 10,
    ng: 11,
    kind: 0b10,
    address_mask: !(PAGE_SIZE - 1),
};

fn encode(layout: &Layout, paddr: u32, a: Attributes) -> u32 {
    let bit = |set: bool, pos: u32| (set as u32) << pos;
    (paddr & layout.address_mask)
        | layout.kind
        | bit(a.b, layout.b)
        | bit(a.c, layout.c)
        | bit(a.execute_never, layout.xn)
        | (a.ap << layout.ap)
        | (a.tex << layout.tex)
        | bit(a.apx, layout.apx)
        | bit(a.shareable, layout.s)
        | bit(a.not_global, layout.ng)
}

fn decode(layout: &Layout, entry: u32) -> Attributes {
    let bit = |pos: u32| entry >> pos & 1 != 0;
    Attributes {
        apx: bit(layout.apx),
        ap: entry >> layout.ap & 0b11,
        tex: entry >> layout.tex & 0b111,
        c: bit(layout.c),
        b: bit(layout.b),
        shareable: bit(layout.s),
        execute_never: bit(layout.xn),
        not_global: bit(layout.ng),
    }
}

/// An L1 entry, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L1Entry {
    /// Translation fault.
    Fault,
    /// Points at an L2 table.
    PageTable(u32),
    /// Maps 1 MiB; `None` flags for attribute combinations the kernel never
    /// writes.
    Section(u32, Option<MapFlags>),
    /// Maps 16 MiB (decoded, never written).
    Supersection(u32, Option<MapFlags>),
}

/// An L2 entry, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum L2Entry {
    /// Translation fault.
    Fault,
    /// Maps 4 KiB.
    SmallPage(u32, Option<MapFlags>),
    /// Maps 64 KiB (decoded, never written).
    LargePage(u32, Option<MapFlags>),
}

/// The section descriptor's PXN bit (privileged execute-never: the kernel
/// may not execute the memory, whatever its other permissions).
const SECTION_PXN: u32 = 1 << 0;
/// The page-table descriptor's PXN bit, for every page under it.
const PAGE_TABLE_PXN: u32 = 1 << 2;

/// The L1 entry mapping the section at `paddr` with `flags`: user memory
/// is never executable by the kernel (PXN).
pub fn section(paddr: u32, flags: MapFlags) -> Result<u32, MapError> {
    let pxn = if flags.contains(MapFlags::USER) {
        SECTION_PXN
    } else {
        0
    };
    Ok(encode(&SECTION_LAYOUT, paddr, Attributes::from_flags(flags)?) | pxn)
}

/// The L1 entry pointing at the L2 table at `paddr` (1 KiB aligned), in
/// domain 0; with `privileged_execute_never` (the tables of user memory)
/// the kernel may execute none of the pages under it.
pub const fn page_table(paddr: u32, privileged_execute_never: bool) -> u32 {
    let pxn = if privileged_execute_never {
        PAGE_TABLE_PXN
    } else {
        0
    };
    (paddr & !(L2_TABLE_SIZE - 1)) | pxn | 0b01
}

/// Whether the L1 entry denies the kernel execution (PXN).
pub fn privileged_execute_never(entry: u32) -> bool {
    match entry & 0b11 {
        0b01 => entry & PAGE_TABLE_PXN != 0,
        0b10 | 0b11 => entry & SECTION_PXN != 0,
        _ => false,
    }
}

/// The L2 entry mapping the page at `paddr` with `flags`.
pub fn small_page(paddr: u32, flags: MapFlags) -> Result<u32, MapError> {
    Ok(encode(&SMALL_PAGE_LAYOUT, paddr, Attributes::from_flags(flags)?) | 0b10)
}

/// Decodes an L1 entry.
pub fn decode_l1(entry: u32) -> L1Entry {
    match entry & 0b11 {
        0b01 => L1Entry::PageTable(entry & !(L2_TABLE_SIZE - 1)),
        0b10 | 0b11 if entry & (1 << 18) != 0 => L1Entry::Supersection(
            entry & 0xff00_0000,
            decode(&SECTION_LAYOUT, entry).to_flags(),
        ),
        0b10 | 0b11 => L1Entry::Section(
            entry & !(SECTION_SIZE - 1),
            decode(&SECTION_LAYOUT, entry).to_flags(),
        ),
        _ => L1Entry::Fault,
    }
}

/// Decodes an L2 entry.
pub fn decode_l2(entry: u32) -> L2Entry {
    match entry & 0b11 {
        0b00 => L2Entry::Fault,
        0b01 => {
            // Large page: XN at bit 15, TEX at 14:12; the rest as small pages.
            let mut a = decode(&SMALL_PAGE_LAYOUT, entry);
            a.execute_never = entry & (1 << 15) != 0;
            a.tex = entry >> 12 & 0b111;
            L2Entry::LargePage(entry & 0xffff_0000, a.to_flags())
        }
        _ => L2Entry::SmallPage(
            entry & !(PAGE_SIZE - 1),
            decode(&SMALL_PAGE_LAYOUT, entry).to_flags(),
        ),
    }
}

/// Attributes of the boot mapping of the kernel image: the boot code cannot
/// yet tell text from data, so it is executable until the kernel's own
/// tables replace it.
pub const BOOT_KERNEL_SECTION: u32 = 0x1140e;

/// Read access to the words of translation tables.
pub trait TableRead {
    /// The word at physical `paddr`, or `None` if unreadable.
    fn read_u32(&self, paddr: u32) -> Option<u32>;
}

/// Read and write access to live translation tables.
pub trait TableMemory {
    /// The word at physical `paddr`.
    fn read(&self, paddr: u32) -> u32;
    /// Writes the word at physical `paddr`.
    fn write(&mut self, paddr: u32, value: u32);
    /// A translation of `virt` changed: make it visible (TLB maintenance).
    fn changed(&mut self, virt: u32);
}

/// One L1 table and the part of the address space it translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tables {
    /// Physical address of the L1 table.
    pub l1: u32,
    /// The L1 indices (MiB of virtual address space) it is used for.
    pub indices: (u32, u32),
}

impl Tables {
    fn entry_addr(&self, index: u32) -> u32 {
        self.l1 + index * 4
    }

    fn index_of(&self, virt: u32) -> Result<u32, MapError> {
        let index = virt >> 20;
        if index < self.indices.0 || index >= self.indices.1 {
            return Err(MapError::OutsideSpace);
        }
        Ok(index)
    }
}

fn l2_entry_addr(l2: u32, virt: u32) -> u32 {
    l2 + (virt >> 12 & (L2_ENTRIES - 1)) * 4
}

/// The L2 table for L1 index `index`, creating it if the entry is empty:
/// in the frame already serving its 4 MiB group, or in a new frame.
fn l2_for(
    tables: &Tables,
    memory: &mut impl TableMemory,
    frames: &dyn FrameSource,
    index: u32,
    user: bool,
) -> Result<u32, MapError> {
    match decode_l1(memory.read(tables.entry_addr(index))) {
        L1Entry::PageTable(l2) => return Ok(l2),
        L1Entry::Fault => {}
        _ => return Err(MapError::SizeMismatch),
    }
    let group = index & !3;
    let sibling_frame = (group..group + 4)
        .filter(|&i| i >= tables.indices.0 && i < tables.indices.1)
        .find_map(|i| match decode_l1(memory.read(tables.entry_addr(i))) {
            L1Entry::PageTable(l2) => Some(l2 & !(PAGE_SIZE - 1)),
            _ => None,
        });
    let frame = match sibling_frame {
        Some(frame) => frame,
        None => {
            let frame = frames
                .allocate(1, PAGE_SIZE as usize)
                .ok_or(MapError::OutOfMemory)?;
            u32::try_from(frame).map_err(|_| MapError::OutOfMemory)?
        }
    };
    let l2 = frame + (index & 3) * L2_TABLE_SIZE;
    memory.write(tables.entry_addr(index), page_table(l2, user));
    Ok(l2)
}

fn l2_is_empty(memory: &impl TableMemory, l2: u32) -> bool {
    (0..L2_ENTRIES).all(|i| memory.read(l2 + i * 4) == 0)
}

/// Maps `size` bytes (a page or a section) at `virt` to `phys`.
pub fn map(
    tables: &Tables,
    memory: &mut impl TableMemory,
    frames: &dyn FrameSource,
    virt: u32,
    phys: u64,
    size: usize,
    flags: MapFlags,
) -> Result<(), MapError> {
    let phys = u32::try_from(phys).map_err(|_| MapError::OutsideSpace)?;
    let index = tables.index_of(virt)?;
    match size as u32 {
        SECTION_SIZE => {
            if !virt.is_multiple_of(SECTION_SIZE) || !phys.is_multiple_of(SECTION_SIZE) {
                return Err(MapError::Misaligned);
            }
            let entry = section(phys, flags)?;
            let slot = tables.entry_addr(index);
            match decode_l1(memory.read(slot)) {
                L1Entry::Fault => {}
                // An empty L2 table may give way to a section; its quarter
                // stays zeroed for later reuse.
                L1Entry::PageTable(l2) if l2_is_empty(memory, l2) => {}
                _ => return Err(MapError::AlreadyMapped),
            }
            memory.write(slot, entry);
            memory.changed(virt);
            Ok(())
        }
        PAGE_SIZE => {
            if !virt.is_multiple_of(PAGE_SIZE) || !phys.is_multiple_of(PAGE_SIZE) {
                return Err(MapError::Misaligned);
            }
            let entry = small_page(phys, flags)?;
            let user = flags.contains(MapFlags::USER);
            let l2 = l2_for(tables, memory, frames, index, user)?;
            let slot = l2_entry_addr(l2, virt);
            if memory.read(slot) != 0 {
                return Err(MapError::AlreadyMapped);
            }
            memory.write(slot, entry);
            memory.changed(virt);
            Ok(())
        }
        other => Err(MapError::UnsupportedPageSize(other as usize)),
    }
}

/// Where `virt` leads, if mapped with attributes the kernel understands.
pub fn translate(tables: &Tables, memory: &impl TableMemory, virt: u32) -> Option<Translation> {
    let index = tables.index_of(virt).ok()?;
    match decode_l1(memory.read(tables.entry_addr(index))) {
        L1Entry::Section(base, Some(flags)) => Some(Translation {
            paddr: (base + (virt & (SECTION_SIZE - 1))) as u64,
            flags,
            page_size: SECTION_SIZE as usize,
        }),
        L1Entry::PageTable(l2) => match decode_l2(memory.read(l2_entry_addr(l2, virt))) {
            L2Entry::SmallPage(base, Some(flags)) => Some(Translation {
                paddr: (base + (virt & (PAGE_SIZE - 1))) as u64,
                flags,
                page_size: PAGE_SIZE as usize,
            }),
            _ => None,
        },
        _ => None,
    }
}

/// The slot holding the entry that maps `virt`, and the entry's page size.
fn leaf_slot(
    tables: &Tables,
    memory: &impl TableMemory,
    virt: u32,
) -> Result<(u32, u32), MapError> {
    let index = tables.index_of(virt)?;
    let slot = tables.entry_addr(index);
    match decode_l1(memory.read(slot)) {
        L1Entry::Section(..) => Ok((slot, SECTION_SIZE)),
        L1Entry::PageTable(l2) => {
            let slot = l2_entry_addr(l2, virt);
            match decode_l2(memory.read(slot)) {
                L2Entry::SmallPage(..) => Ok((slot, PAGE_SIZE)),
                L2Entry::Fault => Err(MapError::NotMapped),
                L2Entry::LargePage(..) => Err(MapError::SizeMismatch),
            }
        }
        L1Entry::Fault => Err(MapError::NotMapped),
        L1Entry::Supersection(..) => Err(MapError::SizeMismatch),
    }
}

/// Unmaps the page or section starting at `virt`, returning what it mapped.
/// L2 tables stay (they are freed with the address space).
pub fn unmap(
    tables: &Tables,
    memory: &mut impl TableMemory,
    virt: u32,
) -> Result<Translation, MapError> {
    let (slot, size) = leaf_slot(tables, memory, virt)?;
    if !virt.is_multiple_of(size) {
        return Err(MapError::Misaligned);
    }
    let translation = translate(tables, memory, virt).ok_or(MapError::NotMapped)?;
    memory.write(slot, 0);
    memory.changed(virt);
    Ok(translation)
}

/// Changes the flags of the page or section starting at `virt`.
pub fn protect(
    tables: &Tables,
    memory: &mut impl TableMemory,
    virt: u32,
    flags: MapFlags,
) -> Result<(), MapError> {
    let (slot, size) = leaf_slot(tables, memory, virt)?;
    if !virt.is_multiple_of(size) {
        return Err(MapError::Misaligned);
    }
    let paddr = translate(tables, memory, virt)
        .ok_or(MapError::NotMapped)?
        .paddr as u32;
    let entry = if size == SECTION_SIZE {
        section(paddr, flags)?
    } else {
        small_page(paddr, flags)?
    };
    memory.write(slot, entry);
    memory.changed(virt);
    Ok(())
}

/// Returns the frames holding the L2 tables of `tables` to `frames`, and
/// clears the L1 entries that pointed at them.
pub fn free_l2_tables(tables: &Tables, memory: &mut impl TableMemory, frames: &dyn FrameSource) {
    for group in (tables.indices.0..tables.indices.1).step_by(4) {
        let mut frame = None;
        for index in group..(group + 4).min(tables.indices.1) {
            if let L1Entry::PageTable(l2) = decode_l1(memory.read(tables.entry_addr(index))) {
                frame = Some(l2 & !(PAGE_SIZE - 1));
                memory.write(tables.entry_addr(index), 0);
            }
        }
        if let Some(frame) = frame {
            frames.free(frame as u64, 1);
        }
    }
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// A table word could not be read.
    Unreadable(u32),
}

impl core::fmt::Display for WalkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WalkError::Unreadable(paddr) => {
                write!(f, "translation table word at {paddr:#x} is not readable")
            }
        }
    }
}

/// Lists what `tables` map, as coalesced ranges in address order. Entries
/// with attributes the kernel never writes are reported with empty flags.
/// The walk is bounded by construction: one L1 table, at most one L2 table
/// per L1 entry.
pub fn walk(
    tables: &Tables,
    memory: &impl TableRead,
    emit: &mut dyn FnMut(MappedRange),
) -> Result<(), WalkError> {
    let mut pending: Option<MappedRange> = None;
    let mut push = |range: MappedRange| match &mut pending {
        Some(p) if p.continued_by(&range) => p.size += range.size,
        p => {
            if let Some(done) = p.replace(range) {
                emit(done);
            }
        }
    };
    let read = |paddr: u32| memory.read_u32(paddr).ok_or(WalkError::Unreadable(paddr));
    let mut index = tables.indices.0;
    while index < tables.indices.1 {
        let virt = index << 20;
        match decode_l1(read(tables.entry_addr(index))?) {
            L1Entry::Fault => {}
            L1Entry::Section(base, flags) => push(MappedRange {
                virt: virt as u64,
                phys: base as u64,
                size: SECTION_SIZE as u64,
                flags: flags.unwrap_or(MapFlags::empty()),
                page_size: SECTION_SIZE as u64,
            }),
            L1Entry::Supersection(base, flags) => {
                // Sixteen identical entries map it; report it once.
                let offset = (index & 15) << 20;
                push(MappedRange {
                    virt: virt as u64,
                    phys: (base + offset) as u64,
                    size: SECTION_SIZE as u64,
                    flags: flags.unwrap_or(MapFlags::empty()),
                    page_size: 16 * SECTION_SIZE as u64,
                });
            }
            L1Entry::PageTable(l2) => {
                for i in 0..L2_ENTRIES {
                    let page_virt = virt + i * PAGE_SIZE;
                    match decode_l2(read(l2 + i * 4)?) {
                        L2Entry::Fault => {}
                        L2Entry::SmallPage(base, flags) => push(MappedRange {
                            virt: page_virt as u64,
                            phys: base as u64,
                            size: PAGE_SIZE as u64,
                            flags: flags.unwrap_or(MapFlags::empty()),
                            page_size: PAGE_SIZE as u64,
                        }),
                        L2Entry::LargePage(base, flags) => push(MappedRange {
                            virt: page_virt as u64,
                            phys: (base + (i & 15) * PAGE_SIZE) as u64,
                            size: PAGE_SIZE as u64,
                            flags: flags.unwrap_or(MapFlags::empty()),
                            page_size: 16 * PAGE_SIZE as u64,
                        }),
                    }
                }
            }
        }
        index += 1;
    }
    if let Some(last) = pending {
        emit(last);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    /// Physical memory on the host: sparse words, all zero at first.
    #[derive(Default)]
    struct Memory {
        words: BTreeMap<u32, u32>,
        changed: Vec<u32>,
    }

    impl TableMemory for Memory {
        fn read(&self, paddr: u32) -> u32 {
            *self.words.get(&paddr).unwrap_or(&0)
        }
        fn write(&mut self, paddr: u32, value: u32) {
            self.words.insert(paddr, value);
        }
        fn changed(&mut self, virt: u32) {
            self.changed.push(virt);
        }
    }

    impl TableRead for Memory {
        fn read_u32(&self, paddr: u32) -> Option<u32> {
            Some(self.read(paddr))
        }
    }

    /// Frames from 0x9000_0000 up; remembers what was freed.
    struct Frames {
        next: RefCell<u32>,
        limit: u32,
        freed: RefCell<Vec<u64>>,
    }

    impl Frames {
        fn new(count: u32) -> Frames {
            Frames {
                next: RefCell::new(0x9000_0000),
                limit: 0x9000_0000 + count * PAGE_SIZE,
                freed: RefCell::default(),
            }
        }
        fn used(&self) -> u32 {
            (*self.next.borrow() - 0x9000_0000) / PAGE_SIZE
        }
    }

    impl FrameSource for Frames {
        fn allocate(&self, count: usize, _align: usize) -> Option<u64> {
            let mut next = self.next.borrow_mut();
            let frame = *next;
            let end = frame + count as u32 * PAGE_SIZE;
            (end <= self.limit).then(|| {
                *next = end;
                frame as u64
            })
        }
        fn free(&self, paddr: u64, _count: usize) {
            self.freed.borrow_mut().push(paddr);
        }
    }

    const USER: Tables = Tables {
        l1: 0x8800_0000,
        indices: (0, 0x800),
    };
    const KERNEL: Tables = Tables {
        l1: 0x8804_0000,
        indices: (0x800, 0x1000),
    };

    #[test]
    fn known_encodings() {
        // Writable and executable is refused; the boot code's temporary
        // RWX section is the one exception, encoded directly.
        assert_eq!(
            section(0x8000_0000, MapFlags::KERNEL_RW | MapFlags::EXECUTE),
            Err(MapError::BadFlags)
        );
        let boot = encode(
            &SECTION_LAYOUT,
            0,
            Attributes {
                execute_never: false,
                ..Attributes::from_flags(MapFlags::KERNEL_RW).unwrap()
            },
        );
        assert_eq!(boot, BOOT_KERNEL_SECTION);
        // Device: B, XN, AP=01.
        assert_eq!(
            section(0x1c09_0000, MapFlags::KERNEL_DEVICE),
            Ok(0x1c00_0416)
        );
        // A user read-only, executable small page: APX, AP=11, TEX=001 C B, S, nG.
        assert_eq!(small_page(0x1234_5000, MapFlags::USER_RX), Ok(0x1234_5e7e));
    }

    #[test]
    fn user_memory_is_never_executable_by_the_kernel() {
        let (user, kernel) = (MapFlags::USER_RX, MapFlags::KERNEL_RX);
        assert!(privileged_execute_never(
            section(0x4560_0000, user).unwrap()
        ));
        assert!(!privileged_execute_never(
            section(0x4560_0000, kernel).unwrap()
        ));
        assert!(privileged_execute_never(page_table(0x8000_0400, true)));
        assert!(!privileged_execute_never(page_table(0x8000_0400, false)));
        // PXN leaves the table's address as it was.
        assert_eq!(
            decode_l1(page_table(0x8000_0400, true)),
            L1Entry::PageTable(0x8000_0400)
        );
    }

    #[test]
    fn flags_round_trip_through_both_formats() {
        for flags in [
            MapFlags::KERNEL_RO,
            MapFlags::KERNEL_RW,
            MapFlags::KERNEL_RX,
            MapFlags::KERNEL_DEVICE,
            MapFlags::USER_RO,
            MapFlags::USER_RW,
            MapFlags::USER_RX,
        ] {
            assert_eq!(
                decode_l1(section(0x4560_0000, flags).unwrap()),
                L1Entry::Section(0x4560_0000, Some(flags))
            );
            assert_eq!(
                decode_l2(small_page(0x4567_8000, flags).unwrap()),
                L2Entry::SmallPage(0x4567_8000, Some(flags))
            );
        }
        assert_eq!(
            small_page(0, MapFlags::KERNEL_DEVICE | MapFlags::EXECUTE),
            Err(MapError::BadFlags)
        );
        assert_eq!(decode_l1(0), L1Entry::Fault);
        assert_eq!(
            decode_l1(0x8004_0002),
            L1Entry::Supersection(0x8000_0000, None)
        );
    }

    #[test]
    fn map_translate_protect_unmap() {
        let mut memory = Memory::default();
        let frames = Frames::new(8);
        map(
            &USER,
            &mut memory,
            &frames,
            0x20_1000,
            0x8123_4000,
            4096,
            MapFlags::USER_RX,
        )
        .unwrap();
        let t = translate(&USER, &memory, 0x20_1abc).unwrap();
        assert_eq!(
            (t.paddr, t.flags, t.page_size),
            (0x8123_4abc, MapFlags::USER_RX, 4096)
        );
        assert!(
            privileged_execute_never(memory.read(USER.entry_addr(0x20_1000 >> 20))),
            "the table over user pages has PXN"
        );
        assert_eq!(
            map(
                &USER,
                &mut memory,
                &frames,
                0x20_1000,
                0x8000_0000,
                4096,
                MapFlags::USER_RW
            ),
            Err(MapError::AlreadyMapped)
        );
        protect(&USER, &mut memory, 0x20_1000, MapFlags::USER_RO).unwrap();
        assert_eq!(
            translate(&USER, &memory, 0x20_1000).unwrap().flags,
            MapFlags::USER_RO
        );
        let gone = unmap(&USER, &mut memory, 0x20_1000).unwrap();
        assert_eq!(gone.paddr, 0x8123_4000);
        assert_eq!(translate(&USER, &memory, 0x20_1000), None);
        assert_eq!(
            unmap(&USER, &mut memory, 0x20_1000),
            Err(MapError::NotMapped)
        );
        assert_eq!(memory.changed, [0x20_1000, 0x20_1000, 0x20_1000]);
        // Kernel addresses are outside a user table, and the other way round.
        assert_eq!(
            map(
                &USER,
                &mut memory,
                &frames,
                0xc000_0000,
                0,
                4096,
                MapFlags::USER_RW
            ),
            Err(MapError::OutsideSpace)
        );
        assert_eq!(
            map(
                &KERNEL,
                &mut memory,
                &frames,
                0x20_0000,
                0,
                4096,
                MapFlags::KERNEL_RW
            ),
            Err(MapError::OutsideSpace)
        );
    }

    #[test]
    fn four_mib_groups_share_one_frame() {
        let mut memory = Memory::default();
        let frames = Frames::new(8);
        for mib in 0..4u32 {
            map(
                &USER,
                &mut memory,
                &frames,
                0x40_0000 + mib * SECTION_SIZE,
                0x8000_0000,
                4096,
                MapFlags::USER_RW,
            )
            .unwrap();
        }
        assert_eq!(frames.used(), 1, "four L2 tables in one frame");
        map(
            &USER,
            &mut memory,
            &frames,
            0x80_0000,
            0x8000_0000,
            4096,
            MapFlags::USER_RW,
        )
        .unwrap();
        assert_eq!(frames.used(), 2, "the next group takes a new frame");
        free_l2_tables(&USER, &mut memory, &frames);
        assert_eq!(*frames.freed.borrow(), [0x9000_0000, 0x9000_1000]);
        assert_eq!(translate(&USER, &memory, 0x40_0000), None);
    }

    #[test]
    fn sections_and_pages_do_not_mix_in_one_mib() {
        let mut memory = Memory::default();
        let frames = Frames::new(8);
        map(
            &KERNEL,
            &mut memory,
            &frames,
            0xc000_0000,
            0x8000_0000,
            SECTION_SIZE as usize,
            MapFlags::KERNEL_RW,
        )
        .unwrap();
        assert_eq!(
            map(
                &KERNEL,
                &mut memory,
                &frames,
                0xc000_1000,
                0x8000_0000,
                4096,
                MapFlags::KERNEL_RW
            ),
            Err(MapError::SizeMismatch)
        );
        assert_eq!(
            unmap(&KERNEL, &mut memory, 0xc000_1000),
            Err(MapError::Misaligned)
        );
        assert_eq!(
            map(
                &KERNEL,
                &mut memory,
                &frames,
                0xc010_0000,
                0x8000_0000,
                8192,
                MapFlags::KERNEL_RW
            ),
            Err(MapError::UnsupportedPageSize(8192))
        );
        // An emptied L2 table can become a section.
        map(
            &KERNEL,
            &mut memory,
            &frames,
            0xc020_0000,
            0x8000_0000,
            4096,
            MapFlags::KERNEL_RW,
        )
        .unwrap();
        unmap(&KERNEL, &mut memory, 0xc020_0000).unwrap();
        map(
            &KERNEL,
            &mut memory,
            &frames,
            0xc020_0000,
            0x8020_0000,
            SECTION_SIZE as usize,
            MapFlags::KERNEL_RW,
        )
        .unwrap();
        assert_eq!(
            translate(&KERNEL, &memory, 0xc02f_ffff).unwrap().paddr,
            0x802f_ffff
        );
    }

    #[test]
    fn exhaustion_is_an_error() {
        let mut memory = Memory::default();
        let frames = Frames::new(0);
        assert_eq!(
            map(
                &USER,
                &mut memory,
                &frames,
                0x40_0000,
                0,
                4096,
                MapFlags::USER_RW
            ),
            Err(MapError::OutOfMemory)
        );
    }

    #[test]
    fn the_walker_reads_back_coalesced_ranges() {
        let mut memory = Memory::default();
        let frames = Frames::new(8);
        for (virt, phys, size, flags) in [
            (
                0xc000_0000u32,
                0x8000_0000u64,
                SECTION_SIZE,
                MapFlags::KERNEL_RW,
            ),
            (0xc010_0000, 0x8010_0000, SECTION_SIZE, MapFlags::KERNEL_RW),
            (0xc020_0000, 0x8020_0000, PAGE_SIZE, MapFlags::KERNEL_RX),
            (0xc020_1000, 0x8020_1000, PAGE_SIZE, MapFlags::KERNEL_RX),
            (0xc020_2000, 0x8020_2000, PAGE_SIZE, MapFlags::KERNEL_RO),
            (0xb000_0000, 0x1c09_0000, PAGE_SIZE, MapFlags::KERNEL_DEVICE),
        ] {
            map(
                &KERNEL,
                &mut memory,
                &frames,
                virt,
                phys,
                size as usize,
                flags,
            )
            .unwrap();
        }
        let mut ranges = Vec::new();
        walk(&KERNEL, &memory, &mut |r| {
            ranges.push((r.virt, r.phys, r.size, r.flags))
        })
        .unwrap();
        assert_eq!(
            ranges,
            [
                (0xb000_0000, 0x1c09_0000, 0x1000, MapFlags::KERNEL_DEVICE),
                (0xc000_0000, 0x8000_0000, 0x20_0000, MapFlags::KERNEL_RW),
                (0xc020_0000, 0x8020_0000, 0x2000, MapFlags::KERNEL_RX),
                (0xc020_2000, 0x8020_2000, 0x1000, MapFlags::KERNEL_RO),
            ]
        );
    }

    /// Words of a small RAM at 0x8000_0000 holding anything; reads
    /// elsewhere fail.
    struct RawRam(Vec<u32>);

    impl TableRead for RawRam {
        fn read_u32(&self, paddr: u32) -> Option<u32> {
            let index = paddr.checked_sub(0x8000_0000)? / 4;
            self.0.get(index as usize).copied()
        }
    }

    #[test]
    fn hostile_tables_end_the_walk_with_an_error_or_a_bounded_map() {
        let mut rng = hal::rand::XorShift::new(0x9e37_79b9);
        let mut next = || rng.next() as u32;
        for _ in 0..200 {
            // 64 KiB: an L1 table and room for L2 tables, random words,
            // most pointing back inside.
            let mut words: Vec<u32> = (0..16 * 1024).map(|_| next()).collect();
            for word in words.iter_mut() {
                if *word % 3 != 0 {
                    *word = 0x8000_0000 | (*word & 0xffff);
                }
            }
            let ram = RawRam(words);
            for tables in [
                Tables {
                    l1: 0x8000_0000,
                    indices: (0, 0x800),
                },
                Tables {
                    l1: 0x8000_0000,
                    indices: (0x800, 0x1000),
                },
            ] {
                let mut ranges = 0usize;
                let result = walk(&tables, &ram, &mut |r| {
                    assert!(r.size > 0 && r.virt >= (tables.indices.0 as u64) << 20);
                    ranges += 1;
                });
                assert!(matches!(result, Ok(()) | Err(WalkError::Unreadable(_))));
                // One L1 table, one L2 table per entry: bounded.
                assert!(ranges <= 2048 * 256);
            }
        }
    }
}
