//! The IPC fast path, apart from the general path as seL4 keeps it: `call`
//! and `reply_recv` with their register message, when the other side
//! already waits and may run at once. One lock, a capability lookup, the
//! message handed over, and no unwinding: the architecture's system call
//! entry tries it before anything else, and when it applies, leaves the
//! caller's kernel stack for the partner's, returning to user mode from
//! the partner's system call frame if the partner too blocked here.
//!
//! A payload goes too, between IPC buffers whose frames the general path
//! has looked up before.
//!
//! Anything else (a bad handle, a capability sent, nobody waiting, a more
//! urgent thread ready, a switch due, a timeout set) goes the general way,
//! which also reports the errors.

use super::Returned;
use crate::object::cap::CapTable;
use crate::object::endpoint::{self, Endpoint};
use crate::task::{Message, Resume, ipc};
use abi::{Rights, Syscall};
use hal::Arch;

/// The endpoint a capability of the caller names, with `right`, and its
/// badge, if the caller may take the fast path.
#[inline(always)]
fn endpoint_of(
    ipc: &mut ipc::Ipc,
    handle: usize,
    right: Rights,
) -> Option<(*const Endpoint, usize)> {
    let table = ipc.fast_path_resources::<CapTable>()?;
    let (endpoint, badge) = table.endpoint(handle, right)?;
    Some((endpoint as *const Endpoint, badge))
}

/// Carries out `call` or `reply_recv` (`number`) with `a` on the fast
/// path, the calling thread to resume at `resume_sp` (see
/// [`crate::task::ipc::Ipc::hand_off`]); or says (`None`) that the
/// general path must.
#[inline(always)]
pub fn try_ipc<A: Arch>(number: usize, a: [usize; 6], resume_sp: usize) -> Option<Resume> {
    let call = number == Syscall::Call as usize;
    if !call && number != Syscall::ReplyRecv as usize {
        return None;
    }
    match a[1] & !abi::LABEL_MASK {
        0 => try_message::<A, false>(call, a, resume_sp),
        // A payload may go the extended way; a capability may not.
        abi::MESSAGE_PAYLOAD => extended::<A>(call, a, resume_sp),
        _ => None,
    }
}

/// The extended fast path, which also carries payloads and lets a thread
/// with a bound notification block receiving: apart and called, so that
/// the plain path stays as short as it was without them. (The arguments
/// go one by one, in registers: an array would be stored on the stack
/// before every fast path.)
#[inline(always)]
fn extended<A: Arch>(call: bool, a: [usize; 6], resume_sp: usize) -> Option<Resume> {
    let [handle, info, w0, w1, w2, w3] = a;
    try_extended::<A>(call, handle, info, w0, w1, w2, w3, resume_sp)
}

#[cold]
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn try_extended<A: Arch>(
    call: bool,
    handle: usize,
    info: usize,
    w0: usize,
    w1: usize,
    w2: usize,
    w3: usize,
    resume_sp: usize,
) -> Option<Resume> {
    try_message::<A, true>(call, [handle, info, w0, w1, w2, w3], resume_sp)
}

/// [`try_ipc`] on the plain path or the extended one (`EXTENDED`).
#[inline(always)]
fn try_message<A: Arch, const EXTENDED: bool>(
    call: bool,
    a: [usize; 6],
    resume_sp: usize,
) -> Option<Resume> {
    let mut ipc = ipc::lock_in_system_call();
    let right = if call {
        abi::RIGHT_SEND
    } else {
        abi::RIGHT_RECEIVE
    };
    let (endpoint, badge) = endpoint_of(&mut ipc, a[0], right)?;
    // SAFETY: the caller's capability table holds the endpoint while the
    // lock is held, and the fast path lets go of the lock only to switch
    // away, after which it does not touch the endpoint again.
    let endpoint = unsafe { &*endpoint };
    let message = Message {
        label: a[1],
        badge: if call { badge } else { 0 },
        words: [a[2], a[3], a[4], a[5]],
    };
    let outcome = if call {
        endpoint::fast_call::<A, EXTENDED>(ipc, endpoint, message, resume_sp)
    } else {
        endpoint::fast_reply_receive::<A, EXTENDED>(ipc, endpoint, message, resume_sp)
    };
    match outcome {
        Ok(resume) => Some(resume),
        Err(ipc) => {
            drop(ipc);
            None
        }
    }
}

/// The rest of a `call` or `reply_recv` whose thread blocked on the fast
/// path and was woken some other way: what the call returns.
pub fn resumed() -> Returned {
    match ipc::resumed() {
        Ok(message) => {
            let message = super::ipc::accept(message);
            Returned {
                results: [message.label, message.badge],
                message: Some(message.words),
            }
        }
        Err(error) => Returned::error(error),
    }
}
