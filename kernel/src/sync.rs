//! A spin lock that also masks interrupts while it is held, for data that
//! interrupt handlers share with the rest of the kernel: a handler can
//! never spin on a lock its own CPU holds.

use core::mem::ManuallyDrop;
use core::ops::{Deref, DerefMut};
use spin::{Mutex, MutexGuard, Once};

/// Saves the interrupt state and masks; restores a saved state.
struct IrqOps {
    save: fn() -> bool,
    restore: fn(bool),
}

static IRQ_OPS: Once<IrqOps> = Once::new();

fn save<A: hal::Interrupts>() -> bool {
    let was = A::enabled();
    A::disable();
    was
}

fn restore<A: hal::Interrupts>(was: bool) {
    if was {
        A::enable();
    }
}

/// Makes [`IrqLock`] mask interrupts through `A`.
pub fn install<A: hal::Interrupts>() {
    IRQ_OPS.call_once(|| IrqOps {
        save: save::<A>,
        restore: restore::<A>,
    });
}

/// A spin lock held with interrupts masked.
pub struct IrqLock<T> {
    inner: Mutex<T>,
}

/// Access to an [`IrqLock`]'s data; dropping it unlocks, then restores the
/// interrupt state.
pub struct IrqGuard<'a, T> {
    guard: ManuallyDrop<MutexGuard<'a, T>>,
    was_enabled: bool,
}

impl<T> IrqLock<T> {
    /// A lock around `value`.
    pub const fn new(value: T) -> Self {
        IrqLock {
            inner: Mutex::new(value),
        }
    }

    /// Masks interrupts and takes the lock.
    pub fn lock(&self) -> IrqGuard<'_, T> {
        let was_enabled = IRQ_OPS.get().is_some_and(|ops| (ops.save)());
        IrqGuard {
            guard: ManuallyDrop::new(self.inner.lock()),
            was_enabled,
        }
    }

    /// Takes the lock where interrupts are known to be masked already (in
    /// a system call or an interrupt handler: the kernel runs with them
    /// masked), skipping the save and restore.
    pub fn lock_masked(&self) -> IrqGuard<'_, T> {
        debug_assert!(
            !IRQ_OPS.get().is_some_and(|ops| {
                let was = (ops.save)();
                (ops.restore)(was);
                was
            }),
            "lock_masked with interrupts enabled"
        );
        IrqGuard {
            guard: ManuallyDrop::new(self.inner.lock()),
            was_enabled: false,
        }
    }

    /// Whether the lock is held.
    pub fn is_locked(&self) -> bool {
        self.inner.is_locked()
    }

    /// Releases the lock regardless of its holder.
    ///
    /// # Safety
    /// The holder must never run again (the panic path uses this).
    pub unsafe fn force_unlock(&self) {
        // SAFETY: passed on to the caller.
        unsafe { self.inner.force_unlock() }
    }
}

impl<T> Deref for IrqGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for IrqGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

impl<T> Drop for IrqGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: the guard is dropped once, here, before interrupts return.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        // Restoring "masked" changes nothing.
        if self.was_enabled
            && let Some(ops) = IRQ_OPS.get()
        {
            (ops.restore)(true);
        }
    }
}
