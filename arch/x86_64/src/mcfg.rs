//! The ACPI MCFG table: where PCI Express configuration space (ECAM) lies
//! for each segment and range of buses.
//!
//! The `acpi` crate finds the table and checks its checksum, but its entry
//! slice is computed from the length field unchecked (a length below the
//! fixed part wraps around), so the entries are read here, bounds-checked.

use hal::list::FixedList;

/// The SDT header and the reserved eight bytes before the entries.
const HEADER_SIZE: usize = 44;
const ENTRY_SIZE: usize = 16;

/// One ECAM region: 1 MiB of configuration space per bus, from
/// `first_bus` (at `base`) to `last_bus`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EcamRegion {
    pub base: u64,
    pub segment: u16,
    pub first_bus: u8,
    pub last_bus: u8,
}

impl EcamRegion {
    /// Bytes of configuration space it covers.
    pub fn size(&self) -> u64 {
        (u64::from(self.last_bus) - u64::from(self.first_bus) + 1) << 20
    }

    /// The physical address of function `function` of device `device` on
    /// bus `bus`, if the region covers that bus.
    pub fn function_address(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if !(self.first_bus..=self.last_bus).contains(&bus) || device > 31 || function > 7 {
            return None;
        }
        Some(
            self.base
                + (u64::from(bus - self.first_bus) << 20
                    | u64::from(device) << 15
                    | u64::from(function) << 12),
        )
    }
}

/// Why an MCFG was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum McfgError {
    /// Shorter than its fixed part, or than its length field says.
    Truncated,
    /// Not signed "MCFG".
    BadSignature,
    /// The bytes do not sum to zero.
    BadChecksum,
    /// The entries are not whole.
    BadLength,
    /// A region's buses run backwards, or its base is not 1 MiB-aligned.
    BadRegion { index: usize },
}

impl core::fmt::Display for McfgError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            McfgError::Truncated => write!(f, "MCFG truncated"),
            McfgError::BadSignature => write!(f, "not an MCFG"),
            McfgError::BadChecksum => write!(f, "MCFG checksum wrong"),
            McfgError::BadLength => write!(f, "MCFG entries are not whole"),
            McfgError::BadRegion { index } => write!(f, "MCFG region {index} is malformed"),
        }
    }
}

/// Reads an MCFG from its bytes (header included); `table` may extend past
/// the table's own length. Regions beyond the first four are dropped.
pub fn parse(table: &[u8]) -> Result<FixedList<EcamRegion, 4>, McfgError> {
    if table.len() < HEADER_SIZE {
        return Err(McfgError::Truncated);
    }
    if &table[0..4] != b"MCFG" {
        return Err(McfgError::BadSignature);
    }
    let length = u32::from_le_bytes(table[4..8].try_into().expect("four bytes")) as usize;
    if length < HEADER_SIZE || length > table.len() {
        return Err(McfgError::Truncated);
    }
    let table = &table[..length];
    if !crate::sdt::sums_to_zero(table) {
        return Err(McfgError::BadChecksum);
    }
    let entries = &table[HEADER_SIZE..];
    if !entries.len().is_multiple_of(ENTRY_SIZE) {
        return Err(McfgError::BadLength);
    }
    let mut regions = FixedList::default();
    for (index, entry) in entries.chunks_exact(ENTRY_SIZE).enumerate() {
        let region = EcamRegion {
            base: u64::from_le_bytes(entry[0..8].try_into().expect("eight bytes")),
            segment: u16::from_le_bytes([entry[8], entry[9]]),
            first_bus: entry[10],
            last_bus: entry[11],
        };
        if region.last_bus < region.first_bus || !region.base.is_multiple_of(1 << 20) {
            return Err(McfgError::BadRegion { index });
        }
        regions.push(region);
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdt::fix_checksum;

    /// An MCFG with `entries`, its checksum fixed.
    fn table(entries: &[(u64, u16, u8, u8)]) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_SIZE];
        bytes[0..4].copy_from_slice(b"MCFG");
        for &(base, segment, first, last) in entries {
            bytes.extend_from_slice(&base.to_le_bytes());
            bytes.extend_from_slice(&segment.to_le_bytes());
            bytes.extend_from_slice(&[first, last, 0, 0, 0, 0]);
        }
        let length = bytes.len() as u32;
        bytes[4..8].copy_from_slice(&length.to_le_bytes());
        fix_checksum(&mut bytes);
        bytes
    }

    /// A two-region MCFG overwritten where the input says, the checksum
    /// fixed or not: read or refused, never a panic; a region read never
    /// ends before it starts.
    #[test]
    fn fuzz_mcfg() {
        let good = table(&[(0xb000_0000, 0, 0, 255), (0xc000_0000, 1, 0, 15)]);
        bolero::check!()
            .with_type::<(Vec<(u16, u8)>, bool)>()
            .for_each(|(edits, fix)| {
                if let Ok(regions) = parse(&crate::sdt::edited(&good, edits, *fix)) {
                    for region in regions.as_slice() {
                        assert!(region.first_bus <= region.last_bus, "{region:?}");
                    }
                }
            });
    }

    #[test]
    fn q35s_table_gives_its_one_region() {
        // q35: 256 buses at 0xb0000000.
        let regions = parse(&table(&[(0xb000_0000, 0, 0, 255)])).unwrap();
        let region = regions.as_slice()[0];
        assert_eq!(region.size(), 256 << 20);
        assert_eq!(region.function_address(0, 0, 0), Some(0xb000_0000));
        assert_eq!(
            region.function_address(1, 2, 3),
            Some(0xb010_0000 | 2 << 15 | 3 << 12)
        );
        assert_eq!(region.function_address(0, 32, 0), None);
        assert_eq!(region.function_address(0, 0, 8), None);
        let narrow = EcamRegion {
            first_bus: 4,
            last_bus: 5,
            ..region
        };
        assert_eq!(narrow.function_address(3, 0, 0), None);
        assert_eq!(narrow.function_address(5, 0, 0), Some(0xb010_0000));
    }

    #[test]
    fn malformed_tables_are_refused() {
        let good = table(&[(0xb000_0000, 0, 0, 255)]);
        assert_eq!(parse(&good[..20]), Err(McfgError::Truncated));
        let mut long = good.clone();
        long[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse(&long), Err(McfgError::Truncated));
        let mut short = good.clone();
        short[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(parse(&short), Err(McfgError::Truncated));
        let mut signed = good.clone();
        signed[0] = b'X';
        assert_eq!(parse(&signed), Err(McfgError::BadSignature));
        let mut summed = good.clone();
        summed[40] ^= 1;
        assert_eq!(parse(&summed), Err(McfgError::BadChecksum));
        let mut ragged = good.clone();
        ragged.push(0);
        let length = ragged.len() as u32;
        ragged[4..8].copy_from_slice(&length.to_le_bytes());
        fix_checksum(&mut ragged);
        assert_eq!(parse(&ragged), Err(McfgError::BadLength));
        assert_eq!(
            parse(&table(&[(0xb000_0000, 0, 0, 255), (0xc000_0000, 1, 9, 3)])),
            Err(McfgError::BadRegion { index: 1 })
        );
        assert_eq!(
            parse(&table(&[(0xb000_1000, 0, 0, 0)])),
            Err(McfgError::BadRegion { index: 0 })
        );
        // Random bytes never panic.
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed >> 8) as usize % bytes.len();
                bytes[at] = (seed >> 16) as u8;
            }
            let _ = parse(&bytes);
        }
    }
}
