//! The portable part of the in-kernel test suite. Each architecture adds
//! its own tests (devices, firmware formats, its tables) to these.

mod boot;
mod irq;
mod mm;
mod task;

use crate::ktest::Test;
use alloc::vec::Vec;
use hal::Arch;

/// The portable tests, instantiated for `A`.
pub(crate) fn portable<A: Arch>() -> Vec<Test> {
    let mut tests = Vec::new();
    tests.extend(boot::tests::<A>());
    tests.extend(irq::tests::<A>());
    tests.extend(mm::tests::<A>());
    tests.extend(task::tests::<A>());
    tests
}

pub(crate) use hal::rand::XorShift;

/// Why every free frame could not be taken.
#[derive(Debug)]
pub(crate) enum TakeAllError {
    /// No heap for the list of this many frames.
    NoHeap(usize),
    /// More frames were handed out than the allocator counted as free.
    MoreThanCounted,
}

/// Takes every free frame, one at a time, into a list reserved first (with
/// every frame taken, the heap cannot grow). On an error the frames taken
/// so far are given back.
pub(crate) fn take_every_free_frame() -> Result<alloc::vec::Vec<u64>, TakeAllError> {
    use crate::mm::{PAGE_SIZE, frames};
    let (_, free) = frames::counts();
    let mut taken = alloc::vec::Vec::new();
    taken
        .try_reserve_exact(free)
        .map_err(|_| TakeAllError::NoHeap(free))?;
    while let Ok(frame) = frames::allocate(1, PAGE_SIZE) {
        if taken.len() == taken.capacity() {
            frames::free(frame, 1);
            for &frame in &taken {
                frames::free(frame, 1);
            }
            return Err(TakeAllError::MoreThanCounted);
        }
        taken.push(frame);
    }
    Ok(taken)
}
