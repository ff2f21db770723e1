//! Memory-management vocabulary shared by the portable core and every
//! architecture: mapping flags, page sizes, errors and frame sources.

use bitflags::bitflags;
use core::fmt;

/// The smallest page, on every architecture.
pub const PAGE_SIZE: usize = 4096;

bitflags! {
    /// What a mapping allows and how the memory behaves.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MapFlags: u32 {
        /// Readable. Every mapping is; the flag keeps descriptions explicit.
        const READ = 1 << 0;
        /// Writable.
        const WRITE = 1 << 1;
        /// Instructions may be fetched.
        const EXECUTE = 1 << 2;
        /// Accessible from user mode.
        const USER = 1 << 3;
        /// Device memory: uncached, accesses kept in order.
        const DEVICE = 1 << 4;
        /// Kept in the TLB across address-space switches (kernel mappings).
        const GLOBAL = 1 << 5;
        /// Cached write-through. Decoded from tables for inspection; the
        /// kernel never maps it, and the encoders refuse it.
        const WRITE_THROUGH = 1 << 6;
    }
}

impl MapFlags {
    /// Kernel read-only data.
    pub const KERNEL_RO: MapFlags = MapFlags::READ.union(MapFlags::GLOBAL);
    /// Kernel data.
    pub const KERNEL_RW: MapFlags = MapFlags::KERNEL_RO.union(MapFlags::WRITE);
    /// Kernel code.
    pub const KERNEL_RX: MapFlags = MapFlags::KERNEL_RO.union(MapFlags::EXECUTE);
    /// Device registers for the kernel.
    pub const KERNEL_DEVICE: MapFlags = MapFlags::KERNEL_RW.union(MapFlags::DEVICE);
    /// User read-only data.
    pub const USER_RO: MapFlags = MapFlags::READ.union(MapFlags::USER);
    /// User data.
    pub const USER_RW: MapFlags = MapFlags::USER_RO.union(MapFlags::WRITE);
    /// User code.
    pub const USER_RX: MapFlags = MapFlags::USER_RO.union(MapFlags::EXECUTE);

    /// Whether the mapping is both writable and executable.
    pub const fn is_write_execute(self) -> bool {
        self.contains(MapFlags::WRITE.union(MapFlags::EXECUTE))
    }

    /// The mapping policy both architectures' encoders enforce: every
    /// mapping readable, none writable and executable (W^X), no executable
    /// device memory, no write-through (decoders report it; the kernel
    /// never asks for it).
    pub fn check_encodable(self) -> Result<(), MapError> {
        if !self.contains(MapFlags::READ)
            || self.is_write_execute()
            || self.contains(MapFlags::DEVICE.union(MapFlags::EXECUTE))
            || self.contains(MapFlags::WRITE_THROUGH)
        {
            return Err(MapError::BadFlags);
        }
        Ok(())
    }

    /// User spaces hold only user pages, the kernel half none.
    pub fn check_space(self, space: Space) -> Result<(), MapError> {
        if matches!(space, Space::User(_)) != self.contains(MapFlags::USER) {
            return Err(MapError::BadFlags);
        }
        Ok(())
    }
}

impl fmt::Display for MapFlags {
    /// `rwx u dev g` style: one column per property.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |flag, c| if self.contains(flag) { c } else { '-' };
        write!(
            f,
            "{}{}{} {} {} {}",
            bit(MapFlags::READ, 'r'),
            bit(MapFlags::WRITE, 'w'),
            bit(MapFlags::EXECUTE, 'x'),
            if self.contains(MapFlags::USER) {
                "user  "
            } else {
                "kernel"
            },
            if self.contains(MapFlags::DEVICE) {
                "device"
            } else if self.contains(MapFlags::WRITE_THROUGH) {
                "wthru "
            } else {
                "cached"
            },
            if self.contains(MapFlags::GLOBAL) {
                "global"
            } else {
                "local "
            },
        )
    }
}

/// Why a mapping operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// No frame was available for a page table.
    OutOfMemory,
    /// The address or size is not aligned to the page size.
    Misaligned,
    /// The architecture has no pages of this size.
    UnsupportedPageSize(usize),
    /// The address is outside the address space the operation works on
    /// (for example, a kernel address in a user space).
    OutsideSpace,
    /// Something is already mapped there.
    AlreadyMapped,
    /// Nothing is mapped there.
    NotMapped,
    /// The address is covered by a larger page than the operation expects.
    SizeMismatch,
    /// The flags cannot be expressed (for example, writable and not
    /// readable) or break a rule (executable device memory).
    BadFlags,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::OutOfMemory => write!(f, "out of memory for page tables"),
            MapError::Misaligned => write!(f, "address or size not page-aligned"),
            MapError::UnsupportedPageSize(size) => write!(f, "no {size}-byte pages here"),
            MapError::OutsideSpace => write!(f, "address outside the address space"),
            MapError::AlreadyMapped => write!(f, "already mapped"),
            MapError::NotMapped => write!(f, "not mapped"),
            MapError::SizeMismatch => write!(f, "covered by a page of another size"),
            MapError::BadFlags => write!(f, "flags not allowed"),
        }
    }
}

/// Where a virtual address leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address of the virtual address asked about.
    pub paddr: u64,
    /// The mapping's flags.
    pub flags: MapFlags,
    /// Size of the page that maps it.
    pub page_size: usize,
}

/// A supplier of physical frames (zeroed, for page tables).
pub trait FrameSource {
    /// `count` contiguous zeroed frames aligned to `align` bytes (a power of
    /// two, at least [`PAGE_SIZE`]); `None` when memory is exhausted.
    fn allocate(&self, count: usize, align: usize) -> Option<u64>;
    /// Returns frames obtained from [`allocate`](Self::allocate).
    fn free(&self, paddr: u64, count: usize);
}

/// Frames handed out upward from a range, for the page tables built before
/// the frame allocator exists. Nothing is ever freed; [`used`](Self::used)
/// says what was taken, so it can be reserved.
pub struct BumpFrames {
    start: u64,
    next: core::cell::Cell<u64>,
    end: u64,
    virt_offset: u64,
}

impl BumpFrames {
    /// Frames from `[start, end)`, zeroed through `physical + virt_offset`.
    ///
    /// # Safety
    /// The range must be free RAM, mapped writable at `virt_offset`, and
    /// used by nothing else.
    pub unsafe fn new(start: u64, end: u64, virt_offset: u64) -> Self {
        BumpFrames {
            start,
            next: core::cell::Cell::new(start),
            end,
            virt_offset,
        }
    }

    /// The part of the range handed out so far.
    pub fn used(&self) -> crate::PhysRange {
        crate::PhysRange {
            start: self.start,
            end: self.next.get(),
        }
    }
}

impl FrameSource for BumpFrames {
    fn allocate(&self, count: usize, align: usize) -> Option<u64> {
        let start = self.next.get().next_multiple_of(align as u64);
        let end = start.checked_add((count * PAGE_SIZE) as u64)?;
        if end > self.end {
            return None;
        }
        // SAFETY: `new`'s contract: free, mapped RAM handed out only once.
        unsafe {
            core::ptr::write_bytes(
                (start + self.virt_offset) as usize as *mut u8,
                0,
                (end - start) as usize,
            )
        };
        self.next.set(end);
        Some(start)
    }

    fn free(&self, _paddr: u64, _count: usize) {}
}

/// Which address space an operation applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// The kernel's half, shared by every address space.
    Kernel,
    /// A user address space, by the physical address of its root table.
    User(RootTable),
}

/// The physical address of a user address space's top-level table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RootTable(pub u64);

/// A contiguous range of mapped virtual addresses with uniform attributes,
/// as page-table walkers report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedRange {
    /// First virtual address.
    pub virt: u64,
    /// Physical address of `virt`.
    pub phys: u64,
    /// Length in bytes.
    pub size: u64,
    /// Attributes.
    pub flags: MapFlags,
    /// Size of the pages in the range.
    pub page_size: u64,
}

impl MappedRange {
    /// First address past the range.
    pub const fn virt_end(&self) -> u64 {
        self.virt + self.size
    }

    /// Whether `next` continues this range: adjacent both virtually and
    /// physically, with the same attributes and page size.
    pub fn continued_by(&self, next: &MappedRange) -> bool {
        self.virt_end() == next.virt
            && self.phys + self.size == next.phys
            && self.flags == next.flags
            && self.page_size == next.page_size
    }
}

/// Frame and heap usage, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Frames the allocator manages.
    pub total_frames: usize,
    /// Frames currently free.
    pub free_frames: usize,
    /// Bytes in the kernel heap.
    pub heap_total: usize,
    /// Bytes of the heap in use (including allocator rounding).
    pub heap_used: usize,
    /// Frames holding page tables, the kernel's and every process's.
    pub table_frames: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_one_column_each() {
        assert_eq!(MapFlags::KERNEL_RX.to_string(), "r-x kernel cached global");
        assert_eq!(
            (MapFlags::READ | MapFlags::WRITE | MapFlags::USER).to_string(),
            "rw- user   cached local "
        );
        assert!((MapFlags::WRITE | MapFlags::EXECUTE).is_write_execute());
        assert!(!MapFlags::KERNEL_RX.is_write_execute());
    }

    #[test]
    fn ranges_coalesce_only_when_everything_continues() {
        let a = MappedRange {
            virt: 0x1000,
            phys: 0x5000,
            size: 0x1000,
            flags: MapFlags::KERNEL_RW,
            page_size: 0x1000,
        };
        let b = MappedRange {
            virt: 0x2000,
            phys: 0x6000,
            ..a
        };
        assert!(a.continued_by(&b));
        assert!(!a.continued_by(&MappedRange { phys: 0x9000, ..b }));
        assert!(!a.continued_by(&MappedRange {
            flags: MapFlags::KERNEL_RO,
            ..b
        }));
    }
}
