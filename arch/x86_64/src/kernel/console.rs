//! The kernel console: COM1, a 16550 at I/O port 0x3f8.

use drivers::LoopbackError;
use drivers::uart16550::{Register, RegisterIo, Uart16550};
use spin::Mutex;
use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3f8;

/// A 16550 reached through x86 I/O ports.
pub struct PortIo {
    base: u16,
}

impl RegisterIo for PortIo {
    fn read(&self, register: Register) -> u8 {
        // SAFETY: the ports base..base+8 belong to this UART, and only this
        // driver (behind COM1_UART's lock) touches them.
        unsafe { Port::<u8>::new(self.base + register as u16).read() }
    }

    fn write(&self, register: Register, value: u8) {
        // SAFETY: as in `read`.
        unsafe { Port::<u8>::new(self.base + register as u16).write(value) }
    }
}

/// COM1, behind a lock taken with interrupts masked: the receive
/// interrupt's handler reads it too.
static COM1_UART: Mutex<Option<Uart16550<PortIo>>> = Mutex::new(None);

fn with_uart<R>(f: impl FnOnce(&mut Uart16550<PortIo>) -> R) -> Option<R> {
    interrupts::without_interrupts(|| COM1_UART.lock().as_mut().map(f))
}

/// COM1's ISA interrupt line.
pub const COM1_IRQ: u8 = 4;

/// Programs COM1 for 115200 8N1 (keeping what it has received).
pub fn init() {
    *COM1_UART.lock() = Some(Uart16550::new(PortIo { base: COM1 }, 115_200));
}

/// Writes bytes to COM1; dropped if COM1 is not set up yet.
pub fn write_bytes(bytes: &[u8]) {
    with_uart(|uart| {
        for &byte in bytes {
            uart.write_byte(byte);
        }
    });
}

/// A byte received on COM1, if any.
pub fn read_byte() -> Option<u8> {
    with_uart(|uart| uart.read_byte()).flatten()
}

/// Turns on COM1's receive interrupt.
pub fn enable_receive_interrupt() {
    with_uart(|uart| uart.set_receive_interrupt(true));
}

/// Runs the UART's loopback self-check with every bit pattern: the 16550
/// keeps loopback traffic off the line, so nothing shows on the console.
pub fn loopback_check() -> Result<(), LoopbackError> {
    with_uart(|uart| uart.loopback_check(&drivers::LOOPBACK_PATTERN))
        .unwrap_or(Err(LoopbackError::Timeout { sent: 0 }))
}

/// Frees the console for the panic report even if the panicking code held
/// it. The machine stops right after, so nothing else can use the UART.
pub fn break_lock_for_panic() {
    if COM1_UART.is_locked() {
        // SAFETY: interrupts are off and the CPU is about to stop; the
        // holder of the lock will never run again.
        unsafe { COM1_UART.force_unlock() };
    }
}

impl hal::Console for crate::arch::X86_64 {
    fn write_bytes(bytes: &[u8]) {
        write_bytes(bytes);
    }

    fn read_byte() -> Option<u8> {
        read_byte()
    }

    fn enable_receive_interrupt() -> Result<usize, hal::IrqError> {
        let irq = crate::interrupts::route_isa(COM1_IRQ)?;
        enable_receive_interrupt();
        Ok(irq)
    }

    fn user_device() -> Option<hal::UserDevice> {
        Some(hal::UserDevice {
            name: "uart16550",
            registers: hal::DeviceRegisters::Ports {
                base: COM1,
                count: 8,
            },
            irq: crate::interrupts::route_isa(COM1_IRQ).ok(),
            pci: None,
        })
    }
}
