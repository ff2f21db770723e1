//! The `rng` service over a VirtIO entropy device.

use crate::{Service, dma};
use protocols::rng::{Error, MAX_READ, Request};
use rt::ipc::{IpcBuffer, Message};
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::SomeTransport;

pub struct Server {
    device: VirtIORng<dma::DmaHal, SomeTransport<'static>>,
    /// DMA memory the device writes the bytes to (translated in place).
    scratch: &'static mut [u8],
}

impl Server {
    pub fn new(transport: SomeTransport<'static>) -> Result<Server, virtio_drivers::Error> {
        let device = VirtIORng::new(transport)?;
        let pages = MAX_READ.div_ceil(4096);
        let (_, address) = dma::allocate(pages).ok_or(virtio_drivers::Error::DmaError)?;
        // SAFETY: the allocation is this process's, mapped writable, and
        // never freed; only this server uses it.
        let scratch = unsafe { core::slice::from_raw_parts_mut(address.as_ptr(), MAX_READ) };
        Ok(Server { device, scratch })
    }

    /// Answers requests for ever (until the endpoint fails).
    pub fn serve(mut self, service: &Service) -> Result<(), abi::Error> {
        let mut buffer = IpcBuffer::register()?;
        service.serve(
            |request| match Request::decode(request.label, request.words) {
                Ok(Request::Read { len }) => match self.read(service, len) {
                    Ok(()) => {
                        buffer.bytes()[..len].copy_from_slice(&self.scratch[..len]);
                        Message::new(0, [0; 4]).with_payload(len)
                    }
                    Err(error) => Message::new(protocols::status(Err(error)), [0; 4]),
                },
                Err(error) => Message::new(protocols::status(Err(error)), [0; 4]),
            },
        )
    }

    /// Fills the first `len` scratch bytes from the device. The device
    /// may return fewer bytes than asked; it is asked again for the rest.
    fn read(&mut self, _service: &Service, len: usize) -> Result<(), Error> {
        let mut filled = 0;
        while filled < len {
            // The crate's entropy request polls the used ring (it has no
            // separate submit and complete for this device); QEMU fills a
            // request from its entropy source at once, so the poll is
            // short and the line stays unused.
            let got = self
                .device
                .request_entropy(&mut self.scratch[filled..len])
                .map_err(|_| Error::DeviceFailed)?;
            if got == 0 {
                return Err(Error::DeviceFailed);
            }
            filled += got;
        }
        Ok(())
    }
}
