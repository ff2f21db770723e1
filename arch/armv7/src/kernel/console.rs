//! The kernel console: a PL011 UART found in the device tree.

use core::sync::atomic::{AtomicUsize, Ordering};
use drivers::LoopbackError;
use drivers::pl011::Pl011;
use spin::Mutex;

/// The UART, behind a lock taken with interrupts masked: the receive
/// interrupt's handler reads it too.
static UART: Mutex<Option<Pl011>> = Mutex::new(None);

fn with_uart<R>(f: impl FnOnce(&mut Pl011) -> R) -> Option<R> {
    // Not `aarch32_cpu::interrupt::free`: in 0.4 it turns IRQs on
    // afterwards when they were off before (it tests CPSR.I the wrong way
    // round), which let the receive interrupt run in the middle of the
    // kernel's own drain and reorder typed input.
    <crate::arch::Armv7 as hal::Interrupts>::without(|| UART.lock().as_mut().map(f))
}
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Takes over the PL011 whose registers are mapped at `virt` and sets it to
/// 115200 8N1.
pub fn init(virt: usize, clock_hz: u32) {
    // SAFETY: `virt` maps the UART's registers as device memory, and
    // nothing else drives this UART.
    *UART.lock() = Some(unsafe { Pl011::new(virt, clock_hz, 115_200) });
    BASE.store(virt, Ordering::Relaxed);
}

/// Where the console's registers are mapped (0 before `init`).
pub fn base() -> usize {
    BASE.load(Ordering::Relaxed)
}

/// Writes bytes to the console; dropped before `init`.
pub fn write_bytes(bytes: &[u8]) {
    with_uart(|uart| {
        for &byte in bytes {
            uart.write_byte(byte);
        }
    });
}

/// A received byte, if any.
pub fn read_byte() -> Option<u8> {
    with_uart(|uart| uart.read_byte()).flatten()
}

/// Turns on the receive interrupt.
pub fn enable_receive_interrupt() {
    with_uart(|uart| uart.set_receive_interrupt(true));
}

/// Loopback check pattern: QEMU's PL011 also sends loopback bytes to the
/// line, so the pattern is printable text that ends its own line rather
/// than the full-range bytes, which would garble the console. It still
/// toggles bits 0-6 in both polarities.
const LOOPBACK_PATTERN: &[u8] = b"[pl011 loopback U* ju~@]\r\n";

/// Runs the UART's loopback self-check.
pub fn loopback_check() -> Result<(), LoopbackError> {
    with_uart(|uart| uart.loopback_check(LOOPBACK_PATTERN))
        .unwrap_or(Err(LoopbackError::Timeout { sent: 0 }))
}

/// Frees the console for the panic report even if the panicking code held
/// it. The machine stops right after, so nothing else can use the UART.
pub fn break_lock_for_panic() {
    if UART.is_locked() {
        // SAFETY: interrupts are off and the CPU is about to stop; the
        // holder of the lock will never run again.
        unsafe { UART.force_unlock() };
    }
}

impl hal::Console for crate::arch::Armv7 {
    fn write_bytes(bytes: &[u8]) {
        write_bytes(bytes);
    }

    fn read_byte() -> Option<u8> {
        read_byte()
    }

    fn enable_receive_interrupt() -> Result<usize, hal::IrqError> {
        let irq = crate::interrupts::console_irq()?;
        enable_receive_interrupt();
        Ok(irq)
    }

    fn user_device() -> Option<hal::UserDevice> {
        let (_, info) = crate::device_tree::get()?;
        let uart = info.console_uart?;
        Some(hal::UserDevice {
            name: "pl011",
            registers: hal::DeviceRegisters::Memory {
                base: uart.reg.address,
                size: uart.reg.size,
            },
            irq: crate::interrupts::console_irq().ok(),
            pci: None,
        })
    }
}
