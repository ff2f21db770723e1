//! Notifications: a word of signal bits. `signal` ORs bits in and wakes a
//! waiter, which takes every bit set; `poll` takes them without waiting.
//! An interrupt handler's line signals one, so a driver learns of its
//! interrupts the same way as of any other event.
//!
//! Bound to a thread (seL4's bound notification), a notification also
//! ends that thread's wait to receive on an endpoint: the receive returns
//! the label `NOTIFIED` with the bits, so one thread serves its clients
//! and its interrupts.

use crate::task::ipc::{self, Ipc};
use crate::task::{Message, ThreadRef, WaitQueue};
use abi::Error;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::Arch;

pub struct Notification {
    /// Bits signalled and not yet taken. Changed only under the IPC lock,
    /// so a signal and a waiter never miss each other.
    bits: AtomicUsize,
    waiters: WaitQueue,
    /// The thread it is bound to. Changed only under the IPC lock.
    bound: spin::Mutex<Option<ThreadRef>>,
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
            bound: spin::Mutex::new(None),
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
    let bound = *notification.bound.lock();
    if let Some(thread) = bound {
        let message = Message {
            label: abi::NOTIFIED,
            badge: pending,
            words: [0; 4],
        };
        if ipc.interrupt_receive(thread, message) {
            notification.bits.store(0, Ordering::Relaxed);
            return;
        }
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

/// The bits pending on the calling thread's bound notification, taken:
/// what a receive returns before it waits.
pub(super) fn take_bound_bits(ipc: &Ipc) -> usize {
    ipc.bound()
        .and_then(|bound| bound.downcast_ref::<Notification>())
        .map_or(0, |notification| {
            notification.bits.swap(0, Ordering::Relaxed)
        })
}

/// Binds `notification` to the calling thread, or unbinds the thread's
/// for `None`. A notification is bound to one thread at most.
pub fn bind(notification: Option<alloc::sync::Arc<Notification>>) -> Result<(), abi::Error> {
    let mut ipc = ipc::lock();
    let me = ipc.current();
    if let Some(notification) = &notification {
        let mut bound = notification.bound.lock();
        if bound.is_some_and(|thread| thread != me && ipc.alive(thread)) {
            return Err(abi::Error::InvalidArgument);
        }
        *bound = Some(me);
    }
    let old = ipc.bind(notification.map(|n| {
        let bits: *const AtomicUsize = &n.bits;
        // SAFETY: the word is in the notification, which the binding
        // keeps alive as long as it holds the word.
        (n as crate::task::Bound, unsafe { &*bits })
    }));
    if let Some(old) = old
        .as_ref()
        .and_then(|old| old.downcast_ref::<Notification>())
    {
        let mut bound = old.bound.lock();
        if *bound == Some(me) {
            *bound = None;
        }
    }
    drop(ipc);
    drop(old);
    Ok(())
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
