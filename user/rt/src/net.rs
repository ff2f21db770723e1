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
        if frame.len() > abi::MAX_PAYLOAD {
            return Err(Failure::Refused(net::Error::BadRequest));
        }
        self.buffer.bytes()[..frame.len()].copy_from_slice(frame);
        self.call(Message::new(net::SEND, [0; 4]).with_payload(frame.len()))
            .map(drop)
    }

    /// Takes the oldest waiting frame into `out`: its length, or `None`
    /// if none waits.
    pub fn receive(&mut self, out: &mut [u8]) -> Result<Option<usize>, NetFailure> {
        match self.call(Message::new(net::RECEIVE, [0; 4])) {
            Ok(reply) => {
                let len = reply.payload().unwrap_or(0).min(out.len());
                out[..len].copy_from_slice(&self.buffer.bytes()[..len]);
                Ok(Some(len))
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
