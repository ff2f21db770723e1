//! The `blk` service over a VirtIO block device (`protocols::block`).
//!
//! Requests are served one at a time, each answered once the device has
//! completed it; clients queue on the endpoint meanwhile. A read or a
//! write moves the data between the device and the client's buffer (a
//! window, see `dma`) with no copy.

use crate::{Service, dma};
use protocols::block::{
    self, Direction, Error, Limits, MAX_SECTORS, READ_ONLY, Request, check_transfer,
};
use rt::ipc::{Memory, Message, memory_unmap};
use virtio_drivers::device::blk::{BlkReq, BlkResp, VirtIOBlk};
use virtio_drivers::transport::SomeTransport;

/// Sessions served at once.
const MAX_SESSIONS: usize = 8;

/// A client's attached buffer.
struct Session {
    memory: Memory,
    address: usize,
    len: usize,
}

pub struct Server {
    device: VirtIOBlk<dma::DmaHal, SomeTransport<'static>>,
    capacity: u64,
    read_only: bool,
    /// The request header and status the device reads and writes, in DMA
    /// memory (translated in place).
    header: &'static mut BlkReq,
    status: &'static mut BlkResp,
    sessions: [Option<Session>; MAX_SESSIONS],
}

impl Server {
    pub fn new(transport: SomeTransport<'static>) -> Result<Server, virtio_drivers::Error> {
        let mut device = VirtIOBlk::new(transport)?;
        device.enable_interrupts();
        let (_, page) = dma::allocate(1).ok_or(virtio_drivers::Error::DmaError)?;
        let header = page.cast::<BlkReq>();
        // The status goes in its own cache line of the same page.
        // SAFETY: 64 bytes into a fresh page the device shares with no one.
        let status = unsafe { page.add(64) }.cast::<BlkResp>();
        // SAFETY: the page is this process's, writable, never freed, and
        // used only for these two values; both types are plain bytes
        // valid when zeroed, and are written before use.
        let (header, status) = unsafe {
            header.write(BlkReq::default());
            status.write(BlkResp::default());
            (&mut *header.as_ptr(), &mut *status.as_ptr())
        };
        Ok(Server {
            capacity: device.capacity(),
            read_only: device.readonly(),
            device,
            header,
            status,
            sessions: Default::default(),
        })
    }

    /// Answers requests for ever (until the endpoint fails).
    pub fn serve(mut self, service: &Service) -> Result<(), abi::Error> {
        service.serve(|request| self.answer(request, service))
    }

    fn answer(&mut self, message: &Message, service: &Service) -> Message {
        let carried = message.capability().map(Memory::from_handle);
        let refusal = |error| Message::new(protocols::status(Err::<(), _>(error)), [0; 4]);
        let request = match Request::decode(message.label, message.words) {
            Ok(request) => request,
            Err(error) => return refusal(error),
        };
        let session = message.badge.checked_sub(1);
        let outcome = match request {
            Request::Info => {
                let flags = if self.read_only { READ_ONLY } else { 0 };
                let capacity = self.capacity;
                Ok(Message::new(
                    0,
                    [
                        capacity as u32 as usize,
                        (capacity >> 32) as usize,
                        MAX_SECTORS,
                        flags,
                    ],
                ))
            }
            Request::Attach => self.attach(carried, service),
            Request::Transfer {
                direction,
                sector,
                count,
                offset,
            } => self
                .transfer(session, direction, sector, count, offset, service)
                .map(|()| Message::new(0, [0; 4])),
            Request::Flush => self.flush(session).map(|()| Message::new(0, [0; 4])),
            Request::Close => self.close(session).map(|()| Message::new(0, [0; 4])),
        };
        outcome.unwrap_or_else(refusal)
    }

    fn session(&self, session: Option<usize>) -> Result<&Session, Error> {
        session
            .and_then(|n| self.sessions.get(n))
            .and_then(Option::as_ref)
            .ok_or(Error::NotAttached)
    }

    /// Maps the client's buffer and replies with a capability badged for
    /// its session.
    fn attach(&mut self, memory: Option<Memory>, service: &Service) -> Result<Message, Error> {
        let memory = memory.ok_or(Error::BadRequest)?;
        let slot = self
            .sessions
            .iter()
            .position(Option::is_none)
            .ok_or(Error::TooManySessions)?;
        let capability = service
            .endpoint
            .copy(abi::RIGHT_SEND | abi::RIGHT_GRANT, slot + 1)
            .map_err(|_| Error::TooManySessions)?;
        // Only contiguous memory has one physical address the device can
        // be given; anything else is refused, not bounced.
        let physical = memory.physical().map_err(|_| Error::BadBuffer)?;
        let mapping = memory.map(true).map_err(|_| Error::BadBuffer)?;
        dma::add_window(physical, mapping.address, mapping.len);
        self.sessions[slot] = Some(Session {
            memory,
            address: mapping.address,
            len: mapping.len,
        });
        Ok(Message::new(0, [mapping.len, 0, 0, 0]).carrying(capability.into_handle(), true))
    }

    fn flush(&mut self, session: Option<usize>) -> Result<(), Error> {
        self.session(session)?;
        // The crate's flush waits by polling the used ring.
        self.device.flush().map_err(|_| Error::DeviceFailed)
    }

    fn close(&mut self, session: Option<usize>) -> Result<(), Error> {
        self.session(session)?;
        let slot = session.ok_or(Error::NotAttached)?;
        if let Some(closed) = self.sessions[slot].take() {
            dma::remove_window(closed.address);
            let _ = memory_unmap(closed.address);
            drop(closed.memory);
        }
        Ok(())
    }

    fn transfer(
        &mut self,
        session: Option<usize>,
        direction: Direction,
        sector: u64,
        count: usize,
        offset: usize,
        service: &Service,
    ) -> Result<(), Error> {
        let buffer = self.session(session)?;
        let limits = Limits {
            capacity: self.capacity,
            buffer: buffer.len,
            read_only: self.read_only,
        };
        let range = check_transfer(&limits, direction, sector, count, offset)?;
        // The crate numbers sectors with `usize`: on a 32-bit machine a
        // disk past 2 TiB could not be reached beyond that.
        let sector = usize::try_from(sector).map_err(|_| Error::OutOfRange)?;
        // SAFETY: the range lies in the session's mapping (checked above),
        // which stays mapped while the request runs; the client waits for
        // the reply and does not touch it meanwhile.
        let data = unsafe {
            core::slice::from_raw_parts_mut((buffer.address + range.start) as *mut u8, range.len())
        };
        let device = &mut self.device;
        let (header, status) = (&mut *self.header, &mut *self.status);
        // SAFETY: header, data and status stay untouched until the request
        // completes below, and the same ones are passed to complete it.
        let token = unsafe {
            match direction {
                Direction::Read => device.read_blocks_nb(sector, header, data, status),
                Direction::Write => device.write_blocks_nb(sector, header, data, status),
            }
        }
        .map_err(|_| Error::DeviceFailed)?;
        while device.peek_used() != Some(token) {
            service.interrupts.wait();
            device.ack_interrupt();
            service.interrupts.rearm();
        }
        // SAFETY: as above: the buffers the request was made with.
        unsafe {
            match direction {
                Direction::Read => device.complete_read_blocks(token, header, data, status),
                Direction::Write => device.complete_write_blocks(token, header, data, status),
            }
        }
        .map_err(|_| Error::DeviceFailed)
    }
}

const _: () = assert!(block::SECTOR_SIZE == virtio_drivers::device::blk::SECTOR_SIZE);
