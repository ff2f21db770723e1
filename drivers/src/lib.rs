//! Device drivers, each usable on any architecture that has the device.
//!
//! Drivers take their register window from the caller (an MMIO address the
//! caller has mapped, or an I/O accessor), so they carry no platform
//! knowledge and the same code serves the kernel and user-space drivers.
//!
//! Sharing is in the types: a sequence of register writes takes `&mut
//! self`, and a driver is `Sync` only where every `&self` method is one
//! access. A device that interrupt handlers touch while its owner
//! reprograms it comes in two halves (the local APIC and its timer, the
//! SP804 and its interrupt).

#![cfg_attr(not(test), no_std)]

pub mod cmos_rtc;
pub mod gicv2;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic8259;
pub mod pl011;
pub mod pl031;
pub mod ports;
pub mod sp804;
pub mod uart16550;

/// Why a device failed its loopback self-check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoopbackError {
    /// A byte sent in loopback mode never came back.
    Timeout {
        /// The byte that was sent.
        sent: u8,
    },
    /// A different byte came back.
    Mismatch {
        /// The byte that was sent.
        sent: u8,
        /// The byte that arrived.
        received: u8,
    },
}

impl core::fmt::Display for LoopbackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoopbackError::Timeout { sent } => write!(f, "sent {sent:#04x}, nothing came back"),
            LoopbackError::Mismatch { sent, received } => {
                write!(f, "sent {sent:#04x}, received {received:#04x}")
            }
        }
    }
}

/// Bytes for loopback checks: all bit positions, both polarities.
pub const LOOPBACK_PATTERN: [u8; 6] = [0x55, 0xaa, 0x00, 0xff, 0x0f, 0xf0];

/// How many status polls a loopback byte may take before it counts as lost.
/// Emulated devices answer at once; real ones within a character time.
const LOOPBACK_POLLS: u32 = 100_000;

/// Byte transfer, as a loopback check uses it.
pub(crate) trait ByteIo {
    /// Sends a byte, waiting for room.
    fn send(&mut self, byte: u8);
    /// A received byte, if one is waiting.
    fn receive(&mut self) -> Option<u8>;
}

/// Sends each byte of `pattern` and checks the same byte comes back.
pub(crate) fn loopback_exchange(io: &mut impl ByteIo, pattern: &[u8]) -> Result<(), LoopbackError> {
    pattern.iter().try_for_each(|&sent| {
        io.send(sent);
        let received = (0..LOOPBACK_POLLS)
            .find_map(|_| io.receive())
            .ok_or(LoopbackError::Timeout { sent })?;
        if received == sent {
            Ok(())
        } else {
            Err(LoopbackError::Mismatch { sent, received })
        }
    })
}
