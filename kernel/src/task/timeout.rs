//! IPC timeouts. A thread may set a timeout for its IPC waits
//! (`ipc_timeout`): a blocking send, receive, call or notification wait
//! that lasts longer ends with [`Error::TimedOut`]. A waiting thread with
//! a timeout is in two lists at once: the wait queue of what it waits for
//! (or none, awaiting a reply) and the scheduler's list of deadlines, by
//! a second set of links, so that the tick finds the due ones first.
//!
//! A caller that times out waiting for its reply stops waiting; the
//! server that took the call keeps a reference that names no thread, so
//! its reply is dropped, and a later call is never answered with an
//! earlier one's reply.

use super::ThreadRef;
use super::queue::{LinkTable, Links, Place};
use super::sched::Scheduler;
use super::thread::{State, Threads};
use abi::Error;

/// The thread table seen through the deadline links.
pub(super) struct DeadlineLinks<'a>(pub(super) &'a mut Threads);

impl LinkTable for DeadlineLinks<'_> {
    fn links(&mut self, index: usize) -> &mut Links {
        &mut self.0.get_mut(index).deadline_links
    }
}

impl Scheduler {
    /// Starts the current thread's timeout, if it has one, for the wait it
    /// is about to begin.
    #[inline]
    pub(super) fn arm_timeout(&mut self, now: impl FnOnce() -> u64) {
        let current = self.current;
        let timeout = self.thread(current).ipc.timeout_ns;
        if timeout == 0 {
            return;
        }
        let thread = self.thread_mut(current);
        thread.ipc.deadline = now().saturating_add(timeout);
        let deadlines = &mut self.deadlines;
        deadlines.insert_sorted(
            &mut DeadlineLinks(&mut self.threads),
            current,
            Place::Deadline,
            |links, index| links.0.get(index).ipc.deadline,
        );
    }

    /// Takes the current thread out of the deadline list, its wait over.
    #[inline]
    pub(super) fn disarm_timeout(&mut self) {
        let current = self.current;
        if self.thread(current).deadline_links.place().is_some() {
            self.deadlines
                .remove(&mut DeadlineLinks(&mut self.threads), current);
        }
    }

    /// Ends the waits whose deadlines are due at `now`.
    pub(super) fn expire_timeouts(&mut self, now: u64) {
        while let Some(index) = self.deadlines.front() {
            if self.thread(index).ipc.deadline > now {
                break;
            }
            self.deadlines
                .remove(&mut DeadlineLinks(&mut self.threads), index);
            self.time_out(index);
        }
    }

    /// Ends thread `index`'s IPC wait with `TimedOut`, if it still waits.
    fn time_out(&mut self, index: usize) {
        let thread = self.thread(index);
        if thread.state != State::Blocked {
            return;
        }
        let me = ThreadRef {
            index,
            tid: thread.tid,
        };
        if thread.ipc.awaiting_reply
            && let Some(server) = thread.ipc.served_by
            && self.threads.alive(server).is_some()
        {
            let held = &mut self.thread_mut(server.index).ipc.caller;
            if *held == Some(me) {
                // Thread id 0 is never given: the reference names nobody.
                *held = Some(ThreadRef { index, tid: 0 });
            }
        }
        self.unlink(index);
        self.end_wait(me, Err(Error::TimedOut));
    }
}
