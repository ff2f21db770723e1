//! The PVH boot protocol's `hvm_start_info`, as left by QEMU for a kernel
//! with a `XEN_ELFNOTE_PHYS32_ENTRY` note.
//!
//! Parsed by hand: it is three fixed little-endian structures, and the crates
//! that describe them are tied to Xen or to a hypervisor's own types. All of
//! it lives in guest memory the firmware wrote, so every field is checked and
//! every read is bounds-checked by the [`PhysMemory`] the caller provides.

use hal::MemoryKind;
use hal::boot::MemoryMapBuilder;

/// `hvm_start_info.magic`.
pub const START_INFO_MAGIC: u32 = 0x336e_c578;

/// The note type announcing a 32-bit physical entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Firmware memory maps are short; a count above this is corruption.
pub const MAX_MEMMAP_ENTRIES: u32 = 1024;

const MEMMAP_ENTRY_SIZE: u64 = 24;

/// Read access to physical memory.
pub trait PhysMemory {
    /// Fills `buf` from physical address `paddr`, or fails if any of it is
    /// outside what can be read.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Unreadable>;
}

/// A physical range that could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unreadable {
    /// Where the read started.
    pub paddr: u64,
    /// How many bytes were asked for.
    pub len: usize,
}

/// Why the start info could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PvhError {
    /// The start info (or a table it points to) is outside readable memory.
    Unreadable(Unreadable),
    /// The magic number is wrong: this was not a PVH boot.
    BadMagic(u32),
    /// Version 0 has no memory map, and the kernel needs one.
    NoMemoryMap {
        /// The version found.
        version: u32,
    },
    /// The memory map claims an implausible number of entries.
    TooManyMemmapEntries(u32),
}

impl From<Unreadable> for PvhError {
    fn from(e: Unreadable) -> Self {
        PvhError::Unreadable(e)
    }
}

impl core::fmt::Display for PvhError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PvhError::Unreadable(u) => {
                write!(f, "cannot read {} bytes at physical {:#x}", u.len, u.paddr)
            }
            PvhError::BadMagic(m) => write!(
                f,
                "start info magic is {m:#x}, expected {START_INFO_MAGIC:#x}"
            ),
            PvhError::NoMemoryMap { version } => {
                write!(f, "start info version {version} carries no memory map")
            }
            PvhError::TooManyMemmapEntries(n) => {
                write!(
                    f,
                    "memory map claims {n} entries (at most {MAX_MEMMAP_ENTRIES})"
                )
            }
        }
    }
}

/// What a valid start info told the kernel, besides the memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (1 carries the memory map).
    pub version: u32,
    /// Bytes of command line copied into the caller's buffer.
    pub cmdline_len: usize,
    /// Whether the command line was longer than the buffer, or unterminated.
    pub cmdline_truncated: bool,
    /// Physical address of the ACPI RSDP, if the firmware gave one.
    pub rsdp: Option<u64>,
    /// Number of boot modules (`-initrd`).
    pub module_count: u32,
    /// Number of memory map entries read.
    pub memmap_entries: u32,
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap_or([0; 4]))
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap_or([0; 8]))
}

/// E820 type codes, as PVH uses them.
fn memory_kind(e820_type: u32) -> MemoryKind {
    match e820_type {
        1 => MemoryKind::Usable,
        3 => MemoryKind::AcpiReclaimable,
        4 => MemoryKind::AcpiNvs,
        5 => MemoryKind::Defective,
        _ => MemoryKind::Reserved,
    }
}

/// Reads the start info at `paddr`: its memory map goes into `memory_map`,
/// its command line into `cmdline` (NUL excluded).
pub fn parse(
    memory: &impl PhysMemory,
    paddr: u64,
    cmdline: &mut [u8],
    memory_map: &mut MemoryMapBuilder,
) -> Result<StartInfo, PvhError> {
    let mut header = [0u8; 56];
    memory.read(paddr, &mut header[..8])?;
    let magic = read_u32(&header, 0);
    if magic != START_INFO_MAGIC {
        return Err(PvhError::BadMagic(magic));
    }
    let version = read_u32(&header, 4);
    if version < 1 {
        return Err(PvhError::NoMemoryMap { version });
    }
    memory.read(paddr, &mut header)?;
    let module_count = read_u32(&header, 12);
    let cmdline_paddr = read_u64(&header, 24);
    let rsdp_paddr = read_u64(&header, 32);
    let memmap_paddr = read_u64(&header, 40);
    let memmap_entries = read_u32(&header, 48);

    if memmap_entries > MAX_MEMMAP_ENTRIES {
        return Err(PvhError::TooManyMemmapEntries(memmap_entries));
    }
    for i in 0..memmap_entries as u64 {
        let mut entry = [0u8; MEMMAP_ENTRY_SIZE as usize];
        memory.read(memmap_paddr + i * MEMMAP_ENTRY_SIZE, &mut entry)?;
        memory_map.add(
            read_u64(&entry, 0),
            read_u64(&entry, 8),
            memory_kind(read_u32(&entry, 16)),
        );
    }

    let (cmdline_len, cmdline_truncated) = if cmdline_paddr == 0 {
        (0, false)
    } else {
        read_c_string(memory, cmdline_paddr, cmdline)?
    };

    Ok(StartInfo {
        version,
        cmdline_len,
        cmdline_truncated,
        rsdp: (rsdp_paddr != 0).then_some(rsdp_paddr),
        module_count,
        memmap_entries,
    })
}

/// Copies a NUL-terminated string into `out`; returns its length and whether
/// it was cut short (no NUL within `out.len()` bytes, or unreadable tail).
fn read_c_string(
    memory: &impl PhysMemory,
    paddr: u64,
    out: &mut [u8],
) -> Result<(usize, bool), PvhError> {
    for (i, slot) in out.iter_mut().enumerate() {
        let mut byte = [0u8];
        if let Err(e) = memory.read(paddr + i as u64, &mut byte) {
            return if i == 0 { Err(e.into()) } else { Ok((i, true)) };
        }
        if byte[0] == 0 {
            return Ok((i, false));
        }
        *slot = byte[0];
    }
    Ok((out.len(), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guest memory from 0 to `bytes.len()`.
    struct Ram(Vec<u8>);

    impl PhysMemory for Ram {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), Unreadable> {
            let fail = Unreadable {
                paddr,
                len: buf.len(),
            };
            let start = usize::try_from(paddr).map_err(|_| fail)?;
            let end = start.checked_add(buf.len()).ok_or(fail)?;
            buf.copy_from_slice(self.0.get(start..end).ok_or(fail)?);
            Ok(())
        }
    }

    impl Ram {
        fn put(&mut self, at: usize, bytes: &[u8]) {
            self.0[at..at + bytes.len()].copy_from_slice(bytes);
        }
    }

    const INFO: u64 = 0x1000;

    /// Memory laid out the way QEMU does it for microvm with 128 MiB.
    fn qemu_like() -> Ram {
        let mut ram = Ram(vec![0; 0x4000]);
        let mut info = Vec::new();
        info.extend(START_INFO_MAGIC.to_le_bytes());
        info.extend(1u32.to_le_bytes()); // version
        info.extend(0u32.to_le_bytes()); // flags
        info.extend(0u32.to_le_bytes()); // modules
        info.extend(0u64.to_le_bytes()); // modlist
        info.extend(0x2000u64.to_le_bytes()); // cmdline
        info.extend(0xf5cb0u64.to_le_bytes()); // rsdp
        info.extend(0x3000u64.to_le_bytes()); // memmap
        info.extend(3u32.to_le_bytes()); // entries
        info.extend(0u32.to_le_bytes());
        ram.put(INFO as usize, &info);
        ram.put(0x2000, b"mode=test test.ram_mib=128\0");
        let entries: [(u64, u64, u32); 3] = [
            (0x10_0000, 0x7f0_0000, 1),
            (0xd_0000, 0x2_0000, 4),
            (0, 0, 0),
        ];
        for (i, (addr, size, kind)) in entries.iter().enumerate() {
            let mut e = Vec::new();
            e.extend(addr.to_le_bytes());
            e.extend(size.to_le_bytes());
            e.extend(kind.to_le_bytes());
            e.extend(0u32.to_le_bytes());
            ram.put(0x3000 + i * 24, &e);
        }
        ram
    }

    /// A QEMU-like start info and memory map overwritten where the input
    /// says: read or refused, never a panic, and a map read holds only
    /// what the entries said.
    #[test]
    fn fuzz_start_info() {
        bolero::check!()
            .with_type::<Vec<(u16, u8)>>()
            .for_each(|edits| {
                let mut ram = qemu_like();
                for &(at, value) in edits {
                    // The start info, the command line and the map.
                    let at = 0x1000 + at as usize % 0x2100;
                    ram.0[at] = value;
                }
                let mut cmdline = [0u8; 64];
                let mut builder = MemoryMapBuilder::new();
                if let Ok(info) = parse(&ram, INFO, &mut cmdline, &mut builder) {
                    assert!(info.cmdline_len <= cmdline.len());
                    let _ = builder.build();
                }
            });
    }

    #[test]
    fn parses_a_qemu_start_info() {
        let ram = qemu_like();
        let mut cmdline = [0u8; 64];
        let mut builder = MemoryMapBuilder::new();
        let info = parse(&ram, INFO, &mut cmdline, &mut builder).unwrap();
        assert_eq!(&cmdline[..info.cmdline_len], b"mode=test test.ram_mib=128");
        assert!(!info.cmdline_truncated);
        assert_eq!(info.rsdp, Some(0xf5cb0));
        assert_eq!(info.memmap_entries, 3);
        let (map, repairs) = builder.build();
        assert_eq!(map.total(MemoryKind::Usable), 127 << 20);
        assert_eq!(map.total(MemoryKind::AcpiNvs), 128 << 10);
        assert_eq!(repairs.empty, 1, "qboot's empty tail entry");
    }

    #[test]
    fn rejects_wrong_magic_and_old_versions() {
        let mut ram = qemu_like();
        let mut cmdline = [0u8; 64];
        ram.put(INFO as usize, &0xdead_beefu32.to_le_bytes());
        let r = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new());
        assert_eq!(r, Err(PvhError::BadMagic(0xdead_beef)));

        let mut ram = qemu_like();
        ram.put(INFO as usize + 4, &0u32.to_le_bytes());
        let r = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new());
        assert_eq!(r, Err(PvhError::NoMemoryMap { version: 0 }));
    }

    #[test]
    fn pointers_outside_memory_are_reported() {
        let mut cmdline = [0u8; 64];
        let ram = qemu_like();
        let r = parse(
            &ram,
            0xffff_ffff_ffff_fff0,
            &mut cmdline,
            &mut MemoryMapBuilder::new(),
        );
        assert!(matches!(r, Err(PvhError::Unreadable(_))));

        let mut ram = qemu_like();
        ram.put(INFO as usize + 40, &0x10_0000u64.to_le_bytes()); // memmap beyond RAM
        let r = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new());
        assert!(matches!(r, Err(PvhError::Unreadable(u)) if u.paddr == 0x10_0000));

        let mut ram = qemu_like();
        ram.put(INFO as usize + 48, &u32::MAX.to_le_bytes());
        let r = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new());
        assert_eq!(r, Err(PvhError::TooManyMemmapEntries(u32::MAX)));
    }

    #[test]
    fn long_or_unterminated_command_lines_are_cut_and_flagged() {
        let mut ram = qemu_like();
        let mut short = [0u8; 4];
        let info = parse(&ram, INFO, &mut short, &mut MemoryMapBuilder::new()).unwrap();
        assert_eq!((info.cmdline_len, info.cmdline_truncated), (4, true));
        assert_eq!(&short, b"mode");

        // A command line running into the end of memory, with no NUL.
        ram.put(INFO as usize + 24, &(0x4000u64 - 3).to_le_bytes());
        ram.put(0x4000 - 3, b"abc");
        let mut cmdline = [0u8; 64];
        let info = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new()).unwrap();
        assert_eq!((info.cmdline_len, info.cmdline_truncated), (3, true));
    }

    #[test]
    fn random_corruption_never_panics() {
        let mut rng = hal::rand::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move || rng.next();
        for _ in 0..2000 {
            let mut ram = qemu_like();
            for _ in 0..(next() % 8 + 1) {
                let at = INFO as usize + (next() % 56) as usize;
                ram.0[at] = next() as u8;
            }
            let mut cmdline = [0u8; 32];
            let _ = parse(&ram, INFO, &mut cmdline, &mut MemoryMapBuilder::new());
        }
    }
}
