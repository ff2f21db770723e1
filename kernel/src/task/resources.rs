//! What a process keeps beyond its threads and memory (its capability
//! table), which the task subsystem holds without knowing its type, and
//! the address of it that each of the process's threads keeps.

use alloc::boxed::Box;
use core::any::Any;
use core::ptr::NonNull;

/// A type that a process's resources may have.
///
/// # Safety
/// `TAG` refers to a static that no other implementor's `TAG` refers to:
/// the tag's address tells the types apart, in one comparison (a `TypeId`
/// takes eight instructions and four loads on a 32-bit machine, on the
/// path of every system call that names a capability).
pub unsafe trait ResourcesType: Any + Send {
    const TAG: &'static u8;
}

/// A process's resources, as the process is given them.
pub struct Resources {
    value: Box<dyn Any + Send>,
    tag: &'static u8,
}

impl Resources {
    pub fn new<T: ResourcesType>(value: Box<T>) -> Resources {
        Resources { value, tag: T::TAG }
    }
}

/// A process's [`Resources`], owned by address rather than as a box, so
/// that the addresses its threads keep ([`ResourcesAt`]) stay valid while
/// it has them (a box would claim sole access each time it moved).
pub(super) struct OwnedResources {
    value: NonNull<dyn Any + Send>,
    tag: &'static u8,
}

// SAFETY: it owns a `Box<dyn Any + Send>`, which is `Send`.
unsafe impl Send for OwnedResources {}

impl OwnedResources {
    pub(super) fn new(resources: Resources) -> OwnedResources {
        OwnedResources {
            value: NonNull::from(Box::leak(resources.value)),
            tag: resources.tag,
        }
    }

    pub(super) fn at(&self) -> ResourcesAt {
        ResourcesAt {
            address: self.value.cast(),
            tag: self.tag,
        }
    }

    pub(super) fn into_resources(self) -> Resources {
        let (value, tag) = (self.value, self.tag);
        core::mem::forget(self);
        // SAFETY: it came from a box, given back once (`self` is gone).
        let value = unsafe { Box::from_raw(value.as_ptr()) };
        Resources { value, tag }
    }
}

impl Drop for OwnedResources {
    fn drop(&mut self) {
        // SAFETY: as in `into_resources`; nothing reaches it after this.
        drop(unsafe { Box::from_raw(self.value.as_ptr()) });
    }
}

/// Where a process's resources are, and the tag of their type. Each of
/// its threads keeps a copy, so that its system calls reach them in one
/// look and without a virtual call (the IPC fast path's capability
/// lookup).
#[derive(Clone, Copy)]
pub(super) struct ResourcesAt {
    address: NonNull<()>,
    tag: &'static u8,
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
    pub(super) unsafe fn get<'a, T: ResourcesType>(self) -> Option<&'a mut T> {
        if !core::ptr::eq(self.tag, T::TAG) {
            return None;
        }
        // SAFETY: a live `T` (only a `T` carries its tag, see
        // `ResourcesType`), not borrowed elsewhere, as the caller promises.
        Some(unsafe { &mut *self.address.cast::<T>().as_ptr() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::sync::Arc;

    struct Counted(Arc<u32>);
    static COUNTED: u8 = 0;
    // SAFETY: `COUNTED` is this type's alone.
    unsafe impl ResourcesType for Counted {
        const TAG: &'static u8 = &COUNTED;
    }

    struct Other;
    static OTHER: u8 = 0;
    // SAFETY: `OTHER` is this type's alone.
    unsafe impl ResourcesType for Other {
        const TAG: &'static u8 = &OTHER;
    }

    #[test]
    fn the_address_serves_only_its_own_type_and_the_owner_gives_the_value_back() {
        let value = Arc::new(5u32);
        let owned = OwnedResources::new(Resources::new(Box::new(Counted(Arc::clone(&value)))));
        let at = owned.at();
        // SAFETY: `owned` holds the value, and nothing else borrows it.
        unsafe {
            assert!(at.get::<Other>().is_none());
            assert_eq!(*at.get::<Counted>().expect("its own type").0, 5);
        }
        let back = owned.into_resources();
        assert_eq!(Arc::strong_count(&value), 2);
        drop(back);
        assert_eq!(Arc::strong_count(&value), 1);
        // Dropped without being taken, it frees the value too.
        drop(OwnedResources::new(Resources::new(Box::new(Counted(
            Arc::clone(&value),
        )))));
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
