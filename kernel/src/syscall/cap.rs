//! Capability system calls: creating objects, and copying, deleting and
//! describing capabilities.

use super::{Outcome, one, two};
use crate::object::Object;
use crate::object::cap::{CapTable, Capability};
use crate::object::endpoint::Endpoint;
use crate::object::notification::Notification;
use crate::task::ipc;
use abi::{Error, Handle, Rights};
use alloc::sync::Arc;

/// Runs `f` on the caller's capability table, with the IPC lock held.
/// Nothing `f` returns may drop a capability inside it: capabilities
/// leave the table by value and are dropped by the caller, outside.
pub(super) fn with_table<R>(f: impl FnOnce(&mut CapTable) -> Result<R, Error>) -> Result<R, Error> {
    let mut ipc = ipc::lock();
    let table = ipc.resources::<CapTable>().ok_or(Error::InvalidHandle)?;
    f(table)
}

/// The object `handle` names, if it is of `kind` and the capability has
/// `right`: a reference the caller drops, outside the table's lock.
pub(super) fn object(
    handle: Handle,
    kind: abi::ObjectKind,
    right: Rights,
) -> Result<Object, Error> {
    with_table(|table| Ok(table.get(handle)?.check(kind, right)?.clone()))
}

/// Puts `capability` in the caller's table.
pub(super) fn insert(capability: Capability) -> Result<Handle, Error> {
    match with_table(|table| Ok(table.insert(capability)))? {
        Ok(handle) => Ok(handle),
        Err((error, capability)) => {
            drop(capability);
            Err(error)
        }
    }
}

fn arc<T>(value: T) -> Result<Arc<T>, Error> {
    crate::mm::heap::try_arc(value).map_err(|_| Error::OutOfMemory)
}

pub(super) fn create_endpoint() -> Outcome {
    let object = Object::Endpoint(arc(Endpoint::new())?);
    one(insert(Capability::new(object, abi::ENDPOINT_RIGHTS, 0))? as usize)
}

pub(super) fn create_notification() -> Outcome {
    let object = Object::Notification(arc(Notification::new())?);
    one(insert(Capability::new(object, abi::NOTIFICATION_RIGHTS, 0))? as usize)
}

pub(super) fn copy(handle: Handle, rights: Rights, badge: usize) -> Outcome {
    let copy = with_table(|table| table.get(handle)?.derive(rights, badge))?;
    one(insert(copy)? as usize)
}

pub(super) fn delete(handle: Handle) -> Outcome {
    let capability = with_table(|table| table.remove(handle))?;
    // The object may go with it, and an endpoint's senders be failed,
    // which takes the lock: outside it.
    drop(capability);
    one(0)
}

pub(super) fn info(handle: Handle) -> Outcome {
    with_table(|table| {
        let capability = table.get(handle)?;
        let kind = capability.object().kind() as usize;
        let gone = match capability.object() {
            Object::Endpoint(endpoint) if endpoint.dead() => abi::CAP_INFO_PEER_GONE,
            _ => 0,
        };
        Ok((
            kind | (capability.rights() as usize) << 8 | gone,
            capability.badge(),
        ))
    })
    .and_then(|(word, badge)| two(word, badge))
}
