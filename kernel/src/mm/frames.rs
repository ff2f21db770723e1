//! The physical frame allocator: a buddy allocator over page frames.
//!
//! `buddy_system_allocator::FrameAllocator` keeps its free blocks in ordered
//! sets, so allocating and freeing (with buddy merging) take logarithmic
//! time whatever the pattern of frees. The sets live on the kernel heap;
//! see `heap` for how the two avoid needing each other at the same time.

use super::PAGE_SIZE;
use buddy_system_allocator::FrameAllocator;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use hal::PhysRange;
use hal::mm::FrameSource;
use spin::Mutex;

/// Blocks up to 2^31 frames (8 TiB); more orders would overflow the
/// crate's shifts on 32-bit targets.
const ORDER: usize = 32;

/// Single frames kept aside: most allocations are one frame, and most
/// frames freed are soon wanted again. Taking them from the buddy allocator
/// each time would split (and later merge) a large block level by level.
const CACHE_CAPACITY: usize = 64;
/// Frames moved between the cache and the buddy allocator at once.
const CACHE_BATCH: usize = CACHE_CAPACITY / 2;

struct Frames {
    allocator: FrameAllocator<ORDER>,
    /// Free single frames (frame numbers), not in `allocator`.
    cache: [usize; CACHE_CAPACITY],
    cached: usize,
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
    DIRECT_MAP_OFFSET.store(offset, Ordering::Relaxed);
    *FRAMES.lock() = Some(Frames {
        allocator: FrameAllocator::new(),
        cache: [0; CACHE_CAPACITY],
        cached: 0,
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

impl Frames {
    fn allocate(&mut self, block: usize) -> Option<usize> {
        if block == 1 {
            if self.cached == 0 {
                // One block of a batch's size costs one search of the
                // allocator's sets where single frames cost one each; when
                // memory is too fragmented for that, single frames.
                if let Some(first) = self.allocator.alloc(CACHE_BATCH) {
                    for (slot, frame) in self.cache.iter_mut().zip(first..first + CACHE_BATCH) {
                        *slot = frame;
                    }
                    self.cached = CACHE_BATCH;
                }
                while self.cached < CACHE_BATCH {
                    let Some(frame) = self.allocator.alloc(1) else {
                        break;
                    };
                    self.cache[self.cached] = frame;
                    self.cached += 1;
                }
            }
            if self.cached > 0 {
                self.cached -= 1;
                self.free -= 1;
                return Some(self.cache[self.cached]);
            }
            return None;
        }
        let first = self.allocator.alloc(block).or_else(|| {
            // Cached frames may be what a larger block needs.
            self.drain_cache(self.cached);
            self.allocator.alloc(block)
        })?;
        self.free -= block;
        Some(first)
    }

    fn free(&mut self, first: usize, block: usize) {
        if block == 1 {
            if self.cached == CACHE_CAPACITY {
                self.drain_cache(CACHE_BATCH);
            }
            self.cache[self.cached] = first;
            self.cached += 1;
        } else {
            self.allocator.dealloc(first, block);
        }
        self.free += block;
    }

    /// Returns the `count` most recently cached frames to the buddy allocator.
    fn drain_cache(&mut self, count: usize) {
        for _ in 0..count.min(self.cached) {
            self.cached -= 1;
            self.allocator.dealloc(self.cache[self.cached], 1);
        }
    }
}

/// `count` contiguous frames aligned to `align` bytes (at most the block's
/// size, `count` rounded up to a power of two, in bytes).
pub fn allocate(count: usize, align: usize) -> Result<u64, OutOfFrames> {
    let block = block_frames(count, align).ok_or(OutOfFrames)?;
    with(|frames| {
        frames
            .allocate(block)
            .map(|first| first as u64 * PAGE_SIZE as u64)
    })
    .flatten()
    .ok_or(OutOfFrames)
}

/// Like [`allocate`], with the frames zeroed.
pub fn allocate_zeroed(count: usize, align: usize) -> Result<u64, OutOfFrames> {
    let paddr = allocate(count, align)?;
    let zero_pages = super::OPS
        .get()
        .map_or(write_zeroes as unsafe fn(usize, usize), |ops| {
            ops.zero_pages
        });
    // SAFETY: the frames were just allocated, so nothing else uses them,
    // and the direct map covers every frame the allocator manages.
    unsafe { zero_pages(to_virt(paddr), count * PAGE_SIZE) };
    Ok(paddr)
}

/// Zeroes `len` bytes at `address` with a plain memset (host tests, and
/// before the architecture's way is installed).
///
/// # Safety
/// As for [`hal::Memory::zero_pages`].
unsafe fn write_zeroes(address: usize, len: usize) {
    // SAFETY: passed on to the caller.
    unsafe { core::ptr::write_bytes(address as *mut u8, 0, len) }
}

/// Returns frames from [`allocate`] with the same `count`.
pub fn free(paddr: u64, count: usize) {
    let block = count.max(1).next_power_of_two();
    with(|frames| frames.free((paddr / PAGE_SIZE as u64) as usize, block));
}

/// The direct map's offset (virtual minus physical), set once by `init`.
static DIRECT_MAP_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// The direct-map address of a managed frame.
pub fn to_virt(paddr: u64) -> usize {
    (paddr as usize).wrapping_add(DIRECT_MAP_OFFSET.load(Ordering::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(first: usize, count: usize) -> Frames {
        let mut allocator = FrameAllocator::new();
        allocator.add_frame(first, first + count);
        Frames {
            allocator,
            cache: [0; CACHE_CAPACITY],
            cached: 0,
            total: count,
            free: count,
        }
    }

    #[test]
    fn single_frames_go_through_the_cache_and_none_are_lost() {
        let mut f = frames(0x100, 256);
        let mut taken: Vec<usize> = core::iter::from_fn(|| f.allocate(1)).collect();
        assert_eq!(taken.len(), 256, "every frame, cache included");
        assert_eq!((f.free, f.cached), (0, 0));
        taken.sort_unstable();
        taken.dedup();
        assert_eq!(taken.len(), 256, "no frame twice");
        assert!(taken.iter().all(|&n| (0x100..0x200).contains(&n)));
        for frame in taken {
            f.free(frame, 1);
        }
        assert_eq!(f.free, 256);
        assert!(f.cached <= CACHE_CAPACITY);
    }

    #[test]
    fn large_blocks_drain_the_cache_when_they_must() {
        let mut f = frames(0, 64);
        let singles: Vec<usize> = (0..64).filter_map(|_| f.allocate(1)).collect();
        for frame in singles {
            f.free(frame, 1);
        }
        // Everything is free, but parked in the cache or split up.
        assert_eq!(f.allocate(64), Some(0), "the whole range as one block");
        assert_eq!(f.cached, 0);
        f.free(0, 64);
        assert_eq!(f.free, 64);
    }
}
