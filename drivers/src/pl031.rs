//! The Arm PL031 real-time clock: seconds since 1970 in one register.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    /// The PL031's registers.
    pub Registers {
        (0x00 => data: ReadWrite<u32>),
        (0x04 => _match: ReadWrite<u32>),
        (0x08 => _load: ReadWrite<u32>),
        (0x0c => control: ReadWrite<u32>),
        (0x10 => @END),
    }
}

/// A PL031.
pub struct Pl031 {
    registers: &'static Registers,
}

// SAFETY: after construction the clock is only read.
unsafe impl Sync for Pl031 {}
// SAFETY: as above.
unsafe impl Send for Pl031 {}

impl Pl031 {
    /// # Safety
    /// `base` must map the PL031's registers as device memory.
    pub unsafe fn new(base: usize) -> Pl031 {
        // SAFETY: the caller guarantees the mapping.
        let registers = unsafe { &*(base as *const Registers) };
        if registers.control.get() & 1 == 0 {
            // Not counting: start it (the firmware normally has).
            registers.control.set(1);
        }
        Pl031 { registers }
    }

    /// Seconds since 1970-01-01 UTC.
    pub fn seconds(&self) -> u32 {
        self.registers.data.get()
    }
}
