//! The VirtIO driver: one process per device, started by init with the
//! device's resources (see `protocols::driver`). It finds the transport
//! (MMIO registers, or a PCI function's configuration space and BARs),
//! brings the device up with `virtio-drivers`, registers its service
//! under the name init chose, and serves it: `rng` (`protocols::rng`),
//! `blk` (`protocols::block`) or `net` (`protocols::net`).

#![no_std]
#![no_main]

extern crate alloc;

mod block;
mod dma;
mod net;
mod pci;
mod rng;

use abi::{DeviceInfo, initial_handle};
use core::ptr::NonNull;
use protocols::driver::{self, DriverArgs};
use rt::device::{DeviceMemory, Irq, IrqControl};
use rt::ipc::{Endpoint, Message, Notification};
use rt::names::Names;
use rt::println;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::pci::PciTransport;
use virtio_drivers::transport::pci::bus::{Command, PciRoot};
use virtio_drivers::transport::{DeviceType, SomeTransport, Transport};

rt::entry!(main);

/// The notification bit the device's line sets.
const IRQ_BIT: usize = 1;

/// How the driver learns that the device has done something.
pub struct Interrupts {
    notification: Notification,
    irq: Option<Irq>,
}

impl Interrupts {
    /// Waits for the device's next interrupt (without a line, lets others
    /// run once: the caller polls). The caller then clears the device's
    /// interrupt status and calls [`Interrupts::rearm`], in that order, so
    /// a level-triggered line does not fire again at once.
    pub fn wait(&self) {
        match &self.irq {
            Some(_) => {
                let _ = self.notification.wait();
            }
            None => rt::sys::yield_now(),
        }
    }

    /// Binds the notification to the calling thread, so its `recv` ends
    /// on an interrupt too (with the label `NOTIFIED`).
    pub fn bind(&self) -> Result<(), abi::Error> {
        self.notification.bind()
    }

    /// Unmasks the line after an interrupt.
    pub fn rearm(&self) {
        if let Some(irq) = &self.irq {
            let _ = irq.acknowledge();
        }
    }
}

/// What the driver serves on.
pub struct Service {
    pub endpoint: Endpoint,
    pub interrupts: Interrupts,
}

impl Service {
    /// Answers requests with `answer` until the endpoint fails
    /// ([`Endpoint::serve`]).
    pub fn serve(&self, answer: impl FnMut(&Message) -> Message) -> Result<(), abi::Error> {
        Err(self.endpoint.serve(answer))
    }
}

fn main(arguments: &str) -> i32 {
    let Some(args) = DriverArgs::parse(arguments) else {
        println!("virtio: bad arguments {arguments:?}");
        return 2;
    };
    match run(&args) {
        Ok(()) => 0,
        Err(message) => {
            println!("virtio {}: {message}", args.service);
            1
        }
    }
}

fn run(args: &DriverArgs) -> Result<(), alloc::string::String> {
    use alloc::format;
    let devices = rt::process::devices().map_err(|e| format!("device list: {e}"))?;
    let resource = |n: usize| -> Result<DeviceInfo, alloc::string::String> {
        devices
            .get(args.resources[n])
            .copied()
            .ok_or_else(|| format!("no device {}", args.resources[n]))
    };
    for n in 0..args.resources.len() {
        let info = resource(n)?;
        let handle = initial_handle(args.resource_handle(n));
        dma::add_registers(info.base, info.size, DeviceMemory::from_handle(handle));
    }
    let first = resource(0)?;
    let transport: SomeTransport<'static> = if first.pci_bar == abi::PCI_CONFIG {
        let page = dma::registers(first.base, 4096).ok_or("the configuration page")?;
        let config = pci::Config::new(page, first.pci_function, &devices);
        let function = config.function();
        let mut root = PciRoot::new(config);
        root.set_command(
            function,
            Command::MEMORY_SPACE | Command::IO_SPACE | Command::BUS_MASTER,
        );
        PciTransport::new::<dma::DmaHal, _>(&mut root, function)
            .map_err(|e| format!("PCI transport: {e}"))?
            .into()
    } else {
        let header: NonNull<VirtIOHeader> = dma::registers(first.base, first.size as usize)
            .ok_or("the registers")?
            .cast();
        // SAFETY: the transport's registers are mapped there, uncached,
        // for the driver's life, and nothing else in it touches them.
        unsafe { MmioTransport::new(header, first.size as usize) }
            .map_err(|e| format!("MMIO transport: {e}"))?
            .into()
    };
    let notification = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let irq = match args.irq {
        true => {
            let control = IrqControl::from_handle(initial_handle(driver::IRQ_CONTROL));
            let line = control
                .claim(first.irq, &notification, IRQ_BIT)
                .map_err(|e| format!("claim line {}: {e}", first.irq))?;
            Some(line)
        }
        false => None,
    };
    let interrupts = Interrupts { notification, irq };
    let endpoint = Endpoint::create().map_err(|e| format!("endpoint: {e}"))?;
    let service = Service {
        endpoint,
        interrupts,
    };
    // Each device is brought up before the service is registered, so a
    // client that finds the name finds a working server.
    let device_type = transport.device_type();
    let failed = |e: virtio_drivers::Error| format!("{device_type:?} device: {e}");
    let served = match device_type {
        DeviceType::EntropySource => {
            let server = rng::Server::new(transport).map_err(failed)?;
            register(args, &service)?;
            server.serve(&service)
        }
        DeviceType::Block => {
            let server = block::Server::new(transport).map_err(failed)?;
            register(args, &service)?;
            server.serve(&service)
        }
        DeviceType::Network => {
            let server = net::Nic::new(transport).map_err(failed)?;
            register(args, &service)?;
            server.serve(&service)
        }
        other => return Err(format!("no driver for a {other:?} device")),
    };
    served.map_err(|e| format!("serving: {e}"))
}

/// Registers the service under the name init chose.
fn register(args: &DriverArgs, service: &Service) -> Result<(), alloc::string::String> {
    let mut names = Names::from_handle(initial_handle(driver::NAMES))
        .map_err(|e| alloc::format!("name service: {e}"))?;
    names
        .register(&args.service, &service.endpoint)
        .map_err(|e| alloc::format!("register {}: {e}", args.service))
}
