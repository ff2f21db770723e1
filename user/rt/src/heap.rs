//! The heap: a buddy allocator that grows by mapping anonymous memory
//! when it runs out.

use buddy_system_allocator::{Heap, LockedHeapWithRescue};
use core::alloc::Layout;

/// The smallest step the heap grows by.
const GROWTH: usize = 64 * 1024;

#[global_allocator]
static HEAP: LockedHeapWithRescue<32> = LockedHeapWithRescue::new(grow);

/// Maps more memory for a request of `layout` that did not fit.
fn grow(heap: &mut Heap<32>, layout: &Layout) {
    let len = (layout.size() + layout.align())
        .next_multiple_of(GROWTH)
        .max(GROWTH);
    if let Ok(start) = crate::sys::map(0, len, abi::PROT_READ | abi::PROT_WRITE) {
        // SAFETY: the kernel just mapped [start, start + len) for this
        // process, zeroed, and nothing else uses it.
        unsafe { heap.add_to_heap(start, start + len) };
    }
}

/// Bytes the heap has taken from the kernel and bytes in use.
pub fn usage() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_total_bytes(), heap.stats_alloc_actual())
}
