//! Program images: an ELF executable checked against the user layout and
//! turned into a load plan. Parsing is the `elf` crate's; the rules are
//! the kernel's: a statically linked executable for this machine, every
//! loadable segment inside the image window, no two segments sharing a
//! page, no segment both writable and executable (W^X), and the entry
//! point in an executable segment.

use abi::layout;
use core::fmt;
use elf::ElfBytes;
use elf::endian::AnyEndian;
use elf::file::Class;
use hal::mm::{MapFlags, PAGE_SIZE};

/// More loadable segments than this is refused.
pub const MAX_SEGMENTS: usize = 8;

/// What an image must be built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// ELF32 or ELF64.
    pub class: Class,
    /// The ELF machine number.
    pub machine: u16,
}

impl Target {
    /// The target for a kernel built for `elf_machine` with this pointer
    /// width.
    pub const fn native(elf_machine: u16) -> Target {
        Target {
            class: if size_of::<usize>() == 8 {
                Class::ELF64
            } else {
                Class::ELF32
            },
            machine: elf_machine,
        }
    }
}

/// Why an image was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Not a well-formed ELF file.
    Malformed(&'static str),
    /// Big-endian, or the wrong class for this machine.
    WrongFormat,
    /// Built for another machine.
    WrongMachine(u16),
    /// Not an executable (ET_EXEC).
    NotExecutable(u16),
    /// Needs a dynamic linker.
    Dynamic,
    /// No loadable segment.
    NoSegments,
    /// More than [`MAX_SEGMENTS`] loadable segments.
    TooManySegments,
    /// Segment `n` lies outside the image window.
    OutsideWindow(usize),
    /// Segment `n` shares a page with an earlier one.
    Overlap(usize),
    /// Segment `n` is writable and executable.
    WriteExecute(usize),
    /// Segment `n`'s file data is larger than its memory size, or lies
    /// outside the file.
    BadFileRange(usize),
    /// The entry point is not in an executable segment.
    BadEntry(u64),
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageError::Malformed(why) => write!(f, "malformed ELF: {why}"),
            ImageError::WrongFormat => write!(f, "wrong ELF class or byte order"),
            ImageError::WrongMachine(m) => write!(f, "built for ELF machine {m}"),
            ImageError::NotExecutable(t) => write!(f, "ELF type {t} is not an executable"),
            ImageError::Dynamic => write!(f, "dynamically linked"),
            ImageError::NoSegments => write!(f, "nothing to load"),
            ImageError::TooManySegments => write!(f, "more than {MAX_SEGMENTS} segments"),
            ImageError::OutsideWindow(n) => write!(
                f,
                "segment {n} lies outside {:#x}-{:#x}",
                layout::IMAGE_BASE,
                layout::STACK_BASE
            ),
            ImageError::Overlap(n) => write!(f, "segment {n} shares a page with another"),
            ImageError::WriteExecute(n) => write!(f, "segment {n} is writable and executable"),
            ImageError::BadFileRange(n) => write!(f, "segment {n}'s file range is invalid"),
            ImageError::BadEntry(entry) => {
                write!(f, "entry point {entry:#x} is not in an executable segment")
            }
        }
    }
}

/// One loadable segment, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First byte in memory.
    pub vaddr: usize,
    /// Bytes in memory; those past `file_size` are zero.
    pub mem_size: usize,
    /// Where its bytes start in the file.
    pub file_offset: usize,
    /// Bytes taken from the file.
    pub file_size: usize,
    /// Page protection.
    pub flags: MapFlags,
}

impl Segment {
    /// The page-aligned range it occupies.
    pub fn pages(&self) -> (usize, usize) {
        (
            self.vaddr & !(PAGE_SIZE - 1),
            (self.vaddr + self.mem_size).next_multiple_of(PAGE_SIZE),
        )
    }
}

/// What to load, in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The first instruction.
    pub entry: usize,
    segments: [Option<Segment>; MAX_SEGMENTS],
}

impl Plan {
    /// The segments.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().flatten()
    }
}

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;

/// Checks `bytes` as an executable for `target` and plans its loading.
pub fn plan(bytes: &[u8], target: Target) -> Result<Plan, ImageError> {
    let file = ElfBytes::<AnyEndian>::minimal_parse(bytes).map_err(|e| {
        ImageError::Malformed(match e {
            elf::ParseError::BadMagic(_) => "bad magic",
            elf::ParseError::SliceReadError(_) => "truncated",
            elf::ParseError::UnsupportedElfClass(_) => "unknown class",
            elf::ParseError::UnsupportedElfEndianness(_) => "unknown byte order",
            elf::ParseError::UnsupportedVersion(_) => "unknown version",
            _ => "unreadable headers",
        })
    })?;
    let header = &file.ehdr;
    if header.class != target.class || header.endianness != AnyEndian::Little {
        return Err(ImageError::WrongFormat);
    }
    if header.e_machine != target.machine {
        return Err(ImageError::WrongMachine(header.e_machine));
    }
    if header.e_type != elf::abi::ET_EXEC {
        return Err(ImageError::NotExecutable(header.e_type));
    }
    let table = file
        .segments()
        .ok_or(ImageError::Malformed("no program headers"))?;
    let mut segments = [None; MAX_SEGMENTS];
    let mut count = 0;
    for header in table.iter() {
        match header.p_type {
            PT_INTERP | PT_DYNAMIC => return Err(ImageError::Dynamic),
            elf::abi::PT_LOAD if header.p_memsz > 0 => {}
            _ => continue,
        }
        let n = count;
        if n == MAX_SEGMENTS {
            return Err(ImageError::TooManySegments);
        }
        let end = header.p_vaddr.checked_add(header.p_memsz);
        if header.p_vaddr < layout::IMAGE_BASE as u64
            || end.is_none_or(|end| end > layout::STACK_BASE as u64)
        {
            return Err(ImageError::OutsideWindow(n));
        }
        let file_end = header.p_offset.checked_add(header.p_filesz);
        if header.p_filesz > header.p_memsz || file_end.is_none_or(|end| end > bytes.len() as u64) {
            return Err(ImageError::BadFileRange(n));
        }
        let write = header.p_flags & elf::abi::PF_W != 0;
        let execute = header.p_flags & elf::abi::PF_X != 0;
        let flags = match (write, execute) {
            (true, true) => return Err(ImageError::WriteExecute(n)),
            (true, false) => MapFlags::USER_RW,
            (false, true) => MapFlags::USER_RX,
            (false, false) => MapFlags::USER_RO,
        };
        // Inside the window, so every value fits in usize.
        segments[n] = Some(Segment {
            vaddr: header.p_vaddr as usize,
            mem_size: header.p_memsz as usize,
            file_offset: header.p_offset as usize,
            file_size: header.p_filesz as usize,
            flags,
        });
        count += 1;
    }
    if count == 0 {
        return Err(ImageError::NoSegments);
    }
    let listed = &mut segments[..count];
    // Keep the original numbers for errors: sort a copy of the indices.
    let mut order = [0usize; MAX_SEGMENTS];
    for (i, slot) in order.iter_mut().enumerate().take(count) {
        *slot = i;
    }
    order[..count].sort_unstable_by_key(|&i| listed[i].map_or(0, |s| s.vaddr));
    for pair in order[..count].windows(2) {
        let (Some(a), Some(b)) = (listed[pair[0]], listed[pair[1]]) else {
            continue;
        };
        if a.pages().1 > b.pages().0 {
            return Err(ImageError::Overlap(pair[1].max(pair[0])));
        }
    }
    let entry = header.e_entry;
    let executable = listed.iter().flatten().any(|s| {
        s.flags.contains(MapFlags::EXECUTE)
            && (s.vaddr as u64..(s.vaddr + s.mem_size) as u64).contains(&entry)
    });
    if !executable {
        return Err(ImageError::BadEntry(entry));
    }
    let mut sorted = [None; MAX_SEGMENTS];
    for (slot, &i) in sorted.iter_mut().zip(&order[..count]) {
        *slot = listed[i];
    }
    Ok(Plan {
        entry: entry as usize,
        segments: sorted,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// A segment for [`build`]: virtual address, memory size, file bytes,
    /// ELF flags.
    pub struct TestSegment<'a> {
        pub vaddr: u64,
        pub mem_size: u64,
        pub data: &'a [u8],
        pub flags: u32,
    }

    /// Writes a little-endian ELF64 executable with the given segments
    /// (page-aligned data after the headers).
    pub fn build(machine: u16, e_type: u16, entry: u64, segments: &[TestSegment<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let phoff = 64u64;
        let data_start = 0x1000u64;
        out.extend_from_slice(b"\x7fELF");
        out.extend_from_slice(&[2, 1, 1, 0]);
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&e_type.to_le_bytes());
        out.extend_from_slice(&machine.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&entry.to_le_bytes());
        out.extend_from_slice(&phoff.to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes()); // shoff
        out.extend_from_slice(&0u32.to_le_bytes()); // flags
        out.extend_from_slice(&64u16.to_le_bytes()); // ehsize
        out.extend_from_slice(&56u16.to_le_bytes()); // phentsize
        out.extend_from_slice(&(segments.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 6]); // shentsize, shnum, shstrndx
        let mut offset = data_start;
        for s in segments {
            out.extend_from_slice(&elf::abi::PT_LOAD.to_le_bytes());
            out.extend_from_slice(&s.flags.to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            out.extend_from_slice(&s.vaddr.to_le_bytes());
            out.extend_from_slice(&s.vaddr.to_le_bytes());
            out.extend_from_slice(&(s.data.len() as u64).to_le_bytes());
            out.extend_from_slice(&s.mem_size.to_le_bytes());
            out.extend_from_slice(&0x1000u64.to_le_bytes());
            offset += (s.data.len() as u64).next_multiple_of(0x1000);
        }
        for s in segments {
            out.resize(
                out.len().next_multiple_of(0x1000).max(data_start as usize),
                0,
            );
            out.extend_from_slice(s.data);
        }
        out
    }

    const X86: Target = Target {
        class: Class::ELF64,
        machine: elf::abi::EM_X86_64,
    };
    const R: u32 = elf::abi::PF_R;
    const W: u32 = elf::abi::PF_W;
    const X: u32 = elf::abi::PF_X;

    fn typical() -> [TestSegment<'static>; 3] {
        [
            TestSegment {
                vaddr: 0x20_1000,
                mem_size: 0x1800,
                data: &[0x90; 0x1800],
                flags: R | X,
            },
            TestSegment {
                vaddr: 0x20_3000,
                mem_size: 0x100,
                data: b"constant data",
                flags: R,
            },
            TestSegment {
                vaddr: 0x20_4000,
                mem_size: 0x3000,
                data: &[7; 0x10],
                flags: R | W,
            },
        ]
    }

    #[test]
    fn a_well_formed_executable_is_planned() {
        let image = build(
            elf::abi::EM_X86_64,
            elf::abi::ET_EXEC,
            0x20_1000,
            &typical(),
        );
        let plan = plan(&image, X86).unwrap();
        assert_eq!(plan.entry, 0x20_1000);
        let segments: Vec<_> = plan.segments().copied().collect();
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0].flags, MapFlags::USER_RX);
        assert_eq!(segments[0].pages(), (0x20_1000, 0x20_3000));
        assert_eq!(segments[1].flags, MapFlags::USER_RO);
        assert_eq!(segments[2].flags, MapFlags::USER_RW);
        assert_eq!(segments[2].file_size, 0x10);
        assert_eq!(segments[2].mem_size, 0x3000);
    }

    #[test]
    fn wrong_targets_and_types_are_refused() {
        let image = build(elf::abi::EM_ARM, elf::abi::ET_EXEC, 0x20_1000, &typical());
        assert_eq!(plan(&image, X86), Err(ImageError::WrongMachine(40)));
        let arm32 = Target {
            class: Class::ELF32,
            machine: elf::abi::EM_ARM,
        };
        assert_eq!(plan(&image, arm32), Err(ImageError::WrongFormat));
        let image = build(elf::abi::EM_X86_64, 3, 0x20_1000, &typical());
        assert_eq!(plan(&image, X86), Err(ImageError::NotExecutable(3)));
        assert!(matches!(
            plan(b"not an elf file at all, just text", X86),
            Err(ImageError::Malformed(_))
        ));
        assert!(matches!(plan(&[], X86), Err(ImageError::Malformed(_))));
    }

    #[test]
    fn segment_rules_are_enforced() {
        let check = |segments: &[TestSegment<'_>], entry: u64| {
            plan(
                &build(elf::abi::EM_X86_64, elf::abi::ET_EXEC, entry, segments),
                X86,
            )
        };
        let text = |vaddr, flags| TestSegment {
            vaddr,
            mem_size: 0x100,
            data: &[0x90; 0x100],
            flags,
        };
        assert_eq!(
            check(&[text(0x20_1000, R | W | X)], 0x20_1000),
            Err(ImageError::WriteExecute(0))
        );
        assert_eq!(
            check(&[text(0x1000, R | X)], 0x1000),
            Err(ImageError::OutsideWindow(0))
        );
        // Into the stack, and wrapping around the address space.
        assert_eq!(
            check(&[text(layout::STACK_BASE as u64 - 0x80, R | X)], 0x20_1000),
            Err(ImageError::OutsideWindow(0))
        );
        assert_eq!(
            check(
                &[TestSegment {
                    vaddr: u64::MAX - 0x10,
                    mem_size: 0x100,
                    data: &[],
                    flags: R
                }],
                0
            ),
            Err(ImageError::OutsideWindow(0))
        );
        assert_eq!(
            check(&[text(0x20_1000, R | X), text(0x20_1800, R)], 0x20_1000),
            Err(ImageError::Overlap(1))
        );
        assert_eq!(
            check(&[text(0x20_1000, R)], 0x20_1000),
            Err(ImageError::BadEntry(0x20_1000))
        );
        assert_eq!(
            check(&[text(0x20_1000, R | X)], 0x20_2000),
            Err(ImageError::BadEntry(0x20_2000))
        );
        assert_eq!(
            check(
                &[TestSegment {
                    vaddr: 0x20_1000,
                    mem_size: 0x10,
                    data: &[0; 0x20],
                    flags: R | X
                }],
                0x20_1000
            ),
            Err(ImageError::BadFileRange(0))
        );
        assert_eq!(check(&[], 0x20_1000), Err(ImageError::NoSegments));
        let many: Vec<_> = (0..9)
            .map(|i| text(0x20_1000 + i * 0x1000, R | X))
            .collect();
        assert_eq!(check(&many, 0x20_1000), Err(ImageError::TooManySegments));
    }

    /// An executable overwritten where the input says and cut where it
    /// says: planned or refused, never a panic; a plan never reads past
    /// the file or maps a page writable and executable.
    #[test]
    fn fuzz_executable() {
        let image = build(
            elf::abi::EM_X86_64,
            elf::abi::ET_EXEC,
            0x20_1000,
            &typical(),
        );
        bolero::check!()
            .with_type::<(Vec<(u16, u8)>, Option<u16>)>()
            .for_each(|(edits, cut)| {
                let mut copy = image.clone();
                for &(at, value) in edits {
                    // The headers are where the parser looks.
                    copy[at as usize % 0x400] = value;
                }
                if let Some(cut) = cut {
                    copy.truncate(*cut as usize % (copy.len() + 1));
                }
                if let Ok(plan) = plan(&copy, X86) {
                    for s in plan.segments() {
                        assert!(s.file_offset + s.file_size <= copy.len());
                        assert!(!s.flags.is_write_execute());
                    }
                }
            });
    }

    #[test]
    fn truncated_and_corrupted_images_never_panic() {
        let image = build(
            elf::abi::EM_X86_64,
            elf::abi::ET_EXEC,
            0x20_1000,
            &typical(),
        );
        for cut in 0..image.len().min(0x1100) {
            let _ = plan(&image[..cut], X86);
        }
        let mut rng = hal::rand::XorShift::new(0x9e37_79b9);
        for _ in 0..20_000 {
            let state = rng.next() as u32;
            let mut copy = image.clone();
            let at = state as usize % 0x200;
            copy[at] = (state >> 8) as u8;
            if let Ok(plan) = plan(&copy, X86) {
                for s in plan.segments() {
                    assert!(s.file_offset + s.file_size <= copy.len());
                    assert!(!s.flags.is_write_execute());
                }
            }
        }
    }
}
