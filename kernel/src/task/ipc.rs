//! What kernel objects need from the scheduler to pass messages: one lock
//! over every thread's IPC state and the wait queues, handing a message
//! to a thread and waking it, and blocking the current thread until
//! someone does. The objects (endpoints, notifications) are written in
//! terms of this and never see the scheduler itself.
//!
//! The rule that keeps the lock safe: nothing that may take it again
//! (dropping a capability or an object, say) happens while an [`Ipc`] is
//! held. A blocked thread holds no reference to the object it waits on:
//! an object that goes wakes its waiters first (with `PeerDied`).

pub use super::process::{Resources, ResourcesType};
use super::sched::{self, SCHEDULER, Scheduler, schedule};
use super::thread::{Bound, Message, Resume, State, ThreadRef, Transfer};
use super::wait::WaitQueue;
use crate::mm::frames;
use crate::sync::IrqGuard;
use abi::Error;
use core::pin::Pin;
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use hal::Arch;
use hal::trap::Access;

/// The scheduler, locked, as IPC sees it.
pub struct Ipc {
    s: IrqGuard<'static, Scheduler>,
}

/// Locks the scheduler for IPC.
pub fn lock() -> Ipc {
    Ipc {
        s: SCHEDULER.lock(),
    }
}

/// Locks the scheduler for IPC from a system call, where interrupts are
/// masked already.
pub fn lock_in_system_call() -> Ipc {
    Ipc {
        s: SCHEDULER.lock_masked(),
    }
}

impl Ipc {
    /// The calling thread.
    #[inline]
    pub fn current(&self) -> ThreadRef {
        self.s.threads.reference(self.s.current)
    }

    /// The calling process's resources, if they are a `T`.
    #[inline(always)]
    pub fn resources<T: ResourcesType>(&mut self) -> Option<&mut T> {
        let at = self.s.threads.current()?.resources?;
        // SAFETY: the calling thread runs, so its process has not ended,
        // and the borrow of the lock guard keeps other borrows out.
        unsafe { at.get::<T>() }
    }

    /// The message slot of `t`, which is alive.
    #[inline]
    pub fn message(&mut self, t: ThreadRef) -> &mut Message {
        &mut self.s.thread_mut(t.index).ipc.message
    }

    /// Takes the thread that has waited longest in `queue`.
    #[inline]
    pub fn pop(&mut self, queue: &WaitQueue) -> Option<ThreadRef> {
        let index = queue.pop(&mut self.s.threads)?;
        Some(self.s.threads.reference(index))
    }

    /// Whether `t`, just taken from a queue, sent a call (and so waits for
    /// a reply now: it stays blocked, in no queue).
    #[inline]
    pub fn take_call(&mut self, t: ThreadRef) -> bool {
        let ipc = &mut self.s.thread_mut(t.index).ipc;
        let call = core::mem::take(&mut ipc.is_call);
        ipc.awaiting_reply = call;
        call
    }

    /// Ends the wait of blocked thread `t` with `outcome`.
    #[inline]
    pub fn wake(&mut self, t: ThreadRef, outcome: Result<(), Error>) {
        self.s.end_wait(t, outcome);
    }

    /// Makes `caller` the thread the current one replies to, failing a
    /// caller it had not answered with [`Error::PeerDied`].
    #[inline]
    pub fn set_caller(&mut self, caller: Option<ThreadRef>) {
        let current = self.s.current;
        if let Some(caller) = caller {
            let me = self.s.threads.reference(current);
            self.s.thread_mut(caller.index).ipc.served_by = Some(me);
        }
        let old = core::mem::replace(&mut self.s.thread_mut(current).ipc.caller, caller);
        if let Some(old) = old.filter(|&t| self.awaits_reply(t)) {
            self.wake(old, Err(Error::PeerDied));
        }
    }

    /// Makes `caller` the thread that `receiver` (blocked, with no caller
    /// pending) replies to.
    #[inline]
    pub fn set_caller_of(&mut self, receiver: ThreadRef, caller: ThreadRef) {
        self.s.thread_mut(receiver.index).ipc.caller = Some(caller);
        self.s.thread_mut(caller.index).ipc.served_by = Some(receiver);
    }

    /// The caller the current thread owes a reply, left pending.
    #[inline]
    pub fn caller(&self) -> Option<ThreadRef> {
        self.s.thread(self.s.current).ipc.caller
    }

    /// Takes the caller the current thread owes a reply.
    #[inline]
    pub fn take_caller(&mut self) -> Option<ThreadRef> {
        let current = self.s.current;
        self.s.thread_mut(current).ipc.caller.take()
    }

    /// Whether `t` still waits for a reply (it may have been killed or
    /// ended since it called).
    #[inline]
    pub fn awaits_reply(&self, t: ThreadRef) -> bool {
        self.s.awaits_reply(t)
    }

    /// Blocks the calling thread with `message` (a call if `is_call`) in
    /// `queue`, or, without a queue, until its reply comes. Then [`wait`]
    /// or [`Ipc::switch_to`].
    #[inline]
    pub fn block(&mut self, queue: Option<Pin<&WaitQueue>>, message: Option<(Message, bool)>) {
        let current = self.s.current;
        let thread = self.s.thread_mut(current);
        if let Some((message, is_call)) = message {
            thread.ipc.message = message;
            thread.ipc.is_call = is_call;
        }
        thread.ipc.start_wait(queue.is_none(), false);
        match queue {
            Some(queue) => self.s.block_current_in(queue),
            None => thread.state = State::Blocked,
        }
    }

    /// Blocks the calling thread receiving in `queue`: its bound
    /// notification, if any, may end the wait ([`Ipc::interrupt_receive`]).
    #[inline]
    pub fn block_receiving(&mut self, queue: Pin<&WaitQueue>) {
        let current = self.s.current;
        self.s.thread_mut(current).ipc.start_wait(false, true);
        self.s.block_current_in(queue);
    }

    /// Whether thread `t` still exists and has not ended.
    #[inline]
    pub fn alive(&self, t: ThreadRef) -> bool {
        self.s.threads.alive(t).is_some()
    }

    /// The notification bound to the calling thread.
    #[inline]
    pub fn bound(&self) -> Option<&Bound> {
        self.s.thread(self.s.current).ipc.bound.as_ref()
    }

    /// Binds `notification` to the calling thread (or unbinds, for
    /// `None`), with the word of its pending bits, which must live as long
    /// as the notification; returns the binding it replaces, for the
    /// caller to drop outside the lock.
    #[must_use = "an old binding is dropped outside the lock"]
    pub fn bind(&mut self, notification: Option<(Bound, &AtomicUsize)>) -> Option<Bound> {
        let current = self.s.current;
        let ipc = &mut self.s.thread_mut(current).ipc;
        let (bound, bits) = notification.map_or((None, None), |(bound, bits)| {
            (Some(bound), Some(NonNull::from(bits)))
        });
        ipc.bound_bits = bits;
        core::mem::replace(&mut ipc.bound, bound)
    }

    /// If `t` is blocked receiving on an endpoint, takes it out of the
    /// queue and hands it `message`: its bound notification ended the
    /// wait. Returns whether it was.
    #[inline]
    pub fn interrupt_receive(&mut self, t: ThreadRef, message: Message) -> bool {
        let receiving = self
            .s
            .threads
            .alive(t)
            .is_some_and(|thread| thread.state == State::Blocked && thread.ipc.receiving);
        if receiving {
            self.s.unlink(t.index);
            self.s.thread_mut(t.index).ipc.message = message;
            self.wake(t, Ok(()));
        }
        receiving
    }

    /// Moves the capability travelling with `from`'s message to `to`, a
    /// receiver, whose slot is empty (see `IpcState::transfer`).
    #[inline]
    pub fn pass_transfer(&mut self, from: ThreadRef, to: ThreadRef) {
        let Some(transfer) = self.s.thread_mut(from.index).ipc.transfer.take() else {
            return;
        };
        let slot = &mut self.s.thread_mut(to.index).ipc.transfer;
        debug_assert!(slot.is_none(), "a receiver blocked with a capability");
        if let Some(displaced) = slot.replace(transfer) {
            // Never happens (see above); dropping it here could take the
            // lock again, so it is let go of instead.
            core::mem::forget(displaced);
        }
    }

    /// Copies the payload of `from`'s message (`len` bytes, at most a
    /// page) from its IPC buffer to `to`'s; returns the bytes stored: 0 if
    /// `to` has no buffer or either buffer cannot be reached.
    pub fn copy_payload<A: Arch>(&mut self, from: ThreadRef, to: ThreadRef, len: usize) -> usize {
        if len > abi::MAX_PAYLOAD {
            return 0;
        }
        // An IPC buffer is one page-aligned page, and a payload at most a
        // page: one frame on each side, and one copy between them through
        // the direct map.
        let (Some(source_frame), Some(target_frame)) = (
            self.s.buffer_frame::<A>(from.index),
            self.s.buffer_frame::<A>(to.index),
        ) else {
            return 0;
        };
        copy_between_buffers(source_frame, target_frame, len);
        len
    }

    /// Whether no thread waits in `queue`.
    #[inline]
    pub fn is_empty(&self, queue: &WaitQueue) -> bool {
        queue.front(&self.s.threads).is_none()
    }

    /// The calling process's resources, if they are a `T` and the calling
    /// thread may block on the fast path: no switch is due (it would be
    /// missed), and its waits have no timeout (the fast path arms none).
    #[inline(always)]
    pub fn fast_path_resources<T: ResourcesType>(&mut self) -> Option<&mut T> {
        let thread = self.s.threads.current()?;
        if sched::switch_due() || thread.ipc.timeout_ns != 0 {
            return None;
        }
        self.resources::<T>()
    }

    /// `call` on the fast path: if the first receiver in `receivers` may
    /// run now, takes it from the queue, hands it `message` with the
    /// calling thread as the caller it owes a reply, blocks the calling
    /// thread for that reply and makes the receiver current (see
    /// [`hand_off`]). Otherwise gives the lock back untouched.
    #[inline(always)]
    pub fn fast_call<A: Arch, const EXTENDED: bool>(
        mut self,
        receivers: &WaitQueue,
        message: Message,
        resume_sp: usize,
    ) -> Result<Resume, Ipc> {
        let s = &mut *self.s;
        let me = s.current;
        let Some(receiver) = receivers.front(&s.threads) else {
            return Err(self);
        };
        let Some((caller, callee, succession)) = s.threads.current_and(receiver) else {
            return Err(self);
        };
        if !s.run.allows(callee.priority) {
            return Err(self);
        }
        if EXTENDED && message.label & abi::MESSAGE_PAYLOAD != 0 {
            if !payload_fits(&message, caller, callee) {
                return Err(self);
            }
            copy_fast_payload(&message, caller, callee);
        }
        let (caller, callee, succession) = if receivers.take_alone(receiver, callee) {
            (caller, callee, succession)
        } else {
            // Others wait behind it: their links change too.
            receivers.pop(&mut s.threads);
            s.threads.current_and(receiver).expect("still there")
        };
        callee.ipc.caller = Some(ThreadRef {
            index: me,
            tid: caller.tid,
        });
        // `served_by` is left: it serves only a wait that can time out,
        // and the fast path's never does.
        caller.ipc.set_wait(true, false);
        caller.state = State::Blocked;
        let handed = hand_off::<A>(
            &mut s.current,
            caller,
            (receiver, callee),
            message,
            resume_sp,
        );
        s.threads.succeed(succession);
        drop(self);
        Ok(handed.resume::<A>())
    }

    /// `reply_recv` on the fast path: if the calling thread's caller still
    /// awaits its reply and may run now, hands it `reply`, blocks the
    /// calling thread receiving in `receivers` and makes the caller
    /// current (see [`hand_off`]). Otherwise gives the lock back
    /// untouched. A thread with a bound notification blocks only if no
    /// bits wait on it.
    #[inline(always)]
    pub fn fast_reply_receive<A: Arch, const EXTENDED: bool>(
        mut self,
        receivers: Pin<&WaitQueue>,
        reply: Message,
        resume_sp: usize,
    ) -> Result<Resume, Ipc> {
        let s = &mut *self.s;
        let me = s.current;
        let Some(caller) = s.threads.current().and_then(|t| t.ipc.caller) else {
            return Err(self);
        };
        let Some((server, client, succession)) = s.threads.current_and(caller.index) else {
            return Err(self);
        };
        // Another receiver waiting here is left to the general path.
        let payload = EXTENDED && reply.label & abi::MESSAGE_PAYLOAD != 0;
        if !s.run.allows(client.priority)
            || client.tid != caller.tid
            || client.state != State::Blocked
            || !client.ipc.awaiting_reply
            || server.ipc.bound_bits_pending()
            || (payload && !payload_fits(&reply, server, client))
            || !receivers.block_alone(me, server)
        {
            return Err(self);
        }
        if payload {
            copy_fast_payload(&reply, server, client);
        }
        server.ipc.caller = None;
        server.ipc.set_wait(false, true);
        let handed = hand_off::<A>(
            &mut s.current,
            server,
            (caller.index, client),
            reply,
            resume_sp,
        );
        s.threads.succeed(succession);
        drop(self);
        Ok(handed.resume::<A>())
    }
}

/// Whether the fast path can copy the payload of `message` (which has
/// one) from `from` to `to`: between two IPC buffers whose frames the
/// general path has looked up already. If not, the general path looks
/// them up or reports the error.
#[inline(always)]
fn payload_fits(
    message: &Message,
    from: &super::thread::Thread,
    to: &super::thread::Thread,
) -> bool {
    from.ipc.buffer_frame != 0 && to.ipc.buffer_frame != 0 && message.words[2] <= abi::MAX_PAYLOAD
}

/// Copies the payload [`payload_fits`] allowed, the lock held.
#[inline(always)]
fn copy_fast_payload(message: &Message, from: &super::thread::Thread, to: &super::thread::Thread) {
    copy_between_buffers(from.ipc.buffer_frame, to.ipc.buffer_frame, message.words[2]);
}

/// Copies `len` bytes (at most a page) from the IPC buffer in frame
/// `source` to the one in frame `target`, through the direct map: the one
/// copy of every payload, on either path.
#[inline(never)]
fn copy_between_buffers(source: u64, target: u64, len: usize) {
    debug_assert!(len <= abi::MAX_PAYLOAD);
    // SAFETY: both are frames of IPC buffers their spaces map as user
    // pages (the same one, if two threads share a buffer: `copy` allows
    // overlap), kept by the spaces until an unmap, which forgets them;
    // both callers bound `len` by a page.
    unsafe {
        core::ptr::copy(
            frames::to_virt(source) as *const u8,
            frames::to_virt(target) as *mut u8,
            len,
        )
    };
}

/// A fast path's hand-off, decided under the lock, to carry out after it.
struct HandOff {
    to: sched::SwitchTo,
    at_frame: bool,
}

/// Makes thread `next` (blocked, allowed to run now) the running one,
/// handing it `message`, the calling thread `caller` having blocked on the
/// fast path: it will resume at `resume_sp`, a kernel context the
/// architecture prepared that completes its call ([`resumed`]).
#[inline(always)]
fn hand_off<A: Arch>(
    current: &mut usize,
    caller: &mut super::thread::Thread,
    (next, partner): (usize, &mut super::thread::Thread),
    message: Message,
    resume_sp: usize,
) -> HandOff {
    caller.saved_sp = resume_sp;
    caller.ipc.resumes_at_frame = true;
    let at_frame = core::mem::take(&mut partner.ipc.resumes_at_frame);
    partner.ipc.set_wait(false, false);
    if at_frame {
        // The message goes straight to the registers it returns in.
        // SAFETY: the partner blocked on the fast path (so its frame holds
        // all its registers) and has not run since.
        unsafe {
            A::write_frame_results(
                partner.stack_top,
                [message.label, message.badge],
                message.words,
            )
        };
    } else {
        // It resumes the general way, which reads how its wait ended.
        partner.ipc.outcome = None;
        partner.ipc.message = message;
    }
    let to = sched::enter(current, caller, (next, partner));
    HandOff { to, at_frame }
}

impl HandOff {
    /// The rest of the switch, the lock let go: the partner's address
    /// space and kernel stack, and how the architecture resumes it.
    #[inline(always)]
    fn resume<A: Arch>(self) -> Resume {
        sched::enter_address_space::<A>(&self.to);
        sched::reap();
        match self.at_frame {
            true => Resume::Frame {
                stack_top: self.to.stack_top(),
            },
            false => Resume::Context { sp: self.to.load() },
        }
    }
}

impl Scheduler {
    /// The frame behind thread `index`'s IPC buffer, looked up (and the
    /// page brought in) the first time: `None` if it has no buffer or its
    /// page cannot be had. Registration checked that the page is user
    /// memory the thread may read and write.
    #[inline]
    fn buffer_frame<A: Arch>(&mut self, index: usize) -> Option<u64> {
        let thread = self.thread(index);
        if thread.ipc.buffer_frame != 0 {
            return Some(thread.ipc.buffer_frame);
        }
        let (buffer, process) = (thread.ipc.buffer, thread.process?);
        if buffer == 0 {
            return None;
        }
        let frame = self
            .processes
            .get_mut(process)
            .space
            .as_mut()?
            .frame_for::<A>(buffer, Access::Write)
            .ok()?;
        self.thread_mut(index).ipc.buffer_frame = frame;
        Some(frame)
    }

    /// Ends the wait of blocked thread `t` with `outcome`.
    #[inline]
    pub(super) fn end_wait(&mut self, t: ThreadRef, outcome: Result<(), Error>) {
        self.thread_mut(t.index).ipc.end_wait(outcome.err());
        self.make_ready(t.index);
    }

    /// Whether `t` still waits for a reply.
    #[inline]
    pub(super) fn awaits_reply(&self, t: ThreadRef) -> bool {
        self.threads
            .alive(t)
            .is_some_and(|thread| thread.state == State::Blocked && thread.ipc.awaiting_reply)
    }
}

/// Lets other threads run until the calling thread, blocked by
/// [`Ipc::block`], is woken; returns the message it was handed.
pub fn wait<A: Arch>(mut ipc: Ipc) -> Result<Message, Error> {
    ipc.s.arm_timeout(A::monotonic_ns);
    drop(ipc);
    schedule::<A>();
    finish()
}

/// What a thread that blocked on the fast path was handed, when it runs
/// again through the general path (woken by a general send or reply, an
/// error, a kill).
pub fn resumed() -> Result<Message, Error> {
    finish()
}

/// What the calling thread was handed when its wait ended (in a system
/// call: interrupts are masked).
fn finish() -> Result<Message, Error> {
    let mut s = SCHEDULER.lock_masked();
    s.disarm_timeout();
    let current = s.current;
    s.thread_mut(current).ipc.resumes_at_frame = false;
    let killed = s.current_killed();
    let current = s.current;
    let ipc = &mut s.thread_mut(current).ipc;
    let outcome = ipc.outcome.take();
    ipc.end_wait(None);
    ipc.is_call = false;
    match (killed, outcome) {
        (true, _) => Err(Error::Interrupted),
        (false, Some(error)) => Err(error),
        (false, None) => Ok(ipc.message),
    }
}

/// Sets how long the calling thread's IPC waits may last (0: for ever).
pub fn set_timeout(ns: u64) {
    let mut s = SCHEDULER.lock();
    let current = s.current;
    s.thread_mut(current).ipc.timeout_ns = ns;
}

/// Registers `address` as the calling thread's IPC buffer (0: none).
pub fn set_buffer(address: usize) {
    let mut s = SCHEDULER.lock_masked();
    let current = s.current;
    let ipc = &mut s.thread_mut(current).ipc;
    ipc.buffer = address;
    ipc.buffer_frame = 0;
}

/// Whether the calling thread has an IPC buffer it can send a payload
/// from: `InvalidArgument` if it registered none, `BadAddress` if its page
/// cannot be had.
pub fn check_own_buffer<A: Arch>() -> Result<(), Error> {
    let mut s = SCHEDULER.lock_masked();
    let current = s.current;
    if s.thread(current).ipc.buffer == 0 {
        return Err(Error::InvalidArgument);
    }
    s.buffer_frame::<A>(current)
        .map(drop)
        .ok_or(Error::BadAddress)
}

/// Puts the capability the calling thread sends in its slot, until it is
/// delivered.
pub fn hold_transfer(transfer: Transfer) {
    let displaced = {
        let mut s = SCHEDULER.lock_masked();
        let current = s.current;
        s.thread_mut(current).ipc.transfer.replace(transfer)
    };
    drop(displaced);
}

/// Takes what is in the calling thread's slot: the capability that came
/// with the message it received, or the one it sent that was not
/// delivered.
pub fn take_transfer() -> Option<Transfer> {
    let mut s = SCHEDULER.lock_masked();
    let current = s.current;
    s.thread_mut(current).ipc.transfer.take()
}
