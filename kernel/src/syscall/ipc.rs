//! IPC system calls: messages on endpoints, and notifications.

use super::cap::{insert, with_table};
use super::decode::CapSend;
use super::{Outcome, message, one, two};
use crate::object::Object;
use crate::object::cap::Capability;
use crate::object::endpoint::{self, Endpoint};
use crate::object::notification::{self, Notification};
use crate::task::Message;
use crate::task::ipc;
use abi::{Error, Handle, ObjectKind, Rights};
use alloc::sync::Arc;
use hal::Arch;

/// The endpoint `handle` names, if the capability has `right`, with the
/// capability's badge and rights.
fn endpoint(handle: Handle, right: Rights) -> Result<(Arc<Endpoint>, usize, Rights), Error> {
    with_table(|table| {
        let capability = table.get(handle)?;
        match capability.check(ObjectKind::Endpoint, right)? {
            Object::Endpoint(endpoint) => {
                Ok((endpoint.clone(), capability.badge(), capability.rights()))
            }
            _ => Err(Error::WrongType),
        }
    })
}

/// Puts the capability a message carries in the calling thread's slot
/// until it is delivered: a copy, or the capability itself when it moves
/// (a moved one that cannot be delivered is deleted). Sending one needs
/// the grant right on the endpoint capability (`endpoint_rights`) and on
/// the capability sent.
fn hold_outgoing(transfer: Option<CapSend>, endpoint_rights: Rights) -> Result<(), Error> {
    let Some(send) = transfer else {
        return Ok(());
    };
    if endpoint_rights & abi::RIGHT_GRANT == 0 {
        return Err(Error::MissingRight);
    }
    let capability = with_table(|table| {
        let capability = table.get(send.handle)?;
        if capability.rights() & abi::RIGHT_GRANT == 0 {
            return Err(Error::MissingRight);
        }
        match send.moved {
            true => table.remove(send.handle),
            false => capability.derive(capability.rights(), 0),
        }
    })?;
    let boxed = crate::mm::heap::try_box(capability).map_err(|_| Error::OutOfMemory)?;
    ipc::hold_transfer(boxed);
    Ok(())
}

/// A payload must be in the sender's IPC buffer, readable, when it sends.
fn check_payload<A: Arch>(message: &Message) -> Result<(), Error> {
    if message.label & abi::MESSAGE_PAYLOAD == 0 {
        return Ok(());
    }
    if message.words[2] > abi::MAX_PAYLOAD {
        return Err(Error::InvalidArgument);
    }
    ipc::check_own_buffer::<A>()
}

/// Registers the calling thread's IPC buffer: a readable and writable page.
pub(super) fn set_buffer<A: Arch>(address: usize) -> Outcome {
    if address != 0 {
        super::in_space(|space| {
            space.covers::<A>(address, abi::MAX_PAYLOAD, hal::trap::Access::Write)
        })?;
    }
    ipc::set_buffer(address);
    one(0)
}

/// After a send: a capability that was not delivered goes.
fn settle<T>(result: Result<T, Error>) -> Result<T, Error> {
    if result.is_err() {
        drop(ipc::take_transfer());
    }
    result
}

/// Takes a capability that came with `message` into the caller's table;
/// its handle replaces `w3`. With no room, the capability goes and the
/// flag is cleared.
#[inline(always)]
pub(super) fn accept(message: Message) -> Message {
    match message.label & abi::MESSAGE_CAP {
        0 => message,
        _ => accept_capability(message),
    }
}

#[cold]
fn accept_capability(mut message: Message) -> Message {
    let handle = ipc::take_transfer()
        .and_then(|transfer| transfer.downcast::<Capability>().ok())
        .and_then(|capability| insert(*capability).ok());
    match handle {
        Some(handle) => message.words[3] = handle as usize,
        None => {
            message.label &= !abi::MESSAGE_CAP;
            message.words[3] = 0;
        }
    }
    message
}

fn notification(handle: Handle, right: Rights) -> Result<Arc<Notification>, Error> {
    with_table(
        |table| match table.get(handle)?.check(ObjectKind::Notification, right)? {
            Object::Notification(notification) => Ok(notification.clone()),
            _ => Err(Error::WrongType),
        },
    )
}

/// Sends `message` (a call if `call`) through the endpoint capability
/// `handle`, with its payload and capability; returns the reply of a call.
fn send_through<A: Arch>(
    handle: Handle,
    message: Message,
    transfer: Option<CapSend>,
    call: bool,
    nonblocking: bool,
) -> Result<Message, Error> {
    let (endpoint, badge, rights) = endpoint(handle, abi::RIGHT_SEND)?;
    check_payload::<A>(&message)?;
    hold_outgoing(transfer, rights)?;
    let send = endpoint::Send {
        message: Message { badge, ..message },
        call,
        nonblocking,
    };
    settle(endpoint::send::<A>(&endpoint, send))
}

pub(super) fn send<A: Arch>(
    handle: Handle,
    message: Message,
    transfer: Option<CapSend>,
    nonblocking: bool,
) -> Outcome {
    send_through::<A>(handle, message, transfer, false, nonblocking)?;
    one(0)
}

pub(super) fn call<A: Arch>(
    handle: Handle,
    message: Message,
    transfer: Option<CapSend>,
) -> Outcome {
    let reply = send_through::<A>(handle, message, transfer, true, false)?;
    super::message(accept(reply))
}

pub(super) fn receive<A: Arch>(handle: Handle, nonblocking: bool) -> Outcome {
    let (endpoint, _, _) = endpoint(handle, abi::RIGHT_RECEIVE)?;
    message(accept(endpoint::receive::<A>(&endpoint, nonblocking)?))
}

/// A reply may carry a capability only if the replier could send one: it
/// names no endpoint, so the capability's own grant right decides.
pub(super) fn reply<A: Arch>(message: Message, transfer: Option<CapSend>) -> Outcome {
    check_payload::<A>(&message)?;
    hold_outgoing(transfer, abi::RIGHT_GRANT)?;
    let result = endpoint::reply::<A>(message);
    // Delivered, or nobody to take it.
    drop(ipc::take_transfer());
    result?;
    one(0)
}

pub(super) fn reply_receive<A: Arch>(
    handle: Handle,
    reply: Message,
    transfer: Option<CapSend>,
) -> Outcome {
    let (endpoint, _, _) = endpoint(handle, abi::RIGHT_RECEIVE)?;
    check_payload::<A>(&reply)?;
    if transfer.is_some() {
        // Apart, so that a capability the caller did not take is gone
        // before this thread waits to receive.
        hold_outgoing(transfer, abi::RIGHT_GRANT)?;
        let _ = endpoint::reply::<A>(reply);
        drop(ipc::take_transfer());
        return message(accept(endpoint::receive::<A>(&endpoint, false)?));
    }
    message(accept(endpoint::reply_receive::<A>(&endpoint, reply)?))
}

pub(super) fn signal(handle: Handle, bits: usize) -> Outcome {
    let target = notification(handle, abi::RIGHT_SIGNAL)?;
    notification::signal(&target, bits);
    one(0)
}

pub(super) fn wait<A: Arch>(handle: Handle) -> Outcome {
    let source = notification(handle, abi::RIGHT_WAIT)?;
    two(0, notification::wait::<A>(&source)?)
}

pub(super) fn poll(handle: Handle) -> Outcome {
    let source = notification(handle, abi::RIGHT_WAIT)?;
    two(0, notification::poll(&source))
}

pub(super) fn bind(handle: Option<Handle>) -> Outcome {
    let target = handle
        .map(|handle| notification(handle, abi::RIGHT_WAIT))
        .transpose()?;
    notification::bind(target)?;
    one(0)
}
