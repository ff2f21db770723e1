//! QEMU's view of guest-physical memory, from the monitor's
//! `info mtree -f`: what is RAM, ROM or device registers, and where each
//! piece of RAM lies in the memory backend (and so in its file).

/// What QEMU has at a physical range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    /// Last byte (inclusive, as QEMU prints it).
    pub last: u64,
    /// QEMU's kind: `ram`, `rom`, `romd`, `i/o`.
    pub kind: String,
    /// The memory region's name.
    pub name: String,
    /// Offset within the named region (`@...`), 0 when not printed.
    pub offset: u64,
}

impl PhysRange {
    pub fn contains(&self, paddr: u64) -> bool {
        self.start <= paddr && paddr <= self.last
    }

    /// Whether the range is device registers rather than memory.
    pub fn is_io(&self) -> bool {
        self.kind == "i/o"
    }
}

/// Reads the flat view of the CPU's address space ("memory") from the
/// output of `info mtree -f`. Lines it cannot read are skipped.
pub fn parse_flat_view(text: &str) -> Vec<PhysRange> {
    let mut ranges = Vec::new();
    let mut in_memory_view = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("FlatView") {
            in_memory_view = false;
            continue;
        }
        if trimmed == "AS \"memory\", root: system" {
            in_memory_view = true;
            continue;
        }
        if !in_memory_view {
            continue;
        }
        if let Some(range) = parse_line(trimmed) {
            ranges.push(range);
        }
    }
    ranges.sort_by_key(|r| r.start);
    ranges
}

/// `0000000000100000-0000000017ffffff (prio 0, ram): ram0 @0000000000100000`
fn parse_line(line: &str) -> Option<PhysRange> {
    let (span, rest) = line.split_once(' ')?;
    let (start, last) = span.split_once('-')?;
    let start = u64::from_str_radix(start, 16).ok()?;
    let last = u64::from_str_radix(last, 16).ok()?;
    let rest = rest.strip_prefix('(')?;
    let (attributes, rest) = rest.split_once("): ")?;
    let kind = attributes.rsplit(", ").next()?.to_string();
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let offset = words
        .find_map(|w| w.strip_prefix('@'))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(0);
    (start <= last).then_some(PhysRange {
        start,
        last,
        kind,
        name,
        offset,
    })
}

/// Where guest-physical `paddr` is in the memory backend called
/// `backend`, if it is RAM from that backend (and the offset fits in the
/// word: a corrupt view may say anything).
pub fn backend_offset(ranges: &[PhysRange], backend: &str, paddr: u64) -> Option<u64> {
    let range = ranges
        .iter()
        .find(|r| r.name == backend && r.contains(paddr))?;
    range.offset.checked_add(paddr - range.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q35: &str = "FlatView #0
 AS \"I/O\", root: io
 Root memory region: io
  0000000000000000-0000000000000007 (prio 0, i/o): dma-chan

FlatView #2
 AS \"memory\", root: system
 AS \"cpu-memory-0\", root: system
 Root memory region: system
  0000000000000000-00000000000c2fff (prio 0, ram): ram0
  00000000000c3000-00000000000e3fff (prio 0, rom): ram0 @00000000000c3000
  0000000000100000-0000000017ffffff (prio 0, ram): ram0 @0000000000100000
  00000000fec00000-00000000fec00fff (prio 0, i/o): ioapic
  00000000fee00000-00000000feefffff (prio 4096, i/o): apic-msi
  0000000100000000-000000013fffffff (prio 0, ram): ram0 @0000000080000000

FlatView #3
 AS \"ich9-ahci\", root: bus master container
  0000000000000000-00000000000c2fff (prio 0, ram): ram0
";

    /// q35's view with lines overwritten by arbitrary text, and addresses
    /// looked up in it: read or skipped, never a panic; every range read
    /// starts at or before its last byte, and an offset found is the
    /// range's own.
    #[test]
    fn fuzz_flat_view() {
        bolero::check!()
            .with_type::<(Vec<(u8, String)>, u64)>()
            .for_each(|(edits, paddr)| {
                let mut lines: Vec<String> = Q35.lines().map(String::from).collect();
                for (at, text) in edits {
                    let len = lines.len();
                    lines[*at as usize % len] = text.clone();
                }
                let ranges = parse_flat_view(&lines.join("\n"));
                for r in &ranges {
                    assert!(r.start <= r.last, "{r:?}");
                }
                if let Some(offset) = backend_offset(&ranges, "ram0", *paddr) {
                    let range = ranges
                        .iter()
                        .find(|r| r.name == "ram0" && r.contains(*paddr));
                    assert!(range.is_some_and(|r| offset >= r.offset));
                }
            });
    }

    /// Well-formed lines of any addresses and offsets, and addresses
    /// looked up: never a panic (no arithmetic past the word's end).
    #[test]
    fn fuzz_flat_view_lines() {
        bolero::check!()
            .with_type::<(Vec<(u64, u64, bool, Option<u64>)>, u64)>()
            .for_each(|(lines, paddr)| {
                let mut text = String::from("FlatView #2\n AS \"memory\", root: system\n");
                for &(start, last, ram, offset) in lines {
                    let kind = if ram { "ram" } else { "i/o" };
                    let offset = offset.map(|o| format!(" @{o:016x}")).unwrap_or_default();
                    text.push_str(&format!(
                        "  {start:016x}-{last:016x} (prio 0, {kind}): ram0{offset}\n"
                    ));
                }
                let ranges = parse_flat_view(&text);
                let _ = backend_offset(&ranges, "ram0", *paddr);
                for r in &ranges {
                    let _ = backend_offset(&ranges, "ram0", r.last);
                }
            });
    }

    /// What `fuzz_flat_view_lines` found: an offset near the top of the
    /// word and a range long enough to carry the sum past it.
    #[test]
    fn an_offset_past_the_word_is_no_offset() {
        let text = "FlatView #2\n AS \"memory\", root: system\n  0000000000000000-0200000000000000 (prio 0, ram): ram0 @fe00000000000000\n";
        let ranges = parse_flat_view(text);
        assert_eq!(ranges.len(), 1);
        assert_eq!(
            backend_offset(&ranges, "ram0", 0),
            Some(0xfe00_0000_0000_0000)
        );
        assert_eq!(backend_offset(&ranges, "ram0", 0x0200_0000_0000_0000), None);
    }

    #[test]
    fn reads_the_memory_view_only() {
        let ranges = parse_flat_view(Q35);
        assert_eq!(ranges.len(), 6);
        assert_eq!(ranges[0].name, "ram0");
        assert_eq!(ranges[1].kind, "rom");
        assert_eq!(ranges[3].name, "ioapic");
        assert!(ranges[3].is_io() && !ranges[2].is_io());
        assert_eq!(ranges[4].last, 0xfeef_ffff);
    }

    #[test]
    fn maps_physical_addresses_to_backend_offsets() {
        let ranges = parse_flat_view(Q35);
        assert_eq!(backend_offset(&ranges, "ram0", 0x1000), Some(0x1000));
        assert_eq!(backend_offset(&ranges, "ram0", 0x12_3456), Some(0x12_3456));
        // RAM above 4 GiB continues the backend where low RAM stopped.
        assert_eq!(
            backend_offset(&ranges, "ram0", 0x1_0000_1000),
            Some(0x8000_1000)
        );
        assert_eq!(backend_offset(&ranges, "ram0", 0xfec0_0000), None);
        assert_eq!(backend_offset(&ranges, "ram0", 0x2000_0000), None);
    }

    #[test]
    fn arm_ram_starts_at_its_base() {
        let text = "FlatView #1
 AS \"memory\", root: system
  000000001c090000-000000001c090fff (prio 0, i/o): pl011
  0000000080000000-000000008fffffff (prio 0, ram): ram0
";
        let ranges = parse_flat_view(text);
        assert_eq!(backend_offset(&ranges, "ram0", 0x8000_2000), Some(0x2000));
        assert_eq!(backend_offset(&ranges, "ram0", 0x7fff_f000), None);
    }

    #[test]
    fn garbage_is_skipped() {
        let text = "FlatView #1\n AS \"memory\", root: system\n  zzzz\n  0-1 (prio\n  5-3 (prio 0, ram): backwards\n";
        assert!(parse_flat_view(text).is_empty());
    }
}
