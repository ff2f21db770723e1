//! Threads: the record of each one and the table that holds them.
//!
//! A thread is a kernel stack plus saved state; a user thread also has a
//! process. Kernel threads (the boot thread, the idle thread, test
//! threads) have none.

use super::queue::{LinkTable, Links, Place};
use crate::mm::{self, stack::KernelStack};
use abi::Error;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A thread id; ids are never reused.
pub type Tid = u32;

/// Thread priorities: 0 is the lowest, `PRIORITIES - 1` the highest.
pub const PRIORITIES: usize = 8;
/// The priority of user processes and kernel threads.
pub const DEFAULT_PRIORITY: u8 = 4;
/// Threads in the system, at most: one per kernel stack.
pub const MAX_THREADS: usize = crate::mm::stack::MAX_STACKS;
/// Ticks a thread runs before others of its priority get a turn.
pub const TIMESLICE_TICKS: u32 = 10;

/// A blocked thread was killed while it waited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Killed;

impl From<Killed> for Error {
    fn from(_: Killed) -> Self {
        Error::Interrupted
    }
}

/// A message: a label, the badge of the capability it was sent through,
/// and four words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Message {
    pub label: usize,
    pub badge: usize,
    pub words: [usize; 4],
}

/// A thread in the table, as IPC names it: the index and the id, so that
/// a thread that ended and whose slot was reused is never mistaken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadRef {
    pub(super) index: usize,
    pub(super) tid: Tid,
}

impl ThreadRef {
    /// The thread's id.
    pub fn tid(&self) -> Tid {
        self.tid
    }
}

/// What a thread carries for IPC.
#[derive(Default)]
pub(super) struct IpcState {
    /// The message it sends, or the one handed to it.
    pub(super) message: Message,
    /// Its queued message is a call: it waits for a reply once taken.
    pub(super) is_call: bool,
    /// Blocked until the thread it called replies (in no queue).
    pub(super) awaiting_reply: bool,
    /// How its wait ended, set by whoever woke it.
    pub(super) outcome: Option<Error>,
    /// The caller waiting for this thread's reply.
    pub(super) caller: Option<ThreadRef>,
    /// A capability travelling with the message: the one this thread
    /// sends until it is delivered, or the one it was handed until it
    /// takes it into its table. Empty whenever the thread blocks to
    /// receive.
    pub(super) transfer: Option<Transfer>,
    /// Blocked receiving on an endpoint (so a bound notification may end
    /// the wait).
    pub(super) receiving: bool,
    /// The notification bound to this thread, kept alive by the binding.
    pub(super) bound: Option<Bound>,
    /// The bound notification's pending bits, for the IPC fast path to
    /// read without knowing the object's type.
    pub(super) bound_bits: Option<NonNull<AtomicUsize>>,
    /// Its IPC buffer (a page of its process's space), 0 if none.
    pub(super) buffer: usize,
    /// The frame behind `buffer` once a payload needed it, 0 until then:
    /// looked up once rather than by a page-table walk per message, and
    /// forgotten whenever its space unmaps anything.
    pub(super) buffer_frame: u64,
    /// How long its IPC waits may last, in ns; 0: for ever.
    pub(super) timeout_ns: u64,
    /// When the current wait times out, if it has a timeout.
    pub(super) deadline: u64,
    /// The server that took its call, while it awaits the reply: set for
    /// every wait that may time out (the only thing that reads it), so
    /// the IPC fast path, whose waits never do, leaves it.
    pub(super) served_by: Option<ThreadRef>,
    /// It blocked on the fast path: its user registers are all in its
    /// system call frame, so a fast path may resume it by writing its
    /// results there and returning to user mode from that frame.
    pub(super) resumes_at_frame: bool,
}

/// A bound notification, of a type only the object layer knows.
pub type Bound = alloc::sync::Arc<dyn core::any::Any + Send + Sync>;

impl IpcState {
    /// Whether bits are pending on the bound notification (read under the
    /// IPC lock, which every signal takes).
    #[inline(always)]
    pub(super) fn bound_bits_pending(&self) -> bool {
        // SAFETY: the word is in the notification `bound` keeps alive, and
        // both change together (`Ipc::bind`).
        self.bound_bits
            .is_some_and(|bits| unsafe { bits.as_ref() }.load(Ordering::Relaxed) != 0)
    }

    /// Starts a wait: for a reply (in no queue), to receive, or neither.
    #[inline]
    pub(super) fn start_wait(&mut self, awaiting_reply: bool, receiving: bool) {
        self.set_wait(awaiting_reply, receiving);
        self.outcome = None;
    }

    /// What the thread waits for, `outcome` left as it is: the IPC fast
    /// path starts and ends waits so. Whoever ends a wait otherwise sets
    /// the outcome (a kill, which does not, is looked at first), and one
    /// ended on the fast path is not read.
    #[inline(always)]
    pub(super) fn set_wait(&mut self, awaiting_reply: bool, receiving: bool) {
        self.awaiting_reply = awaiting_reply;
        self.receiving = receiving;
    }

    /// Ends a wait with `outcome` (`None`: it went well).
    #[inline]
    pub(super) fn end_wait(&mut self, outcome: Option<Error>) {
        self.set_wait(false, false);
        self.outcome = outcome;
    }
}

/// How the fast path resumes the thread it hands the CPU to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Blocked on the fast path: return to user mode from the system call
    /// frame at the top of the kernel stack that ends at `stack_top`,
    /// whose results are written (`hal::Threads::write_frame_results`).
    Frame { stack_top: usize },
    /// Blocked on the general path: load the kernel context saved at `sp`.
    Context { sp: usize },
}

/// A capability in transit, of a type only the object layer knows.
pub type Transfer = Box<dyn core::any::Any + Send>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Ready,
    Running,
    Blocked,
    Dead,
}

pub(super) struct Thread {
    pub(super) tid: Tid,
    /// The process's slot; `None` for kernel threads.
    pub(super) process: Option<usize>,
    /// The process's pid and address space, kept here so that a switch
    /// need not look the process up (0 and `None` for kernel threads).
    pub(super) pid: super::Pid,
    pub(super) space: Option<hal::RootTable>,
    /// Its process's resources (see `ResourcesAt`); `None` for kernel
    /// threads.
    pub(super) resources: Option<super::resources::ResourcesAt>,
    pub(super) name: &'static str,
    pub(super) state: State,
    pub(super) priority: u8,
    /// The kernel stack pointer while switched out.
    pub(super) saved_sp: usize,
    /// `None` for the boot thread, which keeps the boot stack.
    #[expect(
        dead_code,
        reason = "owned so that dropping the thread frees the stack"
    )]
    stack: Option<KernelStack>,
    pub(super) stack_top: usize,
    pub(super) links: Links,
    /// Its place in the list of IPC deadlines.
    pub(super) deadline_links: Links,
    pub(super) slice_left: u32,
    /// When a sleeping thread is due, on the monotonic clock.
    pub(super) wake_at: u64,
    pub(super) killed: bool,
    /// A kernel thread's work.
    pub(super) entry: Option<(fn(usize), usize)>,
    pub(super) cpu_ticks: u64,
    pub(super) ipc: IpcState,
}

impl Thread {
    /// A ready thread that will resume at `saved_sp` on `stack`.
    pub(super) fn new(
        name: &'static str,
        stack: Option<KernelStack>,
        stack_top: usize,
        saved_sp: usize,
    ) -> Result<Box<Thread>, Error> {
        mm::heap::try_box(Thread {
            tid: 0,
            process: None,
            pid: 0,
            space: None,
            resources: None,
            name,
            state: State::Ready,
            priority: DEFAULT_PRIORITY,
            saved_sp,
            stack,
            stack_top,
            links: Links::default(),
            deadline_links: Links::default(),
            slice_left: TIMESLICE_TICKS,
            wake_at: 0,
            killed: false,
            entry: None,
            cpu_ticks: 0,
            ipc: IpcState::default(),
        })
        .map_err(|_| Error::OutOfMemory)
    }
}

/// The thread table: entries stay at their index while they exist, and
/// ids count up from 1.
pub(super) struct Threads {
    /// The records, each owned by the address of what was a box: so that
    /// the running thread's address can be kept too (`current`) and stay
    /// valid (a box would claim sole access each time it was reached).
    slots: Vec<Option<NonNull<Thread>>>,
    /// The running thread's record, so that the IPC fast path reaches it
    /// without a look into the table; `None` before the first.
    current: Option<NonNull<Thread>>,
    next_tid: Tid,
    live: usize,
}

// SAFETY: it owns its records as a `Vec<Option<Box<Thread>>>` would, and
// `current` is one of them.
unsafe impl Send for Threads {}

impl Drop for Threads {
    fn drop(&mut self) {
        for record in self.slots.iter_mut().filter_map(Option::take) {
            // SAFETY: each came from a box, and is given back once.
            drop(unsafe { Box::from_raw(record.as_ptr()) });
        }
    }
}

/// What makes a thread the running one, handed out with its record
/// (see [`Threads::current_and`]).
pub(super) struct Succession(NonNull<Thread>);

impl LinkTable for Threads {
    fn links(&mut self, index: usize) -> &mut Links {
        &mut self.get_mut(index).links
    }
}

impl Threads {
    pub(super) const fn new() -> Threads {
        Threads {
            slots: Vec::new(),
            current: None,
            next_tid: 1,
            live: 0,
        }
    }

    #[inline(always)]
    fn record(&self, index: usize) -> Option<NonNull<Thread>> {
        *self.slots.get(index)?
    }

    #[inline(always)]
    pub(super) fn get(&self, index: usize) -> &Thread {
        let record = self.record(index).expect("thread exists");
        // SAFETY: a record the table owns, borrowed with the table.
        unsafe { record.as_ref() }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, index: usize) -> &mut Thread {
        let mut record = self.record(index).expect("thread exists");
        // SAFETY: a record the table owns, borrowed with the table.
        unsafe { record.as_mut() }
    }

    /// Two different entries at once, both of which must exist.
    #[inline(always)]
    pub(super) fn pair_mut(&mut self, a: usize, b: usize) -> (&mut Thread, &mut Thread) {
        assert_ne!(a, b, "two different entries");
        let a = self.record(a).expect("thread exists");
        let b = self.record(b).expect("thread exists");
        // SAFETY: two different records the table owns, borrowed with it.
        unsafe { (&mut *a.as_ptr(), &mut *b.as_ptr()) }
    }

    /// Makes entry `index` the running thread's, for [`Threads::current`].
    pub(super) fn set_current(&mut self, index: usize) {
        self.current = Some(self.record(index).expect("thread exists"));
    }

    /// The running thread's record.
    #[inline(always)]
    pub(super) fn current(&self) -> Option<&Thread> {
        // SAFETY: the running thread's record, which the table owns (an
        // entry is taken out only once it has ended and another runs).
        self.current.map(|record| unsafe { record.as_ref() })
    }

    /// The running thread's record and entry `other`'s, if it exists and
    /// is another, with what makes `other` the running one
    /// ([`Threads::succeed`]) once they are let go of: for the IPC fast
    /// path, which looks neither up twice.
    #[inline(always)]
    pub(super) fn current_and(
        &mut self,
        other: usize,
    ) -> Option<(&mut Thread, &mut Thread, Succession)> {
        let (mut me, mut record) = (self.current?, self.record(other)?);
        if me == record {
            return None;
        }
        // SAFETY: two different records the table owns, borrowed with it.
        let (me_ref, other_ref) = unsafe { (me.as_mut(), record.as_mut()) };
        Some((me_ref, other_ref, Succession(record)))
    }

    /// Makes the thread `succession` came with the running one.
    #[inline(always)]
    pub(super) fn succeed(&mut self, succession: Succession) {
        self.current = Some(succession.0);
    }

    /// The list thread `index` is in, if any.
    #[inline]
    pub(super) fn place_of(&self, index: usize) -> Option<Place> {
        self.get(index).links.place()
    }

    /// Threads that have not ended.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Entries, ended ones included, by index.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Thread)> {
        self.slots
            .iter()
            .enumerate()
            // SAFETY: records the table owns, borrowed with it.
            .filter_map(|(index, slot)| Some((index, unsafe { slot.as_ref()?.as_ref() })))
    }

    /// Entries, ended ones included, to change.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Thread> {
        self.slots
            .iter_mut()
            // SAFETY: records the table owns, borrowed with it.
            .filter_map(|slot| Some(unsafe { slot.as_mut()?.as_mut() }))
    }

    /// Indices of every entry.
    pub(super) fn indices(&self) -> core::ops::Range<usize> {
        0..self.slots.len()
    }

    /// The reference to entry `index`.
    #[inline]
    pub(super) fn reference(&self, index: usize) -> ThreadRef {
        ThreadRef {
            index,
            tid: self.get(index).tid,
        }
    }

    /// Thread `t`, if it still exists and has not ended.
    #[inline]
    pub(super) fn alive(&self, t: ThreadRef) -> Option<&Thread> {
        // SAFETY: a record the table owns, borrowed with the table.
        let thread = unsafe { self.record(t.index)?.as_ref() };
        (thread.tid == t.tid && thread.state != State::Dead).then_some(thread)
    }

    /// Whether entry `index` exists.
    pub(super) fn exists(&self, index: usize) -> bool {
        self.slots.get(index).is_some_and(Option::is_some)
    }

    /// Reserves room for every slot the table may have.
    pub(super) fn reserve_all(&mut self) -> Result<(), Error> {
        let more = MAX_THREADS.saturating_sub(self.slots.len());
        self.slots
            .try_reserve_exact(more)
            .map_err(|_| Error::OutOfMemory)
    }

    /// Puts `thread` in a free slot and gives it the next id.
    pub(super) fn insert(&mut self, mut thread: Box<Thread>) -> Result<usize, Error> {
        if self.live >= MAX_THREADS {
            return Err(Error::LimitReached);
        }
        let index = match self.slots.iter().position(Option::is_none) {
            Some(index) => index,
            None => {
                self.slots.try_reserve(1).map_err(|_| Error::OutOfMemory)?;
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        thread.tid = self.next_tid;
        self.next_tid += 1;
        self.slots[index] = Some(NonNull::from(Box::leak(thread)));
        self.live += 1;
        Ok(index)
    }

    /// Counts thread `index` as ended (its record stays until [`take`](Self::take)).
    pub(super) fn mark_ended(&mut self, index: usize) {
        self.get_mut(index).state = State::Dead;
        self.live -= 1;
    }

    /// Removes entry `index`, which has ended and is in no list.
    pub(super) fn take(&mut self, index: usize) -> Option<Box<Thread>> {
        let record = self.slots[index].take()?;
        assert!(self.current != Some(record), "the running thread is taken");
        // SAFETY: it came from a box, given back once; nothing keeps its
        // address now (it is not the running thread's).
        Some(unsafe { Box::from_raw(record.as_ptr()) })
    }
}
