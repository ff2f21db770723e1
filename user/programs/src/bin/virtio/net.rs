//! The `net` service over a VirtIO network device (`protocols::net`,
//! served by `nic`).
//!
//! Receive buffers sit in the device's queue from the start; each frame
//! that arrives is handed to the server's queue and its buffer goes back
//! to the device. The driver's thread waits for its clients and its
//! interrupts in one `recv` (its notification is bound).

use crate::{Service, dma};
use protocols::net::Error;
use rt::ipc::IpcBuffer;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::SomeTransport;

/// Descriptors per queue, and receive buffers.
const QUEUE_SIZE: usize = 16;
/// Room for the VirtIO header and the largest frame.
const SLOT: usize = 2048;

pub struct Nic {
    device: VirtIONetRaw<dma::DmaHal, SomeTransport<'static>, QUEUE_SIZE>,
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
    pub fn new(transport: SomeTransport<'static>) -> Result<Nic, virtio_drivers::Error> {
        let mut device = VirtIONetRaw::new(transport)?;
        let mac = device.mac_address();
        let rx = dma_bytes(QUEUE_SIZE * SLOT)?;
        let tx = dma_bytes(QUEUE_SIZE * SLOT)?;
        let mut rx_tokens = [None; QUEUE_SIZE];
        for (slot, buffer) in rx.chunks_exact_mut(SLOT).enumerate() {
            // SAFETY: each slot stays in the queue, untouched, until its
            // token comes back from the used ring.
            rx_tokens[slot] = Some(unsafe { device.receive_begin(buffer)? });
        }
        device.enable_interrupts();
        Ok(Nic {
            device,
            mac,
            rx,
            rx_tokens,
            tx,
            tx_tokens: [None; QUEUE_SIZE],
        })
    }

    /// Takes back the transmit buffers the device is done with.
    fn reclaim(&mut self) {
        while let Some(token) = self.device.poll_transmit() {
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
            let _ = unsafe { self.device.transmit_complete(token, buffer) };
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
        self.device.ack_interrupt();
        while let Some(token) = self.device.poll_receive() {
            let Some(slot) = self.rx_tokens.iter().position(|t| *t == Some(token)) else {
                break;
            };
            let buffer = &mut self.rx[slot * SLOT..(slot + 1) * SLOT];
            // SAFETY: the buffer is the one given with this token.
            if let Ok((header, len)) = unsafe { self.device.receive_complete(token, buffer) } {
                received(&buffer[header..header + len]);
            }
            // SAFETY: as in `new`: back in the queue until it returns.
            self.rx_tokens[slot] = unsafe { self.device.receive_begin(buffer) }.ok();
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
        let header = self
            .device
            .fill_buffer_header(buffer)
            .map_err(|_| Error::DeviceFailed)?;
        let len = header + frame.len();
        buffer[header..len].copy_from_slice(frame);
        let queued = &buffer[..len];
        // SAFETY: the buffer stays untouched until the device hands it
        // back (`reclaim`).
        let token =
            unsafe { self.device.transmit_begin(queued) }.map_err(|_| Error::DeviceFailed)?;
        self.tx_tokens[slot] = Some((token, len));
        Ok(())
    }
}
