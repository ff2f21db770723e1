//! IPC system calls: messages on endpoints, and notifications.

use super::cap::with_table;
use super::{Outcome, message, one, two};
use crate::object::Object;
use crate::object::endpoint::{self, Endpoint};
use crate::object::notification::{self, Notification};
use crate::task::Message;
use abi::{Error, Handle, ObjectKind, Rights};
use alloc::sync::Arc;
use hal::Arch;

/// The endpoint `handle` names, if the capability has `right`, and its
/// badge.
fn endpoint(handle: Handle, right: Rights) -> Result<(Arc<Endpoint>, usize), Error> {
    with_table(|table| {
        let capability = table.get(handle)?;
        match capability.check(ObjectKind::Endpoint, right)? {
            Object::Endpoint(endpoint) => Ok((endpoint.clone(), capability.badge())),
            _ => Err(Error::WrongType),
        }
    })
}

fn notification(handle: Handle, right: Rights) -> Result<Arc<Notification>, Error> {
    with_table(
        |table| match table.get(handle)?.check(ObjectKind::Notification, right)? {
            Object::Notification(notification) => Ok(notification.clone()),
            _ => Err(Error::WrongType),
        },
    )
}

pub(super) fn send<A: Arch>(handle: Handle, message: Message, nonblocking: bool) -> Outcome {
    let (endpoint, badge) = endpoint(handle, abi::RIGHT_SEND)?;
    let send = endpoint::Send {
        message: Message { badge, ..message },
        call: false,
        nonblocking,
    };
    endpoint::send::<A>(&endpoint, send)?;
    one(0)
}

pub(super) fn call<A: Arch>(handle: Handle, message: Message) -> Outcome {
    let (endpoint, badge) = endpoint(handle, abi::RIGHT_SEND)?;
    let send = endpoint::Send {
        message: Message { badge, ..message },
        call: true,
        nonblocking: false,
    };
    super::message(endpoint::send::<A>(&endpoint, send)?)
}

pub(super) fn receive<A: Arch>(handle: Handle, nonblocking: bool) -> Outcome {
    let (endpoint, _) = endpoint(handle, abi::RIGHT_RECEIVE)?;
    message(endpoint::receive::<A>(&endpoint, nonblocking)?)
}

pub(super) fn reply(message: Message) -> Outcome {
    endpoint::reply(message)?;
    one(0)
}

pub(super) fn reply_receive<A: Arch>(handle: Handle, reply: Message) -> Outcome {
    let (endpoint, _) = endpoint(handle, abi::RIGHT_RECEIVE)?;
    message(endpoint::reply_receive::<A>(&endpoint, reply)?)
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
