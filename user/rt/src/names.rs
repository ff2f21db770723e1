//! The name service: how a program finds a server. Init serves it on an
//! endpoint; a program gets a capability to it from whoever starts it
//! (init passes one to the programs it starts, as one of their initial
//! handles). Servers register an endpoint under a name; clients look a
//! name up and get a send capability to that endpoint.
//!
//! The protocol, defined here once for both sides: a `call` with the
//! label [`REGISTER`] or [`LOOKUP`] and the name as the payload (at most
//! `abi::MAX_NAME_LENGTH` bytes of UTF-8); a registration carries the
//! endpoint capability. The reply's label is 0 on success, otherwise the
//! number of an [`Error`]; a lookup's reply carries the capability. Only
//! a capability badged [`REGISTRAR`] may register; init hands those to
//! the servers it starts, and badges every other with [`CLIENT`].

use crate::ipc::{Endpoint, IpcBuffer, Message};
use abi::{Error, Handle};

/// Registers the capability the message carries under the name.
pub const REGISTER: usize = 1;
/// Looks the name up.
pub const LOOKUP: usize = 2;
/// The badge of capabilities that may register.
pub const REGISTRAR: usize = 1;
/// The badge of capabilities that may only look up.
pub const CLIENT: usize = 2;

/// The reply label for `result`.
pub fn reply_label(result: Result<(), Error>) -> usize {
    protocols::status(result)
}

/// A capability to the name service, with the IPC buffer its requests
/// need (so it is for the thread that made it).
pub struct Names {
    service: Endpoint,
    buffer: IpcBuffer,
}

impl Names {
    /// Takes ownership of `handle`, a capability to the name service.
    pub fn from_handle(handle: Handle) -> Result<Names, Error> {
        Ok(Names {
            service: Endpoint::from_handle(handle),
            buffer: IpcBuffer::register()?,
        })
    }

    fn request(
        &mut self,
        label: usize,
        name: &str,
        carrying: Option<Handle>,
    ) -> Result<Message, Error> {
        if name.len() > abi::MAX_NAME_LENGTH {
            return Err(Error::TooLong);
        }
        self.buffer.bytes()[..name.len()].copy_from_slice(name.as_bytes());
        let mut message = Message::new(label, [0; 4]).with_payload(name.len());
        if let Some(handle) = carrying {
            message = message.carrying(handle, false);
        }
        let reply = self.service.call(message)?;
        protocols::result::<Error>(reply.label)?;
        Ok(reply)
    }

    /// Registers `server` (a copy of its capability goes) under `name`.
    pub fn register(&mut self, name: &str, server: &Endpoint) -> Result<(), Error> {
        self.request(REGISTER, name, Some(server.handle()))
            .map(|_| ())
    }

    /// A send capability to the endpoint registered under `name`.
    pub fn lookup(&mut self, name: &str) -> Result<Endpoint, Error> {
        let reply = self.request(LOOKUP, name, None)?;
        reply
            .capability()
            .map(Endpoint::from_handle)
            .ok_or(Error::NotFound)
    }

    /// The endpoint registered under `name` once its server is alive,
    /// looking again every 10 ms for up to `timeout_ns`: a server that
    /// died keeps its name until the one restarted in its place
    /// registers. `PeerDied` or `NotFound` if none came up in time.
    pub fn lookup_alive(&mut self, name: &str, timeout_ns: u64) -> Result<Endpoint, Error> {
        let deadline = crate::sys::time_ns().saturating_add(timeout_ns);
        loop {
            let error = match self.lookup(name) {
                Ok(endpoint)
                    if crate::ipc::cap_info(endpoint.handle()).is_ok_and(|i| !i.peer_gone) =>
                {
                    return Ok(endpoint);
                }
                Ok(_) => Error::PeerDied,
                Err(error) => error,
            };
            if crate::sys::time_ns() >= deadline {
                return Err(error);
            }
            crate::sys::sleep_ns(10_000_000);
        }
    }
}
