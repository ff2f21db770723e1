//! The Arm PrimeCell PL011 UART.
//!
//! Written here because the PL011 crates available either need nightly or
//! `std`, or lack loopback and interrupt control; the register block is
//! described with `tock-registers`.

use crate::LoopbackError;
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{register_bitfields, register_structs};

register_bitfields! [u32,
    pub Data [
        DATA OFFSET(0) NUMBITS(8) [],
    ],
    pub Flags [
        BUSY OFFSET(3) NUMBITS(1) [],
        RECEIVE_FIFO_EMPTY OFFSET(4) NUMBITS(1) [],
        TRANSMIT_FIFO_FULL OFFSET(5) NUMBITS(1) [],
    ],
    pub LineControl [
        FIFO_ENABLE OFFSET(4) NUMBITS(1) [],
        WORD_LENGTH OFFSET(5) NUMBITS(2) [Bits8 = 3],
    ],
    pub Control [
        UART_ENABLE OFFSET(0) NUMBITS(1) [],
        LOOPBACK_ENABLE OFFSET(7) NUMBITS(1) [],
        TRANSMIT_ENABLE OFFSET(8) NUMBITS(1) [],
        RECEIVE_ENABLE OFFSET(9) NUMBITS(1) [],
    ],
    pub Interrupts [
        RECEIVE OFFSET(4) NUMBITS(1) [],
        TRANSMIT OFFSET(5) NUMBITS(1) [],
        RECEIVE_TIMEOUT OFFSET(6) NUMBITS(1) [],
        ALL OFFSET(0) NUMBITS(11) [],
    ],
];

register_structs! {
    /// The PL011 register block.
    pub Registers {
        (0x000 => data: ReadWrite<u32, Data::Register>),
        (0x004 => _receive_status: ReadWrite<u32>),
        (0x008 => _reserved0),
        (0x018 => flags: ReadOnly<u32, Flags::Register>),
        (0x01c => _reserved1),
        (0x024 => integer_baud: ReadWrite<u32>),
        (0x028 => fractional_baud: ReadWrite<u32>),
        (0x02c => line_control: ReadWrite<u32, LineControl::Register>),
        (0x030 => control: ReadWrite<u32, Control::Register>),
        (0x034 => _fifo_level: ReadWrite<u32>),
        (0x038 => interrupt_mask: ReadWrite<u32, Interrupts::Register>),
        (0x03c => _raw_interrupt_status: ReadOnly<u32, Interrupts::Register>),
        (0x040 => masked_interrupt_status: ReadOnly<u32, Interrupts::Register>),
        (0x044 => interrupt_clear: WriteOnly<u32, Interrupts::Register>),
        (0x048 => @END),
    }
}

/// A PL011 UART.
pub struct Pl011 {
    registers: &'static Registers,
}

// SAFETY: the registers are only reached through `&mut self`, so a handle
// moved to another context still has exclusive use of the device.
unsafe impl Send for Pl011 {}

impl Pl011 {
    /// Takes over the UART and sets it to 8N1 at `baud`, FIFO as it was,
    /// interrupts masked.
    ///
    /// # Safety
    /// `base` must be the virtual address of a mapped PL011 register block
    /// that nothing else uses, and `clock_hz` its reference clock.
    pub unsafe fn new(base: usize, clock_hz: u32, baud: u32) -> Self {
        // SAFETY: the caller guarantees `base` maps a PL011 for 'static.
        let registers = unsafe { &*(base as *const Registers) };
        let uart = Pl011 { registers };
        uart.configure(clock_hz, baud);
        uart
    }

    /// Drives a PL011 someone else configured (the kernel, for a console
    /// driver in user space), changing none of its settings.
    ///
    /// # Safety
    /// `base` must be the virtual address of a mapped PL011 register block
    /// for as long as the value lives.
    pub unsafe fn attach(base: usize) -> Self {
        // SAFETY: the caller guarantees `base` maps a PL011.
        let registers = unsafe { &*(base as *const Registers) };
        Pl011 { registers }
    }

    fn configure(&self, clock_hz: u32, baud: u32) {
        let r = self.registers;
        r.control.set(0);
        while r.flags.is_set(Flags::BUSY) {
            core::hint::spin_loop();
        }
        // Divisor = clock / (16 * baud), in 16.6 fixed point.
        let divisor_x64 = (clock_hz as u64 * 4) / baud.max(1) as u64;
        r.integer_baud.set((divisor_x64 >> 6) as u32);
        r.fractional_baud.set((divisor_x64 & 0x3f) as u32);
        // The FIFO stays as it was: switching it on or off empties it
        // (QEMU's model does so), and input may already be waiting. Without
        // it the receiver holds one byte and the sender waits (QEMU's
        // flow control).
        let fifo = r.line_control.read(LineControl::FIFO_ENABLE);
        r.line_control
            .write(LineControl::WORD_LENGTH::Bits8 + LineControl::FIFO_ENABLE.val(fifo));
        r.interrupt_mask.set(0);
        r.interrupt_clear.write(Interrupts::ALL::SET);
        r.control.write(
            Control::UART_ENABLE::SET
                + Control::TRANSMIT_ENABLE::SET
                + Control::RECEIVE_ENABLE::SET,
        );
    }

    /// Sends one byte, waiting for room in the transmit FIFO.
    pub fn write_byte(&mut self, byte: u8) {
        while self.registers.flags.is_set(Flags::TRANSMIT_FIFO_FULL) {
            core::hint::spin_loop();
        }
        self.registers.data.write(Data::DATA.val(byte as u32));
    }

    /// Returns a received byte, if any.
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.registers.flags.is_set(Flags::RECEIVE_FIFO_EMPTY) {
            None
        } else {
            Some(self.registers.data.read(Data::DATA) as u8)
        }
    }

    /// Enables or disables the receive (and receive-timeout) interrupts.
    pub fn set_receive_interrupt(&mut self, enabled: bool) {
        let value = if enabled { 1 } else { 0 };
        self.registers
            .interrupt_mask
            .modify(Interrupts::RECEIVE.val(value) + Interrupts::RECEIVE_TIMEOUT.val(value));
    }

    /// Acknowledges all pending interrupts, returning which were pending.
    pub fn acknowledge_interrupts(&mut self) -> u32 {
        let pending = self.registers.masked_interrupt_status.get();
        self.registers.interrupt_clear.set(pending);
        pending
    }

    /// Sends `pattern` through the UART's internal loopback and checks that
    /// it comes back unchanged. Input waiting in the receiver is discarded.
    /// On hardware the transmit line stays idle meanwhile; QEMU's model
    /// sends the bytes to the line as well.
    pub fn loopback_check(&mut self, pattern: &[u8]) -> Result<(), LoopbackError> {
        let control = &self.registers.control;
        control.modify(Control::LOOPBACK_ENABLE::SET);
        while self.read_byte().is_some() {}
        let result = crate::loopback_exchange(self, pattern);
        // Let the last byte leave the shifter before the line is reconnected.
        while self.registers.flags.is_set(Flags::BUSY) {
            core::hint::spin_loop();
        }
        self.registers
            .control
            .modify(Control::LOOPBACK_ENABLE::CLEAR);
        result
    }
}

impl crate::ByteIo for Pl011 {
    fn send(&mut self, byte: u8) {
        self.write_byte(byte);
    }

    fn receive(&mut self) -> Option<u8> {
        self.read_byte()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain memory standing in for the register block: enough to check
    /// what the driver writes during configuration.
    #[repr(C, align(4))]
    struct FakeBlock([u32; 0x48 / 4]);

    #[test]
    fn configuration_sets_baud_format_and_enables() {
        let block = Box::leak(Box::new(FakeBlock([0; 0x48 / 4])));
        let base = block as *mut FakeBlock as usize;
        // SAFETY: the fake block is leaked, aligned and large enough.
        let _uart = unsafe { Pl011::new(base, 24_000_000, 115_200) };
        let words = &block.0;
        // 24 MHz / (16 * 115200) = 13.02: integer 13, fraction 1/64.
        assert_eq!(words[0x24 / 4], 13);
        assert_eq!(words[0x28 / 4], 1);
        assert_eq!(words[0x2c / 4], 0x60, "8 bits, FIFO left off");
        assert_eq!(words[0x30 / 4], 0x301, "UART, TX and RX enabled");
        assert_eq!(words[0x38 / 4], 0, "interrupts masked");
    }

    #[test]
    fn a_fifo_that_was_on_stays_on() {
        let block = Box::leak(Box::new(FakeBlock([0; 0x48 / 4])));
        block.0[0x2c / 4] = 0x10;
        let base = block as *mut FakeBlock as usize;
        // SAFETY: the fake block is leaked, aligned and large enough.
        let _uart = unsafe { Pl011::new(base, 24_000_000, 115_200) };
        assert_eq!(block.0[0x2c / 4], 0x70, "8 bits, FIFO still enabled");
    }
}
