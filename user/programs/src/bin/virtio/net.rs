//! The `net` service over a VirtIO network device (`protocols::net`,
//! served by `nic`).
//!
//! Receive buffers sit in the device's queue from the start; each frame
//! that arrives is handed to the server's queue and its buffer goes back
//! to the device. The driver's thread waits for its clients and its
//! interrupts in one `recv` (its notification is bound).
//!
//! The device is driven on `virtio-drivers`' transports and queues rather
//! than its `VirtIONetRaw`: that one asks for an interrupt on every sent
//! frame too (it negotiates `EVENT_IDX`, and suppresses interrupts only for
//! both queues at once), which doubles the wake-ups per echoed datagram.
//! Here sent buffers are taken back when the next frame goes, and only
//! received frames interrupt.

use crate::{Service, dma};
use protocols::net::Error;
use rt::ipc::IpcBuffer;
use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{SomeTransport, Transport};

/// Descriptors per queue, and receive buffers.
const QUEUE_SIZE: usize = 16;
/// Room for the VirtIO header and the largest frame.
const SLOT: usize = 2048;
/// The queues of a device with one of each (VirtIO 5.1.2).
const RECEIVE_QUEUE: u16 = 0;
const TRANSMIT_QUEUE: u16 = 1;

bitflags::bitflags! {
    /// The features asked for (VirtIO 5.1.3, 6): the MAC address in the
    /// configuration space, and the standard (non-legacy) interface.
    #[derive(Clone, Copy, Debug)]
    struct Features: u64 {
        const MAC = 1 << 5;
        const VERSION_1 = 1 << 32;
    }
}

/// Bytes of `virtio_net_hdr` before each frame: 12 with `VERSION_1` (it
/// has `num_buffers`), 10 for a legacy device without mergeable buffers.
const fn header_len(version_1: bool) -> usize {
    if version_1 { 12 } else { 10 }
}

type Queue = VirtQueue<dma::DmaHal, QUEUE_SIZE>;

pub struct Nic {
    transport: SomeTransport<'static>,
    receive: Queue,
    transmit: Queue,
    header: usize,
    mac: [u8; 6],
    /// The receive buffers (DMA memory), and the token of each in the
    /// device's queue.
    rx: &'static mut [u8],
    rx_tokens: [Option<u16>; QUEUE_SIZE],
    /// The transmit buffers (DMA memory), and for each the device still
    /// holds, its token and the bytes queued.
    tx: &'static mut [u8],
    tx_tokens: [Option<(u16, usize)>; QUEUE_SIZE],
}

/// `bytes` of DMA memory.
fn dma_bytes(bytes: usize) -> Result<&'static mut [u8], virtio_drivers::Error> {
    let (_, address) =
        dma::allocate(bytes.div_ceil(4096)).ok_or(virtio_drivers::Error::DmaError)?;
    // SAFETY: a fresh allocation, this process's, writable and never
    // freed; only this driver uses it.
    Ok(unsafe { core::slice::from_raw_parts_mut(address.as_ptr(), bytes) })
}

impl Nic {
    pub fn new(mut transport: SomeTransport<'static>) -> Result<Nic, virtio_drivers::Error> {
        let features = transport.begin_init(Features::MAC | Features::VERSION_1);
        if !features.contains(Features::MAC) {
            return Err(virtio_drivers::Error::Unsupported);
        }
        let mac = transport.read_consistent(|| transport.read_config_space::<[u8; 6]>(0))?;
        let mut receive = Queue::new(&mut transport, RECEIVE_QUEUE, false, false)?;
        let mut transmit = Queue::new(&mut transport, TRANSMIT_QUEUE, false, false)?;
        transport.finish_init();
        // Sent buffers are taken back on later sends: no interrupt for them.
        transmit.set_dev_notify(false);
        receive.set_dev_notify(true);
        let rx = dma_bytes(QUEUE_SIZE * SLOT)?;
        let tx = dma_bytes(QUEUE_SIZE * SLOT)?;
        let mut rx_tokens = [None; QUEUE_SIZE];
        for (slot, buffer) in rx.chunks_exact_mut(SLOT).enumerate() {
            // SAFETY: each slot stays in the queue, untouched, until its
            // token comes back from the used ring.
            rx_tokens[slot] = Some(unsafe { receive.add(&[], &mut [buffer])? });
        }
        if receive.should_notify() {
            transport.notify(RECEIVE_QUEUE);
        }
        Ok(Nic {
            transport,
            receive,
            transmit,
            header: header_len(features.contains(Features::VERSION_1)),
            mac,
            rx,
            rx_tokens,
            tx,
            tx_tokens: [None; QUEUE_SIZE],
        })
    }

    /// Takes back the transmit buffers the device is done with.
    fn reclaim(&mut self) {
        while let Some(token) = self.transmit.peek_used() {
            let queued = self.tx_tokens.iter().enumerate().find_map(|(slot, held)| {
                held.filter(|(held, _)| *held == token)
                    .map(|(_, length)| (slot, length))
            });
            let Some((slot, length)) = queued else {
                break;
            };
            self.tx_tokens[slot] = None;
            let buffer = &self.tx[slot * SLOT..slot * SLOT + length];
            // SAFETY: the buffer given with this token, as long as it was.
            let _ = unsafe { self.transmit.pop_used(token, &[buffer], &mut []) };
        }
    }

    /// Answers requests and takes interrupts until the endpoint fails.
    pub fn serve(mut self, service: &Service) -> Result<(), abi::Error> {
        service.interrupts.bind()?;
        let mut buffer = IpcBuffer::register()?;
        let mut server = nic::Server::default();
        service.serve(|message| {
            server.respond(&mut self, message, &mut buffer, || {
                service.interrupts.rearm()
            })
        })
    }
}

impl nic::Device for Nic {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn take_interrupt(&mut self, received: &mut dyn FnMut(&[u8])) {
        self.transport.ack_interrupt();
        let mut returned = false;
        while let Some(token) = self.receive.peek_used() {
            let Some(slot) = self.rx_tokens.iter().position(|t| *t == Some(token)) else {
                break;
            };
            let buffer = &mut self.rx[slot * SLOT..(slot + 1) * SLOT];
            // SAFETY: the buffer is the one given with this token.
            let used = unsafe { self.receive.pop_used(token, &[], &mut [buffer]) };
            // A frame shorter than its header is the device's error: it
            // is dropped.
            if let Ok(used) = used
                && let Some(frame) = buffer.get(self.header..used as usize)
            {
                received(frame);
            }
            // SAFETY: as in `new`: back in the queue until it returns.
            self.rx_tokens[slot] = unsafe { self.receive.add(&[], &mut [buffer]) }.ok();
            returned = true;
        }
        if returned && self.receive.should_notify() {
            self.transport.notify(RECEIVE_QUEUE);
        }
    }

    /// Queues one frame for the device; its buffer comes back once the
    /// device has sent it (taken back on a later send).
    fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.reclaim();
        let slot = loop {
            match self.tx_tokens.iter().position(Option::is_none) {
                Some(slot) => break slot,
                // Every buffer is still the device's: it sends soon.
                None => {
                    rt::sys::yield_now();
                    self.reclaim();
                }
            }
        };
        let buffer = &mut self.tx[slot * SLOT..(slot + 1) * SLOT];
        let len = self.header + frame.len();
        // No offloads: a header of zeros.
        buffer[..self.header].fill(0);
        buffer[self.header..len].copy_from_slice(frame);
        let queued = &buffer[..len];
        // SAFETY: the buffer stays untouched until the device hands it
        // back (`reclaim`).
        let token =
            unsafe { self.transmit.add(&[queued], &mut []) }.map_err(|_| Error::DeviceFailed)?;
        self.tx_tokens[slot] = Some((token, len));
        if self.transmit.should_notify() {
            self.transport.notify(TRANSMIT_QUEUE);
        }
        Ok(())
    }
}
