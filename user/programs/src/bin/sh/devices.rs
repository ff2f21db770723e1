//! The shell's device commands: `devices` lists what the kernel left to
//! drivers and which process drives each; `rng`, `blk` and `net` talk to
//! the drivers' services, found through the name service.

use alloc::string::String;
use rt::block::Block;
use rt::ipc::Endpoint;
use rt::names::Names;
use rt::println;
use rt::process;

/// The shell's capability to the name service: init passes it second
/// (after its control capability), a shell running a program first.
pub fn names_handle() -> abi::Handle {
    let endpoint = |handle| {
        rt::ipc::cap_info(handle).is_ok_and(|info| info.kind == Some(abi::ObjectKind::Endpoint))
    };
    match endpoint(abi::initial_handle(1)) {
        true => abi::initial_handle(1),
        false => abi::initial_handle(0),
    }
}

/// A client of the name service, on a copy of the shell's capability.
pub fn names() -> Option<Names> {
    let copy = rt::ipc::cap_copy(names_handle(), abi::RIGHT_SEND | abi::RIGHT_GRANT, 0)
        .map_err(|e| println!("no name service: {e}"))
        .ok()?;
    Names::from_handle(copy)
        .map_err(|e| println!("no name service: {e}"))
        .ok()
}

/// The server registered under `service`.
fn lookup(service: &str) -> Option<Endpoint> {
    let mut names = names()?;
    names
        .lookup(service)
        .map_err(|e| println!("no {service} service: {e}"))
        .ok()
}

/// A client of init's supervisor.
fn supervisor() -> Option<rt::supervisor::Supervisor> {
    let service = lookup(protocols::supervisor::SERVICE)?;
    rt::supervisor::Supervisor::new(service)
        .map_err(|e| println!("no supervisor: {e}"))
        .ok()
}

/// The services init keeps.
pub fn services() -> Option<alloc::vec::Vec<protocols::supervisor::ServiceRecord>> {
    supervisor()?
        .list()
        .map_err(|e| println!("supervisor: {e}"))
        .ok()
}

/// `kill PID` and `crash PID` (or a service's name for its process):
/// through the supervisor, which holds the services' processes (and
/// restarts them).
fn end_service(command: &str, arguments: &str, crash: bool) {
    let target = arguments.trim();
    if target.is_empty() {
        return println!("usage: {command} PID|SERVICE");
    }
    let Some(mut supervisor) = supervisor() else {
        return;
    };
    let pid = match target.parse::<u32>() {
        Ok(pid) => pid,
        Err(_) => {
            let services = supervisor.list().unwrap_or_default();
            match services.iter().find(|s| s.name() == target) {
                Some(service) => service.pid,
                None => return println!("{command}: no service {target}"),
            }
        }
    };
    let ended = match crash {
        true => supervisor.crash(pid),
        false => supervisor.kill(pid),
    };
    match ended {
        Ok(()) if pid == 1 => println!("{command}: init faults now"),
        Ok(()) => println!("{command}: process {pid} ended; init restarts it"),
        Err(abi::Error::NotFound) => {
            println!("{command}: process {pid} is not a service init keeps running")
        }
        Err(e) => println!("{command}: {e}"),
    }
}

pub fn kill(arguments: &str) {
    end_service("kill", arguments, false);
}

pub fn crash(arguments: &str) {
    end_service("crash", arguments, true);
}

pub fn devices(_: &str) {
    let (devices, processes) = match (process::devices(), process::processes()) {
        (Ok(d), Ok(p)) => (d, p),
        (Err(e), _) | (_, Err(e)) => return println!("devices: {e}"),
    };
    // A function's BARs are driven by whoever holds its line.
    let owner = |device: &abi::DeviceInfo| {
        if device.irq_owner != 0 || device.pci_function == abi::NOT_PCI {
            return device.irq_owner;
        }
        devices
            .iter()
            .find(|d| d.pci_function == device.pci_function && d.irq_owner != 0)
            .map_or(0, |d| d.irq_owner)
    };
    println!("  #  NAME            RESOURCE                              IRQ   DRIVER");
    for (index, device) in devices.iter().enumerate() {
        let resource = match device.device_kind() {
            Some(abi::DeviceKind::Ports) => {
                alloc::format!("ports {:#x}+{}", device.base, device.size)
            }
            _ => alloc::format!("mmio {:#x}+{:#x}", device.base, device.size),
        };
        let place = match (device.pci_function, device.pci_bar) {
            (abi::NOT_PCI, _) => String::new(),
            (function, abi::PCI_CONFIG) => alloc::format!(" {} config", pci_address(function)),
            (function, bar) => alloc::format!(" {} bar{bar}", pci_address(function)),
        };
        let irq = match device.irq {
            abi::NO_IRQ => String::from("-"),
            irq => alloc::format!("{irq}"),
        };
        let driver = match owner(device) {
            0 => String::from("-"),
            pid => {
                let name = processes
                    .iter()
                    .find(|p| p.pid == pid)
                    .map_or("?", |p| abi::name_str(&p.name));
                alloc::format!("{pid} ({name})")
            }
        };
        println!(
            "{index:>3}  {:<15} {:<37} {irq:<5} {driver}",
            abi::name_str(&device.name),
            alloc::format!("{resource}{place}"),
        );
    }
}

fn pci_address(function: u32) -> String {
    alloc::format!(
        "{:02x}:{:02x}.{}",
        function >> 8,
        function >> 3 & 0x1f,
        function & 7
    )
}

pub fn rng(arguments: &str) {
    let count = match arguments {
        "" => 16,
        text => match text.parse::<usize>() {
            Ok(n @ 1..=256) => n,
            _ => return println!("usage: rng [BYTES 1-256]"),
        },
    };
    let Some(server) = lookup("rng") else {
        return;
    };
    let mut bytes = alloc::vec![0u8; count];
    let result = rt::rng::Rng::new(server)
        .map_err(rt::ipc::Failure::Ipc)
        .and_then(|mut rng| rng.fill(&mut bytes));
    match result {
        Ok(()) => println!("{}", hex(&bytes)),
        Err(e) => println!("rng: {e}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| alloc::format!("{b:02x}")).collect()
}

const BLK_USAGE: &str = "usage: blk info | blk read SECTOR [COUNT] | blk write SECTOR TEXT";

pub fn blk(arguments: &str) {
    let mut words = arguments.splitn(3, ' ');
    let command = words.next().unwrap_or("");
    let sector = words.next().map(str::parse::<u64>);
    let rest = words.next().unwrap_or("");
    let Some(server) = lookup("blk") else {
        return;
    };
    let mut disk = match Block::open(&server, 64 * 1024) {
        Ok(disk) => disk,
        Err(e) => return println!("blk: {e}"),
    };
    let info = disk.info();
    match (command, sector) {
        ("info", None) => println!(
            "{} sectors of {} bytes ({} KiB){}; at most {} sectors a request",
            info.sectors,
            protocols::block::SECTOR_SIZE,
            info.sectors * protocols::block::SECTOR_SIZE as u64 / 1024,
            if info.read_only { ", read-only" } else { "" },
            info.max_sectors
        ),
        ("read", Some(Ok(sector))) => {
            let count = match rest {
                "" => 1,
                text => match text.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return println!("{BLK_USAGE}"),
                },
            };
            if let Err(e) = disk.read(sector, count, 0) {
                return println!("blk: {e}");
            }
            let bytes = count * protocols::block::SECTOR_SIZE;
            for (line, chunk) in disk.buffer()[..bytes].chunks(32).enumerate() {
                if chunk.iter().all(|&b| b == 0) && line > 0 {
                    continue;
                }
                let text: String = chunk
                    .iter()
                    .map(|&b| {
                        if (0x20..0x7f).contains(&b) {
                            b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                println!("{:>6x}  {}  {text}", line * 32, hex(chunk));
            }
        }
        ("write", Some(Ok(sector))) if !rest.is_empty() => {
            let sector_bytes = protocols::block::SECTOR_SIZE;
            let text = rest.as_bytes();
            let count = text.len().div_ceil(sector_bytes);
            let buffer = disk.buffer();
            buffer[..count * sector_bytes].fill(0);
            buffer[..text.len()].copy_from_slice(text);
            match disk.write(sector, count, 0).and_then(|()| disk.flush()) {
                Ok(()) => println!("wrote {} bytes at sector {sector}", text.len()),
                Err(e) => println!("blk: {e}"),
            }
        }
        _ => println!("{BLK_USAGE}"),
    }
}

pub fn net(arguments: &str) {
    let service = match arguments.split_once(' ') {
        None if arguments == "stats" => "net",
        Some(("stats", nic)) => nic.trim(),
        _ => return println!("usage: net stats [NIC]"),
    };
    let Some(server) = lookup(service) else {
        return;
    };
    let counts = rt::net::Nic::new(server)
        .map_err(rt::ipc::Failure::Ipc)
        .and_then(|nic| Ok((nic.info()?, nic.stats()?)));
    match counts {
        Ok(((mac, _), stats)) => {
            let mac: alloc::vec::Vec<String> =
                mac.iter().map(|b| alloc::format!("{b:02x}")).collect();
            println!("{service}: MAC {}", mac.join(":"));
            println!(
                "received {} frames, sent {} frames, dropped {}",
                stats.received, stats.sent, stats.dropped
            );
        }
        Err(e) => println!("net: {e}"),
    }
}
