//! A client of the supervisor's service (`protocols::supervisor`): the
//! services init keeps running, and ending one.

use crate::ipc::{Endpoint, IpcBuffer, Message};
use abi::Error;
use alloc::vec::Vec;
use protocols::supervisor::{self, RECORD_SIZE, ServiceRecord};

pub struct Supervisor {
    service: Endpoint,
    buffer: IpcBuffer,
}

impl Supervisor {
    /// A client of the service `service` names (found under
    /// `protocols::supervisor::SERVICE`).
    pub fn new(service: Endpoint) -> Result<Supervisor, Error> {
        Ok(Supervisor {
            service,
            buffer: IpcBuffer::register()?,
        })
    }

    fn call(&self, label: usize, pid: u32) -> Result<Message, Error> {
        let reply = self
            .service
            .call(Message::new(label, [pid as usize, 0, 0, 0]))?;
        protocols::result::<Error>(reply.label)?;
        Ok(reply)
    }

    /// Every service, in the order they were first started.
    pub fn list(&mut self) -> Result<Vec<ServiceRecord>, Error> {
        let reply = self.call(supervisor::LIST, 0)?;
        let len = reply.payload().unwrap_or(0).min(abi::MAX_PAYLOAD);
        let bytes = &self.buffer.bytes()[..len];
        Ok(bytes
            .chunks_exact(RECORD_SIZE)
            .filter_map(ServiceRecord::decode)
            .collect())
    }

    /// Ends process `pid`, a service, which the supervisor restarts.
    pub fn kill(&self, pid: u32) -> Result<(), Error> {
        self.call(supervisor::KILL, pid).map(drop)
    }

    /// Ends process `pid`, a service, as if it had faulted; process 1 is
    /// the supervisor itself, which then faults (ending the machine).
    pub fn crash(&self, pid: u32) -> Result<(), Error> {
        self.call(supervisor::CRASH, pid).map(drop)
    }
}
