//! What a process keeps beyond its threads and memory (its capability
//! table), which the task subsystem holds without knowing its type, and
//! the address of it that each of the process's threads keeps.

use alloc::boxed::Box;
use core::any::{Any, TypeId};
use core::ptr::NonNull;

/// A process's resources, as the process is given them.
pub type Resources = Box<dyn Any + Send>;

/// A process's [`Resources`], owned by address rather than as a box, so
/// that the addresses its threads keep ([`ResourcesAt`]) stay valid while
/// it has them (a box would claim sole access each time it moved).
pub(super) struct OwnedResources(NonNull<dyn Any + Send>);

// SAFETY: it owns a `Box<dyn Any + Send>`, which is `Send`.
unsafe impl Send for OwnedResources {}

impl OwnedResources {
    pub(super) fn new(resources: Resources) -> OwnedResources {
        OwnedResources(NonNull::from(Box::leak(resources)))
    }

    pub(super) fn at(&self) -> ResourcesAt {
        // SAFETY: it owns a live value, read here only for its type.
        let type_id = unsafe { self.0.as_ref() }.type_id();
        ResourcesAt {
            address: self.0.cast(),
            type_id,
        }
    }

    pub(super) fn into_box(self) -> Resources {
        let resources = self.0;
        core::mem::forget(self);
        // SAFETY: it came from a box, given back once (`self` is gone).
        unsafe { Box::from_raw(resources.as_ptr()) }
    }
}

impl Drop for OwnedResources {
    fn drop(&mut self) {
        // SAFETY: as in `into_box`; nothing reaches it after this.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// Where a process's resources are, and their concrete type. Each of its
/// threads keeps a copy, so that its system calls reach them in one look
/// and without a virtual call (the IPC fast path's capability lookup).
#[derive(Clone, Copy)]
pub(super) struct ResourcesAt {
    address: NonNull<()>,
    type_id: TypeId,
}

// SAFETY: an address, followed only by the process's own running thread
// under the scheduler lock (see `get`).
unsafe impl Send for ResourcesAt {}

impl ResourcesAt {
    /// The resources, if they are a `T`.
    ///
    /// # Safety
    /// They are still the process's: one of its threads runs (a process's
    /// resources are taken only when its last thread has ended), and
    /// nothing else borrows them for `'a`.
    #[inline(always)]
    pub(super) unsafe fn get<'a, T: Any>(self) -> Option<&'a mut T> {
        if self.type_id != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: a live `T` (its type was read from it), not borrowed
        // elsewhere, as the caller promises.
        Some(unsafe { &mut *self.address.cast::<T>().as_ptr() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;

    #[test]
    fn the_address_serves_only_its_own_type_and_the_owner_gives_the_value_back() {
        let value = Arc::new(5u32);
        let owned = OwnedResources::new(Box::new(Arc::clone(&value)));
        let at = owned.at();
        // SAFETY: `owned` holds the value, and nothing else borrows it.
        unsafe {
            assert!(at.get::<u64>().is_none());
            assert_eq!(**at.get::<Arc<u32>>().expect("its own type"), 5);
        }
        let back = owned
            .into_box()
            .downcast::<Arc<u32>>()
            .expect("the same value");
        assert_eq!(Arc::strong_count(&value), 2);
        drop(back);
        assert_eq!(Arc::strong_count(&value), 1);
        // Dropped without being taken, it frees the value too.
        drop(OwnedResources::new(Box::new(Arc::clone(&value))));
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
