//! The kernel heap: a buddy heap that grows by taking frames when a
//! request does not fit. The frame allocator keeps no records on the heap,
//! so growing never waits on itself.

use super::{PAGE_SIZE, frames};
use alloc::boxed::Box;
use buddy_system_allocator::Heap;
use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};
use spin::Mutex;

/// The first chunk, taken from RAM before the frame allocator exists.
pub const INITIAL_SIZE: usize = 256 * 1024;
/// The usual growth step; smaller when free memory is fragmented.
pub const GROWTH: usize = 256 * 1024;

/// Blocks up to 2^31 bytes.
const ORDER: usize = 32;

/// The kernel heap's state.
struct KernelHeap {
    heap: Mutex<Heap<ORDER>>,
    growing: AtomicBool,
}

static HEAP: KernelHeap = KernelHeap {
    heap: Mutex::new(Heap::new()),
    growing: AtomicBool::new(false),
};

/// The kernel heap as a global allocator. The kernel binary installs it
/// (`#[global_allocator]`); host programs that link this crate keep their
/// own allocator.
pub struct GlobalHeap;

// SAFETY: forwards to the kernel heap, which upholds the contract.
unsafe impl GlobalAlloc for GlobalHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract passes through.
        unsafe { HEAP.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract passes through.
        unsafe { HEAP.dealloc(ptr, layout) }
    }
}

pub(super) fn init(virt: usize, size: usize) {
    // SAFETY: the caller hands over a direct-mapped range of free RAM that
    // nothing else will use.
    unsafe { HEAP.heap.lock().add_to_heap(virt, virt + size) };
}

/// (bytes in the heap, bytes in use).
pub fn usage() -> (usize, usize) {
    let heap = HEAP.heap.lock();
    (heap.stats_total_bytes(), heap.stats_alloc_actual())
}

impl KernelHeap {
    /// Adds frames to the heap: `wanted` bytes (at least [`GROWTH`]) or,
    /// when physical memory is too fragmented for that, the largest
    /// smaller power of two down to `needed`. Fails if another growth is in
    /// progress or no block of `needed` bytes is free. Sizes near the top
    /// of the address space fail rather than overflow (32-bit targets).
    fn grow(&self, wanted: usize, needed: usize) -> bool {
        let Some(needed) = needed.max(PAGE_SIZE).checked_next_power_of_two() else {
            return false;
        };
        let mut bytes = wanted
            .max(GROWTH)
            .checked_next_power_of_two()
            .unwrap_or(needed)
            .max(needed);
        if self.growing.swap(true, Ordering::SeqCst) {
            return false;
        }
        let grown = loop {
            // Zeroed, like stacks: no stale data, and no stale translated
            // code for QEMU's TCG to keep checking writes against.
            if let Ok(paddr) = frames::allocate_zeroed(bytes / PAGE_SIZE, PAGE_SIZE) {
                let virt = frames::to_virt(paddr);
                // SAFETY: the frames were just allocated for the heap alone
                // and are direct-mapped.
                unsafe { self.heap.lock().add_to_heap(virt, virt + bytes) };
                break true;
            }
            if bytes <= needed {
                break false;
            }
            bytes /= 2;
        };
        self.growing.store(false, Ordering::SeqCst);
        grown
    }
}

// SAFETY: allocations come from the buddy heap, which hands out disjoint
// blocks of at least the layout's size and alignment; the lock serialises
// access.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let first = self.heap.lock().alloc(layout);
        let block = match first {
            Ok(block) => block,
            Err(()) => {
                // A chunk that can hold the block whatever its alignment
                // (naturally aligned blocks: one of the block's size), with
                // room to spare if memory allows.
                let need = layout.size().max(layout.align());
                if !self.grow(need.saturating_mul(2), need) {
                    return core::ptr::null_mut();
                }
                let second = self.heap.lock().alloc(layout);
                match second {
                    Ok(block) => block,
                    Err(()) => return core::ptr::null_mut(),
                }
            }
        };
        block.as_ptr()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(ptr) = NonNull::new(ptr) {
            // SAFETY: the caller passes a block this allocator returned,
            // with its layout.
            unsafe { self.heap.lock().dealloc(ptr, layout) };
        }
    }
}

/// Out of heap memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfHeap;

/// `Arc::new` that reports exhaustion: an `Arc` allocation that fails
/// aborts, and the heap grows on demand and refuses only when frames run
/// out, which the trial box reports first.
pub fn try_arc<T>(value: T) -> Result<alloc::sync::Arc<T>, OutOfHeap> {
    Ok(alloc::sync::Arc::from(try_box(value)?))
}

/// `Box::new` that reports exhaustion instead of panicking.
pub fn try_box<T>(value: T) -> Result<Box<T>, OutOfHeap> {
    let layout = Layout::new::<T>();
    if layout.size() == 0 {
        return Ok(Box::new(value));
    }
    // SAFETY: a non-zero-sized layout; on success the block is initialised
    // before it becomes a Box, which then owns it with the same layout.
    unsafe {
        let ptr = alloc::alloc::alloc(layout) as *mut T;
        if ptr.is_null() {
            return Err(OutOfHeap);
        }
        ptr.write(value);
        Ok(Box::from_raw(ptr))
    }
}
