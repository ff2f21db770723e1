//! Guest RAM, read from the file that backs it on the host.

use super::mtree::{self, PhysRange};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The memory backend's id on QEMU's command line.
pub const BACKEND: &str = "ram0";

/// A paused guest's RAM: a file, and QEMU's map from physical addresses to
/// offsets in it.
pub struct Ram {
    file: File,
    len: u64,
    ranges: Vec<PhysRange>,
}

impl Ram {
    pub fn open(path: &Path, ranges: Vec<PhysRange>) -> std::io::Result<Ram> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(Ram { file, len, ranges })
    }

    /// `len` bytes at guest-physical `paddr`, if all are RAM in the file.
    pub fn read(&self, paddr: u64, len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0u8; len];
        let mut done = 0;
        while done < len {
            let at = paddr.checked_add(done as u64)?;
            let offset = mtree::backend_offset(&self.ranges, BACKEND, at)?;
            // To the end of this physical range at most.
            let range = self.ranges.iter().find(|r| r.contains(at))?;
            let piece = ((range.last - at + 1).min((len - done) as u64)) as usize;
            if offset.checked_add(piece as u64)? > self.len {
                return None;
            }
            self.file
                .read_exact_at(&mut out[done..done + piece], offset)
                .ok()?;
            done += piece;
        }
        Some(out)
    }

    fn read_array<const N: usize>(&self, paddr: u64) -> Option<[u8; N]> {
        self.read(paddr, N)?.try_into().ok()
    }
}

impl arch_x86_64::paging::PhysRead for Ram {
    fn read_u64(&self, paddr: u64) -> Option<u64> {
        self.read_array(paddr).map(u64::from_le_bytes)
    }
}

impl arch_armv7::mmu::TableRead for Ram {
    fn read_u32(&self, paddr: u32) -> Option<u32> {
        self.read_array(paddr as u64).map(u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_through_the_physical_map_and_refuses_the_rest() {
        let path = std::env::temp_dir().join(format!("ferrite-ram-test-{}", std::process::id()));
        let bytes: Vec<u8> = (0..0x3000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let ranges = mtree::parse_flat_view(
            "FlatView #1
 AS \"memory\", root: system
  0000000080000000-0000000080000fff (prio 0, ram): ram0
  0000000090000000-0000000090001fff (prio 0, ram): ram0 @0000000000001000
  00000000a0000000-00000000a0000fff (prio 0, i/o): uart
  00000000b0000000-00000000b0000fff (prio 0, ram): ram0 @0000000000010000
",
        );
        let ram = Ram::open(&path, ranges).unwrap();
        assert_eq!(ram.read(0x8000_0010, 4), Some(bytes[0x10..0x14].to_vec()));
        assert_eq!(
            ram.read(0x9000_0ffe, 4),
            Some(bytes[0x1ffe..0x2002].to_vec())
        );
        // Across the end of a physical range, into a hole.
        assert_eq!(ram.read(0x8000_0ffe, 4), None);
        // Device registers and unmapped space are not RAM.
        assert_eq!(ram.read(0xa000_0000, 4), None);
        assert_eq!(ram.read(0x1000, 4), None);
        // Backed by an offset beyond the file.
        assert_eq!(ram.read(0xb000_0000, 4), None);
        // Wrapping around the address space.
        assert_eq!(ram.read(u64::MAX - 1, 8), None);
        std::fs::remove_file(path).unwrap();
    }
}
