//! A client of the random-number service (`protocols::rng`).

use crate::ipc::{Endpoint, Failure, IpcBuffer, Message};
use abi::Error;
use protocols::rng::{self, MAX_READ, Request};

/// A connection to an `rng` server, for the thread that made it.
pub struct Rng {
    server: Endpoint,
    buffer: IpcBuffer,
}

impl Rng {
    /// A client of the server `server` names.
    pub fn new(server: Endpoint) -> Result<Rng, Error> {
        Ok(Rng {
            server,
            buffer: IpcBuffer::register()?,
        })
    }

    /// Fills `out` with random bytes from the device.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<(), Failure<rng::Error>> {
        for chunk in out.chunks_mut(MAX_READ) {
            let (label, words) = Request::Read { len: chunk.len() }.encode();
            let reply = self.server.call(Message::new(label, words))?;
            protocols::result::<rng::Error>(reply.label).map_err(Failure::Refused)?;
            if reply.payload() != Some(chunk.len()) {
                return Err(Failure::Ipc(Error::InvalidArgument));
            }
            chunk.copy_from_slice(&self.buffer.bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
