//! Endpoints: synchronous rendezvous. A sender and a receiver meet, the
//! message passes from one thread to the other, and the kernel never
//! holds message data: whoever arrives first blocks in the endpoint's
//! queue with its message in its own thread record.
//!
//! A `call` is a send that then waits, in no queue, for the receiver's
//! `reply`; the receiver keeps a one-shot right to answer that caller
//! (seL4's reply capability), which `reply` uses up. When the last
//! capability that may receive goes, nothing could ever take the queued
//! messages: their senders get [`Error::PeerDied`], as do later sends.
//!
//! The fast paths ([`fast_call`], [`fast_reply_receive`]) cover a server's
//! loop: when the other side already waits and may run at once, the
//! message goes straight into its thread record and the CPU switches
//! straight to it, without the run queues (seL4's `fastpath_call` and
//! `fastpath_reply_recv` do the same).

use super::notification;
use crate::task::ipc::{self, Ipc};
use crate::task::{Message, Resume, ThreadRef, WaitQueue};
use abi::Error;
use core::pin::Pin;
use core::sync::atomic::{AtomicUsize, Ordering};
use hal::Arch;

pub struct Endpoint {
    senders: WaitQueue,
    receivers: WaitQueue,
    /// Capabilities with the receive right.
    receive_capabilities: AtomicUsize,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint {
    pub const fn new() -> Endpoint {
        Endpoint {
            senders: WaitQueue::new(),
            receivers: WaitQueue::new(),
            receive_capabilities: AtomicUsize::new(0),
        }
    }

    pub(super) fn receiver_added(&self) {
        self.receive_capabilities.fetch_add(1, Ordering::Relaxed);
    }

    /// The last receive capability may be gone: fail the senders. Called
    /// when a capability is dropped, never with the scheduler locked.
    pub(super) fn receiver_removed(&self) {
        if self.receive_capabilities.fetch_sub(1, Ordering::Relaxed) == 1 {
            let mut ipc = ipc::lock();
            while let Some(sender) = ipc.pop(&self.senders) {
                ipc.wake(sender, Err(Error::PeerDied));
            }
        }
    }

    /// Whether nothing can receive on it any more.
    pub fn dead(&self) -> bool {
        self.receive_capabilities.load(Ordering::Relaxed) == 0
    }
}

impl Drop for Endpoint {
    /// Threads blocked here hold no reference to it: they learn it went.
    fn drop(&mut self) {
        let mut ipc = ipc::lock();
        for queue in [&self.senders, &self.receivers] {
            while let Some(thread) = ipc.pop(queue) {
                ipc.wake(thread, Err(Error::PeerDied));
            }
        }
    }
}

/// A queue of an endpoint, as threads block in it.
fn pinned(queue: &WaitQueue) -> Pin<&WaitQueue> {
    // SAFETY: endpoints that threads use live in an `Arc` (capabilities
    // hold them so), whose allocation never moves, and an endpoint empties
    // its queues before it goes.
    unsafe { Pin::new_unchecked(queue) }
}

/// A message to send; its badge is that of the capability used.
#[derive(Clone, Copy)]
pub struct Send {
    pub message: Message,
    /// Wait for a reply.
    pub call: bool,
    /// Fail with `WouldBlock` rather than wait for a receiver.
    pub nonblocking: bool,
}

/// Sends on `endpoint`; a call returns the reply.
pub fn send<A: Arch>(endpoint: &Endpoint, send: Send) -> Result<Message, Error> {
    let mut ipc = ipc::lock();
    if endpoint.dead() {
        return Err(Error::PeerDied);
    }
    let me = ipc.current();
    if let Some(receiver) = ipc.pop(&endpoint.receivers) {
        *ipc.message(receiver) = send.message;
        pass_payload::<A>(&mut ipc, me, receiver);
        ipc.pass_transfer(me, receiver);
        if send.call {
            ipc.set_caller_of(receiver, me);
        }
        ipc.wake(receiver, Ok(()));
        if !send.call {
            return Ok(Message::default());
        }
        ipc.block(None, None);
        return ipc::wait::<A>(ipc);
    }
    if send.nonblocking {
        return Err(Error::WouldBlock);
    }
    let queue = pinned(&endpoint.senders);
    ipc.block(Some(queue), Some((send.message, send.call)));
    ipc::wait::<A>(ipc)
}

/// Receives on `endpoint`: the message, and for a call, the right to
/// reply to its caller.
pub fn receive<A: Arch>(endpoint: &Endpoint, nonblocking: bool) -> Result<Message, Error> {
    receive_locked::<A>(ipc::lock(), endpoint, nonblocking)
}

fn receive_locked<A: Arch>(
    mut ipc: Ipc,
    endpoint: &Endpoint,
    nonblocking: bool,
) -> Result<Message, Error> {
    let bits = notification::take_bound_bits(&ipc);
    if bits != 0 {
        ipc.set_caller(None);
        return Ok(Message {
            label: abi::NOTIFIED,
            badge: bits,
            words: [0; 4],
        });
    }
    if let Some(sender) = ipc.pop(&endpoint.senders) {
        let me = ipc.current();
        *ipc.message(me) = *ipc.message(sender);
        pass_payload::<A>(&mut ipc, sender, me);
        let message = *ipc.message(me);
        ipc.pass_transfer(sender, me);
        if ipc.take_call(sender) {
            ipc.set_caller(Some(sender));
        } else {
            ipc.set_caller(None);
            ipc.wake(sender, Ok(()));
        }
        return Ok(message);
    }
    if nonblocking {
        return Err(Error::WouldBlock);
    }
    ipc.set_caller(None);
    let queue = pinned(&endpoint.receivers);
    ipc.block_receiving(queue);
    ipc::wait::<A>(ipc)
}

/// Answers the caller the current thread received a call from; a caller
/// that has gone is not answered. Fails with `NoCaller` when no call is
/// pending.
pub fn reply<A: Arch>(message: Message) -> Result<(), Error> {
    let mut ipc = ipc::lock();
    let caller = ipc.take_caller().ok_or(Error::NoCaller)?;
    deliver_reply::<A>(&mut ipc, caller, message);
    Ok(())
}

/// Copies the payload of the message `to` was just handed from `from`, if
/// it has one, and says in `w2` how much arrived.
fn pass_payload<A: Arch>(ipc: &mut Ipc, from: ThreadRef, to: ThreadRef) {
    let message = *ipc.message(to);
    if message.label & abi::MESSAGE_PAYLOAD != 0 {
        let stored = ipc.copy_payload::<A>(from, to, message.words[2]);
        ipc.message(to).words[2] = stored;
    }
}

/// Answers `caller` if it still waits; a capability sent with a reply
/// that finds nobody stays with the replier, which drops it.
fn deliver_reply<A: Arch>(ipc: &mut Ipc, caller: ThreadRef, message: Message) {
    if ipc.awaits_reply(caller) {
        *ipc.message(caller) = message;
        let me = ipc.current();
        pass_payload::<A>(ipc, me, caller);
        ipc.pass_transfer(me, caller);
        ipc.wake(caller, Ok(()));
    }
}

/// Replies to the pending call, if any, then receives on `endpoint`.
pub fn reply_receive<A: Arch>(endpoint: &Endpoint, message: Message) -> Result<Message, Error> {
    let mut ipc = ipc::lock();
    if let Some(caller) = ipc.take_caller() {
        deliver_reply::<A>(&mut ipc, caller, message);
    }
    receive_locked::<A>(ipc, endpoint, false)
}

/// What a fast path did: how to resume the partner it handed the CPU to
/// (the calling thread blocked), or, when the fast path does not apply,
/// the lock given back untouched.
pub type Fast = Result<Resume, Ipc>;

/// `call`'s fast path: a receiver waits and may run now. The calling
/// thread resumes at `resume_sp` if woken the general way.
#[inline(always)]
pub fn fast_call<A: Arch, const EXTENDED: bool>(
    ipc: Ipc,
    endpoint: &Endpoint,
    message: Message,
    resume_sp: usize,
) -> Fast {
    if endpoint.dead() {
        return Err(ipc);
    }
    ipc.fast_call::<A, EXTENDED>(&endpoint.receivers, message, resume_sp)
}

/// `reply_recv`'s fast path: the caller waits for the reply and may run
/// now, and no message waits to be received.
#[inline(always)]
pub fn fast_reply_receive<A: Arch, const EXTENDED: bool>(
    ipc: Ipc,
    endpoint: &Endpoint,
    reply: Message,
    resume_sp: usize,
) -> Fast {
    // A message that waits must be received, and bits of a bound
    // notification taken: not here.
    if !ipc.is_empty(&endpoint.senders) {
        return Err(ipc);
    }
    ipc.fast_reply_receive::<A, EXTENDED>(pinned(&endpoint.receivers), reply, resume_sp)
}
