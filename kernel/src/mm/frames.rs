//! The physical frame allocator: a buddy allocator over page frames.
//!
//! `buddy_system_allocator::FrameAllocator` keeps its free blocks in ordered
//! sets, so allocating and freeing (with buddy merging) take logarithmic
//! time whatever the pattern of frees. The sets live on the kernel heap;
//! see `heap` for how the two avoid needing each other at the same time.

use super::PAGE_SIZE;
use buddy_system_allocator::FrameAllocator;
use core::sync::atomic::{AtomicBool, Ordering};
use hal::PhysRange;
use hal::mm::FrameSource;
use spin::Mutex;

/// Blocks up to 2^31 frames (8 TiB); more orders would overflow the
/// crate's shifts on 32-bit targets.
const ORDER: usize = 32;

struct Frames {
    allocator: FrameAllocator<ORDER>,
    /// Direct-map virtual address = physical address + offset.
    offset: usize,
    total: usize,
    free: usize,
}

static FRAMES: Mutex<Option<Frames>> = Mutex::new(None);

/// Set while the allocator's lock is held, so the heap knows not to grow
/// (growing takes frames, and the lock is not reentrant). One CPU; with
/// several, this becomes per-CPU.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Frames are exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfFrames;

impl core::fmt::Display for OutOfFrames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "out of physical memory")
    }
}

fn with<R>(f: impl FnOnce(&mut Frames) -> R) -> Option<R> {
    let result = {
        let mut frames = FRAMES.lock();
        BUSY.store(true, Ordering::SeqCst);
        let result = frames.as_mut().map(f);
        BUSY.store(false, Ordering::SeqCst);
        result
    };
    // The operation may have used heap from the reserve (and could not grow
    // it meanwhile); top it up now that frames can be taken again.
    super::heap::refill();
    result
}

/// Whether a frame operation is in progress.
pub(crate) fn busy() -> bool {
    BUSY.load(Ordering::SeqCst)
}

pub(super) fn init(offset: usize) {
    *FRAMES.lock() = Some(Frames {
        allocator: FrameAllocator::new(),
        offset,
        total: 0,
        free: 0,
    });
}

pub(super) fn add(range: PhysRange) {
    if range.start >= range.end {
        return;
    }
    let (first, last) = (
        (range.start / PAGE_SIZE as u64) as usize,
        (range.end / PAGE_SIZE as u64) as usize,
    );
    with(|frames| {
        frames.allocator.add_frame(first, last);
        frames.total += last - first;
        frames.free += last - first;
    });
}

/// The block size, in frames, that serves `count` frames at `align`.
fn block_frames(count: usize, align: usize) -> Option<usize> {
    let block = count.max(1).next_power_of_two();
    // Blocks are naturally aligned; a larger alignment is not offered.
    (align <= block * PAGE_SIZE).then_some(block)
}

/// `count` contiguous frames aligned to `align` bytes (at most the block's
/// size, `count` rounded up to a power of two, in bytes).
pub fn allocate(count: usize, align: usize) -> Result<u64, OutOfFrames> {
    let block = block_frames(count, align).ok_or(OutOfFrames)?;
    with(|frames| {
        let first = frames.allocator.alloc(block)?;
        frames.free -= block;
        Some(first as u64 * PAGE_SIZE as u64)
    })
    .flatten()
    .ok_or(OutOfFrames)
}

/// Like [`allocate`], with the frames zeroed.
pub fn allocate_zeroed(count: usize, align: usize) -> Result<u64, OutOfFrames> {
    let paddr = allocate(count, align)?;
    // SAFETY: the frames were just allocated, so nothing else uses them,
    // and the direct map covers every frame the allocator manages.
    unsafe { core::ptr::write_bytes(to_virt(paddr) as *mut u8, 0, count * PAGE_SIZE) };
    Ok(paddr)
}

/// Returns frames from [`allocate`] with the same `count`.
pub fn free(paddr: u64, count: usize) {
    let block = count.max(1).next_power_of_two();
    with(|frames| {
        frames
            .allocator
            .dealloc((paddr / PAGE_SIZE as u64) as usize, block);
        frames.free += block;
    });
}

/// The direct-map address of a managed frame.
pub fn to_virt(paddr: u64) -> usize {
    let offset = FRAMES.lock().as_ref().map_or(0, |f| f.offset);
    (paddr as usize).wrapping_add(offset)
}

/// (frames managed, frames free).
pub fn counts() -> (usize, usize) {
    FRAMES.lock().as_ref().map_or((0, 0), |f| (f.total, f.free))
}

/// The kernel's frames as a [`FrameSource`] for page tables: zeroed.
pub struct KernelFrames;

impl FrameSource for KernelFrames {
    fn allocate(&self, count: usize, align: usize) -> Option<u64> {
        allocate_zeroed(count, align).ok()
    }

    fn free(&self, paddr: u64, count: usize) {
        free(paddr, count);
    }
}
