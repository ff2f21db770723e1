//! Memory management: physical frames, the kernel heap, kernel stacks and
//! the quotas user memory is charged to.
//!
//! The architecture has already built the kernel's page tables (its direct
//! map of RAM included) when [`init`] runs. From the firmware's memory map,
//! minus the ranges the boot path reserved, `init` takes a first chunk for
//! the heap and gives the rest to the frame allocator.

mod buddy;
pub mod frames;
pub mod heap;
pub mod quota;
pub mod stack;

use hal::boot::ByteSize;
use hal::mm::{FrameSource, MapError, MapFlags, MemoryStats, Space, Translation};
use hal::{Arch, BootInfo, KernelWindow, MemoryKind, PhysRange};
use spin::Once;

/// The page size the portable core works in.
pub const PAGE_SIZE: usize = hal::mm::PAGE_SIZE;

/// The memory operations the portable core uses outside generic code (for
/// example when a stack is dropped), installed once from the architecture.
type MapFn = fn(Space, usize, u64, usize, MapFlags, &dyn FrameSource) -> Result<(), MapError>;

pub(crate) struct Ops {
    pub map: MapFn,
    pub unmap: fn(Space, usize) -> Result<Translation, MapError>,
    /// Zeroes whole pages through the direct map (see
    /// [`hal::Memory::zero_pages`]).
    pub zero_pages: unsafe fn(usize, usize),
    pub stacks: (usize, usize),
    pub dynamic: (usize, usize),
}

static OPS: Once<Ops> = Once::new();

pub(crate) fn ops() -> &'static Ops {
    OPS.get()
        .expect("memory management is initialised before use")
}

/// Why memory management could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No usable range is large enough for the first heap chunk.
    NoRoomForHeap,
    /// No usable range is large enough for the frame allocator's bitmap
    /// of this many bytes.
    NoRoomForFrameMap(u64),
    /// The direct map does not cover usable RAM at this address.
    NotDirectMapped(u64),
    /// The kernel stacks' page tables could not be made.
    Stacks(MapError),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::NoRoomForHeap => write!(f, "no usable RAM for the first heap chunk"),
            InitError::NoRoomForFrameMap(size) => write!(
                f,
                "no usable RAM for the frame allocator's {} bitmap",
                ByteSize(*size)
            ),
            InitError::Stacks(e) => write!(f, "no page tables for the kernel stacks: {e}"),
            InitError::NotDirectMapped(p) => {
                write!(f, "usable RAM at {p:#x} is not in the direct map")
            }
        }
    }
}

/// Calls `emit` with every usable, page-aligned range of RAM that no
/// reservation overlaps, in address order.
pub fn for_each_free_range(boot: &BootInfo, mut emit: impl FnMut(PhysRange)) {
    let page = PAGE_SIZE as u64;
    let mut reserved = [PhysRange::default(); hal::boot::MAX_RESERVED];
    let count = boot.reserved.as_slice().len();
    for (slot, r) in reserved.iter_mut().zip(boot.reserved.as_slice()) {
        // Whole pages: a page partly reserved is not free.
        *slot = PhysRange {
            start: r.range.start & !(page - 1),
            end: r.range.end.next_multiple_of(page),
        };
    }
    for region in boot
        .memory
        .regions()
        .iter()
        .filter(|r| r.kind == MemoryKind::Usable)
    {
        let aligned = PhysRange {
            start: region.range.start.next_multiple_of(page),
            end: region.range.end & !(page - 1),
        };
        if aligned.start < aligned.end {
            subtract(aligned, &mut reserved[..count], &mut emit);
        }
    }
}

/// Calls `emit` with the parts of `range` outside every one of `holes`
/// (sorted here, in place), in address order.
fn subtract(range: PhysRange, holes: &mut [PhysRange], emit: &mut dyn FnMut(PhysRange)) {
    holes.sort_unstable_by_key(|r| r.start);
    let mut cursor = range.start;
    for hole in holes.iter() {
        if hole.end <= cursor || hole.start >= range.end {
            continue;
        }
        if hole.start > cursor {
            emit(PhysRange {
                start: cursor,
                end: hole.start,
            });
        }
        cursor = cursor.max(hole.end);
    }
    if cursor < range.end {
        emit(PhysRange {
            start: cursor,
            end: range.end,
        });
    }
}

/// The first `size`-aligned (at most 256 KiB alignment) piece of `size`
/// bytes of free RAM outside `taken`.
fn carve(boot: &BootInfo, size: u64, taken: &[PhysRange]) -> Option<PhysRange> {
    let align = size
        .next_power_of_two()
        .clamp(PAGE_SIZE as u64, heap::INITIAL_SIZE as u64);
    let mut holes = [PhysRange::default(); 2];
    let holes = &mut holes[..taken.len()];
    let mut found = None;
    for_each_free_range(boot, |r| {
        holes.copy_from_slice(taken);
        subtract(r, holes, &mut |piece| {
            let start = piece.start.next_multiple_of(align);
            if found.is_none() && start.checked_add(size).is_some_and(|end| end <= piece.end) {
                found = Some(PhysRange {
                    start,
                    end: start + size,
                });
            }
        })
    });
    found
}

/// Starts the frame allocator and the heap over the boot memory map.
pub fn init<A: Arch>() -> Result<(), InitError> {
    let boot = A::boot_info();
    OPS.call_once(|| Ops {
        map: A::map,
        unmap: A::unmap,
        zero_pages: A::zero_pages,
        stacks: A::kernel_window(KernelWindow::Stacks),
        dynamic: A::kernel_window(KernelWindow::Dynamic),
    });

    // The direct map is linear on every architecture: one offset serves.
    let mut first = None;
    for_each_free_range(boot, |r| {
        first.get_or_insert(r.start);
    });
    let first = first.ok_or(InitError::NoRoomForHeap)?;
    let offset = A::phys_to_virt(first)
        .ok_or(InitError::NotDirectMapped(first))?
        .wrapping_sub(first as usize);

    let mut problem = None;
    let mut span: Option<PhysRange> = None;
    for_each_free_range(boot, |r| {
        if problem.is_some() {
            return;
        }
        for end in [r.start, r.end - 1] {
            if A::phys_to_virt(end) != Some((end as usize).wrapping_add(offset)) {
                problem = Some(InitError::NotDirectMapped(end));
                return;
            }
        }
        let covered = span.get_or_insert(r);
        covered.start = covered.start.min(r.start);
        covered.end = covered.end.max(r.end);
    });
    if let Some(problem) = problem {
        return Err(problem);
    }
    let span = span.ok_or(InitError::NoRoomForHeap)?;

    // The first heap chunk and the frame allocator's bitmap come out of
    // the free ranges before the rest goes to the frame allocator.
    let heap_chunk = carve(boot, heap::INITIAL_SIZE as u64, &[]).ok_or(InitError::NoRoomForHeap)?;
    let bitmap_size = frames::bitmap_bytes(span) as u64;
    let bitmap =
        carve(boot, bitmap_size, &[heap_chunk]).ok_or(InitError::NoRoomForFrameMap(bitmap_size))?;
    heap::init(heap_chunk.start as usize + offset, heap::INITIAL_SIZE);
    // SAFETY: the bitmap's frames were carved out of free RAM and are
    // never given to the frame allocator; the direct map covers them and
    // every free range (checked above).
    unsafe { frames::init(offset, span, bitmap.start as usize + offset) };
    for_each_free_range(boot, |r| {
        subtract(r, &mut [heap_chunk, bitmap], &mut frames::add)
    });
    stack::prepare().map_err(InitError::Stacks)?;
    let stats = stats();
    log::info!(
        "memory: {} free in {} frames, heap {} ({} used)",
        ByteSize((stats.free_frames * PAGE_SIZE) as u64),
        stats.total_frames,
        ByteSize(stats.heap_total as u64),
        ByteSize(stats.heap_used as u64)
    );
    Ok(())
}

/// Next free address in the dynamic-mapping window.
static DYNAMIC_NEXT: spin::Mutex<usize> = spin::Mutex::new(0);

/// Reserves `size` bytes of kernel virtual address space, aligned to
/// `align`, in the dynamic-mapping window (for temporary mappings). The
/// space is never reused.
pub fn reserve_dynamic(size: usize, align: usize) -> Result<usize, MapError> {
    let (start, end) = ops().dynamic;
    let mut next = DYNAMIC_NEXT.lock();
    let base = (*next).max(start).next_multiple_of(align);
    let limit = base.checked_add(size).ok_or(MapError::OutOfMemory)?;
    if limit > end {
        return Err(MapError::OutOfMemory);
    }
    *next = limit;
    Ok(base)
}

/// Frame and heap usage now.
pub fn stats() -> MemoryStats {
    let (total_frames, free_frames) = frames::counts();
    let (heap_total, heap_used) = heap::usage();
    MemoryStats {
        table_frames: frames::table_frames(),
        total_frames,
        free_frames,
        heap_total,
        heap_used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hal::FirmwareTables;
    use hal::boot::{MemoryMapBuilder, ReservedList};

    #[test]
    fn free_ranges_skip_reservations_and_align_to_pages() {
        let mut map = MemoryMapBuilder::new();
        map.add(0, 0x9fc00, MemoryKind::Usable);
        map.add(0x10_0000, 0x7f0_0000, MemoryKind::Usable);
        map.add(0xf0000, 0x10000, MemoryKind::Reserved);
        let (memory, memory_repairs) = map.build();
        let mut reserved = ReservedList::new();
        assert!(reserved.push(
            "low memory",
            PhysRange {
                start: 0,
                end: 0x10_0000
            }
        ));
        assert!(reserved.push(
            "image",
            PhysRange {
                start: 0x20_0000,
                end: 0x22_b123
            }
        ));
        assert!(reserved.push(
            "tables",
            PhysRange {
                start: 0x22_c000,
                end: 0x23_0000
            }
        ));
        let boot = BootInfo {
            machine: "test",
            cmdline: "",
            cmdline_error: None,
            memory,
            memory_repairs,
            firmware: FirmwareTables::None,
            kernel_image: PhysRange {
                start: 0x20_0000,
                end: 0x22_c000,
            },
            reserved,
        };
        let mut ranges = Vec::new();
        for_each_free_range(&boot, |r| ranges.push((r.start, r.end)));
        assert_eq!(ranges, [(0x10_0000, 0x20_0000), (0x23_0000, 0x800_0000)]);
    }
}
