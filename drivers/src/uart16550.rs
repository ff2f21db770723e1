//! The 16550 UART: COM ports on PCs, and an MMIO serial port on many boards.
//!
//! Written here rather than taken from a crate because the kernel needs three
//! things together that none offers: one driver for both port-I/O and MMIO
//! register access, loopback mode for self-checks, and control of the
//! receive interrupt.

use crate::LoopbackError;
use tock_registers::{LocalRegisterCopy, register_bitfields};

/// The UART's registers, by offset (in register units, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Register {
    /// Receive buffer (read) / transmit holding (write); divisor low with DLAB.
    Data = 0,
    /// Interrupt enable; divisor high with DLAB.
    InterruptEnable = 1,
    /// FIFO control (write) / interrupt identification (read).
    FifoControl = 2,
    /// Line control.
    LineControl = 3,
    /// Modem control.
    ModemControl = 4,
    /// Line status.
    LineStatus = 5,
}

/// How the UART's registers are reached.
pub trait RegisterIo {
    /// Reads one register.
    fn read(&self, register: Register) -> u8;
    /// Writes one register.
    fn write(&self, register: Register, value: u8);
}

register_bitfields! [u8,
    pub InterruptEnable [
        RECEIVED_DATA OFFSET(0) NUMBITS(1) [],
        TRANSMIT_EMPTY OFFSET(1) NUMBITS(1) [],
    ],
    pub LineControl [
        WORD_LENGTH OFFSET(0) NUMBITS(2) [Bits8 = 3],
        DIVISOR_LATCH OFFSET(7) NUMBITS(1) [],
    ],
    pub FifoControl [
        ENABLE OFFSET(0) NUMBITS(1) [],
        CLEAR_RECEIVE OFFSET(1) NUMBITS(1) [],
        CLEAR_TRANSMIT OFFSET(2) NUMBITS(1) [],
        TRIGGER OFFSET(6) NUMBITS(2) [Bytes14 = 3],
    ],
    pub ModemControl [
        DTR OFFSET(0) NUMBITS(1) [],
        RTS OFFSET(1) NUMBITS(1) [],
        /// Gates the interrupt line to the interrupt controller on PCs.
        OUT2 OFFSET(3) NUMBITS(1) [],
        LOOPBACK OFFSET(4) NUMBITS(1) [],
    ],
    pub LineStatus [
        DATA_READY OFFSET(0) NUMBITS(1) [],
        TRANSMIT_EMPTY OFFSET(5) NUMBITS(1) [],
    ],
];

/// The transmit FIFO's depth.
const TRANSMIT_FIFO: usize = 16;

/// The UART's input clock divided by 16: the divisor for 115200 baud is 1.
const BASE_BAUD: u32 = 115_200;

/// A 16550-compatible UART.
pub struct Uart16550<Io: RegisterIo> {
    io: Io,
}

impl<Io: RegisterIo> Uart16550<Io> {
    /// Takes over the UART reachable through `io` and sets it to 8N1 at
    /// `baud`, FIFOs as firmware left them, interrupts off.
    pub fn new(io: Io, baud: u32) -> Self {
        let uart = Uart16550 { io };
        uart.configure(baud);
        uart
    }

    /// Drives a UART someone else configured (the kernel, for a console
    /// driver in user space), changing none of its settings: output that
    /// is still being sent is not cut off.
    pub fn attach(io: Io) -> Self {
        Uart16550 { io }
    }

    fn configure(&self, baud: u32) {
        let divisor = (BASE_BAUD / baud.clamp(1, BASE_BAUD)) as u16;
        self.io.write(Register::InterruptEnable, 0);
        let mut lcr = LocalRegisterCopy::<u8, LineControl::Register>::new(0);
        lcr.write(LineControl::DIVISOR_LATCH::SET);
        self.io.write(Register::LineControl, lcr.get());
        self.io.write(Register::Data, divisor as u8);
        self.io
            .write(Register::InterruptEnable, (divisor >> 8) as u8);
        lcr.write(LineControl::WORD_LENGTH::Bits8);
        self.io.write(Register::LineControl, lcr.get());
        // The FIFOs stay as firmware left them: switching them on or off
        // empties them (QEMU's model does so on every change), and input
        // may already be arriving. Without them the receiver holds one
        // byte and the sender waits (flow control in QEMU).
        let fifos_on = self.io.read(Register::FifoControl) & 0xc0 == 0xc0;
        let mut fcr = LocalRegisterCopy::<u8, FifoControl::Register>::new(0);
        if fifos_on {
            fcr.write(FifoControl::ENABLE::SET + FifoControl::TRIGGER::Bytes14);
        }
        self.io.write(Register::FifoControl, fcr.get());
        self.io
            .write(Register::ModemControl, Self::normal_modem_control());
    }

    fn normal_modem_control() -> u8 {
        let mut mcr = LocalRegisterCopy::<u8, ModemControl::Register>::new(0);
        mcr.write(ModemControl::DTR::SET + ModemControl::RTS::SET + ModemControl::OUT2::SET);
        mcr.get()
    }

    fn line_status(&self) -> LocalRegisterCopy<u8, LineStatus::Register> {
        LocalRegisterCopy::new(self.io.read(Register::LineStatus))
    }

    /// Sends one byte, waiting for room in the transmitter.
    pub fn write_byte(&mut self, byte: u8) {
        while !self.line_status().is_set(LineStatus::TRANSMIT_EMPTY) {
            core::hint::spin_loop();
        }
        self.io.write(Register::Data, byte);
    }

    /// Sends `bytes`: with the FIFOs on, up to a FIFO's worth each time the
    /// transmitter is empty, so the line status is read once per 16 bytes
    /// rather than per byte (each read is a system call for a driver in
    /// user space).
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        let burst = if self.io.read(Register::FifoControl) & 0xc0 == 0xc0 {
            TRANSMIT_FIFO
        } else {
            1
        };
        for chunk in bytes.chunks(burst) {
            while !self.line_status().is_set(LineStatus::TRANSMIT_EMPTY) {
                core::hint::spin_loop();
            }
            for &byte in chunk {
                self.io.write(Register::Data, byte);
            }
        }
    }

    /// Returns a received byte, if any.
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.line_status().is_set(LineStatus::DATA_READY) {
            Some(self.io.read(Register::Data))
        } else {
            None
        }
    }

    /// Enables or disables the received-data interrupt.
    pub fn set_receive_interrupt(&mut self, enabled: bool) {
        let mut ier = LocalRegisterCopy::<u8, InterruptEnable::Register>::new(0);
        if enabled {
            ier.write(InterruptEnable::RECEIVED_DATA::SET);
        }
        self.io.write(Register::InterruptEnable, ier.get());
    }

    /// Sends `pattern` through the UART's internal loopback and checks that
    /// it comes back unchanged. Nothing reaches the line meanwhile; input
    /// waiting in the receiver is discarded.
    pub fn loopback_check(&mut self, pattern: &[u8]) -> Result<(), LoopbackError> {
        let mut mcr = LocalRegisterCopy::<u8, ModemControl::Register>::new(0);
        mcr.write(ModemControl::LOOPBACK::SET);
        self.io.write(Register::ModemControl, mcr.get());
        while self.read_byte().is_some() {}
        let result = crate::loopback_exchange(self, pattern);
        self.io
            .write(Register::ModemControl, Self::normal_modem_control());
        result
    }
}

/// Registers reached through memory-mapped I/O, `stride` bytes apart.
pub struct MmioIo {
    base: usize,
    stride: usize,
}

impl MmioIo {
    /// # Safety
    /// `base` must be the virtual address of a mapped 16550 register block
    /// with registers `stride` bytes apart, used by nothing else.
    pub unsafe fn new(base: usize, stride: usize) -> Self {
        MmioIo { base, stride }
    }

    fn address(&self, register: Register) -> *mut u8 {
        (self.base + register as usize * self.stride) as *mut u8
    }
}

impl RegisterIo for MmioIo {
    fn read(&self, register: Register) -> u8 {
        // SAFETY: `new`'s contract makes every register address valid MMIO.
        unsafe { self.address(register).read_volatile() }
    }

    fn write(&self, register: Register, value: u8) {
        // SAFETY: as in `read`.
        unsafe { self.address(register).write_volatile(value) }
    }
}

impl<Io: RegisterIo> crate::ByteIo for Uart16550<Io> {
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
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// A register-level model of a 16550, enough to exercise the driver.
    #[derive(Default)]
    struct Model {
        regs: [u8; 8],
        divisor: u16,
        rx: VecDeque<u8>,
        line: Vec<u8>,
        corrupt_loopback: bool,
        /// FIFO state as read from the interrupt identification register.
        iir: u8,
    }

    struct ModelIo(RefCell<Model>);

    impl RegisterIo for ModelIo {
        fn read(&self, register: Register) -> u8 {
            let m = self.0.borrow_mut();
            match register {
                Register::LineStatus => 0x20 | (!m.rx.is_empty()) as u8,
                Register::FifoControl => m.iir,
                Register::Data => {
                    drop(m);
                    self.0.borrow_mut().rx.pop_front().unwrap_or(0)
                }
                r => m.regs[r as usize],
            }
        }

        fn write(&self, register: Register, value: u8) {
            let mut m = self.0.borrow_mut();
            let dlab = m.regs[Register::LineControl as usize] & 0x80 != 0;
            match register {
                Register::Data if dlab => m.divisor = (m.divisor & 0xff00) | value as u16,
                Register::InterruptEnable if dlab => {
                    m.divisor = (m.divisor & 0xff) | (value as u16) << 8
                }
                Register::Data => {
                    if m.regs[Register::ModemControl as usize] & 0x10 != 0 {
                        let byte = if m.corrupt_loopback { !value } else { value };
                        m.rx.push_back(byte);
                    } else {
                        m.line.push(value);
                    }
                }
                Register::FifoControl => {
                    // As QEMU's model: clearing, or switching the FIFOs on
                    // or off, empties the receiver.
                    let was_on = m.iir & 0xc0 != 0;
                    if value & 0x02 != 0 || was_on != (value & 1 != 0) {
                        m.rx.clear();
                    }
                    m.iir = if value & 1 != 0 { 0xc0 } else { 0 };
                }
                r => m.regs[r as usize] = value,
            }
        }
    }

    fn uart() -> Uart16550<ModelIo> {
        Uart16550::new(ModelIo(RefCell::new(Model::default())), 115_200)
    }

    #[test]
    fn configures_8n1_with_divisor_and_out2() {
        let uart = uart();
        let m = uart.io.0.borrow();
        assert_eq!(m.divisor, 1);
        assert_eq!(m.regs[Register::LineControl as usize], 0x03);
        assert_eq!(m.regs[Register::ModemControl as usize], 0x0b);
        assert_eq!(m.regs[Register::InterruptEnable as usize], 0);
    }

    #[test]
    fn input_received_before_configuration_survives_it() {
        for fifo_control in [0x00, 0xc1] {
            let mut model = Model {
                rx: VecDeque::from(*b"help\n"),
                ..Model::default()
            };
            // The interrupt-identification bits that say whether the
            // FIFOs are on, as firmware left them.
            model.iir = fifo_control & 0xc0;
            let mut uart = Uart16550::new(ModelIo(RefCell::new(model)), 115_200);
            let received: Vec<u8> = core::iter::from_fn(|| uart.read_byte()).collect();
            assert_eq!(received, b"help\n", "FIFOs {fifo_control:#x}");
        }
    }

    #[test]
    fn slower_baud_rates_set_larger_divisors() {
        let uart = Uart16550::new(ModelIo(RefCell::new(Model::default())), 9600);
        assert_eq!(uart.io.0.borrow().divisor, 12);
    }

    #[test]
    fn writes_reach_the_line_and_reads_drain_receiver() {
        let mut uart = uart();
        uart.write_byte(b'x');
        uart.io.0.borrow_mut().rx.push_back(b'y');
        assert_eq!(uart.read_byte(), Some(b'y'));
        assert_eq!(uart.read_byte(), None);
        assert_eq!(uart.io.0.borrow().line, b"x");
    }

    #[test]
    fn loopback_check_passes_and_restores_modem_control() {
        let mut uart = uart();
        uart.io.0.borrow_mut().rx.push_back(b'!');
        assert_eq!(uart.loopback_check(&crate::LOOPBACK_PATTERN), Ok(()));
        let m = uart.io.0.borrow();
        assert!(m.line.is_empty(), "loopback bytes leaked to the line");
        assert_eq!(m.regs[Register::ModemControl as usize], 0x0b);
    }

    #[test]
    fn loopback_check_reports_corruption() {
        let mut uart = uart();
        uart.io.0.borrow_mut().corrupt_loopback = true;
        assert_eq!(
            uart.loopback_check(&crate::LOOPBACK_PATTERN),
            Err(LoopbackError::Mismatch {
                sent: 0x55,
                received: 0xaa
            })
        );
    }

    #[test]
    fn receive_interrupt_toggles() {
        let mut uart = uart();
        uart.set_receive_interrupt(true);
        assert_eq!(uart.io.0.borrow().regs[1], 1);
        uart.set_receive_interrupt(false);
        assert_eq!(uart.io.0.borrow().regs[1], 0);
    }
}
