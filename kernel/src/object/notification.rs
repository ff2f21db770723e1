//! Notifications: a word of signal bits. `signal` ORs bits in and wakes a
//! waiter, which takes every bit set; `poll` takes them without waiting.
//! An interrupt handler's line signals one, so a driver learns of its
//! interrupts the same way as of any other event.

use crate::task::ipc;
use crate::task::{Message, WaitQueue};
use abi::Error;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::Arch;

pub struct Notification {
    /// Bits signalled and not yet taken. Changed only under the IPC lock,
    /// so a signal and a waiter never miss each other.
    bits: AtomicUsize,
    waiters: WaitQueue,
}

impl Default for Notification {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Notification {
    /// Waiters hold no reference to it: they learn it went.
    fn drop(&mut self) {
        let mut ipc = ipc::lock();
        while let Some(waiter) = ipc.pop(&self.waiters) {
            ipc.wake(waiter, Err(Error::PeerDied));
        }
    }
}

impl Notification {
    pub const fn new() -> Notification {
        Notification {
            bits: AtomicUsize::new(0),
            waiters: WaitQueue::new(),
        }
    }
}

/// Sets `bits`: the longest waiter, if any, takes them with those pending.
pub fn signal(notification: &Notification, bits: usize) {
    let mut ipc = ipc::lock();
    let pending = notification.bits.load(Ordering::Relaxed) | bits;
    if pending == 0 {
        return;
    }
    match ipc.pop(&notification.waiters) {
        Some(waiter) => {
            notification.bits.store(0, Ordering::Relaxed);
            *ipc.message(waiter) = Message {
                badge: pending,
                ..Message::default()
            };
            ipc.wake(waiter, Ok(()));
        }
        None => notification.bits.store(pending, Ordering::Relaxed),
    }
}

/// Takes the bits set, 0 if none.
pub fn poll(notification: &Notification) -> usize {
    let _ipc = ipc::lock();
    notification.bits.swap(0, Ordering::Relaxed)
}

/// Waits until bits are set, then takes them.
pub fn wait<A: Arch>(notification: &Notification) -> Result<usize, Error> {
    let mut ipc = ipc::lock();
    let bits = notification.bits.swap(0, Ordering::Relaxed);
    if bits != 0 {
        return Ok(bits);
    }
    // SAFETY: as for endpoints: notifications live in an `Arc`, which
    // never moves, and empty their queue before they go.
    let queue = unsafe { Pin::new_unchecked(&notification.waiters) };
    ipc.block(Some(queue), None);
    ipc::wait::<A>(ipc).map(|message| message.badge)
}
