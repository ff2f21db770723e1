//! Devices for drivers: the interrupt control that claims lines, interrupt
//! handlers, device memory (registers mapped uncached) and I/O ports.
//! Init holds the capabilities at boot and passes each driver its own.

use crate::ipc::{Memory, Notification, memory_unmap};
use crate::sys;
use abi::{DeviceInfo, Error, Handle, Syscall};

/// The right to claim interrupt lines.
#[derive(Debug)]
pub struct IrqControl(Handle);
owned_handle!(IrqControl);

impl IrqControl {
    /// Claims line `irq` (a [`DeviceInfo::irq`]): its interrupts set
    /// `bits` in `notification`, and mask the line until acknowledged.
    pub fn claim(&self, irq: u32, notification: &Notification, bits: usize) -> Result<Irq, Error> {
        sys::raw(
            Syscall::IrqClaim as usize,
            [
                self.0 as usize,
                irq as usize,
                notification.handle() as usize,
                bits,
                0,
                0,
            ],
        )
        .map(|handle| Irq(handle as Handle))
    }
}

/// A claimed interrupt line.
#[derive(Debug)]
pub struct Irq(Handle);
owned_handle!(Irq);

impl Irq {
    /// Unmasks the line: the interrupt has been dealt with at the device.
    pub fn acknowledge(&self) -> Result<(), Error> {
        sys::raw(Syscall::IrqAck as usize, [self.0 as usize, 0, 0, 0, 0, 0]).map(|_| ())
    }
}

/// A range of device registers.
#[derive(Debug)]
pub struct DeviceMemory(Handle);
owned_handle!(DeviceMemory);

impl DeviceMemory {
    /// A memory object over `size` bytes (rounded up to pages) of the
    /// registers, from `offset` (page-aligned) into the range's pages.
    pub fn memory(&self, offset: usize, size: usize) -> Result<Memory, Error> {
        sys::raw(
            Syscall::MemoryDevice as usize,
            [self.0 as usize, offset, size, 0, 0, 0],
        )
        .map(|handle| Memory::from_handle(handle as Handle))
    }
}

/// Physically contiguous memory for a device to read and write: a memory
/// object of this process's, mapped here, with where it lies for the
/// device. Unmapped when dropped (the object goes with its capability).
#[derive(Debug)]
pub struct Dma {
    _memory: Memory,
    address: usize,
    len: usize,
    physical: u64,
}

impl Dma {
    /// `bytes` (rounded up to pages) of zeroed contiguous memory.
    pub fn new(bytes: usize) -> Result<Dma, Error> {
        let memory = Memory::create(bytes, true)?;
        let mapping = memory.map(true)?;
        let physical = match memory.physical() {
            Ok(physical) => physical,
            Err(e) => {
                let _ = memory_unmap(mapping.address);
                return Err(e);
            }
        };
        Ok(Dma {
            _memory: memory,
            address: mapping.address,
            len: mapping.len,
            physical,
        })
    }

    /// Where it is mapped in this process.
    pub fn address(&self) -> usize {
        self.address
    }

    /// Its size in bytes (whole pages).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a memory object has at least a page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where it lies in physical memory, for the device.
    pub fn physical(&self) -> u64 {
        self.physical
    }
}

impl Drop for Dma {
    fn drop(&mut self) {
        let _ = memory_unmap(self.address);
    }
}

/// A range of I/O ports.
#[derive(Debug)]
pub struct IoPorts(Handle);
owned_handle!(IoPorts);

impl IoPorts {
    /// Reads `width` bytes (1, 2 or 4) from `port`.
    pub fn read(&self, port: u16, width: usize) -> Result<u32, Error> {
        sys::raw(
            Syscall::PortIn as usize,
            [self.0 as usize, port as usize, width, 0, 0, 0],
        )
        .map(|value| value as u32)
    }

    /// Writes the low `width` bytes of `value` to `port`.
    pub fn write(&self, port: u16, width: usize, value: u32) -> Result<(), Error> {
        sys::raw(
            Syscall::PortOut as usize,
            [self.0 as usize, port as usize, width, value as usize, 0, 0],
        )
        .map(|_| ())
    }

    /// Reads a byte from `port`.
    pub fn read8(&self, port: u16) -> Result<u8, Error> {
        self.read(port, 1).map(|value| value as u8)
    }

    /// Writes a byte to `port`.
    pub fn write8(&self, port: u16, value: u8) -> Result<(), Error> {
        self.write(port, 1, value as u32)
    }
}

/// The first device called `name` in the `Devices` listing, with its
/// index there (init holds its capability at `abi::init_device_handle`
/// of the index).
pub fn find(name: &str) -> Result<Option<(usize, DeviceInfo)>, Error> {
    Ok(crate::process::devices()?
        .into_iter()
        .enumerate()
        .find(|(_, device)| abi::name_str(&device.name) == name))
}
