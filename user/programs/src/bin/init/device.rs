//! User-level tests of devices left to drivers: a real device interrupt
//! reaches user space through an interrupt handler and a notification and
//! stays masked until acknowledged; device registers are mapped from a
//! device-memory capability; I/O ports are reached only through theirs;
//! a driver's death frees its line.
//!
//! The device that interrupts is the CMOS RTC's periodic interrupt on
//! x86_64 and the second SP804 on vexpress-a15: the kernel uses neither.

use crate::fail;
use crate::{Outcome, Test};
use abi::{DeviceInfo, Error, Handle};
use alloc::format;
use alloc::string::String;
use core::mem::ManuallyDrop;
use rt::device::{DeviceMemory, IoPorts, Irq, IrqControl};
use rt::ipc::{Endpoint, Memory, Notification};
use rt::process::{self, Exit};
use rt::sys;

pub const TESTS: &[Test] = &[
    Test {
        name: "device::an_interrupt_reaches_its_driver_and_stays_masked_until_acknowledged",
        run: an_interrupt_reaches_its_driver_and_stays_masked_until_acknowledged,
    },
    Test {
        name: "device::claims_are_checked",
        run: claims_are_checked,
    },
    Test {
        name: "device::device_memory_maps_the_registers_and_nothing_else",
        run: device_memory_maps_the_registers_and_nothing_else,
    },
    Test {
        name: "device::io_ports_are_reached_only_through_their_capability",
        run: io_ports_are_reached_only_through_their_capability,
    },
    Test {
        name: "device::a_dead_driver_frees_its_line",
        run: a_dead_driver_frees_its_line,
    },
    Test {
        name: "device::pci_bars_reach_their_functions",
        run: pci_bars_reach_their_functions,
    },
];

/// On q35 the PCI functions' BARs are listed with the function's ids and
/// class, and reach the function: the AHCI controller's (8086:2922, class
/// 01.06.01) BAR 5 answers with AHCI 1.x in its version register, and the
/// SMBus controller's (8086:2930, class 0c.05) I/O BAR 4 decodes. Other
/// machines list no PCI BARs.
fn pci_bars_reach_their_functions() -> Outcome {
    let system = process::system().map_err(fail("system"))?;
    let devices = process::devices().map_err(fail("devices"))?;
    let pci = |class: u32, bar: u32| {
        devices
            .iter()
            .enumerate()
            .find(|(_, d)| {
                d.pci_function != abi::NOT_PCI && d.pci_class == class && d.pci_bar == bar
            })
            .map(|(index, d)| (*d, abi::init_device_handle(index)))
    };
    if abi::name_str(&system.machine) != "q35" {
        ensure!(
            devices.iter().all(|d| d.pci_function == abi::NOT_PCI),
            "PCI BARs listed on {}",
            abi::name_str(&system.machine)
        );
        return Ok(());
    }
    let (ahci, handle) = pci(0x01_06_01, 5).ok_or("no AHCI BAR 5 listed")?;
    ensure_eq!(ahci.pci_ids, 0x2922_8086, "the AHCI controller's ids");
    ensure_eq!(ahci.pci_function, 0x1f << 3 | 2, "00:1f.2");
    ensure_eq!(abi::name_str(&ahci.name), "pci-storage", "its name");
    let registers = borrowed(DeviceMemory::from_handle, handle);
    let memory = registers.memory(0, 4096).map_err(fail("AHCI registers"))?;
    let mapping = memory.map(false).map_err(fail("map"))?;
    let offset = (ahci.base & 0xfff) as usize;
    // SAFETY: the page of the AHCI registers is mapped at `mapping`; the
    // version register is at 0x10.
    let version =
        unsafe { core::ptr::read_volatile((mapping.address + offset + 0x10) as *const u32) };
    ensure_eq!(version >> 16, 1, "AHCI major version");
    rt::ipc::memory_unmap(mapping.address).map_err(fail("unmap"))?;
    let (smbus, handle) = pci(0x0c_05_00, 4).ok_or("no SMBus BAR 4 listed")?;
    ensure_eq!(smbus.pci_ids, 0x2930_8086, "the SMBus controller's ids");
    ensure_eq!(
        smbus.device_kind(),
        Some(abi::DeviceKind::Ports),
        "an I/O BAR"
    );
    let ports = borrowed(IoPorts::from_handle, handle);
    // The host status register reads as something, not a bus's all ones.
    let status = ports
        .read8(smbus.base as u16)
        .map_err(fail("SMBus status"))?;
    ensure!(
        status != 0xff,
        "SMBus status {status:#x}: no function decodes"
    );
    Ok(())
}

/// One of init's own capabilities, used without giving it up.
fn borrowed<T>(make: fn(Handle) -> T, handle: Handle) -> ManuallyDrop<T> {
    ManuallyDrop::new(make(handle))
}

/// Init's interrupt control.
pub fn irq_control() -> ManuallyDrop<IrqControl> {
    borrowed(IrqControl::from_handle, abi::INIT_IRQ_CONTROL)
}

/// The device called `name` and init's capability to it.
fn device(name: &str) -> Result<Option<(DeviceInfo, Handle)>, String> {
    Ok(rt::device::find(name)
        .map_err(fail("devices"))?
        .map(|(index, info)| (info, abi::init_device_handle(index))))
}

/// A device that interrupts periodically, driven just enough to test and
/// measure interrupt delivery.
pub enum Ticker {
    /// The CMOS RTC: index and data ports.
    Rtc(ManuallyDrop<IoPorts>),
    /// An SP804's first timer, its registers (the memory object) mapped
    /// at `address`.
    Sp804 { _registers: Memory, address: usize },
}

const RTC_INDEX: u16 = 0x70;
const RTC_DATA: u16 = 0x71;
const RTC_A: u8 = 0x0a;
const RTC_B: u8 = 0x0b;
const RTC_C: u8 = 0x0c;
const RTC_D: u8 = 0x0d;
/// Register B: periodic interrupt enable.
const RTC_PERIODIC: u8 = 1 << 6;

const SP804_LOAD: usize = 0x00;
const SP804_CONTROL: usize = 0x08;
const SP804_CLEAR: usize = 0x0c;
/// Control: enabled, periodic, interrupting, 32-bit.
const SP804_RUN: u32 = (1 << 7) | (1 << 6) | (1 << 5) | (1 << 1);

impl Ticker {
    /// The machine's ticker and its interrupt line.
    pub fn find() -> Result<(Ticker, u32), String> {
        if let Some((info, handle)) = device("cmos-rtc")? {
            let ports = borrowed(IoPorts::from_handle, handle);
            return Ok((Ticker::Rtc(ports), info.irq));
        }
        if let Some((info, handle)) = device("sp804")? {
            let registers = borrowed(DeviceMemory::from_handle, handle);
            let memory = registers.memory(0, 4096).map_err(fail("SP804 memory"))?;
            let mapping = memory.map(true).map_err(fail("SP804 map"))?;
            return Ok((
                Ticker::Sp804 {
                    _registers: memory,
                    address: mapping.address,
                },
                info.irq,
            ));
        }
        Err("no device that interrupts periodically (cmos-rtc or sp804) is listed".into())
    }

    fn rtc(ports: &IoPorts, register: u8) -> Result<u8, String> {
        ports
            .write8(RTC_INDEX, register)
            .map_err(fail("RTC index"))?;
        ports.read8(RTC_DATA).map_err(fail("RTC data"))
    }

    fn set_rtc(ports: &IoPorts, register: u8, value: u8) -> Result<(), String> {
        ports
            .write8(RTC_INDEX, register)
            .map_err(fail("RTC index"))?;
        ports.write8(RTC_DATA, value).map_err(fail("RTC data"))
    }

    fn sp804(address: usize, offset: usize, value: u32) {
        // SAFETY: the SP804's registers are mapped at `address` for as
        // long as the ticker lives; these offsets are within its page.
        unsafe { core::ptr::write_volatile((address + offset) as *mut u32, value) };
    }

    /// Starts interrupts every `period_us` microseconds (the RTC rounds to
    /// a power of two: 122 or 976).
    pub fn start(&self, period_us: u32) -> Result<(), String> {
        match self {
            Ticker::Rtc(ports) => {
                let rate = if period_us < 500 { 3 } else { 6 };
                let a = Self::rtc(ports, RTC_A)?;
                Self::set_rtc(ports, RTC_A, (a & 0xf0) | rate)?;
                let b = Self::rtc(ports, RTC_B)?;
                Self::set_rtc(ports, RTC_B, b | RTC_PERIODIC)?;
                self.clear()
            }
            Ticker::Sp804 { address, .. } => {
                Self::sp804(*address, SP804_CONTROL, 0);
                Self::sp804(*address, SP804_LOAD, period_us);
                Self::sp804(*address, SP804_CLEAR, 1);
                Self::sp804(*address, SP804_CONTROL, SP804_RUN);
                Ok(())
            }
        }
    }

    /// Quiets the interrupt at the device (the line goes low).
    pub fn clear(&self) -> Result<(), String> {
        match self {
            Ticker::Rtc(ports) => Self::rtc(ports, RTC_C).map(|_| ()),
            Ticker::Sp804 { address, .. } => {
                Self::sp804(*address, SP804_CLEAR, 1);
                Ok(())
            }
        }
    }

    pub fn stop(&self) -> Result<(), String> {
        match self {
            Ticker::Rtc(ports) => {
                let b = Self::rtc(ports, RTC_B)?;
                Self::set_rtc(ports, RTC_B, b & !RTC_PERIODIC)?;
            }
            Ticker::Sp804 { address, .. } => Self::sp804(*address, SP804_CONTROL, 0),
        }
        self.clear()
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        let _ = self.stop();
        if let Ticker::Sp804 { address, .. } = self {
            let _ = rt::ipc::memory_unmap(*address);
        }
    }
}

/// What a process holding every kind of object needs from init: the
/// ticker's interrupt line and init's capability to a device's registers.
pub fn hoard_resources() -> Result<(u32, Handle), String> {
    let (_, irq) = Ticker::find()?;
    let (_, registers, _) = known_registers()?;
    Ok((irq, registers))
}

/// A capability to a new endpoint, for a wrapper of another kind to own:
/// the kernel must refuse it for what that kind does.
fn endpoint_capability() -> Result<Handle, String> {
    Ok(Endpoint::create().map_err(fail("endpoint"))?.into_handle())
}

/// Times interrupt `irq` has arrived.
fn arrivals(irq: u32) -> Result<u64, String> {
    Ok(process::interrupts()
        .map_err(fail("interrupts"))?
        .iter()
        .find(|info| info.irq == irq)
        .map_or(0, |info| info.count))
}

/// The bits `notification` gets within about a second, 0 if none.
fn bits_within_a_second(notification: &Notification) -> Result<usize, String> {
    for _ in 0..1000 {
        let bits = notification.poll().map_err(fail("poll"))?;
        if bits != 0 {
            return Ok(bits);
        }
        sys::sleep_ns(1_000_000);
    }
    Ok(0)
}

/// The listing's record for line `irq`.
fn record_of(irq: u32) -> Result<DeviceInfo, String> {
    process::devices()
        .map_err(fail("devices"))?
        .into_iter()
        .find(|device| device.irq == irq)
        .ok_or_else(|| format!("line {irq} left the listing"))
}

const BIT: usize = 1 << 5;

fn an_interrupt_reaches_its_driver_and_stays_masked_until_acknowledged() -> Outcome {
    let (ticker, irq) = Ticker::find()?;
    ensure!(irq != abi::NO_IRQ, "the ticker has no interrupt line");
    let notification = Notification::create().map_err(fail("notification"))?;
    let handler = irq_control()
        .claim(irq, &notification, BIT)
        .map_err(fail("claim"))?;
    let record = record_of(irq)?;
    ensure_eq!(record.irq_owner, sys::process_id(), "owner listed");
    ensure_eq!(
        record.flags & abi::DEVICE_IRQ_MASKED,
        0,
        "unmasked once claimed"
    );
    let before = arrivals(irq)?;
    ticker.start(1000)?;
    ensure_eq!(
        bits_within_a_second(&notification)?,
        BIT,
        "first interrupt's bits"
    );
    // Not acknowledged: however often the device asks, no more arrive.
    let first = arrivals(irq)?;
    ensure_eq!(first, before + 1, "arrivals after the first interrupt");
    ensure!(
        record_of(irq)?.flags & abi::DEVICE_IRQ_MASKED != 0,
        "masked after it fired"
    );
    sys::sleep_ns(20_000_000);
    ensure_eq!(
        notification.poll().map_err(fail("poll"))?,
        0,
        "bits while masked"
    );
    ensure_eq!(arrivals(irq)?, first, "arrivals while masked");
    // Dealt with and acknowledged: the next one comes.
    ticker.clear()?;
    handler.acknowledge().map_err(fail("acknowledge"))?;
    ensure_eq!(
        bits_within_a_second(&notification)?,
        BIT,
        "bits after the acknowledgement"
    );
    ensure!(
        arrivals(irq)? > first,
        "no arrival after the acknowledgement"
    );
    ticker.stop()?;
    drop(handler);
    let record = record_of(irq)?;
    ensure_eq!(record.irq_owner, 0, "owner after the handler went");
    ensure!(
        record.flags & abi::DEVICE_IRQ_MASKED != 0,
        "masked once freed"
    );
    Ok(())
}

fn claims_are_checked() -> Outcome {
    let (_ticker, irq) = Ticker::find()?;
    let notification = Notification::create().map_err(fail("notification"))?;
    let control = irq_control();
    let handler = control
        .claim(irq, &notification, BIT)
        .map_err(fail("claim"))?;
    ensure_eq!(
        control.claim(irq, &notification, BIT).err(),
        Some(Error::Busy),
        "a second claim"
    );
    // Lines the kernel keeps (the tick is the busiest) are not listed.
    let tick = process::interrupts()
        .map_err(fail("interrupts"))?
        .into_iter()
        .max_by_key(|info| info.count)
        .ok_or("no interrupt has arrived")?;
    ensure_eq!(
        control.claim(tick.irq, &notification, BIT).err(),
        Some(Error::NotFound),
        "the kernel's busiest line"
    );
    ensure_eq!(
        control.claim(9999, &notification, BIT).err(),
        Some(Error::NotFound),
        "a line that does not exist"
    );
    drop(handler);
    // A control bound to the line claims it and no other.
    let bound = control
        .copy(
            abi::RIGHT_CLAIM | abi::RIGHT_GRANT,
            abi::irq_control_badge(irq as usize),
        )
        .map_err(fail("bind the control"))?;
    ensure_eq!(
        bound.claim(irq + 1, &notification, BIT).err(),
        Some(Error::PermissionDenied),
        "a bound control claiming another line"
    );
    ensure_eq!(
        bound
            .copy(abi::RIGHT_CLAIM, abi::irq_control_badge(0))
            .err(),
        Some(Error::InvalidArgument),
        "binding a bound control again"
    );
    drop(
        bound
            .claim(irq, &notification, BIT)
            .map_err(fail("claim through the bound control"))?,
    );
    drop(bound);
    let weak = ManuallyDrop::into_inner(
        control
            .copy(abi::RIGHT_GRANT, 0)
            .map(ManuallyDrop::new)
            .map_err(fail("copy"))?,
    );
    ensure_eq!(
        weak.claim(irq, &notification, BIT).err(),
        Some(Error::MissingRight),
        "interrupt control without the claim right"
    );
    let mute = notification
        .copy(abi::RIGHT_WAIT, 0)
        .map_err(fail("copy notification"))?;
    ensure_eq!(
        control.claim(irq, &mute, BIT).err(),
        Some(Error::MissingRight),
        "a notification without the signal right"
    );
    let impostor = IrqControl::from_handle(endpoint_capability()?);
    ensure_eq!(
        impostor.claim(irq, &notification, BIT).err(),
        Some(Error::WrongType),
        "an endpoint as interrupt control"
    );
    ensure_eq!(
        control.claim(irq, &notification, 0).err(),
        Some(Error::InvalidArgument),
        "no bits"
    );
    let not_a_handler = Irq::from_handle(
        notification
            .copy(abi::NOTIFICATION_RIGHTS, 0)
            .map_err(fail("copy"))?
            .into_handle(),
    );
    ensure_eq!(
        not_a_handler.acknowledge().err(),
        Some(Error::WrongType),
        "acknowledging a notification"
    );
    // Freed with its capability: claimable again.
    let again = control
        .claim(irq, &notification, BIT)
        .map_err(fail("claim again"))?;
    drop(again);
    Ok(())
}

/// Checks the registers of a device mapped at the address.
type RegisterCheck = fn(usize) -> Outcome;

/// A memory device of this machine, and what its registers must read.
fn known_registers() -> Result<(DeviceInfo, Handle, RegisterCheck), String> {
    fn read(address: usize) -> u32 {
        // SAFETY: the caller maps the device's page at `address`; the
        // offsets read lie within it.
        unsafe { core::ptr::read_volatile(address as *const u32) }
    }
    fn sp804(page: usize) -> Outcome {
        // The PrimeCell and peripheral identification registers.
        let id: [u32; 4] = core::array::from_fn(|n| read(page + 0xff0 + 4 * n) & 0xff);
        ensure_eq!(id, [0x0d, 0xf0, 0x05, 0xb1], "PrimeCell id");
        ensure_eq!(read(page + 0xfe0) & 0xff, 0x04, "SP804 part number");
        Ok(())
    }
    fn virtio(page: usize) -> Outcome {
        ensure_eq!(read(page), 0x7472_6976, "VirtIO magic");
        ensure!(
            matches!(read(page + 4), 1 | 2),
            "VirtIO version {}",
            read(page + 4)
        );
        Ok(())
    }
    fn hpet(page: usize) -> Outcome {
        let capabilities = read(page);
        ensure_eq!(capabilities >> 16, 0x8086, "HPET vendor");
        ensure!(read(page + 4) != 0, "HPET period");
        Ok(())
    }
    let checks: [(&str, RegisterCheck); 3] =
        [("sp804", sp804), ("virtio-mmio", virtio), ("hpet", hpet)];
    for (name, check) in checks {
        if let Some((info, handle)) = device(name)? {
            return Ok((info, handle, check));
        }
    }
    Err("no memory-mapped device with known registers is listed".into())
}

fn device_memory_maps_the_registers_and_nothing_else() -> Outcome {
    let memory_info = || process::memory().map_err(fail("memory"));
    let (info, handle, check) = known_registers()?;
    let registers = borrowed(DeviceMemory::from_handle, handle);
    ensure_eq!(
        rt::ipc::cap_info(handle).map_err(fail("cap_info"))?.kind,
        Some(abi::ObjectKind::DeviceMemory),
        "init's capability"
    );
    let warm = registers.memory(0, 4096).map_err(fail("warm-up"))?;
    drop(warm);
    let before = memory_info()?;
    let memory = registers.memory(0, 1).map_err(fail("device memory"))?;
    let page = info.base & !0xfff;
    ensure_eq!(
        memory.physical().map_err(fail("physical"))?,
        page,
        "where it is"
    );
    let mapping = memory.map(true).map_err(fail("map"))?;
    let offset = (info.base - page) as usize;
    check(mapping.address + offset)?;
    // The page holds the registers and no more: nothing beyond the range.
    ensure_eq!(
        registers.memory(4096, 1).err(),
        Some(Error::InvalidArgument),
        "a page beyond the range"
    );
    ensure_eq!(
        registers.memory(0, 8192).err(),
        Some(Error::InvalidArgument),
        "more than the range"
    );
    ensure_eq!(
        registers.memory(0x800, 1).err(),
        Some(Error::InvalidArgument),
        "a misaligned offset"
    );
    let impostor = DeviceMemory::from_handle(endpoint_capability()?);
    ensure_eq!(
        impostor.memory(0, 1).err(),
        Some(Error::WrongType),
        "an endpoint as device memory"
    );
    let weak = registers.copy(abi::RIGHT_GRANT, 0).map_err(fail("copy"))?;
    ensure_eq!(
        weak.memory(0, 1).err(),
        Some(Error::MissingRight),
        "device memory without the claim right"
    );
    drop((weak, impostor));
    rt::ipc::memory_unmap(mapping.address).map_err(fail("unmap"))?;
    drop(memory);
    let after = memory_info()?;
    ensure_eq!(after.free_frames, before.free_frames, "free frames");
    ensure_eq!(after.heap_used, before.heap_used, "kernel heap in use");
    Ok(())
}

fn io_ports_are_reached_only_through_their_capability() -> Outcome {
    let Some((info, handle)) = device("cmos-rtc")? else {
        // Machines without I/O ports list no port devices, and a memory
        // device's capability reaches no ports.
        let (_, handle, _) = known_registers()?;
        let impostor = borrowed(IoPorts::from_handle, handle);
        ensure_eq!(
            impostor.read8(0x70).err(),
            Some(Error::WrongType),
            "device memory as ports"
        );
        let ports = process::devices().map_err(fail("devices"))?;
        ensure!(
            ports
                .iter()
                .all(|d| d.device_kind() == Some(abi::DeviceKind::Memory)),
            "a port device on a machine without ports"
        );
        return Ok(());
    };
    ensure_eq!(info.device_kind(), Some(abi::DeviceKind::Ports), "kind");
    ensure_eq!((info.base, info.size), (0x70, 2), "ports");
    let ports = borrowed(IoPorts::from_handle, handle);
    // Register D's top bit: the clock's battery is good.
    ensure_eq!(Ticker::rtc(&ports, RTC_D)? & 0x80, 0x80, "RTC register D");
    for (port, width) in [
        (0x72u16, 1usize),
        (0x6f, 1),
        (0x71, 2),
        (0x70, 4),
        (0x3f8, 1),
    ] {
        ensure_eq!(
            ports.read(port, width).err(),
            Some(Error::InvalidArgument),
            format!("port {port:#x} width {width}")
        );
    }
    ensure_eq!(
        ports.read(0x70, 3).err(),
        Some(Error::InvalidArgument),
        "width 3"
    );
    let weak = ports.copy(abi::RIGHT_GRANT, 0).map_err(fail("copy"))?;
    ensure_eq!(
        weak.read8(0x71).err(),
        Some(Error::MissingRight),
        "ports without the port right"
    );
    Ok(())
}

fn a_dead_driver_frees_its_line() -> Outcome {
    let (_ticker, irq) = Ticker::find()?;
    let driver = process::start(
        "probe",
        &format!("irq-hold {irq}"),
        &[abi::INIT_IRQ_CONTROL],
    )
    .map_err(fail("start the driver"))?;
    let mut owner = 0;
    for _ in 0..1000 {
        owner = record_of(irq)?.irq_owner;
        if owner != 0 {
            break;
        }
        sys::sleep_ns(1_000_000);
    }
    ensure_eq!(owner, driver.pid, "the driver holds the line");
    let notification = Notification::create().map_err(fail("notification"))?;
    ensure_eq!(
        irq_control().claim(irq, &notification, BIT).err(),
        Some(Error::Busy),
        "claimed while the driver lives"
    );
    driver.kill().map_err(fail("kill"))?;
    ensure_eq!(
        driver.wait().map_err(fail("wait"))?,
        Exit::Killed,
        "the driver's end"
    );
    ensure_eq!(record_of(irq)?.irq_owner, 0, "owner after the driver died");
    let handler = irq_control()
        .claim(irq, &notification, BIT)
        .map_err(fail("claim after the driver died"))?;
    drop(handler);
    Ok(())
}
