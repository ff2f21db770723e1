//! The ACPI MADT ("APIC" table): local APICs, I/O APICs and interrupt
//! source overrides.
//!
//! The `acpi` crate finds tables and checks their checksums, but its MADT
//! entry iterator trusts each entry's length (a zero length loops forever;
//! one past the end reads beyond the table), so the entries are read here,
//! every field bounds-checked.

use hal::list::FixedList;

/// The SDT header, then the local APIC address and flags.
const HEADER_SIZE: usize = 44;

/// A processor's local APIC.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalApic {
    pub processor: u8,
    pub apic_id: u8,
    pub enabled: bool,
}

/// An I/O APIC: where it is and which global interrupts it serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    pub address: u32,
    pub gsi_base: u32,
}

/// An ISA interrupt that arrives on a different global interrupt, or with
/// different signalling, than the ISA default (edge, active high, GSI = IRQ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceOverride {
    pub isa_irq: u8,
    pub gsi: u32,
    pub active_low: bool,
    pub level: bool,
}

/// What the kernel takes from the MADT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Madt {
    pub local_apic_address: u64,
    /// Dual 8259s are present (and must be masked).
    pub has_8259: bool,
    pub local_apics: FixedList<LocalApic, 16>,
    pub io_apics: FixedList<IoApic, 8>,
    pub overrides: FixedList<SourceOverride, 16>,
    /// Entries of kinds the kernel does not use.
    pub skipped: usize,
}

impl Madt {
    /// The global interrupt and signalling of ISA interrupt `irq`.
    pub fn isa_route(&self, irq: u8) -> (u32, bool, bool) {
        match self.overrides.as_slice().iter().find(|o| o.isa_irq == irq) {
            Some(o) => (o.gsi, o.active_low, o.level),
            None => (irq as u32, false, false),
        }
    }

    /// The I/O APIC serving global interrupt `gsi`, and its line there.
    pub fn io_apic_for(&self, gsi: u32, lines: impl Fn(&IoApic) -> u32) -> Option<(IoApic, u32)> {
        self.io_apics
            .as_slice()
            .iter()
            .find(|a| gsi >= a.gsi_base && gsi < a.gsi_base + lines(a))
            .map(|a| (*a, gsi - a.gsi_base))
    }
}

/// Why a MADT was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MadtError {
    /// Shorter than its fixed part, or than its length field says.
    Truncated,
    /// Not signed "APIC".
    BadSignature,
    /// The bytes do not sum to zero.
    BadChecksum,
    /// An entry's length is zero, too short for its kind, or runs past the
    /// table.
    BadEntry { offset: usize },
}

impl core::fmt::Display for MadtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MadtError::Truncated => write!(f, "MADT truncated"),
            MadtError::BadSignature => write!(f, "not a MADT"),
            MadtError::BadChecksum => write!(f, "MADT checksum wrong"),
            MadtError::BadEntry { offset } => write!(f, "malformed MADT entry at offset {offset}"),
        }
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a MADT from its bytes (header included); `table` may extend past
/// the table's own length.
pub fn parse(table: &[u8]) -> Result<Madt, MadtError> {
    if table.len() < HEADER_SIZE {
        return Err(MadtError::Truncated);
    }
    if &table[0..4] != b"APIC" {
        return Err(MadtError::BadSignature);
    }
    let length = u32_at(table, 4) as usize;
    if length < HEADER_SIZE || length > table.len() {
        return Err(MadtError::Truncated);
    }
    let table = &table[..length];
    if !crate::sdt::sums_to_zero(table) {
        return Err(MadtError::BadChecksum);
    }
    let mut madt = Madt {
        local_apic_address: u32_at(table, 36) as u64,
        has_8259: u32_at(table, 40) & 1 != 0,
        ..Madt::default()
    };
    let mut at = HEADER_SIZE;
    while at < length {
        let bad = MadtError::BadEntry { offset: at };
        let (&kind, &entry_length) = (table.get(at).ok_or(bad)?, table.get(at + 1).ok_or(bad)?);
        let entry_length = entry_length as usize;
        let entry = table
            .get(at..at + entry_length)
            .filter(|_| entry_length >= 2)
            .ok_or(bad)?;
        let need = |n: usize| if entry_length >= n { Ok(()) } else { Err(bad) };
        match kind {
            0 => {
                need(8)?;
                madt.local_apics.push(LocalApic {
                    processor: entry[2],
                    apic_id: entry[3],
                    enabled: u32_at(entry, 4) & 1 != 0,
                });
            }
            1 => {
                need(12)?;
                madt.io_apics.push(IoApic {
                    id: entry[2],
                    address: u32_at(entry, 4),
                    gsi_base: u32_at(entry, 8),
                });
            }
            2 => {
                need(10)?;
                let flags = u16_at(entry, 8);
                // Polarity 0b11 is active low, trigger 0b11 level; the
                // "conforms to the bus" values mean the ISA defaults.
                madt.overrides.push(SourceOverride {
                    isa_irq: entry[3],
                    gsi: u32_at(entry, 4),
                    active_low: flags & 0b11 == 0b11,
                    level: (flags >> 2) & 0b11 == 0b11,
                });
            }
            5 => {
                need(12)?;
                madt.local_apic_address =
                    u64::from_le_bytes(entry[4..12].try_into().map_err(|_| bad)?);
            }
            _ => madt.skipped += 1,
        }
        at += entry_length;
    }
    Ok(madt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdt::fix_checksum;

    /// A MADT shaped like QEMU q35's: one CPU, one I/O APIC, the usual
    /// overrides (IRQ0 on GSI 2; SCI level, active high), a NMI entry.
    fn qemu_madt() -> Vec<u8> {
        let mut entries = Vec::new();
        entries.extend([0, 8, 0, 0, 1, 0, 0, 0]); // local APIC 0, enabled
        entries.extend([1, 12, 0, 0]);
        entries.extend(0xfec0_0000u32.to_le_bytes());
        entries.extend(0u32.to_le_bytes());
        entries.extend([2, 10, 0, 0]);
        entries.extend(2u32.to_le_bytes());
        entries.extend(0u16.to_le_bytes());
        entries.extend([2, 10, 0, 9]);
        entries.extend(9u32.to_le_bytes());
        entries.extend(0b1101u16.to_le_bytes());
        entries.extend([4, 6, 0xff, 0, 0, 1]); // local APIC NMI
        let mut table = Vec::new();
        table.extend(b"APIC");
        table.extend(((HEADER_SIZE + entries.len()) as u32).to_le_bytes());
        table.extend([1, 0]); // revision, checksum (fixed below)
        table.extend(b"BOCHS BXPC    ");
        table.resize(36, 0);
        table.extend(0xfee0_0000u32.to_le_bytes());
        table.extend(1u32.to_le_bytes());
        table.extend(entries);
        fix_checksum(&mut table);
        table
    }

    #[test]
    fn reads_a_qemu_table() {
        let madt = parse(&qemu_madt()).unwrap();
        assert_eq!(madt.local_apic_address, 0xfee0_0000);
        assert!(madt.has_8259);
        assert_eq!(
            madt.local_apics.as_slice(),
            &[LocalApic {
                processor: 0,
                apic_id: 0,
                enabled: true
            }]
        );
        assert_eq!(
            madt.io_apics.as_slice(),
            &[IoApic {
                id: 0,
                address: 0xfec0_0000,
                gsi_base: 0
            }]
        );
        assert_eq!(
            madt.isa_route(0),
            (2, false, false),
            "the timer moved to GSI 2"
        );
        assert_eq!(
            madt.isa_route(9),
            (9, false, true),
            "SCI: level, active high"
        );
        assert_eq!(
            madt.isa_route(4),
            (4, false, false),
            "COM1 at its ISA default"
        );
        assert_eq!(madt.skipped, 1);
        assert_eq!(
            madt.io_apic_for(4, |_| 24)
                .map(|(a, line)| (a.address, line)),
            Some((0xfec0_0000, 4))
        );
        assert_eq!(madt.io_apic_for(30, |_| 24), None);
    }

    #[test]
    fn malformed_tables_are_refused() {
        let good = qemu_madt();
        assert_eq!(parse(&good[..20]), Err(MadtError::Truncated));
        let mut t = good.clone();
        t[0] = b'X';
        assert_eq!(parse(&t), Err(MadtError::BadSignature));
        let mut t = good.clone();
        t[50] ^= 1;
        assert_eq!(parse(&t), Err(MadtError::BadChecksum));
        // A zero-length entry (which would loop forever) and one running
        // past the end.
        for length in [0u8, 200] {
            let mut t = good.clone();
            t[HEADER_SIZE + 1] = length;
            fix_checksum(&mut t);
            assert_eq!(
                parse(&t),
                Err(MadtError::BadEntry {
                    offset: HEADER_SIZE
                })
            );
        }
        // An I/O APIC entry too short for its fields.
        let mut t = good.clone();
        t[HEADER_SIZE + 8 + 1] = 6;
        fix_checksum(&mut t);
        assert!(matches!(parse(&t), Err(MadtError::BadEntry { .. })));
        // A length field beyond the bytes given.
        let mut t = good.clone();
        t[4] = 0xff;
        fix_checksum(&mut t);
        assert_eq!(parse(&t), Err(MadtError::Truncated));
    }

    /// Bytes of QEMU's MADT overwritten where the input says, the
    /// checksum fixed or not: parsed or refused, never a panic.
    #[test]
    fn fuzz_madt() {
        let good = qemu_madt();
        bolero::check!()
            .with_type::<(Vec<(u16, u8)>, bool)>()
            .for_each(|(edits, fix)| {
                let _ = parse(&crate::sdt::edited(&good, edits, *fix));
            });
    }

    #[test]
    fn random_corruption_never_panics_or_hangs() {
        let good = qemu_madt();
        let mut rng = hal::rand::XorShift::new(0x1357_9bdf_2468_ace0);
        let mut next = move || rng.next();
        for _ in 0..50_000 {
            let mut t = good.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % t.len();
                t[at] = next() as u8;
            }
            if next() % 2 == 0 {
                fix_checksum(&mut t); // reach the entry parser
            }
            let _ = parse(&t);
        }
    }
}
