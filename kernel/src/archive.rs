//! The boot archive: the user programs the kernel is built with.
//!
//! `cargo xtask` packs the programs with [`build`] and the architecture
//! embeds the result in the kernel image; [`Archive::parse`] checks it at
//! boot. The format is a header, a table of named entries and the data,
//! all little-endian:
//!
//! ```text
//! 0   magic "FRRTARC1"
//! 8   u32 entry count, u32 zero
//! 16  entries: name [u8; 32] (NUL-padded UTF-8), u32 offset, u32 size
//! ..  data, each entry 16-byte aligned
//! ```
//!
//! A tar or cpio reader would do, but both formats carry far more than a
//! list of named byte strings needs, and the parser must be small and
//! strict: this one is a screenful and rejects anything out of place.

use alloc::vec::Vec;
use core::fmt;

const MAGIC: &[u8; 8] = b"FRRTARC1";
const HEADER_SIZE: usize = 16;
const NAME_SIZE: usize = 32;
const ENTRY_SIZE: usize = NAME_SIZE + 8;
/// More entries than this is taken as corruption.
pub const MAX_ENTRIES: usize = 256;
const DATA_ALIGN: usize = 16;

/// Why an archive was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveError {
    /// Shorter than its header or its entry table.
    Truncated,
    /// Not an archive.
    BadMagic,
    /// More entries than [`MAX_ENTRIES`].
    TooManyEntries(usize),
    /// Entry `n`'s name is empty or not UTF-8.
    BadName(usize),
    /// Entry `n`'s name repeats an earlier one.
    DuplicateName(usize),
    /// Entry `n`'s data lies outside the archive.
    OutOfBounds(usize),
}

impl fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArchiveError::Truncated => write!(f, "truncated"),
            ArchiveError::BadMagic => write!(f, "not a boot archive (bad magic)"),
            ArchiveError::TooManyEntries(n) => write!(f, "{n} entries (at most {MAX_ENTRIES})"),
            ArchiveError::BadName(n) => write!(f, "entry {n} has an empty or non-UTF-8 name"),
            ArchiveError::DuplicateName(n) => write!(f, "entry {n} repeats an earlier name"),
            ArchiveError::OutOfBounds(n) => write!(f, "entry {n}'s data lies outside the archive"),
        }
    }
}

/// A checked archive.
#[derive(Clone, Copy, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    count: usize,
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl<'a> Archive<'a> {
    /// An archive with no entries (what a kernel built without user
    /// programs has).
    pub const EMPTY: Archive<'static> = Archive {
        bytes: &[],
        count: 0,
    };

    /// Checks `bytes` and returns the archive; an empty slice is an empty
    /// archive.
    pub fn parse(bytes: &'a [u8]) -> Result<Archive<'a>, ArchiveError> {
        if bytes.is_empty() {
            return Ok(Archive { bytes, count: 0 });
        }
        if bytes.len() < HEADER_SIZE {
            return Err(ArchiveError::Truncated);
        }
        if &bytes[..8] != MAGIC {
            return Err(ArchiveError::BadMagic);
        }
        let count = read_u32(bytes, 8) as usize;
        if count > MAX_ENTRIES {
            return Err(ArchiveError::TooManyEntries(count));
        }
        if bytes.len() < HEADER_SIZE + count * ENTRY_SIZE {
            return Err(ArchiveError::Truncated);
        }
        let archive = Archive { bytes, count };
        for n in 0..count {
            let (name, offset, size) = archive.raw_entry(n);
            let name = core::str::from_utf8(name).map_err(|_| ArchiveError::BadName(n))?;
            if name.is_empty() {
                return Err(ArchiveError::BadName(n));
            }
            if offset.checked_add(size).is_none_or(|end| end > bytes.len()) {
                return Err(ArchiveError::OutOfBounds(n));
            }
            if (0..n).any(|earlier| archive.raw_entry(earlier).0 == name.as_bytes()) {
                return Err(ArchiveError::DuplicateName(n));
            }
        }
        Ok(archive)
    }

    /// Entry `n`'s name (up to its first NUL), offset and size, unchecked.
    fn raw_entry(&self, n: usize) -> (&'a [u8], usize, usize) {
        let at = HEADER_SIZE + n * ENTRY_SIZE;
        let name = &self.bytes[at..at + NAME_SIZE];
        let len = name.iter().position(|&b| b == 0).unwrap_or(NAME_SIZE);
        (
            &name[..len],
            read_u32(self.bytes, at + NAME_SIZE) as usize,
            read_u32(self.bytes, at + NAME_SIZE + 4) as usize,
        )
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Entry `n`'s name and data.
    pub fn entry(&self, n: usize) -> Option<(&'a str, &'a [u8])> {
        if n >= self.count {
            return None;
        }
        let (name, offset, size) = self.raw_entry(n);
        // Checked by `parse`.
        let name = core::str::from_utf8(name).ok()?;
        Some((name, &self.bytes[offset..offset + size]))
    }

    /// The data of the entry called `name`.
    pub fn find(&self, name: &str) -> Option<&'a [u8]> {
        (0..self.count)
            .filter_map(|n| self.entry(n))
            .find(|(entry, _)| *entry == name)
            .map(|(_, data)| data)
    }

    /// The entries' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.count).filter_map(|n| self.entry(n).map(|(name, _)| name))
    }
}

/// Why [`build`] refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// A name is empty, too long for the table, or contains NUL.
    BadName(alloc::string::String),
    /// Too many entries, or more data than 32-bit offsets reach.
    TooLarge,
}

/// Packs named files into an archive.
pub fn build(entries: &[(&str, &[u8])]) -> Result<Vec<u8>, BuildError> {
    if entries.len() > MAX_ENTRIES {
        return Err(BuildError::TooLarge);
    }
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut offset = (HEADER_SIZE + entries.len() * ENTRY_SIZE).next_multiple_of(DATA_ALIGN);
    for (name, data) in entries {
        if name.is_empty() || name.len() > NAME_SIZE || name.contains('\0') {
            return Err(BuildError::BadName((*name).into()));
        }
        let mut field = [0u8; NAME_SIZE];
        field[..name.len()].copy_from_slice(name.as_bytes());
        out.extend_from_slice(&field);
        let (Ok(at), Ok(size)) = (u32::try_from(offset), u32::try_from(data.len())) else {
            return Err(BuildError::TooLarge);
        };
        out.extend_from_slice(&at.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        offset = (offset + data.len()).next_multiple_of(DATA_ALIGN);
    }
    for (_, data) in entries {
        out.resize(out.len().next_multiple_of(DATA_ALIGN), 0);
        out.extend_from_slice(data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_archives_parse_back() {
        let blob = build(&[("init", b"\x7fELF-init"), ("sh", b"shell"), ("empty", b"")]).unwrap();
        let archive = Archive::parse(&blob).unwrap();
        assert_eq!(archive.len(), 3);
        assert_eq!(archive.find("init"), Some(&b"\x7fELF-init"[..]));
        assert_eq!(archive.find("sh"), Some(&b"shell"[..]));
        assert_eq!(archive.find("empty"), Some(&b""[..]));
        assert_eq!(archive.find("missing"), None);
        assert_eq!(archive.names().collect::<Vec<_>>(), ["init", "sh", "empty"]);
        assert!(Archive::parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn build_refuses_bad_names() {
        assert!(matches!(build(&[("", b"x")]), Err(BuildError::BadName(_))));
        let long = "x".repeat(33);
        assert!(matches!(
            build(&[(long.as_str(), b"x")]),
            Err(BuildError::BadName(_))
        ));
    }

    #[test]
    fn malformed_archives_are_rejected() {
        let blob = build(&[("a", b"0123456789"), ("b", b"xyz")]).unwrap();
        assert_eq!(
            Archive::parse(&blob[..10]).err(),
            Some(ArchiveError::Truncated)
        );
        assert_eq!(
            Archive::parse(&blob[..40]).err(),
            Some(ArchiveError::Truncated)
        );
        let mut bad = blob.clone();
        bad[0] = b'X';
        assert_eq!(Archive::parse(&bad).err(), Some(ArchiveError::BadMagic));
        let mut bad = blob.clone();
        bad[8..12].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Archive::parse(&bad).err(),
            Some(ArchiveError::TooManyEntries(1000))
        );
        // Second entry's size runs past the end.
        let mut bad = blob.clone();
        let size_at = HEADER_SIZE + ENTRY_SIZE + NAME_SIZE + 4;
        bad[size_at..size_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            Archive::parse(&bad).err(),
            Some(ArchiveError::OutOfBounds(1))
        );
        // Duplicate and empty names.
        let mut bad = blob.clone();
        bad[HEADER_SIZE + ENTRY_SIZE] = b'a';
        assert_eq!(
            Archive::parse(&bad).err(),
            Some(ArchiveError::DuplicateName(1))
        );
        let mut bad = blob.clone();
        bad[HEADER_SIZE] = 0;
        assert_eq!(Archive::parse(&bad).err(), Some(ArchiveError::BadName(0)));
        let mut bad = blob;
        bad[HEADER_SIZE] = 0xff;
        assert_eq!(Archive::parse(&bad).err(), Some(ArchiveError::BadName(0)));
    }

    /// A valid archive overwritten and cut where the input says, or bytes
    /// from nowhere: read or refused, never a panic, and every entry of an
    /// archive read can be looked at.
    #[test]
    fn fuzz_archive() {
        let blob = build(&[("one", &[1; 40]), ("two", &[2; 7])]).unwrap();
        bolero::check!()
            .with_type::<(Vec<(u16, u8)>, Option<u16>, Vec<u8>)>()
            .for_each(|(edits, cut, raw)| {
                let mut copy = blob.clone();
                let len = copy.len();
                for &(at, value) in edits {
                    copy[at as usize % len] = value;
                }
                if let Some(cut) = cut {
                    copy.truncate(*cut as usize % (len + 1));
                }
                for bytes in [&copy[..], &raw[..]] {
                    if let Ok(archive) = Archive::parse(bytes) {
                        for n in 0..archive.len() {
                            let _ = archive.entry(n);
                        }
                    }
                }
            });
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A small deterministic generator: every prefix and many
        // corruptions of a valid archive parse or fail cleanly.
        let blob = build(&[("one", &[1; 40]), ("two", &[2; 7])]).unwrap();
        let mut rng = hal::rand::XorShift::new(0x1234_5678);
        for _ in 0..20_000 {
            let state = rng.next() as u32;
            let mut copy = blob.clone();
            let at = state as usize % copy.len();
            copy[at] = (state >> 8) as u8;
            let cut = (state >> 16) as usize % (copy.len() + 1);
            if let Ok(archive) = Archive::parse(&copy[..cut]) {
                for n in 0..archive.len() {
                    let _ = archive.entry(n);
                }
            }
        }
    }
}
