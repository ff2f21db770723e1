//! The Arm SP804 dual timer; timer 1 gives the periodic tick.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    pub Control [
        ONE_SHOT OFFSET(0) NUMBITS(1) [],
        SIZE_32 OFFSET(1) NUMBITS(1) [],
        PRESCALE OFFSET(2) NUMBITS(2) [Divide1 = 0],
        INTERRUPT_ENABLE OFFSET(5) NUMBITS(1) [],
        PERIODIC OFFSET(6) NUMBITS(1) [],
        ENABLE OFFSET(7) NUMBITS(1) [],
    ],
];

register_structs! {
    /// One of the two timers.
    pub Timer {
        (0x00 => load: ReadWrite<u32>),
        (0x04 => value: ReadOnly<u32>),
        (0x08 => control: ReadWrite<u32, Control::Register>),
        (0x0c => interrupt_clear: WriteOnly<u32>),
        (0x10 => _raw_status: ReadOnly<u32>),
        (0x14 => masked_status: ReadOnly<u32>),
        (0x18 => _background_load: ReadWrite<u32>),
        (0x1c => _reserved),
        (0x20 => @END),
    }
}

/// Timer 1 of an SP804, driven by its one owner: starting and stopping
/// are sequences of writes, so they take `&mut self`.
pub struct Sp804 {
    timer: &'static Timer,
    clock_hz: u32,
}

/// The timer's interrupt, which its handler acknowledges.
pub struct Sp804Interrupt {
    timer: &'static Timer,
}

// SAFETY: an `Sp804` is the only handle on the load and control registers
// (see `Sp804::new`), and moving it moves that ownership.
unsafe impl Send for Sp804 {}
// SAFETY: each method is one access (a write to the interrupt-clear
// register, a read of the status), harmless between any two writes of a
// start or stop.
unsafe impl Sync for Sp804Interrupt {}
// SAFETY: as above.
unsafe impl Send for Sp804Interrupt {}

impl Sp804 {
    /// The timer and its interrupt.
    ///
    /// # Safety
    /// `base` must map the SP804's registers as device memory, used by
    /// nothing else (no other `Sp804` for it); `clock_hz` is its timer
    /// clock.
    pub unsafe fn new(base: usize, clock_hz: u32) -> (Sp804, Sp804Interrupt) {
        // SAFETY: the caller guarantees the mapping.
        let timer = unsafe { &*(base as *const Timer) };
        (Sp804 { timer, clock_hz }, Sp804Interrupt { timer })
    }

    /// Counts per period for `hz`, if the timer can do that rate.
    pub fn period(&self, hz: u32) -> Option<u32> {
        (hz > 0 && hz <= self.clock_hz).then(|| self.clock_hz / hz)
    }

    /// Interrupts `hz` times a second until stopped.
    pub fn start_periodic(&mut self, hz: u32) -> bool {
        let Some(period) = self.period(hz) else {
            return false;
        };
        self.timer.control.set(0);
        self.timer.interrupt_clear.set(1);
        self.timer.load.set(period);
        self.timer.control.write(
            Control::ENABLE::SET
                + Control::PERIODIC::SET
                + Control::INTERRUPT_ENABLE::SET
                + Control::SIZE_32::SET
                + Control::PRESCALE::Divide1,
        );
        true
    }

    /// Stops the timer and clears its interrupt.
    pub fn stop(&mut self) {
        self.timer.control.set(0);
        self.timer.interrupt_clear.set(1);
    }
}

impl Sp804Interrupt {
    /// Clears the timer's interrupt.
    pub fn acknowledge(&self) {
        self.timer.interrupt_clear.set(1);
    }

    /// Whether the timer's interrupt is pending.
    pub fn pending(&self) -> bool {
        self.timer.masked_status.get() & 1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_start_programs_load_and_control() {
        let block = Box::leak(Box::new([0u32; 8]));
        // SAFETY: a leaked block standing in for the registers.
        let (mut timer, interrupt) = unsafe { Sp804::new(block.as_mut_ptr() as usize, 1_000_000) };
        assert!(timer.start_periodic(100));
        assert_eq!(block[0], 10_000, "1 MHz / 100 Hz");
        assert_eq!(block[2], 0xe2, "enabled, periodic, interrupt, 32-bit");
        assert!(!timer.start_periodic(0));
        assert!(!timer.start_periodic(2_000_000), "faster than its clock");
        timer.stop();
        assert_eq!(block[2], 0);
        block[3] = 0;
        interrupt.acknowledge();
        assert_eq!(block[3], 1, "interrupt cleared");
        assert!(!interrupt.pending());
    }
}
