//! x86 I/O ports for the port-based drivers.

use drivers::ports::Ports;
use x86_64::instructions::port::Port;

/// The CPU's I/O port space. The kernel owns it outright; each driver
/// touches only its device's ports.
pub struct IoPorts;

impl Ports for IoPorts {
    fn read8(&self, port: u16) -> u8 {
        // SAFETY: port reads by the kernel's own drivers, on their devices.
        unsafe { Port::<u8>::new(port).read() }
    }

    fn write8(&self, port: u16, value: u8) {
        // SAFETY: as in `read8`.
        unsafe { Port::<u8>::new(port).write(value) }
    }
}
