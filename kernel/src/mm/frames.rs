//! The physical frame allocator: a buddy allocator over page frames (see
//! `buddy`), with its free lists inside the free frames and its head bitmap
//! in frames set aside at boot, so it needs no heap and every operation
//! costs the same at any RAM size.

use super::PAGE_SIZE;
use super::buddy::{self, Buddy, Link, LinkStore};
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::PhysRange;
use hal::mm::FrameSource;
use spin::Mutex;

/// Single frames kept aside: most allocations are one frame, and most
/// frames freed are soon wanted again. Taking them from the buddy allocator
/// each time would split (and later merge) a large block level by level.
const CACHE_CAPACITY: usize = 64;
/// Frames moved between the cache and the buddy allocator at once.
const CACHE_BATCH: usize = CACHE_CAPACITY / 2;
/// `CACHE_BATCH` as a block order.
const CACHE_BATCH_ORDER: usize = CACHE_BATCH.trailing_zeros() as usize;

/// Free blocks' links, stored in the free frames through the direct map.
struct DirectMapLinks;

impl LinkStore for DirectMapLinks {
    fn read(&self, frame: usize) -> Link {
        // SAFETY: the allocator reads links only from frames that head a
        // free block, which it owns and which the direct map covers; the
        // frame is page-aligned, so aligned for `Link`.
        unsafe { (frame_virt(frame) as *const Link).read() }
    }

    fn write(&mut self, frame: usize, link: Link) {
        // SAFETY: as for `read`: the frame is free and owned by the
        // allocator.
        unsafe { (frame_virt(frame) as *mut Link).write(link) }
    }
}

fn frame_virt(frame: usize) -> usize {
    to_virt((frame as u64) * PAGE_SIZE as u64)
}

struct Frames<S: LinkStore> {
    buddy: Buddy<'static, S>,
    /// Free single frames (frame numbers), not in `buddy`.
    cache: [usize; CACHE_CAPACITY],
    cached: usize,
    total: usize,
    free: usize,
}

static FRAMES: Mutex<Option<Frames<DirectMapLinks>>> = Mutex::new(None);

/// Frames are exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfFrames;

impl core::fmt::Display for OutOfFrames {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "out of physical memory")
    }
}

fn with<R>(f: impl FnOnce(&mut Frames<DirectMapLinks>) -> R) -> Option<R> {
    FRAMES.lock().as_mut().map(f)
}

/// Bytes of head bitmap needed for frames in `span` (whole pages).
pub(super) fn bitmap_bytes(span: PhysRange) -> usize {
    let frames = (span.size() / PAGE_SIZE as u64) as usize;
    (buddy::bitmap_words(frames) * size_of::<usize>()).next_multiple_of(PAGE_SIZE)
}

/// Starts an empty allocator for the frames in `span`, with its bitmap in
/// the direct-mapped, page-aligned `bitmap` of [`bitmap_bytes`] bytes.
///
/// # Safety
/// `bitmap` must be RAM that nothing else uses, for ever; `offset` must be
/// the direct map's offset for every frame later added.
pub(super) unsafe fn init(offset: usize, span: PhysRange, bitmap: usize) {
    DIRECT_MAP_OFFSET.store(offset, Ordering::Relaxed);
    let words = bitmap_bytes(span) / size_of::<usize>();
    // SAFETY: the caller hands over `bitmap` for good.
    let bitmap = unsafe { core::slice::from_raw_parts_mut(bitmap as *mut usize, words) };
    let base = (span.start / PAGE_SIZE as u64) as usize;
    let frames = (span.size() / PAGE_SIZE as u64) as usize;
    *FRAMES.lock() = Some(Frames::new(Buddy::new(
        DirectMapLinks,
        bitmap,
        base,
        frames,
    )));
}

/// Adds free RAM (page-aligned) inside the span given to [`init`].
pub(super) fn add(range: PhysRange) {
    if range.start >= range.end {
        return;
    }
    let page = PAGE_SIZE as u64;
    let (first, end) = ((range.start / page) as usize, (range.end / page) as usize);
    with(|frames| frames.add(first, end));
}

/// The order of the smallest block of at least `count` frames.
fn order_of(count: usize) -> Option<usize> {
    let order = count.max(1).checked_next_power_of_two()?.trailing_zeros() as usize;
    (order < buddy::ORDERS).then_some(order)
}

/// The block order that serves `count` frames at `align`.
fn block_order(count: usize, align: usize) -> Option<usize> {
    let order = order_of(count)?;
    // Blocks are naturally aligned; a larger alignment is not offered.
    (align <= PAGE_SIZE << order).then_some(order)
}

impl<S: LinkStore> Frames<S> {
    fn new(buddy: Buddy<'static, S>) -> Self {
        Frames {
            buddy,
            cache: [0; CACHE_CAPACITY],
            cached: 0,
            total: 0,
            free: 0,
        }
    }

    fn add(&mut self, first: usize, end: usize) {
        let added = self.buddy.add(first, end);
        self.total += added;
        self.free += added;
    }

    fn allocate(&mut self, order: usize) -> Option<usize> {
        if order == 0 {
            if self.cached == 0 {
                self.refill_cache();
            }
            if self.cached == 0 {
                return None;
            }
            self.cached -= 1;
            self.free -= 1;
            return Some(self.cache[self.cached]);
        }
        let first = self.buddy.allocate(order).or_else(|| {
            // Cached frames may be what a larger block needs.
            self.drain_cache(self.cached);
            self.buddy.allocate(order)
        })?;
        self.free -= 1 << order;
        Some(first)
    }

    /// Fills half the cache: one block when one is free, else single
    /// frames as fragmentation allows.
    fn refill_cache(&mut self) {
        if let Some(first) = self.buddy.allocate(CACHE_BATCH_ORDER) {
            for (slot, frame) in self.cache.iter_mut().zip(first..first + CACHE_BATCH) {
                *slot = frame;
            }
            self.cached = CACHE_BATCH;
            return;
        }
        while self.cached < CACHE_BATCH {
            let Some(frame) = self.buddy.allocate(0) else {
                break;
            };
            self.cache[self.cached] = frame;
            self.cached += 1;
        }
    }

    fn free(&mut self, first: usize, order: usize) {
        if order == 0 {
            if self.cached == CACHE_CAPACITY {
                self.drain_cache(CACHE_BATCH);
            }
            self.cache[self.cached] = first;
            self.cached += 1;
        } else {
            self.give_back(first, order);
        }
        self.free += 1 << order;
    }

    fn give_back(&mut self, first: usize, order: usize) {
        if let Err(error) = self.buddy.free(first, order) {
            // A kernel bug: the frame's owner lost track of it.
            panic!("freeing frame {first:#x} (order {order}): {error:?}");
        }
    }

    /// Returns the `count` most recently cached frames to the buddy allocator.
    fn drain_cache(&mut self, count: usize) {
        for _ in 0..count.min(self.cached) {
            self.cached -= 1;
            self.give_back(self.cache[self.cached], 0);
        }
    }
}

/// `count` contiguous frames aligned to `align` bytes (at most the block's
/// size, `count` rounded up to a power of two, in bytes).
pub fn allocate(count: usize, align: usize) -> Result<u64, OutOfFrames> {
    let order = block_order(count, align).ok_or(OutOfFrames)?;
    with(|frames| {
        frames
            .allocate(order)
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
    let order = order_of(count).expect("freed blocks were allocated, so they have an order");
    with(|frames| frames.free((paddr / PAGE_SIZE as u64) as usize, order));
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

/// The kernel's frames as a [`FrameSource`] for page tables: zeroed, and
/// counted (see [`table_frames`]).
pub struct KernelFrames;

/// Frames handed out through [`KernelFrames`] and not given back.
static TABLE_FRAMES: AtomicUsize = AtomicUsize::new(0);

/// Frames holding page tables now: the kernel's (which stay, like the
/// heap) and every process's.
pub fn table_frames() -> usize {
    TABLE_FRAMES.load(Ordering::Relaxed)
}

impl FrameSource for KernelFrames {
    fn allocate(&self, count: usize, align: usize) -> Option<u64> {
        let paddr = allocate_zeroed(count, align).ok()?;
        TABLE_FRAMES.fetch_add(count, Ordering::Relaxed);
        Some(paddr)
    }

    fn free(&self, paddr: u64, count: usize) {
        free(paddr, count);
        TABLE_FRAMES.fetch_sub(count, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::buddy::Table;

    fn frames(first: usize, count: usize) -> Frames<Table> {
        let bitmap = vec![0; buddy::bitmap_words(first + count)].leak();
        let mut frames = Frames::new(Buddy::new(Table::default(), bitmap, 0, first + count));
        frames.add(first, first + count);
        frames
    }

    #[test]
    fn single_frames_go_through_the_cache_and_none_are_lost() {
        let mut f = frames(0x100, 256);
        let mut taken: Vec<usize> = core::iter::from_fn(|| f.allocate(0)).collect();
        assert_eq!(taken.len(), 256, "every frame, cache included");
        assert_eq!((f.free, f.cached), (0, 0));
        taken.sort_unstable();
        taken.dedup();
        assert_eq!(taken.len(), 256, "no frame twice");
        assert!(taken.iter().all(|&n| (0x100..0x200).contains(&n)));
        for frame in taken {
            f.free(frame, 0);
        }
        assert_eq!(f.free, 256);
        assert!(f.cached <= CACHE_CAPACITY);
    }

    #[test]
    fn large_blocks_drain_the_cache_when_they_must() {
        let mut f = frames(0, 64);
        let singles: Vec<usize> = (0..64).filter_map(|_| f.allocate(0)).collect();
        for frame in singles {
            f.free(frame, 0);
        }
        // Everything is free, but parked in the cache or split up.
        assert_eq!(f.allocate(6), Some(0), "the whole range as one block");
        assert_eq!(f.cached, 0);
        f.free(0, 6);
        assert_eq!(f.free, 64);
    }

    #[test]
    fn block_orders_refuse_what_cannot_be_served() {
        assert_eq!(block_order(1, PAGE_SIZE), Some(0));
        assert_eq!(block_order(3, PAGE_SIZE), Some(2));
        assert_eq!(block_order(1, 2 * PAGE_SIZE), None, "over-aligned");
        assert_eq!(block_order(usize::MAX, PAGE_SIZE), None, "overflow");
        assert_eq!(block_order(1 << buddy::ORDERS, PAGE_SIZE), None, "too big");
    }
}
