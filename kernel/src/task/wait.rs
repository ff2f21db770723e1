//! Wait queues: the threads waiting for one thing, kept by that thing.
//!
//! A process keeps the queue of its threads waiting for a child, the
//! console the queue of its readers; each new kernel object that threads
//! wait on (an endpoint, a notification) keeps its own, in its own file,
//! and the scheduler needs no change for it. A waiting thread records the
//! queue's address in its links, so killing it can take it out of the
//! queue without knowing whose queue it is.
//!
//! The links live in the thread table, so a queue is only a head, a tail
//! and a count, and every operation on it takes the thread table, which
//! only the scheduler lock hands out.

use super::queue::{Place, QueueAddress, ThreadList};
use super::thread::{State, Thread, Threads};
use core::cell::UnsafeCell;
use core::marker::PhantomPinned;
use core::pin::Pin;

/// Threads waiting for one thing, in the order they began to wait.
///
/// A queue is pinned while threads wait in it (they record its address),
/// and must be empty when it is dropped: whoever ends the thing waited for
/// wakes its waiters first.
pub struct WaitQueue {
    list: UnsafeCell<ThreadList>,
    _pinned: PhantomPinned,
}

// SAFETY: the list is only reached through `with_list`, which takes the
// thread table by `&mut`; the kernel has one thread table, behind the
// scheduler lock, so one CPU at a time touches any queue.
unsafe impl Sync for WaitQueue {}

impl Default for WaitQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitQueue {
    /// An empty queue.
    pub const fn new() -> WaitQueue {
        WaitQueue {
            list: UnsafeCell::new(ThreadList::new()),
            _pinned: PhantomPinned,
        }
    }

    /// What a thread waiting here records.
    fn address(&self) -> QueueAddress {
        QueueAddress((&raw const *self).cast())
    }

    /// The queue a waiting thread recorded.
    ///
    /// # Safety
    /// `address` must come from a thread that waits in the queue now:
    /// queues are pinned while threads wait and outlive their waiters.
    pub(super) unsafe fn at<'a>(address: QueueAddress) -> &'a WaitQueue {
        // SAFETY: as the caller promises, a live, pinned queue is there.
        unsafe { &*address.0.cast::<WaitQueue>() }
    }

    fn with_list<R>(
        &self,
        threads: &mut Threads,
        f: impl FnOnce(&mut ThreadList, &mut Threads) -> R,
    ) -> R {
        // SAFETY: holding the thread table mutably is holding the
        // scheduler lock (see the `Sync` impl), and `f` cannot reach this
        // queue's list again: no other reference to it exists meanwhile.
        let list = unsafe { &mut *self.list.get() };
        f(list, threads)
    }

    /// Blocks thread `index`, whose record `thread` is, if no other thread
    /// waits here; says whether it did. For a caller that holds the record
    /// already (the IPC fast path), so the table is not looked into again.
    pub(super) fn block_alone(self: Pin<&Self>, index: usize, thread: &mut Thread) -> bool {
        // SAFETY: `thread` is borrowed from the thread table, which only
        // the scheduler lock gives out (as in `with_list`); nothing else
        // reaches this queue's list meanwhile.
        let list = unsafe { &mut *self.list.get() };
        if !list.is_empty() {
            return false;
        }
        thread.state = State::Blocked;
        list.push_only(index, &mut thread.links, Place::Queue(self.address()));
        true
    }

    /// Takes thread `index`, whose record `thread` is, out of the queue if
    /// it is the only one waiting; says whether it was. For a caller that
    /// holds the record already, as [`WaitQueue::block_alone`].
    pub(super) fn take_alone(&self, index: usize, thread: &mut Thread) -> bool {
        // SAFETY: as in `block_alone`.
        let list = unsafe { &mut *self.list.get() };
        list.take_only(index, &mut thread.links)
    }

    /// Blocks thread `index`, which is in no list, at the back.
    pub(super) fn block(self: Pin<&Self>, threads: &mut Threads, index: usize) {
        threads.get_mut(index).state = State::Blocked;
        let place = Place::Queue(self.address());
        self.with_list(threads, |list, threads| {
            list.push_back(threads, index, place)
        });
    }

    /// The thread that has waited longest, left in the queue.
    pub(super) fn front(&self, _threads: &Threads) -> Option<usize> {
        // SAFETY: as in `with_list`: the thread table, borrowed here, is
        // only reached under the scheduler lock, and this reads.
        unsafe { (*self.list.get()).front() }
    }

    /// Unlinks and returns the thread that has waited longest.
    pub(super) fn pop(&self, threads: &mut Threads) -> Option<usize> {
        self.with_list(threads, |list, threads| list.pop_front(threads))
    }

    /// Unlinks thread `index`, which waits here.
    pub(super) fn remove(&self, threads: &mut Threads, index: usize) {
        debug_assert_eq!(
            threads.place_of(index),
            Some(Place::Queue(self.address())),
            "thread {index} does not wait here"
        );
        self.with_list(threads, |list, threads| list.remove(threads, index));
    }

    /// Threads waiting.
    #[cfg(test)]
    pub(super) fn len(&self, threads: &mut Threads) -> usize {
        self.with_list(threads, |list, _| list.len())
    }
}

impl Drop for WaitQueue {
    fn drop(&mut self) {
        // Waiters would keep this address: a kernel bug, stopped here.
        assert!(
            self.list.get_mut().is_empty(),
            "a wait queue was dropped with threads waiting in it"
        );
    }
}
