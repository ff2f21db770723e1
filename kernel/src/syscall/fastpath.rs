//! The IPC fast path, apart from the general path as seL4 keeps it: `call`
//! and `reply_recv` with their register message, when the other side
//! already waits and may run at once. One lock, a capability lookup, the
//! message handed over, a direct switch. Anything else (a bad handle, a
//! label too wide, nobody waiting, a more urgent thread ready) goes the
//! general way, which also reports the errors.

use super::Returned;
use crate::object::Object;
use crate::object::cap::CapTable;
use crate::object::endpoint::{self, Endpoint};
use crate::task::{Message, ipc};
use abi::{ObjectKind, Rights, Syscall};
use alloc::sync::Arc;
use hal::Arch;

/// The endpoint a capability of the caller names, with `right`, and its
/// badge.
fn endpoint_of(
    ipc: &mut ipc::Ipc,
    handle: usize,
    right: Rights,
) -> Option<(*const Endpoint, usize)> {
    let table = ipc.resources::<CapTable>()?;
    let capability = table.get(u32::try_from(handle).ok()?).ok()?;
    match capability.check(ObjectKind::Endpoint, right).ok()? {
        Object::Endpoint(endpoint) => Some((Arc::as_ptr(endpoint), capability.badge())),
        _ => None,
    }
}

/// Carries out `call` or `reply_recv` (`number`) on the fast path, or
/// says (`None`) that the general path must.
#[inline(always)]
pub(super) fn try_ipc<A: Arch>(number: usize, a: [usize; 6]) -> Option<Returned> {
    let call = number == Syscall::Call as usize;
    if a[1] & !abi::LABEL_MASK != 0 {
        return None;
    }
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
        endpoint::fast_call::<A>(ipc, endpoint, message)
    } else {
        endpoint::fast_reply_receive::<A>(ipc, endpoint, message)
    };
    match outcome {
        Ok(Ok(message)) => {
            let message = super::ipc::accept(message);
            Some(Returned {
                results: [message.label, message.badge],
                message: Some(message.words),
            })
        }
        Ok(Err(error)) => Some(Returned::error(error)),
        Err(ipc) => {
            drop(ipc);
            None
        }
    }
}
