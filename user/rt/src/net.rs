//! A client of the network-interface service (`protocols::net`).

use crate::ipc::{Endpoint, Failure, IpcBuffer, Message, Notification};
use abi::Error;
use protocols::net::{self, Stats};

/// Why a request failed.
pub type NetFailure = Failure<net::Error>;

/// A connection to a NIC driver, for the thread that made it.
pub struct Nic {
    server: Endpoint,
    buffer: IpcBuffer,
}

impl Nic {
    pub fn new(server: Endpoint) -> Result<Nic, Error> {
        Ok(Nic {
            server,
            buffer: IpcBuffer::register()?,
        })
    }

    fn call(&self, message: Message) -> Result<Message, NetFailure> {
        let reply = self.server.call(message)?;
        protocols::result::<net::Error>(reply.label).map_err(Failure::Refused)?;
        Ok(reply)
    }

    /// The MAC address and the largest frame.
    pub fn info(&self) -> Result<([u8; 6], usize), NetFailure> {
        let reply = self.call(Message::new(net::INFO, [0; 4]))?;
        Ok((
            net::mac_from_words([reply.words[0], reply.words[1]]),
            reply.words[2],
        ))
    }

    /// Has the driver set `protocols::net::RX_BIT` in `notification`
    /// whenever frames wait.
    pub fn subscribe(&self, notification: &Notification) -> Result<(), NetFailure> {
        let message = Message::new(net::SUBSCRIBE, [0; 4]).carrying(notification.handle(), false);
        self.call(message).map(drop)
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), NetFailure> {
        self.send_with(frame.len(), |out| out.copy_from_slice(frame))
            .1
    }

    /// Sends the `len`-byte frame `fill` writes, built where the message
    /// carries it from (no copy of its own); what `fill` returns comes
    /// back with the outcome. A frame longer than a payload is built
    /// aside and refused.
    pub fn send_with<R>(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> (R, Result<(), NetFailure>) {
        if len > abi::MAX_PAYLOAD {
            let built = fill(&mut alloc::vec![0; len]);
            return (built, Err(Failure::Refused(net::Error::BadRequest)));
        }
        let built = fill(&mut self.buffer.bytes()[..len]);
        let sent = self
            .call(Message::new(net::SEND, [0; 4]).with_payload(len))
            .map(drop);
        (built, sent)
    }

    /// Takes the oldest waiting frame into `out`: its length and how many
    /// more wait, or `None` if none waits.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<(usize, usize)>, NetFailure> {
        match self.call(Message::new(net::RECEIVE, [0; 4])) {
            Ok(reply) => {
                let len = reply.payload().unwrap_or(0).min(out.len());
                out[..len].copy_from_slice(&self.buffer.bytes()[..len]);
                Ok(Some((len, reply.words[0])))
            }
            Err(Failure::Refused(net::Error::NoFrame)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn stats(&self) -> Result<Stats, NetFailure> {
        self.call(Message::new(net::STATS, [0; 4]))
            .map(|reply| Stats::from_words(reply.words))
    }
}
