//! The E1000 driver (Intel 82540EM, QEMU's `-device e1000` on q35), the
//! second NIC driver for the net protocol (served by `nic`), so the
//! network stack runs over either. Written by hand: no well-kept crate
//! drives this chip in user space on top of a capability HAL.
//!
//! Started by init as a driver (`protocols::driver`): its quota, a
//! registrar's capability, a control bound to its INTx line, its
//! configuration page, then its BARs (BAR 0, the registers, among them).
//!
//! Receive and transmit use the chip's legacy descriptor rings in
//! contiguous memory objects; each receive buffer is 2 KiB, so a frame
//! never spans two.

#![no_std]
#![no_main]

extern crate alloc;

use abi::initial_handle;
use core::ptr::NonNull;
use protocols::driver::{self, DriverArgs};
use protocols::net::Error;
use rt::device::{DeviceMemory, Dma, Irq, IrqControl};
use rt::ipc::{Endpoint, IpcBuffer, Notification};
use rt::names::Names;
use rt::println;

rt::entry!(main);

// Registers (byte offsets into BAR 0).
const CTRL: usize = 0x0000;
const STATUS: usize = 0x0008;
const ICR: usize = 0x00c0;
const IMS: usize = 0x00d0;
const IMC: usize = 0x00d8;
const RCTL: usize = 0x0100;
const TCTL: usize = 0x0400;
const TIPG: usize = 0x0410;
const RDBAL: usize = 0x2800;
const RDBAH: usize = 0x2804;
const RDLEN: usize = 0x2808;
const RDH: usize = 0x2810;
const RDT: usize = 0x2818;
const TDBAL: usize = 0x3800;
const TDBAH: usize = 0x3804;
const TDLEN: usize = 0x3808;
const TDH: usize = 0x3810;
const TDT: usize = 0x3818;
const MTA: usize = 0x5200;
const RAL: usize = 0x5400;
const RAH: usize = 0x5404;

const CTRL_RESET: u32 = 1 << 26;
const CTRL_SET_LINK_UP: u32 = 1 << 6;
const CTRL_AUTO_SPEED: u32 = 1 << 5;
/// Receive: enable, accept broadcast, strip the CRC; 2 KiB buffers.
const RCTL_VALUE: u32 = (1 << 1) | (1 << 15) | (1 << 26);
/// Transmit: enable, pad short frames, collision threshold and distance.
const TCTL_VALUE: u32 = (1 << 1) | (1 << 3) | (0x10 << 4) | (0x40 << 12);
/// Inter-packet gap the manual gives for copper.
const TIPG_VALUE: u32 = 0x0060_200a;
/// Interrupts: receive timer, receive overrun, link change.
const INTERRUPTS: u32 = (1 << 7) | (1 << 6) | (1 << 2);
/// Transmit command: end of packet, insert the FCS, report status.
const TX_COMMAND: u8 = (1 << 0) | (1 << 1) | (1 << 3);
/// Descriptor status: done; end of packet.
const DESCRIPTOR_DONE: u8 = 1 << 0;
const END_OF_PACKET: u8 = 1 << 1;
/// The PCI command register's memory decoding and bus mastering.
const PCI_COMMAND: usize = 0x04;
const PCI_MEMORY_AND_MASTER: u32 = (1 << 1) | (1 << 2);

const RX_COUNT: usize = 32;
const TX_COUNT: usize = 8;
const BUFFER: usize = 2048;
const DESCRIPTOR: usize = 16;

/// A byte of DMA memory, by its offset.
fn at(dma: &Dma, offset: usize) -> *mut u8 {
    (dma.address() + offset) as *mut u8
}

struct E1000 {
    registers: NonNull<u32>,
    mac: [u8; 6],
    rx_ring: Dma,
    rx_buffers: Dma,
    rx_next: usize,
    tx_ring: Dma,
    tx_buffers: Dma,
    tx_next: usize,
}

impl E1000 {
    fn read(&self, register: usize) -> u32 {
        // SAFETY: BAR 0 is mapped uncached at `registers` (128 KiB); every
        // offset used is a register's, within it.
        unsafe { self.registers.add(register / 4).read_volatile() }
    }

    fn write(&self, register: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { self.registers.add(register / 4).write_volatile(value) }
    }

    /// Resets the chip and brings up its rings, interrupts masked.
    fn new(registers: NonNull<u32>) -> Result<E1000, abi::Error> {
        let mut nic = E1000 {
            registers,
            mac: [0; 6],
            rx_ring: Dma::new(RX_COUNT * DESCRIPTOR)?,
            rx_buffers: Dma::new(RX_COUNT * BUFFER)?,
            rx_next: 0,
            tx_ring: Dma::new(TX_COUNT * DESCRIPTOR)?,
            tx_buffers: Dma::new(TX_COUNT * BUFFER)?,
            tx_next: 0,
        };
        nic.write(IMC, u32::MAX);
        nic.write(CTRL, nic.read(CTRL) | CTRL_RESET);
        let mut spins = 0;
        while nic.read(CTRL) & CTRL_RESET != 0 {
            spins += 1;
            if spins > 1_000_000 {
                return Err(abi::Error::TimedOut);
            }
        }
        nic.write(IMC, u32::MAX);
        let _ = nic.read(ICR);
        nic.write(CTRL, nic.read(CTRL) | CTRL_SET_LINK_UP | CTRL_AUTO_SPEED);
        // QEMU loads the address from its EEPROM into the first receive
        // address at reset.
        let (low, high) = (nic.read(RAL), nic.read(RAH));
        let low = low.to_le_bytes();
        let high = high.to_le_bytes();
        nic.mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        for n in 0..128 {
            nic.write(MTA + 4 * n, 0);
        }
        for n in 0..RX_COUNT {
            nic.set_rx_descriptor(n);
        }
        nic.write(RDBAL, nic.rx_ring.physical() as u32);
        nic.write(RDBAH, (nic.rx_ring.physical() >> 32) as u32);
        nic.write(RDLEN, (RX_COUNT * DESCRIPTOR) as u32);
        nic.write(RDH, 0);
        nic.write(RDT, (RX_COUNT - 1) as u32);
        nic.write(RCTL, RCTL_VALUE);
        nic.write(TDBAL, nic.tx_ring.physical() as u32);
        nic.write(TDBAH, (nic.tx_ring.physical() >> 32) as u32);
        nic.write(TDLEN, (TX_COUNT * DESCRIPTOR) as u32);
        nic.write(TDH, 0);
        nic.write(TDT, 0);
        nic.write(TCTL, TCTL_VALUE);
        nic.write(TIPG, TIPG_VALUE);
        let _ = nic.read(STATUS);
        Ok(nic)
    }

    /// Points receive descriptor `n` at its buffer, ready for the chip.
    fn set_rx_descriptor(&mut self, n: usize) {
        let buffer = self.rx_buffers.physical() + (n * BUFFER) as u64;
        let descriptor = at(&self.rx_ring, n * DESCRIPTOR);
        // SAFETY: the descriptor lies in the ring this driver owns; the
        // chip reads it only after the tail moves past it.
        unsafe {
            (descriptor as *mut u64).write_volatile(buffer);
            (descriptor.add(8) as *mut u64).write_volatile(0);
        }
    }

    fn enable_interrupts(&self) {
        self.write(IMS, INTERRUPTS);
    }
}

impl nic::Device for E1000 {
    fn mac(&self) -> [u8; 6] {
        self.mac
    }

    fn take_interrupt(&mut self, received: &mut dyn FnMut(&[u8])) {
        // Reading the cause register clears it and lowers the line.
        let _ = self.read(ICR);
        loop {
            let n = self.rx_next;
            let descriptor = at(&self.rx_ring, n * DESCRIPTOR);
            // SAFETY: the descriptor is in the ring; the chip has written
            // it back once its done bit is set.
            let (length, status) = unsafe {
                (
                    (descriptor.add(8) as *const u16).read_volatile() as usize,
                    descriptor.add(12).read_volatile(),
                )
            };
            if status & DESCRIPTOR_DONE == 0 {
                break;
            }
            if status & END_OF_PACKET != 0 && length <= BUFFER {
                // SAFETY: the chip wrote `length` bytes to this buffer.
                let frame = unsafe {
                    core::slice::from_raw_parts(at(&self.rx_buffers, n * BUFFER), length)
                };
                received(frame);
            }
            self.set_rx_descriptor(n);
            // The descriptor goes back to the chip.
            self.write(RDT, n as u32);
            self.rx_next = (n + 1) % RX_COUNT;
        }
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        if frame.len() > BUFFER {
            return Err(Error::BadRequest);
        }
        let n = self.tx_next;
        let buffer = at(&self.tx_buffers, n * BUFFER);
        let descriptor = at(&self.tx_ring, n * DESCRIPTOR);
        // SAFETY: buffer and descriptor are this driver's; the chip has
        // finished with both (each send waits for its descriptor).
        unsafe {
            core::ptr::copy_nonoverlapping(frame.as_ptr(), buffer, frame.len());
            (descriptor as *mut u64)
                .write_volatile(self.tx_buffers.physical() + (n * BUFFER) as u64);
            (descriptor.add(8) as *mut u16).write_volatile(frame.len() as u16);
            descriptor.add(10).write_volatile(0);
            descriptor.add(11).write_volatile(TX_COMMAND);
            descriptor.add(12).write_volatile(0);
        }
        self.tx_next = (n + 1) % TX_COUNT;
        self.write(TDT, self.tx_next as u32);
        // QEMU sends on the tail write; the wait is short.
        let mut spins = 0;
        // SAFETY: the status byte of the descriptor just queued.
        while unsafe { descriptor.add(12).read_volatile() } & DESCRIPTOR_DONE == 0 {
            spins += 1;
            if spins > 100_000 {
                return Err(Error::DeviceFailed);
            }
            rt::sys::yield_now();
        }
        Ok(())
    }
}

fn main(arguments: &str) -> i32 {
    let Some(args) = DriverArgs::parse(arguments) else {
        println!("e1000: bad arguments {arguments:?}");
        return 2;
    };
    match run(&args) {
        Ok(()) => 0,
        Err(message) => {
            println!("e1000 {}: {message}", args.service);
            1
        }
    }
}

/// Maps `bytes` of the device resource passed `n`th.
fn map(args: &DriverArgs, n: usize, bytes: usize) -> Result<usize, abi::Error> {
    let registers = core::mem::ManuallyDrop::new(DeviceMemory::from_handle(initial_handle(
        args.resource_handle(n),
    )));
    let memory = registers.memory(0, bytes)?;
    Ok(memory.map(true)?.address)
}

fn run(args: &DriverArgs) -> Result<(), alloc::string::String> {
    use alloc::format;
    let devices = rt::process::devices().map_err(|e| format!("device list: {e}"))?;
    let info = |n: usize| devices.get(args.resources[n]).copied();
    let config = info(0).ok_or("no configuration space")?;
    let bar0 = (1..args.resources.len())
        .find(|&n| info(n).is_some_and(|d| d.pci_bar == 0))
        .ok_or("no BAR 0")?;
    let config_page = map(args, 0, 4096).map_err(|e| format!("configuration space: {e}"))?;
    // SAFETY: the function's configuration page is mapped there, uncached.
    unsafe {
        let command = (config_page + PCI_COMMAND) as *mut u32;
        command.write_volatile(command.read_volatile() | PCI_MEMORY_AND_MASTER);
    }
    let size = info(bar0).map_or(0, |d| d.size as usize);
    let registers = map(args, bar0, size).map_err(|e| format!("registers: {e}"))?;
    let registers = NonNull::new(registers as *mut u32).ok_or("registers at 0")?;
    let mut nic = E1000::new(registers).map_err(|e| format!("bring-up: {e}"))?;
    let notification = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let irq: Option<Irq> = match args.irq {
        true => Some(
            IrqControl::from_handle(initial_handle(driver::IRQ_CONTROL))
                .claim(config.irq, &notification, 1)
                .map_err(|e| format!("claim line {}: {e}", config.irq))?,
        ),
        false => None,
    };
    notification.bind().map_err(|e| format!("bind: {e}"))?;
    nic.enable_interrupts();
    let endpoint = Endpoint::create().map_err(|e| format!("endpoint: {e}"))?;
    let mut names = Names::from_handle(initial_handle(driver::NAMES))
        .map_err(|e| format!("name service: {e}"))?;
    names
        .register(&args.service, &endpoint)
        .map_err(|e| format!("register {}: {e}", args.service))?;
    drop(names);
    let mut buffer = IpcBuffer::register().map_err(|e| format!("buffer: {e}"))?;
    let mut server = nic::Server::default();
    let failed = endpoint.serve(|message| {
        server.respond(&mut nic, message, &mut buffer, || {
            if let Some(irq) = &irq {
                let _ = irq.acknowledge();
            }
        })
    });
    Err(format!("recv: {failed}"))
}
