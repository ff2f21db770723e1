//! The console driver: owns the serial console's UART (a 16550 through
//! its I/O ports on x86_64, a PL011 through its registers on ARMv7) and
//! its receive interrupt, and serves `protocols::console`: output on one
//! thread, input on another. The kernel keeps writing its own log to the
//! UART, polled.
//!
//! Input is taken from the UART only when a reader asks: until then bytes
//! wait in the UART and, once its FIFO is full, in the host (QEMU holds
//! back its serial input), so a flood typed before the shell reads loses
//! nothing.
//!
//! Started by init as a driver (`protocols::driver`): its quota, a
//! registrar's capability, a control bound to the UART's line, the UART.

#![no_std]
#![no_main]

extern crate alloc;

use abi::{DeviceKind, initial_handle};
use drivers::pl011::Pl011;
use drivers::uart16550::{Register, RegisterIo, Uart16550};
use protocols::console::{self, Error};
use protocols::driver::{self, DriverArgs};
use rt::device::{DeviceMemory, IoPorts, Irq, IrqControl};
use rt::ipc::{Endpoint, IpcBuffer, Message, Notification};
use rt::names::Names;
use rt::println;

rt::entry!(main);

/// The 16550's registers through the driver's I/O-port capability.
struct Ports {
    handle: abi::Handle,
    base: u16,
}

impl RegisterIo for Ports {
    fn read(&self, register: Register) -> u8 {
        let ports = core::mem::ManuallyDrop::new(IoPorts::from_handle(self.handle));
        ports.read8(self.base + register as u16).unwrap_or(0)
    }

    fn write(&self, register: Register, value: u8) {
        let ports = core::mem::ManuallyDrop::new(IoPorts::from_handle(self.handle));
        let _ = ports.write8(self.base + register as u16, value);
    }
}

/// Either UART, behind one face.
enum Uart {
    Ns16550(Uart16550<Ports>),
    Pl011(Pl011),
}

impl Uart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        match self {
            Uart::Ns16550(uart) => uart.write_bytes(bytes),
            Uart::Pl011(uart) => bytes.iter().for_each(|&b| uart.write_byte(b)),
        }
    }

    fn read_byte(&mut self) -> Option<u8> {
        match self {
            Uart::Ns16550(uart) => uart.read_byte(),
            Uart::Pl011(uart) => uart.read_byte(),
        }
    }

    fn set_receive_interrupt(&mut self, enabled: bool) {
        match self {
            Uart::Ns16550(uart) => uart.set_receive_interrupt(enabled),
            Uart::Pl011(uart) => {
                uart.acknowledge_interrupts();
                uart.set_receive_interrupt(enabled);
            }
        }
    }

    /// Clears what the device latched (the PL011 latches its interrupts;
    /// the 16550's clears as its receiver is read).
    fn acknowledge(&mut self) {
        if let Uart::Pl011(uart) = self {
            uart.acknowledge_interrupts();
        }
    }
}

/// A handle on the UART described by `info`, whose capability is
/// `handle` (a second handle on the same UART for the other thread).
fn attach(info: &abi::DeviceInfo, handle: abi::Handle, mapped: usize) -> Uart {
    match info.device_kind() {
        Some(DeviceKind::Ports) => Uart::Ns16550(Uart16550::attach(Ports {
            handle,
            base: info.base as u16,
        })),
        // SAFETY: `mapped` maps the PL011's registers for the process's
        // life; the output thread uses only the transmit side, the input
        // thread the receive side.
        _ => Uart::Pl011(unsafe { Pl011::attach(mapped) }),
    }
}

fn main(arguments: &str) -> i32 {
    let Some(args) = DriverArgs::parse(arguments) else {
        println!("console: bad arguments {arguments:?}");
        return 2;
    };
    match run(&args) {
        Ok(()) => 0,
        Err(message) => {
            println!("console: {message}");
            1
        }
    }
}

fn run(args: &DriverArgs) -> Result<(), alloc::string::String> {
    use alloc::format;
    let devices = rt::process::devices().map_err(|e| format!("device list: {e}"))?;
    let info = *devices
        .get(args.resources[0])
        .ok_or("the UART is not in the device list")?;
    let handle = initial_handle(args.resource_handle(0));
    let mapped = match info.device_kind() {
        Some(DeviceKind::Memory) => {
            let registers = core::mem::ManuallyDrop::new(DeviceMemory::from_handle(handle));
            let memory = registers
                .memory(0, 4096)
                .map_err(|e| format!("registers: {e}"))?;
            let mapping = memory.map(true).map_err(|e| format!("map: {e}"))?;
            mapping.address + (info.base & 0xfff) as usize
        }
        _ => 0,
    };
    let notification = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let irq = match args.irq {
        true => {
            let control = IrqControl::from_handle(initial_handle(driver::IRQ_CONTROL));
            Some(
                control
                    .claim(info.irq, &notification, 1)
                    .map_err(|e| format!("claim line {}: {e}", info.irq))?,
            )
        }
        false => None,
    };
    let output = Endpoint::create().map_err(|e| format!("endpoint: {e}"))?;
    let input = Endpoint::create().map_err(|e| format!("endpoint: {e}"))?;
    let mut reader = attach(&info, handle, mapped);
    reader.set_receive_interrupt(irq.is_some());
    let input_receiver = input
        .copy(abi::RIGHT_RECEIVE, 0)
        .map_err(|e| format!("endpoint: {e}"))?;
    rt::thread::spawn(move || serve_input(&input_receiver, reader, &notification, irq.as_ref()))
        .map_err(|e| format!("input thread: {e}"))?;
    let mut names = Names::from_handle(initial_handle(driver::NAMES))
        .map_err(|e| format!("name service: {e}"))?;
    for (name, endpoint) in [(console::OUTPUT, &output), (console::INPUT, &input)] {
        names
            .register(name, endpoint)
            .map_err(|e| format!("register {name}: {e}"))?;
    }
    drop(names);
    serve_output(&output, attach(&info, handle, mapped)).map_err(|e| format!("output: {e}"))
}

fn refusal() -> Message {
    Message::new(protocols::status(Err(Error::BadRequest)), [0; 4])
}

/// Writes each request's payload, a carriage return before each line
/// feed (the console's line ends).
fn serve_output(endpoint: &Endpoint, mut uart: Uart) -> Result<(), abi::Error> {
    let mut buffer = IpcBuffer::register()?;
    Err(
        endpoint.serve(|request| match (request.plain_label(), request.payload()) {
            (console::WRITE, Some(len)) => {
                let mut line = [0u8; 2 * abi::MAX_PAYLOAD];
                let mut out = 0;
                for &byte in &buffer.bytes()[..len] {
                    if byte == b'\n' {
                        line[out] = b'\r';
                        out += 1;
                    }
                    line[out] = byte;
                    out += 1;
                }
                uart.write_bytes(&line[..out]);
                Message::new(0, [0; 4])
            }
            _ => refusal(),
        }),
    )
}

/// Answers each read with what has arrived, waiting for the first byte.
fn serve_input(
    endpoint: &Endpoint,
    mut uart: Uart,
    notification: &Notification,
    irq: Option<&Irq>,
) {
    let Ok(mut buffer) = IpcBuffer::register() else {
        return;
    };
    endpoint.serve(
        |request| match console::read_length(request.label, request.words) {
            Ok(wanted) => {
                let got = read_some(&mut uart, &mut buffer.bytes()[..wanted], notification, irq);
                Message::new(0, [0; 4]).with_payload(got)
            }
            Err(_) => refusal(),
        },
    );
}

/// Fills `into` with what the UART holds, waiting for at least one byte.
/// The line is unmasked before the UART is emptied, so a byte arriving
/// after the last one read raises a fresh interrupt (the 16550's line is
/// edge-triggered).
fn read_some(
    uart: &mut Uart,
    into: &mut [u8],
    notification: &Notification,
    irq: Option<&Irq>,
) -> usize {
    loop {
        uart.acknowledge();
        if let Some(irq) = irq {
            let _ = irq.acknowledge();
        }
        let mut got = 0;
        while got < into.len() {
            match uart.read_byte() {
                Some(byte) => {
                    into[got] = byte;
                    got += 1;
                }
                None => break,
            }
        }
        if got > 0 {
            return got;
        }
        match irq {
            Some(_) => {
                let _ = notification.wait();
            }
            None => rt::sys::sleep_ns(1_000_000),
        }
    }
}
