//! A client of the block service (`protocols::block`): a session with a
//! buffer of shared memory the device reads and writes directly.

use crate::ipc::{Endpoint, Mapping, Memory, Message};
use abi::Error;
use protocols::block::{self, Direction, Request};

/// Why a block request failed.
pub type Failure = crate::ipc::Failure<block::Error>;

/// What the disk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// Sectors of [`block::SECTOR_SIZE`] bytes.
    pub sectors: u64,
    /// The most sectors one request moves.
    pub max_sectors: usize,
    pub read_only: bool,
}

/// A session: the buffer attached and the capability its requests go
/// through.
pub struct Block {
    session: Endpoint,
    memory: Memory,
    mapping: Mapping,
    info: Info,
}

fn call(endpoint: &Endpoint, message: Message) -> Result<Message, Failure> {
    let reply = endpoint.call(message)?;
    protocols::result::<block::Error>(reply.label).map_err(Failure::Refused)?;
    Ok(reply)
}

/// What the disk behind `server` is.
fn info(server: &Endpoint) -> Result<Info, Failure> {
    let (label, words) = Request::Info.encode();
    let reply = call(server, Message::new(label, words))?;
    Ok(Info {
        sectors: (reply.words[0] as u64 & 0xffff_ffff) | (reply.words[1] as u64) << 32,
        max_sectors: reply.words[2],
        read_only: reply.words[3] & block::READ_ONLY != 0,
    })
}

/// Attaches `memory` to `server`: the session's capability.
fn attach(server: &Endpoint, memory: &Memory) -> Result<Endpoint, Failure> {
    let (label, words) = Request::Attach.encode();
    let reply = call(
        server,
        Message::new(label, words).carrying(memory.handle(), false),
    )?;
    reply
        .capability()
        .map(Endpoint::from_handle)
        .ok_or(Failure::Ipc(Error::InvalidArgument))
}

impl Block {
    /// Opens a session with the server `server` names, with a buffer of
    /// `buffer_bytes` (rounded up to pages) of contiguous memory.
    pub fn open(server: &Endpoint, buffer_bytes: usize) -> Result<Block, Failure> {
        let info = info(server)?;
        let memory = Memory::create(buffer_bytes, true)?;
        let mapping = memory.map(true)?;
        let session = attach(server, &memory)?;
        Ok(Block {
            session,
            memory,
            mapping,
            info,
        })
    }

    /// Opens a session with `server` (a driver started in place of a dead
    /// one) for the same buffer, whose contents stay as they were: a
    /// request that failed with `PeerDied` was not acknowledged, and can
    /// be made again as it was.
    pub fn reconnect(&mut self, server: &Endpoint) -> Result<(), Failure> {
        let info = info(server)?;
        self.session = attach(server, &self.memory)?;
        self.info = info;
        Ok(())
    }

    pub fn info(&self) -> Info {
        self.info
    }

    /// The shared buffer reads land in and writes come from.
    pub fn buffer(&mut self) -> &mut [u8] {
        // SAFETY: the object is mapped here, writable, for this session's
        // life; the device touches it only during a request, which this
        // client waits for.
        unsafe {
            core::slice::from_raw_parts_mut(self.mapping.address as *mut u8, self.mapping.len)
        }
    }

    fn transfer(
        &mut self,
        direction: Direction,
        sector: u64,
        count: usize,
        offset: usize,
    ) -> Result<(), Failure> {
        let request = Request::Transfer {
            direction,
            sector,
            count,
            offset,
        };
        let (label, words) = request.encode();
        call(&self.session, Message::new(label, words)).map(|_| ())
    }

    /// Reads `count` sectors from `sector` into the buffer at `offset`.
    pub fn read(&mut self, sector: u64, count: usize, offset: usize) -> Result<(), Failure> {
        self.transfer(Direction::Read, sector, count, offset)
    }

    /// Writes `count` sectors at `sector` from the buffer at `offset`;
    /// returns once the device has completed the write.
    pub fn write(&mut self, sector: u64, count: usize, offset: usize) -> Result<(), Failure> {
        self.transfer(Direction::Write, sector, count, offset)
    }

    /// Returns once every completed write is durable.
    pub fn flush(&mut self) -> Result<(), Failure> {
        let (label, words) = Request::Flush.encode();
        call(&self.session, Message::new(label, words)).map(|_| ())
    }

    /// Sends a raw request on the session (for tests of the server's
    /// checks).
    pub fn raw(&self, label: usize, words: [usize; 4]) -> Result<Message, Failure> {
        call(&self.session, Message::new(label, words))
    }
}

impl Drop for Block {
    /// Ends the session: the server lets go of the buffer.
    fn drop(&mut self) {
        let (label, words) = Request::Close.encode();
        let _ = self.session.call(Message::new(label, words));
        let _ = crate::ipc::memory_unmap(self.mapping.address);
        let _ = &self.memory;
    }
}
