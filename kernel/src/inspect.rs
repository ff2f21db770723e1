//! A table in kernel memory for tools that read a paused guest's RAM from
//! the host (`cargo xtask memmap`): where the kernel's page tables are and
//! each process's root table. The host finds it through the kernel image's
//! symbol [`SYMBOL`] and reads it with [`parse`], so its layout is defined
//! here once.

use abi::Name;
use core::cell::UnsafeCell;

/// The symbol the table is exported under.
pub const SYMBOL: &str = "FERRITE_INSPECTION";
/// The table's first bytes.
pub const MAGIC: [u8; 8] = *b"FRRTINSP";
/// The layout's version.
pub const VERSION: u32 = 1;
/// Processes the table lists at most (the rest are left out).
pub const MAX_PROCESSES: usize = 64;

/// One process: its id, name and root page table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct ProcessEntry {
    /// Its id; 0 marks a free entry.
    pub pid: u32,
    /// Explicit padding, zero.
    pub reserved: u32,
    /// Physical address of its root table (PML4; the TTBR0 table).
    pub root: u64,
    /// The program's name.
    pub name: Name,
}

const FREE: ProcessEntry = ProcessEntry {
    pid: 0,
    reserved: 0,
    root: 0,
    name: [0; 32],
};

/// The table: little-endian, `repr(C)`, the same on every architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Table {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION`].
    pub version: u32,
    /// Entries in use (some may be free).
    pub process_slots: u32,
    /// Physical address of the kernel's root table (x86_64: its PML4;
    /// ARMv7: the TTBR1 table).
    pub kernel_root: u64,
    /// The processes.
    pub processes: [ProcessEntry; MAX_PROCESSES],
}

/// The table's bytes.
pub const TABLE_SIZE: usize = size_of::<Table>();

struct Exported(UnsafeCell<Table>);

// SAFETY: written only by `set_kernel_root` (once, at boot) and by the
// scheduler under its lock; the kernel itself never reads it.
unsafe impl Sync for Exported {}

#[used]
#[unsafe(no_mangle)]
static FERRITE_INSPECTION: Exported = Exported(UnsafeCell::new(Table {
    magic: MAGIC,
    version: VERSION,
    process_slots: 0,
    kernel_root: 0,
    processes: [FREE; MAX_PROCESSES],
}));

/// Runs `f` on the table. Callers are serialised (boot, or the
/// scheduler's lock); the table's readers are outside the machine.
fn with_table(f: impl FnOnce(&mut Table)) {
    // SAFETY: see `Exported`: no two writers at once, no readers inside.
    f(unsafe { &mut *FERRITE_INSPECTION.0.get() })
}

/// Records the kernel's root table.
pub fn set_kernel_root(root: u64) {
    with_table(|t| t.kernel_root = root);
}

/// Records a new process (called under the scheduler's lock).
pub(crate) fn add_process(pid: u32, name: Name, root: u64) {
    with_table(|t| {
        if let Some(entry) = t.processes.iter_mut().find(|e| e.pid == 0) {
            *entry = ProcessEntry {
                pid,
                reserved: 0,
                root,
                name,
            };
        }
        t.process_slots = t.processes.iter().filter(|e| e.pid != 0).count() as u32;
    });
}

/// Forgets a process whose address space is gone (under the lock).
pub(crate) fn remove_process(pid: u32) {
    with_table(|t| {
        for entry in t.processes.iter_mut().filter(|e| e.pid == pid) {
            *entry = FREE;
        }
        t.process_slots = t.processes.iter().filter(|e| e.pid != 0).count() as u32;
    });
}

/// Why table bytes could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than [`TABLE_SIZE`] bytes.
    Truncated,
    /// Not the table (or not yet initialised).
    BadMagic,
    /// Another layout version.
    Version(u32),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "inspection table truncated"),
            ParseError::BadMagic => write!(f, "no inspection table (bad magic)"),
            ParseError::Version(v) => write!(f, "inspection table version {v}, expected {VERSION}"),
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// Reads a table from the bytes of guest memory.
pub fn parse(bytes: &[u8]) -> Result<Table, ParseError> {
    if bytes.len() < TABLE_SIZE {
        return Err(ParseError::Truncated);
    }
    if bytes[..8] != MAGIC {
        return Err(ParseError::BadMagic);
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(ParseError::Version(version));
    }
    let mut table = Table {
        magic: MAGIC,
        version,
        process_slots: u32_at(bytes, 12),
        kernel_root: u64_at(bytes, 16),
        processes: [FREE; MAX_PROCESSES],
    };
    let entry_size = size_of::<ProcessEntry>();
    for (n, entry) in table.processes.iter_mut().enumerate() {
        let at = 24 + n * entry_size;
        let mut name = [0u8; 32];
        name.copy_from_slice(&bytes[at + 16..at + 48]);
        *entry = ProcessEntry {
            pid: u32_at(bytes, at),
            reserved: u32_at(bytes, at + 4),
            root: u64_at(bytes, at + 8),
            name,
        };
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of(table: &Table) -> &[u8] {
        // SAFETY: Table is repr(C) with explicit padding only; every byte
        // is initialised.
        unsafe { core::slice::from_raw_parts((table as *const Table).cast(), TABLE_SIZE) }
    }

    #[test]
    fn the_layout_is_fixed() {
        assert_eq!(size_of::<ProcessEntry>(), 48);
        assert_eq!(TABLE_SIZE, 24 + 48 * MAX_PROCESSES);
    }

    #[test]
    fn tables_parse_back() {
        let mut table = Table {
            magic: MAGIC,
            version: VERSION,
            process_slots: 2,
            kernel_root: 0x1234_5000,
            processes: [FREE; MAX_PROCESSES],
        };
        table.processes[0] = ProcessEntry {
            pid: 1,
            reserved: 0,
            root: 0x8000,
            name: abi::name_from("init"),
        };
        table.processes[5] = ProcessEntry {
            pid: 7,
            reserved: 0,
            root: 0x9000,
            name: abi::name_from("sh"),
        };
        let bytes = bytes_of(&table);
        assert_eq!(parse(bytes), Ok(table));
        assert_eq!(parse(&bytes[..100]), Err(ParseError::Truncated));
        let mut bad = bytes.to_vec();
        bad[0] = 0;
        assert_eq!(parse(&bad), Err(ParseError::BadMagic));
        let mut bad = bytes.to_vec();
        bad[8] = 9;
        assert_eq!(parse(&bad), Err(ParseError::Version(9)));
    }
}
