//! Kernel stacks: each in its own slot of the architecture's stacks window,
//! with the pages below it left unmapped so an overflow faults instead of
//! corrupting a neighbour.

use super::frames::{self, KernelFrames};
use super::{PAGE_SIZE, ops};
use alloc::vec::Vec;
use hal::mm::{MapError, MapFlags, Space};
use spin::Mutex;

/// Usable stack per thread.
pub const STACK_SIZE: usize = 16 * 1024;
/// Stacks at most: one per thread.
pub const MAX_STACKS: usize = 1024;
/// Virtual space per stack: the stack at the top, guard pages below.
pub const SLOT_SIZE: usize = 32 * 1024;
const STACK_PAGES: usize = STACK_SIZE / PAGE_SIZE;

/// Slot numbers handed out so far, and those given back.
struct Slots {
    next: usize,
    free: Vec<usize>,
}

static SLOTS: Mutex<Slots> = Mutex::new(Slots {
    next: 0,
    free: Vec::new(),
});

/// A mapped kernel stack. Dropping it unmaps it and frees its frames.
pub struct KernelStack {
    slot: usize,
    frames: [u64; STACK_PAGES],
}

fn slot_base(slot: usize) -> usize {
    ops().stacks.0 + slot * SLOT_SIZE
}

/// The span each step of [`prepare`] covers: the smallest reach of one
/// page table among the architectures (an ARMv7 L2 table's 1 MiB).
const TABLE_REACH: usize = 1 << 20;

/// Takes, at boot, what stacks will need besides their own frames: room
/// in the free list for every slot, and the page tables over the slots of
/// [`MAX_STACKS`] stacks (mapping a page in each table's reach and
/// unmapping it leaves the table, which the kernel keeps). The kernel's
/// own memory then does not grow with the most threads there have been,
/// and a thread's start cannot fail for want of a table.
pub fn prepare() -> Result<(), MapError> {
    SLOTS
        .lock()
        .free
        .try_reserve_exact(MAX_STACKS)
        .map_err(|_| MapError::OutOfMemory)?;
    let (start, end) = ops().stacks;
    let span = (MAX_STACKS * SLOT_SIZE).min(end - start);
    let frame = frames::allocate(1, PAGE_SIZE).map_err(|_| MapError::OutOfMemory)?;
    let mut result = Ok(());
    for offset in (0..span).step_by(TABLE_REACH) {
        let page = start + offset;
        result = (ops().map)(
            Space::Kernel,
            page,
            frame,
            PAGE_SIZE,
            MapFlags::KERNEL_RW,
            &KernelFrames,
        )
        .and_then(|()| (ops().unmap)(Space::Kernel, page).map(drop));
        if result.is_err() {
            break;
        }
    }
    frames::free(frame, 1);
    result
}

impl KernelStack {
    /// Maps a new stack.
    pub fn new() -> Result<KernelStack, MapError> {
        let (start, end) = ops().stacks;
        let slot = {
            let mut slots = SLOTS.lock();
            match slots.free.pop() {
                Some(slot) => slot,
                None if start + (slots.next + 1) * SLOT_SIZE <= end => {
                    slots.next += 1;
                    slots.next - 1
                }
                None => return Err(MapError::OutOfMemory),
            }
        };
        let mut stack = KernelStack {
            slot,
            frames: [0; STACK_PAGES],
        };
        let bottom = stack.bottom();
        for page in 0..STACK_PAGES {
            // Zeroed: no stale data from the frame's last owner. (Under
            // QEMU's TCG it matters for speed too: a frame that once held
            // translated code stays on the slow self-modifying-code path
            // for writes until every byte of that code is overwritten, and
            // a stack only ever writes its top.)
            // On failure, drop unmaps and frees the pages mapped so far.
            let frame = frames::allocate_zeroed(1, PAGE_SIZE).map_err(|_| MapError::OutOfMemory)?;
            let mapped = (ops().map)(
                Space::Kernel,
                bottom + page * PAGE_SIZE,
                frame,
                PAGE_SIZE,
                MapFlags::KERNEL_RW,
                &KernelFrames,
            );
            if let Err(e) = mapped {
                frames::free(frame, 1);
                return Err(e);
            }
            stack.frames[page] = frame;
        }
        Ok(stack)
    }

    /// The lowest mapped address.
    pub fn bottom(&self) -> usize {
        slot_base(self.slot) + SLOT_SIZE - STACK_SIZE
    }

    /// The initial stack pointer: one past the highest byte.
    pub fn top(&self) -> usize {
        slot_base(self.slot) + SLOT_SIZE
    }

    /// The address of the unmapped page just below the stack.
    pub fn guard_page(&self) -> usize {
        self.bottom() - PAGE_SIZE
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        let bottom = self.bottom();
        for (page, &frame) in self.frames.iter().enumerate() {
            if frame != 0 {
                // Unmapping a page this stack mapped cannot fail.
                let _ = (ops().unmap)(Space::Kernel, bottom + page * PAGE_SIZE);
                frames::free(frame, 1);
            }
        }
        SLOTS.lock().free.push(self.slot);
    }
}
