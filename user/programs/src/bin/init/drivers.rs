//! Init as bus manager: it finds the devices that have drivers among those
//! the kernel lists and starts one driver process per device, with only
//! that device's capabilities (`protocols::driver` says which, in what
//! order) and a quota of its own.
//!
//! VirtIO-MMIO transports are told apart by reading their magic and
//! device-id registers (an empty transport has device id 0); VirtIO-PCI
//! functions by their ids, which the kernel lists.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use protocols::driver::{DriverArgs, MAX_RESOURCES};
use protocols::virtio::{self, Kind};
use rt::device::{DeviceMemory, IrqControl};
use rt::process::Child;
use rt::quota::Quota;
use spin::Mutex;

/// Pages the quota of a driver (or a network stack) holds: its image,
/// stack, heap, queues and bounce buffers.
const DRIVER_PAGES: usize = 512;

/// A driver init started (and the supervisor keeps running).
struct Driver {
    service: String,
    device: Found,
}

static DRIVERS: Mutex<Vec<Driver>> = Mutex::new(Vec::new());

/// What a driver drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Driven {
    Virtio(Kind),
    /// The serial console's UART.
    Console,
    /// An Intel 82540EM network controller.
    E1000,
}

/// The E1000's PCI ids.
const E1000_IDS: u32 = 0x100e_8086;

impl Driven {
    /// The service name of the first device of the kind.
    fn service(self) -> &'static str {
        match self {
            Driven::Virtio(kind) => kind.service(),
            Driven::Console => protocols::console::OUTPUT,
            Driven::E1000 => Kind::Network.service(),
        }
    }

    /// Whether its driver serves the net protocol.
    fn is_nic(self) -> bool {
        matches!(self, Driven::Virtio(Kind::Network) | Driven::E1000)
    }

    fn program(self) -> &'static str {
        match self {
            Driven::Virtio(_) => "virtio",
            Driven::Console => "console",
            Driven::E1000 => "e1000",
        }
    }
}

/// What was found and needs a driver: its kind and its resources.
#[derive(Clone)]
struct Found {
    kind: Driven,
    /// How it is reached, for the boot log: `virtio-mmio v2 at 0x...`.
    place: String,
    resources: Vec<usize>,
    irq: Option<u32>,
}

/// Starts a driver for every device that has one; reports (and skips)
/// what cannot be started.
pub fn start() {
    let devices = match rt::process::devices() {
        Ok(devices) => devices,
        Err(e) => {
            rt::println!("init: no device list: {e}");
            return;
        }
    };
    for found in find(&devices) {
        let service = service_name(found.kind);
        let (device, name) = (found.clone(), service.clone());
        let start = alloc::boxed::Box::new(move || start_one(&device, &name));
        match crate::supervisor::supervise(&service, start) {
            Ok(pid) => {
                rt::println!("init: {service} driver (process {pid}) on {}", found.place);
                DRIVERS.lock().push(Driver {
                    service,
                    device: found,
                })
            }
            Err(e) => rt::println!("init: cannot start the {service} driver: {e}"),
        }
    }
}

/// Waits until every driver started has registered its service (a
/// driver registers once its device is up), so the shell and the tests
/// find them; reports each that does not.
pub fn wait_until_up() {
    let services: Vec<String> = DRIVERS.lock().iter().map(|d| d.service.clone()).collect();
    for name in services {
        if let Err(e) = service(&name) {
            rt::println!("init: {e}");
        }
    }
}

/// The port the network stacks echo UDP on, unless `net.echo=` says.
const ECHO_PORT: &str = "7";

/// Starts a network stack over each NIC driver's service, with the
/// address the options give it (`net.ip=10.0.2.15/24` for `net`,
/// `net1.ip=` for `net1`, ...); a NIC without one gets no stack.
pub fn start_stacks() {
    let nics: Vec<String> = DRIVERS
        .lock()
        .iter()
        .filter(|d| d.device.kind.is_nic())
        .map(|d| d.service.clone())
        .collect();
    for nic in nics {
        let Some(ip) = crate::option(&format!("{nic}.ip")) else {
            rt::println!("init: no {nic}.ip option: {nic} gets no network stack");
            continue;
        };
        let echo = crate::option(&format!("{nic}.echo")).unwrap_or(ECHO_PORT);
        let arguments = format!("nic={nic} ip={ip} echo={echo}");
        let name = format!("{nic}-stack");
        let after = nic.clone();
        let start = alloc::boxed::Box::new(move || start_stack(&nic, &arguments));
        if let Err(e) = crate::supervisor::supervise_after(&name, Some(&after), start) {
            rt::println!("init: cannot start {name}: {e}");
        }
    }
}

/// Starts a network stack on `nic` with `arguments`, and waits (up to
/// 2 s) until it says it is up.
fn start_stack(nic: &str, arguments: &str) -> Result<Child, String> {
    let ready = rt::ipc::Notification::create().map_err(crate::fail("notification"))?;
    let child = start_service("netstack", arguments, rt::names::CLIENT, &[ready.handle()])?;
    // Up once it signals; a stack that fails exits instead.
    let _ = rt::ipc::set_timeout(Some(core::time::Duration::from_secs(2)));
    if ready.wait().is_err() {
        rt::println!("init: the network stack on {nic} did not come up");
    }
    let _ = rt::ipc::set_timeout(None);
    Ok(child)
}

/// The drivers, as (service, pid, resources).
pub fn running() -> Vec<(String, u32, Vec<usize>)> {
    let pids = crate::supervisor::pids();
    DRIVERS
        .lock()
        .iter()
        .map(|d| {
            let pid = pids
                .iter()
                .find(|(name, _)| *name == d.service)
                .map_or(0, |&(_, pid)| pid);
            (d.service.clone(), pid, d.device.resources.clone())
        })
        .collect()
}

/// The first free service name for a kind: `blk`, then `blk1`, ...
fn service_name(kind: Driven) -> String {
    let drivers = DRIVERS.lock();
    let taken = drivers
        .iter()
        .filter(|d| d.device.kind.service() == kind.service())
        .count();
    match taken {
        0 => kind.service().into(),
        n => format!("{}{n}", kind.service()),
    }
}

fn find(devices: &[abi::DeviceInfo]) -> Vec<Found> {
    let mut found = Vec::new();
    for (index, device) in devices.iter().enumerate() {
        let irq = (device.irq != abi::NO_IRQ).then_some(device.irq);
        let name = abi::name_str(&device.name);
        if matches!(name, "uart16550" | "pl011") {
            found.push(Found {
                kind: Driven::Console,
                place: format!("{name} at {:#x}", device.base),
                resources: alloc::vec![index],
                irq,
            });
        } else if name == "virtio-mmio" {
            if let Some((kind, version)) = probe_mmio(index, device) {
                found.push(Found {
                    kind: Driven::Virtio(kind),
                    place: format!("virtio-mmio v{version} at {:#x}", device.base),
                    resources: alloc::vec![index],
                    irq,
                });
            }
        } else if device.pci_function != abi::NOT_PCI && device.pci_bar == abi::PCI_CONFIG {
            let ids = device.pci_ids;
            let kind = match Kind::from_pci(ids as u16, (ids >> 16) as u16) {
                Some(kind) => Driven::Virtio(kind),
                None if ids == E1000_IDS => Driven::E1000,
                None => continue,
            };
            // The configuration space first, then the function's BARs.
            let mut resources = alloc::vec![index];
            resources.extend(
                devices
                    .iter()
                    .enumerate()
                    .filter(|(_, d)| {
                        d.pci_function == device.pci_function && d.pci_bar != abi::PCI_CONFIG
                    })
                    .map(|(i, _)| i),
            );
            if resources.len() > MAX_RESOURCES {
                rt::println!(
                    "init: PCI function {:#x} has more BARs than a driver is given",
                    device.pci_function
                );
                resources.truncate(MAX_RESOURCES);
            }
            let function = device.pci_function;
            found.push(Found {
                kind,
                place: format!(
                    "{} {:02x}:{:02x}.{}",
                    kind.program(),
                    function >> 8,
                    function >> 3 & 0x1f,
                    function & 7
                ),
                resources,
                irq,
            });
        }
    }
    found
}

/// The kind of device on the VirtIO-MMIO transport listed at `index`, if
/// one is there and has a driver, and the transport's version.
fn probe_mmio(index: usize, device: &abi::DeviceInfo) -> Option<(Kind, u32)> {
    let registers = ManuallyDrop::new(DeviceMemory::from_handle(abi::init_device_handle(index)));
    let memory = registers.memory(0, 4096).ok()?;
    let mapping = memory.map(false).ok()?;
    let base = mapping.address + (device.base & 0xfff) as usize;
    let read = |offset: usize| {
        // SAFETY: the transport's page is mapped at `mapping`, uncached,
        // read-only; its registers are within the 0x200 from `base`.
        unsafe { core::ptr::read_volatile((base + offset) as *const u32) }
    };
    let (magic, version, id) = (
        read(virtio::MMIO_MAGIC_OFFSET),
        read(virtio::MMIO_VERSION_OFFSET),
        read(virtio::MMIO_DEVICE_ID_OFFSET),
    );
    let _ = rt::ipc::memory_unmap(mapping.address);
    let kind = (magic == virtio::MMIO_MAGIC)
        .then(|| Kind::from_device_id(id))
        .flatten()?;
    Some((kind, version))
}

fn start_one(found: &Found, service: &str) -> Result<Child, String> {
    start_as(found, service, found.kind.program(), "")
}

/// Starts `program` with what a driver of `found` gets, its arguments
/// after `prefix`.
fn start_as(found: &Found, service: &str, program: &str, prefix: &str) -> Result<Child, String> {
    let mut handles = Vec::new();
    // The control bound to the device's line: the driver claims it.
    let control = match found.irq {
        Some(irq) => {
            let control = ManuallyDrop::new(IrqControl::from_handle(abi::INIT_IRQ_CONTROL));
            let bound = control
                .copy(
                    abi::RIGHT_CLAIM | abi::RIGHT_GRANT,
                    abi::irq_control_badge(irq as usize),
                )
                .map_err(|e| format!("interrupt control: {e}"))?;
            handles.push(bound.handle());
            Some(bound)
        }
        None => None,
    };
    handles.extend(found.resources.iter().map(|&i| abi::init_device_handle(i)));
    let args = DriverArgs {
        service: service.into(),
        irq: control.is_some(),
        resources: found.resources.clone(),
    };
    let arguments = format!("{prefix}{args}");
    start_service(program, &arguments, rt::names::REGISTRAR, &handles)
}

/// Starts `program` with `arguments` on a quota of its own (split from
/// init's), a capability to the name service badged `names_badge`, then
/// `handles`.
fn start_service(
    program: &str,
    arguments: &str,
    names_badge: usize,
    handles: &[abi::Handle],
) -> Result<Child, String> {
    let init_quota = ManuallyDrop::new(Quota::from_handle(abi::INIT_QUOTA));
    let quota = init_quota
        .split(DRIVER_PAGES)
        .map_err(|e| format!("quota: {e}"))?;
    let names = crate::names::capability(names_badge).map_err(|e| format!("name service: {e}"))?;
    let mut all = alloc::vec![names];
    all.extend_from_slice(handles);
    let started = quota.start(program, arguments, &all);
    let _ = rt::ipc::cap_delete(names);
    started.map_err(|e| format!("spawn: {e}"))
}

pub const TESTS: &[crate::Test] = &[
    crate::Test {
        name: "drivers::every_device_has_a_driver_holding_its_line",
        run: every_device_has_a_driver_holding_its_line,
    },
    crate::Test {
        name: "drivers::rng_bytes_differ_between_calls",
        run: rng_bytes_differ_between_calls,
    },
    crate::Test {
        name: "drivers::block_writes_read_back",
        run: block_writes_read_back,
    },
    crate::Test {
        name: "drivers::bad_block_requests_get_their_errors",
        run: bad_block_requests_get_their_errors,
    },
    crate::Test {
        name: "drivers::a_driver_holds_only_its_devices_capabilities",
        run: a_driver_holds_only_its_devices_capabilities,
    },
    crate::Test {
        name: "drivers::a_dead_block_driver_fails_its_clients_and_a_new_one_serves",
        run: a_dead_block_driver_fails_its_clients_and_a_new_one_serves,
    },
];

/// The server registered under `service`, waiting for its driver to
/// come up and register (drivers start with init, tests right after; a
/// restarted one registers over its dead predecessor).
pub fn service(service: &str) -> Result<rt::ipc::Endpoint, String> {
    use rt::names::{CLIENT, Names};
    let capability = crate::names::capability(CLIENT).map_err(crate::fail("names"))?;
    let mut names = Names::from_handle(capability).map_err(crate::fail("names"))?;
    names
        .lookup_alive(service, 2_000_000_000)
        .map_err(|last| format!("no {service} service after 2 s: {last}"))
}

/// Every device found (the VirtIO ones and the console's UART) has a
/// driver of its kind running, which holds the device's line; one of them
/// is the entropy device every test boot has. The kernel's console input
/// is closed: input comes only through the console driver.
fn every_device_has_a_driver_holding_its_line() -> crate::Outcome {
    let devices = rt::process::devices().map_err(crate::fail("devices"))?;
    let found = find(&devices);
    ensure!(
        found
            .iter()
            .any(|f| f.kind == Driven::Virtio(Kind::Entropy)),
        "no VirtIO entropy device found"
    );
    ensure!(
        found.iter().any(|f| f.kind == Driven::Console),
        "the console's UART is not listed for a driver"
    );
    let mut byte = [0u8];
    ensure_eq!(
        rt::sys::read(&mut byte),
        Err(abi::Error::NotFound),
        "console input through the kernel"
    );
    let running = running();
    ensure_eq!(running.len(), found.len(), "drivers for the devices found");
    let processes = rt::process::processes().map_err(crate::fail("processes"))?;
    for (f, (service, pid, resources)) in found.iter().zip(&running) {
        ensure_eq!(*resources, f.resources, "the resources of the driver");
        ensure!(
            processes
                .iter()
                .any(|p| p.pid == *pid && abi::name_str(&p.name) == f.kind.program()),
            "the {service} driver (process {pid}) is not running"
        );
        // The driver claims its line once the device is up: wait for it.
        service_up(service)?;
        if f.irq.is_some() {
            let devices = rt::process::devices().map_err(crate::fail("devices"))?;
            ensure_eq!(
                devices[f.resources[0]].irq_owner,
                *pid,
                "the holder of the line"
            );
        }
    }
    Ok(())
}

fn service_up(name: &str) -> Result<(), String> {
    service(name).map(drop)
}

/// Random bytes from the rng service: two reads differ, neither is one
/// byte repeated, and a malformed request is refused.
fn rng_bytes_differ_between_calls() -> crate::Outcome {
    use protocols::rng;
    let server = service("rng")?;
    let probe = rt::ipc::Message::new(rng::READ, [0, 0, 0, 0]);
    let reply = server.call(probe).map_err(crate::fail("call"))?;
    ensure_eq!(
        protocols::result::<rng::Error>(reply.label),
        Err(rng::Error::BadRequest),
        "a read of no bytes"
    );
    let mut client = rt::rng::Rng::new(server).map_err(crate::fail("client"))?;
    let (mut first, mut second) = ([0u8; 64], [0u8; 64]);
    client.fill(&mut first).map_err(crate::fail("first read"))?;
    client
        .fill(&mut second)
        .map_err(crate::fail("second read"))?;
    ensure!(first != second, "two reads gave the same bytes");
    for bytes in [&first, &second] {
        ensure!(
            bytes.iter().any(|&b| b != bytes[0]),
            "a read is one byte repeated: {:#x}",
            bytes[0]
        );
    }
    // More than one message's payload is read in parts.
    let mut long = alloc::vec![0u8; rng::MAX_READ + 100];
    client.fill(&mut long).map_err(crate::fail("long read"))?;
    ensure!(
        long[rng::MAX_READ..].iter().any(|&b| b != 0),
        "the second part of a long read is empty"
    );
    Ok(())
}

/// A pattern that differs in every byte of a run of sectors and between
/// runs with different seeds.
fn pattern(seed: u8, index: usize) -> u8 {
    (index as u8).wrapping_mul(31).wrapping_add(seed) ^ (index >> 9) as u8
}

/// Sectors written through the driver read back as written, in one
/// request of the largest size and sector by sector; a write at the last
/// sector works; writes are flushed.
fn block_writes_read_back() -> crate::Outcome {
    use protocols::block::SECTOR_SIZE;
    use rt::block::Block;
    let server = service("blk")?;
    let mut disk = Block::open(&server, 128 * 1024).map_err(crate::fail("open"))?;
    let info = disk.info();
    ensure!(info.sectors >= 512, "a disk of {} sectors", info.sectors);
    ensure_eq!(
        info.max_sectors,
        protocols::block::MAX_SECTORS,
        "sectors a request"
    );
    let count = info.max_sectors;
    let bytes = count * SECTOR_SIZE;
    let seed = (rt::sys::time_ns() & 0xff) as u8;
    for (i, byte) in disk.buffer()[..bytes].iter_mut().enumerate() {
        *byte = pattern(seed, i);
    }
    disk.write(64, count, 0).map_err(crate::fail("write"))?;
    disk.flush().map_err(crate::fail("flush"))?;
    disk.buffer().fill(0);
    disk.read(64, count, 0).map_err(crate::fail("read"))?;
    let mismatch = disk.buffer()[..bytes]
        .iter()
        .enumerate()
        .position(|(i, &b)| b != pattern(seed, i));
    ensure_eq!(mismatch, None, "the first byte read back wrong");
    // Sector by sector, into other places of the buffer.
    disk.buffer().fill(0);
    for n in 0..8 {
        disk.read(64 + n as u64, 1, (7 - n) * SECTOR_SIZE)
            .map_err(crate::fail("read a sector"))?;
    }
    for n in 0..8 {
        let at = (7 - n) * SECTOR_SIZE;
        let expected = (0..SECTOR_SIZE).map(|i| pattern(seed, n * SECTOR_SIZE + i));
        ensure!(
            disk.buffer()[at..at + SECTOR_SIZE]
                .iter()
                .copied()
                .eq(expected),
            "sector {} read alone",
            64 + n
        );
    }
    let last = info.sectors - 1;
    disk.buffer()[..SECTOR_SIZE].fill(0x5a);
    disk.write(last, 1, 0)
        .map_err(crate::fail("write the last sector"))?;
    disk.buffer()[..SECTOR_SIZE].fill(0);
    disk.read(last, 1, 0)
        .map_err(crate::fail("read the last sector"))?;
    ensure!(
        disk.buffer()[..SECTOR_SIZE].iter().all(|&b| b == 0x5a),
        "the last sector read back wrong"
    );
    Ok(())
}

/// Each malformed request gets its own error, and the server goes on.
fn bad_block_requests_get_their_errors() -> crate::Outcome {
    use protocols::block::{self, Error, MAX_SECTORS, SECTOR_SIZE};
    use rt::block::{Block, Failure};
    let server = service("blk")?;
    let buffer = 64 * 1024;
    let mut disk = Block::open(&server, buffer).map_err(crate::fail("open"))?;
    let sectors = disk.info().sectors;
    let refused = |e| Err(Failure::Refused(e));
    ensure_eq!(
        disk.read(sectors, 1, 0),
        refused(Error::OutOfRange),
        "past the end"
    );
    ensure_eq!(
        disk.write(sectors - 1, 2, 0),
        refused(Error::OutOfRange),
        "across the end"
    );
    ensure_eq!(
        disk.read(u64::MAX, 1, 0),
        refused(Error::OutOfRange),
        "a sector number that overflows"
    );
    ensure_eq!(disk.read(0, 0, 0), refused(Error::BadLength), "no sectors");
    ensure_eq!(
        disk.read(0, MAX_SECTORS + 1, 0),
        refused(Error::BadLength),
        "too many sectors"
    );
    ensure_eq!(
        disk.read(0, 1, 100),
        refused(Error::Misaligned),
        "a misaligned offset"
    );
    ensure_eq!(
        disk.read(0, 2, buffer - SECTOR_SIZE),
        refused(Error::OutsideBuffer),
        "past the buffer's end"
    );
    ensure_eq!(
        disk.raw(99, [0; 4]).map(|_| ()),
        refused(Error::BadRequest),
        "an unknown request"
    );
    // Without a session (the name's capability carries no badge).
    let (label, words) = block::Request::Transfer {
        direction: block::Direction::Read,
        sector: 0,
        count: 1,
        offset: 0,
    }
    .encode();
    let reply = server
        .call(rt::ipc::Message::new(label, words))
        .map_err(crate::fail("call"))?;
    ensure_eq!(
        protocols::result::<Error>(reply.label),
        Err(Error::NotAttached),
        "a read without a session"
    );
    // A buffer that is not contiguous is refused, not bounced.
    let scattered = rt::ipc::Memory::create(8192, false).map_err(crate::fail("memory"))?;
    let (label, words) = block::Request::Attach.encode();
    let reply = server
        .call(rt::ipc::Message::new(label, words).carrying(scattered.handle(), false))
        .map_err(crate::fail("attach"))?;
    ensure_eq!(
        protocols::result::<Error>(reply.label),
        Err(Error::BadBuffer),
        "a buffer that is not contiguous"
    );
    ensure!(
        reply.capability().is_none(),
        "a session for a refused buffer"
    );
    // And the server still serves.
    disk.read(0, 1, 0)
        .map_err(crate::fail("a read after the refusals"))?;
    Ok(())
}

/// Killing the block driver fails its clients' requests with `PeerDied`
/// (none hangs), new sessions too; the driver the supervisor starts in
/// its place (counting a restart) serves the same disk, with what was
/// written before.
fn a_dead_block_driver_fails_its_clients_and_a_new_one_serves() -> crate::Outcome {
    use protocols::block::SECTOR_SIZE;
    use rt::block::{Block, Failure};
    let server = service("blk")?;
    let mut disk = Block::open(&server, 4096).map_err(crate::fail("open"))?;
    let stamp = rt::sys::time_ns().to_le_bytes();
    disk.buffer()[..8].copy_from_slice(&stamp);
    disk.write(9, 1, 0).map_err(crate::fail("write"))?;
    let restarts = crate::supervisor::record("blk").map_or(0, |r| r.restarts);
    let old = crate::supervisor::end("blk", false)?;
    let dead = Err(Failure::Ipc(abi::Error::PeerDied));
    ensure_eq!(
        disk.read(9, 1, 0),
        dead,
        "a session's read after the driver died"
    );
    ensure_eq!(
        disk.flush(),
        dead,
        "a session's flush after the driver died"
    );
    ensure_eq!(
        Block::open(&server, 4096).map(drop),
        dead,
        "a new session with the dead driver"
    );
    drop(disk);
    let record = crate::supervisor::wait_restarted("blk", old, 2_000_000_000)?;
    ensure_eq!(record.restarts, restarts + 1, "restarts counted");
    let server = service("blk")?;
    let mut disk = Block::open(&server, 4096).map_err(crate::fail("open the new driver"))?;
    disk.read(9, 1, 0)
        .map_err(crate::fail("read through the new driver"))?;
    ensure_eq!(disk.buffer()[..8], stamp, "what was written before");
    ensure!(
        disk.buffer()[8..SECTOR_SIZE].iter().all(|&b| b == 0),
        "the rest of the sector"
    );
    Ok(())
}

/// A program started exactly as a driver is (the probe, in its
/// `driver-view` mode) finds in its table only what a driver is given,
/// cannot reach registers beyond its device's, another device's, or a
/// line other than its own.
fn a_driver_holds_only_its_devices_capabilities() -> crate::Outcome {
    let devices = rt::process::devices().map_err(crate::fail("devices"))?;
    for found in find(&devices) {
        let child = start_as(&found, "view", "probe", "driver-view ")?;
        let exit = child.wait().map_err(crate::fail("wait"))?;
        ensure_eq!(
            exit,
            rt::process::Exit::Code(0),
            format!("the view of a {:?} driver ({})", found.kind, found.place)
        );
    }
    Ok(())
}
