//! The `net` service over a VirtIO network device (`protocols::net`).
//!
//! Receive buffers sit in the device's queue from the start; each frame
//! that arrives is copied to a bounded queue of waiting frames (the oldest
//! is dropped, and counted, when it is full), the buffer goes back to the
//! device, and the subscriber is notified. Clients take frames with
//! `RECEIVE` and send them with `SEND`. The driver's thread waits for its
//! clients and its interrupts in one `recv` (its notification is bound).

use crate::{Service, dma};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use protocols::net::{self, Error, MAX_FRAME, RX_BIT, Stats};
use rt::ipc::{IpcBuffer, Message, Notification};
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::SomeTransport;

/// Descriptors per queue, and receive buffers.
const QUEUE_SIZE: usize = 16;
/// Room for the VirtIO header and the largest frame.
const SLOT: usize = 2048;
/// Frames kept for the client at most.
const WAITING: usize = 64;

pub struct Server {
    device: VirtIONetRaw<dma::DmaHal, SomeTransport<'static>, QUEUE_SIZE>,
    mac: [u8; 6],
    /// The receive buffers (DMA memory), and the token of each in the
    /// device's queue.
    rx: &'static mut [u8],
    rx_tokens: [Option<u16>; QUEUE_SIZE],
    /// The transmit buffer (DMA memory).
    tx: &'static mut [u8],
    waiting: VecDeque<Vec<u8>>,
    subscriber: Option<Notification>,
    stats: Stats,
}

/// `pages` of DMA memory as a byte slice.
fn dma_bytes(bytes: usize) -> Result<&'static mut [u8], virtio_drivers::Error> {
    let (_, address) =
        dma::allocate(bytes.div_ceil(4096)).ok_or(virtio_drivers::Error::DmaError)?;
    // SAFETY: a fresh allocation, this process's, writable and never
    // freed; only this server uses it.
    Ok(unsafe { core::slice::from_raw_parts_mut(address.as_ptr(), bytes) })
}

impl Server {
    pub fn new(transport: SomeTransport<'static>) -> Result<Server, virtio_drivers::Error> {
        let mut device = VirtIONetRaw::new(transport)?;
        let mac = device.mac_address();
        let rx = dma_bytes(QUEUE_SIZE * SLOT)?;
        let tx = dma_bytes(SLOT)?;
        let mut rx_tokens = [None; QUEUE_SIZE];
        for (slot, buffer) in rx.chunks_exact_mut(SLOT).enumerate() {
            // SAFETY: each slot stays in the queue, untouched, until its
            // token comes back from the used ring.
            rx_tokens[slot] = Some(unsafe { device.receive_begin(buffer)? });
        }
        device.enable_interrupts();
        Ok(Server {
            device,
            mac,
            rx,
            rx_tokens,
            tx,
            waiting: VecDeque::new(),
            subscriber: None,
            stats: Stats::default(),
        })
    }

    /// Answers requests and takes interrupts until the endpoint fails.
    pub fn serve(mut self, service: &Service) -> Result<(), abi::Error> {
        service.interrupts.bind()?;
        let mut buffer = IpcBuffer::register()?;
        service.serve(|request| {
            if request.label & abi::NOTIFIED != 0 {
                self.take_interrupt(service);
                // No caller waits for this: the reply goes nowhere.
                return Message::new(0, [0; 4]);
            }
            self.answer(request, &mut buffer)
        })
    }

    fn take_interrupt(&mut self, service: &Service) {
        self.device.ack_interrupt();
        service.interrupts.rearm();
        let before = self.stats.received;
        while let Some(token) = self.device.poll_receive() {
            let Some(slot) = self.rx_tokens.iter().position(|t| *t == Some(token)) else {
                break;
            };
            let buffer = &mut self.rx[slot * SLOT..(slot + 1) * SLOT];
            // SAFETY: the buffer is the one given with this token.
            let received = unsafe { self.device.receive_complete(token, buffer) };
            if let Ok((header, len)) = received {
                if self.waiting.len() == WAITING {
                    self.waiting.pop_front();
                    self.stats.dropped += 1;
                }
                self.waiting
                    .push_back(buffer[header..header + len].to_vec());
                self.stats.received += 1;
            }
            // SAFETY: as in `new`: back in the queue until it returns.
            self.rx_tokens[slot] = unsafe { self.device.receive_begin(buffer) }.ok();
        }
        if self.stats.received != before
            && let Some(subscriber) = &self.subscriber
        {
            let _ = subscriber.signal(RX_BIT);
        }
    }

    fn answer(&mut self, request: &Message, buffer: &mut IpcBuffer) -> Message {
        let status = |result: Result<(), Error>| protocols::status(result);
        let carried = request.capability();
        match request.plain_label() {
            net::INFO => {
                let [low, high] = net::mac_words(self.mac);
                Message::new(0, [low, high, MAX_FRAME, 0])
            }
            net::SUBSCRIBE => match carried {
                Some(handle) => {
                    self.subscriber = Some(Notification::from_handle(handle));
                    if !self.waiting.is_empty() {
                        let _ = self.subscriber.as_ref().map(|s| s.signal(RX_BIT));
                    }
                    Message::new(0, [0; 4])
                }
                None => Message::new(status(Err(Error::BadRequest)), [0; 4]),
            },
            net::SEND => match request.payload() {
                Some(len) if net::frame_size_ok(len) => {
                    let result = self.send(&buffer.bytes()[..len]);
                    Message::new(status(result), [0; 4])
                }
                _ => Message::new(status(Err(Error::BadRequest)), [0; 4]),
            },
            net::RECEIVE => match self.waiting.pop_front() {
                Some(frame) => {
                    buffer.bytes()[..frame.len()].copy_from_slice(&frame);
                    Message::new(0, [self.waiting.len(), 0, 0, 0]).with_payload(frame.len())
                }
                None => Message::new(status(Err(Error::NoFrame)), [0; 4]),
            },
            net::STATS => Message::new(0, self.stats.words()),
            _ => {
                if let Some(handle) = carried {
                    let _ = rt::ipc::cap_delete(handle);
                }
                Message::new(status(Err(Error::BadRequest)), [0; 4])
            }
        }
    }

    /// Sends one frame and waits until the device has taken it.
    fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        let header = self
            .device
            .fill_buffer_header(self.tx)
            .map_err(|_| Error::DeviceFailed)?;
        let len = header + frame.len();
        self.tx[header..len].copy_from_slice(frame);
        let tx = &self.tx[..len];
        // SAFETY: the buffer stays untouched until the device hands it
        // back, which this waits for.
        let token = unsafe { self.device.transmit_begin(tx) }.map_err(|_| Error::DeviceFailed)?;
        // QEMU takes a frame as soon as it is notified; the wait is short.
        while self.device.poll_transmit() != Some(token) {
            rt::sys::yield_now();
        }
        // SAFETY: the buffer the request was made with.
        unsafe { self.device.transmit_complete(token, tx) }.map_err(|_| Error::DeviceFailed)?;
        self.stats.sent += 1;
        Ok(())
    }
}
