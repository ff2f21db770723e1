//! What the machine told the kernel at boot, in one portable form.
//!
//! Each architecture translates its firmware's description (PVH start info on
//! x86_64, the device tree on ARMv7) into a [`BootInfo`]. Firmware memory maps
//! are untrusted input: entries may be unsorted, empty, overlapping or even
//! wrap around the address space. [`MemoryMapBuilder`] turns any such list
//! into a sorted, non-overlapping map and counts what it had to repair, so the
//! kernel can report it instead of failing.

use core::fmt;

/// How many distinct regions a [`MemoryMap`] holds. Real firmware maps have
/// a few dozen entries; anything beyond this is reported as dropped.
pub const MAX_MEMORY_REGIONS: usize = 128;

/// What a range of physical addresses holds. The order is the precedence
/// used when firmware entries overlap: a later kind wins over an earlier one,
/// so a range is never treated as more usable than its most cautious entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemoryKind {
    /// Free RAM the kernel may use.
    Usable,
    /// RAM holding ACPI tables; usable only once they have been read.
    AcpiReclaimable,
    /// Memory or address space the firmware keeps for itself.
    Reserved,
    /// ACPI non-volatile storage; never usable.
    AcpiNvs,
    /// RAM the firmware found faulty.
    Defective,
}

impl MemoryKind {
    /// The name used in reports and generated documentation.
    pub const fn name(self) -> &'static str {
        match self {
            MemoryKind::Usable => "usable",
            MemoryKind::AcpiReclaimable => "acpi-reclaimable",
            MemoryKind::Reserved => "reserved",
            MemoryKind::AcpiNvs => "acpi-nvs",
            MemoryKind::Defective => "defective",
        }
    }

    /// Whether the range is RAM (as opposed to holes or device space).
    pub const fn is_ram(self) -> bool {
        matches!(self, MemoryKind::Usable | MemoryKind::AcpiReclaimable)
    }
}

/// A half-open range of physical addresses `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PhysRange {
    /// First address in the range.
    pub start: u64,
    /// First address past the range.
    pub end: u64,
}

impl PhysRange {
    /// Number of bytes in the range.
    pub const fn size(&self) -> u64 {
        self.end - self.start
    }

    /// Whether `paddr` lies inside the range.
    pub const fn contains(&self, paddr: u64) -> bool {
        self.start <= paddr && paddr < self.end
    }
}

/// One region of a normalised memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryRegion {
    /// The addresses covered.
    pub range: PhysRange,
    /// What they hold.
    pub kind: MemoryKind,
}

impl MemoryRegion {
    const EMPTY: MemoryRegion = MemoryRegion {
        range: PhysRange { start: 0, end: 0 },
        kind: MemoryKind::Reserved,
    };
}

impl fmt::Display for MemoryRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:#014x}-{:#014x} {:<16} {}",
            self.range.start,
            self.range.end,
            self.kind.name(),
            ByteSize(self.range.size())
        )
    }
}

/// A byte count with a binary unit: exact where a unit divides it
/// (`640 KiB`, `128 MiB`), otherwise to two decimals (`127.62 MiB`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut unit = 0;
        while unit + 1 < UNITS.len() && self.0 >> (10 * (unit + 1)) > 0 {
            unit += 1;
        }
        let scale = 1u64 << (10 * unit);
        let whole = self.0 / scale;
        let rest = self.0 % scale;
        if rest == 0 {
            write!(f, "{whole} {}", UNITS[unit])
        } else {
            let hundredths = (rest as u128 * 100 / scale as u128) as u64;
            write!(f, "{whole}.{hundredths:02} {}", UNITS[unit])
        }
    }
}

/// A sorted list of non-overlapping regions; adjacent regions of the same
/// kind are merged.
#[derive(Clone, Debug)]
pub struct MemoryMap {
    regions: [MemoryRegion; MAX_MEMORY_REGIONS],
    len: usize,
}

impl MemoryMap {
    /// A map with no regions.
    pub const fn empty() -> Self {
        MemoryMap {
            regions: [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS],
            len: 0,
        }
    }

    /// The regions, lowest address first.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.len]
    }

    /// Total bytes of regions of `kind`.
    pub fn total(&self, kind: MemoryKind) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.range.size())
            .sum()
    }

    /// Total bytes of RAM, usable or holding firmware tables.
    pub fn total_ram(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind.is_ram())
            .map(|r| r.range.size())
            .sum()
    }

    fn push_merged(&mut self, region: MemoryRegion) -> bool {
        if let Some(last) = self.regions[..self.len].last_mut()
            && last.kind == region.kind
            && last.range.end == region.range.start
        {
            last.range.end = region.range.end;
            return true;
        }
        if self.len == MAX_MEMORY_REGIONS {
            return false;
        }
        self.regions[self.len] = region;
        self.len += 1;
        true
    }
}

/// What had to be repaired while normalising a firmware memory map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryMapRepairs {
    /// Entries with zero length, skipped. Harmless (qboot ends its map
    /// with one), so not counted against [`is_clean`](Self::is_clean).
    pub empty: u32,
    /// Entries whose end wrapped past the top of the address space; they are
    /// clipped to end at the top.
    pub wrapped: u32,
    /// Overlaps between entries, resolved by kind precedence.
    pub overlaps: u32,
    /// Entries or regions dropped because the map was full.
    pub dropped: u32,
}

impl MemoryMapRepairs {
    /// Whether the firmware's map needed no real repair.
    pub fn is_clean(&self) -> bool {
        self.wrapped == 0 && self.overlaps == 0 && self.dropped == 0
    }
}

/// Collects raw firmware entries, then builds a normalised [`MemoryMap`].
pub struct MemoryMapBuilder {
    raw: [MemoryRegion; MAX_MEMORY_REGIONS],
    len: usize,
    repairs: MemoryMapRepairs,
}

impl Default for MemoryMapBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryMapBuilder {
    /// An empty builder.
    pub const fn new() -> Self {
        MemoryMapBuilder {
            raw: [MemoryRegion::EMPTY; MAX_MEMORY_REGIONS],
            len: 0,
            repairs: MemoryMapRepairs {
                empty: 0,
                wrapped: 0,
                overlaps: 0,
                dropped: 0,
            },
        }
    }

    /// Adds a firmware entry of `length` bytes at `start`.
    pub fn add(&mut self, start: u64, length: u64, kind: MemoryKind) {
        if length == 0 {
            self.repairs.empty += 1;
            return;
        }
        let end = match start.checked_add(length) {
            Some(end) => end,
            None => {
                self.repairs.wrapped += 1;
                u64::MAX
            }
        };
        if self.len == MAX_MEMORY_REGIONS {
            self.repairs.dropped += 1;
            return;
        }
        self.raw[self.len] = MemoryRegion {
            range: PhysRange { start, end },
            kind,
        };
        self.len += 1;
    }

    /// Sorts, resolves overlaps by kind precedence and merges neighbours.
    pub fn build(mut self) -> (MemoryMap, MemoryMapRepairs) {
        let raw = &mut self.raw[..self.len];
        raw.sort_unstable_by_key(|r| (r.range.start, r.range.end));
        for (i, a) in raw.iter().enumerate() {
            self.repairs.overlaps += raw[i + 1..]
                .iter()
                .take_while(|b| b.range.start < a.range.end)
                .count() as u32;
        }

        // Sweep the elementary intervals between consecutive boundaries;
        // each takes the highest-precedence kind among entries covering it.
        // Quadratic, but firmware maps are small and this runs once.
        let mut boundaries = [0u64; 2 * MAX_MEMORY_REGIONS];
        let mut count = 0;
        for region in raw.iter() {
            boundaries[count] = region.range.start;
            boundaries[count + 1] = region.range.end;
            count += 2;
        }
        let boundaries = &mut boundaries[..count];
        boundaries.sort_unstable();

        let mut map = MemoryMap::empty();
        for pair in boundaries.windows(2) {
            let (start, end) = (pair[0], pair[1]);
            if start == end {
                continue;
            }
            let kind = raw
                .iter()
                .filter(|r| r.range.start <= start && end <= r.range.end)
                .map(|r| r.kind)
                .max();
            if let Some(kind) = kind {
                let region = MemoryRegion {
                    range: PhysRange { start, end },
                    kind,
                };
                if !map.push_merged(region) {
                    self.repairs.dropped += 1;
                }
            }
        }
        (map, self.repairs)
    }
}

/// Where the firmware's hardware description lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareTables {
    /// ACPI, found through the RSDP at this physical address.
    Acpi {
        /// Physical address of the Root System Description Pointer.
        rsdp: u64,
    },
    /// A flattened device tree.
    DeviceTree {
        /// Physical address of the blob.
        address: u64,
        /// Its size in bytes, from its header.
        size: u64,
    },
    /// Nothing: the machine must be known by other means.
    None,
}

/// How many reserved ranges a [`BootInfo`] lists.
pub const MAX_RESERVED: usize = 16;

/// A named physical range inside RAM that must never be handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    /// What it holds.
    pub name: &'static str,
    /// Where.
    pub range: PhysRange,
}

/// The ranges the boot path keeps for itself or the firmware.
#[derive(Clone, Copy, Debug)]
pub struct ReservedList {
    items: [Reserved; MAX_RESERVED],
    len: usize,
}

impl Default for ReservedList {
    fn default() -> Self {
        Self::new()
    }
}

impl ReservedList {
    /// An empty list.
    pub const fn new() -> Self {
        const EMPTY: Reserved = Reserved {
            name: "",
            range: PhysRange { start: 0, end: 0 },
        };
        ReservedList {
            items: [EMPTY; MAX_RESERVED],
            len: 0,
        }
    }

    /// Adds a range; returns false (and drops it) if the list is full.
    #[must_use]
    pub fn push(&mut self, name: &'static str, range: PhysRange) -> bool {
        if self.len == MAX_RESERVED {
            return false;
        }
        self.items[self.len] = Reserved { name, range };
        self.len += 1;
        true
    }

    /// The ranges.
    pub fn as_slice(&self) -> &[Reserved] {
        &self.items[..self.len]
    }

    /// The reserved range containing `paddr`, if any.
    pub fn containing(&self, paddr: u64) -> Option<&Reserved> {
        self.as_slice().iter().find(|r| r.range.contains(paddr))
    }
}

/// Everything the kernel learns from the boot path.
#[derive(Clone, Debug)]
pub struct BootInfo {
    /// The machine model, e.g. `microvm`, `q35`, `vexpress-a15`.
    pub machine: &'static str,
    /// The kernel command line, possibly empty; empty too when it was
    /// refused (see `cmdline_error`).
    pub cmdline: &'static str,
    /// Why the command line the loader passed was refused, if it was.
    pub cmdline_error: Option<CmdlineError>,
    /// Physical memory as the firmware described it, normalised.
    pub memory: MemoryMap,
    /// What normalising the firmware's memory map repaired.
    pub memory_repairs: MemoryMapRepairs,
    /// The hardware description tables.
    pub firmware: FirmwareTables,
    /// Physical addresses occupied by the kernel image.
    pub kernel_image: PhysRange,
    /// RAM the boot path keeps: low memory, the image, boot page tables,
    /// firmware tables. The frame allocator never hands these out.
    pub reserved: ReservedList,
}

/// The longest command line the kernel accepts, in bytes. Longer lines are
/// refused whole: running with part of what was asked would be worse.
pub const MAX_CMDLINE: usize = 4096;

/// Why a command line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError {
    /// Longer than [`MAX_CMDLINE`] bytes (`len` is what was seen, at
    /// least `MAX_CMDLINE + 1`).
    TooLong { len: usize },
    /// Not UTF-8: the first bad byte and its offset.
    NotUtf8 { offset: usize, byte: u8 },
}

impl fmt::Display for CmdlineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CmdlineError::TooLong { len } => write!(
                f,
                "the command line is longer than {MAX_CMDLINE} bytes ({len} or more)"
            ),
            CmdlineError::NotUtf8 { offset, byte } => write!(
                f,
                "the command line is not UTF-8 (byte {byte:#04x} at offset {offset})"
            ),
        }
    }
}

/// Checks a command line from the loader: `bytes` as read, `truncated`
/// when the loader's line went on past them.
pub fn check_cmdline(bytes: &[u8], truncated: bool) -> Result<&str, CmdlineError> {
    if truncated || bytes.len() > MAX_CMDLINE {
        return Err(CmdlineError::TooLong {
            len: bytes.len().max(MAX_CMDLINE + 1),
        });
    }
    core::str::from_utf8(bytes).map_err(|e| CmdlineError::NotUtf8 {
        offset: e.valid_up_to(),
        byte: bytes[e.valid_up_to()],
    })
}

/// Why the boot information cannot be used to run the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootInputError {
    /// The memory map has no usable RAM at all.
    NoUsableMemory,
    /// The kernel image is not inside usable RAM: the map describes some
    /// other machine.
    KernelOutsideRam { image: PhysRange },
    /// A region the firmware keeps for itself covers part of the image.
    KernelInReservedMemory { image: PhysRange, region: PhysRange },
}

impl fmt::Display for BootInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BootInputError::NoUsableMemory => write!(f, "the memory map has no usable RAM"),
            BootInputError::KernelOutsideRam { image } => write!(
                f,
                "the kernel image at {:#x}-{:#x} is not inside usable RAM",
                image.start, image.end
            ),
            BootInputError::KernelInReservedMemory { image, region } => write!(
                f,
                "reserved memory {:#x}-{:#x} overlaps the kernel image at {:#x}-{:#x}",
                region.start, region.end, image.start, image.end
            ),
        }
    }
}

impl BootInfo {
    /// Whether the memory map can hold the kernel that is running: some
    /// usable RAM, and the image inside it with nothing reserved over it.
    pub fn check_memory(&self) -> Result<(), BootInputError> {
        let image = self.kernel_image;
        let regions = self.memory.regions();
        if self.memory.total(MemoryKind::Usable) == 0 {
            return Err(BootInputError::NoUsableMemory);
        }
        let overlaps = |r: &PhysRange| r.start < image.end && image.start < r.end;
        if let Some(region) = regions
            .iter()
            .find(|r| !r.kind.is_ram() && overlaps(&r.range))
        {
            return Err(BootInputError::KernelInReservedMemory {
                image,
                region: region.range,
            });
        }
        // The map is sorted and merged, so one usable region must hold it.
        let inside = regions.iter().any(|r| {
            r.kind == MemoryKind::Usable && r.range.start <= image.start && image.end <= r.range.end
        });
        if inside {
            Ok(())
        } else {
            Err(BootInputError::KernelOutsideRam { image })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_taken_whole_or_refused() {
        assert_eq!(check_cmdline(b"mode=run", false), Ok("mode=run"));
        let long = [b'x'; MAX_CMDLINE];
        assert!(check_cmdline(&long, false).is_ok(), "exactly the limit");
        assert_eq!(
            check_cmdline(&long, true),
            Err(CmdlineError::TooLong {
                len: MAX_CMDLINE + 1
            })
        );
        assert_eq!(
            check_cmdline(b"mode=run \xff", false),
            Err(CmdlineError::NotUtf8 {
                offset: 9,
                byte: 0xff
            })
        );
        let message = check_cmdline(b"\xc3", false).unwrap_err().to_string();
        assert!(message.contains("0xc3 at offset 0"), "{message}");
    }

    fn boot_with(entries: &[(u64, u64, MemoryKind)], image: PhysRange) -> BootInfo {
        let (memory, memory_repairs) = build(entries);
        BootInfo {
            machine: "test",
            cmdline: "",
            cmdline_error: None,
            memory,
            memory_repairs,
            firmware: FirmwareTables::None,
            kernel_image: image,
            reserved: ReservedList::new(),
        }
    }

    #[test]
    fn the_kernel_must_sit_in_usable_unreserved_ram() {
        let image = PhysRange {
            start: 0x8001_0000,
            end: 0x8020_0000,
        };
        let ram = (0x8000_0000, 128 << 20, MemoryKind::Usable);
        assert_eq!(boot_with(&[ram], image).check_memory(), Ok(()));
        assert_eq!(
            boot_with(&[], image).check_memory(),
            Err(BootInputError::NoUsableMemory)
        );
        assert_eq!(
            boot_with(&[(0x9000_0000, 64 << 20, MemoryKind::Usable)], image).check_memory(),
            Err(BootInputError::KernelOutsideRam { image })
        );
        let over_image = (0x8010_0000, 0x1000, MemoryKind::Reserved);
        assert_eq!(
            boot_with(&[ram, over_image], image).check_memory(),
            Err(BootInputError::KernelInReservedMemory {
                image,
                region: PhysRange {
                    start: 0x8010_0000,
                    end: 0x8010_1000
                }
            })
        );
        // Half in RAM is not in RAM.
        let half = (0x8000_0000, 0x10_0000, MemoryKind::Usable);
        assert!(boot_with(&[half], image).check_memory().is_err());
    }

    fn build(entries: &[(u64, u64, MemoryKind)]) -> (MemoryMap, MemoryMapRepairs) {
        let mut builder = MemoryMapBuilder::new();
        for &(start, len, kind) in entries {
            builder.add(start, len, kind);
        }
        builder.build()
    }

    fn spans(map: &MemoryMap) -> Vec<(u64, u64, MemoryKind)> {
        map.regions()
            .iter()
            .map(|r| (r.range.start, r.range.end, r.kind))
            .collect()
    }

    use MemoryKind::*;

    #[test]
    fn sorts_and_skips_empty_entries() {
        // The shape qboot produces: unsorted under KVM, with an empty tail.
        let (map, repairs) = build(&[
            (0x10_0000, 0x7f0_0000, Usable),
            (0xd_0000, 0x2_0000, AcpiNvs),
            (0, 0, Reserved),
        ]);
        assert_eq!(
            spans(&map),
            vec![
                (0xd_0000, 0xf_0000, AcpiNvs),
                (0x10_0000, 0x800_0000, Usable)
            ]
        );
        assert_eq!(repairs.empty, 1);
        assert_eq!(map.total(Usable), 0x7f0_0000);
    }

    #[test]
    fn overlap_takes_the_more_cautious_kind() {
        let (map, repairs) = build(&[(0x0, 0x10_0000, Usable), (0x8_0000, 0x1_0000, Reserved)]);
        assert_eq!(
            spans(&map),
            vec![
                (0x0, 0x8_0000, Usable),
                (0x8_0000, 0x9_0000, Reserved),
                (0x9_0000, 0x10_0000, Usable)
            ]
        );
        assert_eq!(repairs.overlaps, 1);
    }

    #[test]
    fn adjacent_regions_of_one_kind_merge() {
        let (map, repairs) = build(&[(0x0, 0x1000, Usable), (0x1000, 0x1000, Usable)]);
        assert_eq!(spans(&map), vec![(0, 0x2000, Usable)]);
        assert!(repairs.is_clean());
    }

    #[test]
    fn wrapping_entry_is_clipped_and_counted() {
        let (map, repairs) = build(&[(u64::MAX - 0xfff, 0x2000, Reserved)]);
        assert_eq!(spans(&map), vec![(u64::MAX - 0xfff, u64::MAX, Reserved)]);
        assert_eq!(repairs.wrapped, 1);
    }

    #[test]
    fn too_many_entries_are_dropped_not_fatal() {
        let mut builder = MemoryMapBuilder::new();
        for i in 0..(MAX_MEMORY_REGIONS as u64 + 5) {
            // Alternate kinds so nothing merges.
            let kind = if i % 2 == 0 { Usable } else { Reserved };
            builder.add(i * 0x1000, 0x1000, kind);
        }
        let (map, repairs) = builder.build();
        assert_eq!(map.regions().len(), MAX_MEMORY_REGIONS);
        assert_eq!(repairs.dropped, 5);
    }

    #[test]
    fn normalised_map_is_sorted_and_disjoint_for_random_input() {
        let mut rng = crate::rand::XorShift::new(0x2545_f491_4f6c_dd1d);
        let mut next = move || rng.next();
        let kinds = [Usable, AcpiReclaimable, Reserved, AcpiNvs, Defective];
        for _ in 0..500 {
            let n = (next() % 40) as usize;
            let entries: Vec<_> = (0..n)
                .map(|_| {
                    let start = (next() % 64) * 0x1000;
                    let len = (next() % 16) * 0x1000;
                    (start, len, kinds[(next() % 5) as usize])
                })
                .collect();
            let (map, _) = build(&entries);
            for pair in map.regions().windows(2) {
                assert!(pair[0].range.end <= pair[1].range.start, "{entries:?}");
                if pair[0].range.end == pair[1].range.start {
                    assert_ne!(pair[0].kind, pair[1].kind, "not merged: {entries:?}");
                }
            }
            // Every byte keeps the most cautious kind any entry gave it.
            for page in 0..80u64 {
                let addr = page * 0x1000;
                let expected = entries
                    .iter()
                    .filter(|(s, l, _)| *s <= addr && addr < s + l)
                    .map(|e| e.2)
                    .max();
                let actual = map
                    .regions()
                    .iter()
                    .find(|r| r.range.contains(addr))
                    .map(|r| r.kind);
                assert_eq!(actual, expected, "{entries:?} at {addr:#x}");
            }
        }
    }

    #[test]
    fn byte_sizes_print_exactly() {
        assert_eq!(ByteSize(128 << 20).to_string(), "128 MiB");
        assert_eq!(ByteSize(0x9fc00).to_string(), "639 KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000 B");
        assert_eq!(ByteSize(0x7f0_0000 + 0x9fc00).to_string(), "127.62 MiB");
        assert_eq!(ByteSize(12 << 30).to_string(), "12 GiB");
    }
}
