//! The network stack: `smoltcp` over a NIC driver's `net` service (either
//! driver), with a static IPv4 address. It answers ARP and ICMP echo, and
//! echoes UDP datagrams on its echo port.
//!
//! Arguments: `nic=SERVICE ip=ADDRESS/PREFIX echo=PORT`. Init passes its
//! quota first, then a capability to the name service, then a
//! notification the stack signals once it serves (so init starts the
//! shell after it).

#![no_std]
#![no_main]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use rt::ipc::Notification;
use rt::names::Names;
use rt::net::Nic;
use rt::println;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::udp;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address};

rt::entry!(main);

/// The configuration the arguments give.
struct Settings<'a> {
    nic: &'a str,
    address: Ipv4Address,
    prefix: u8,
    echo_port: u16,
}

fn settings(arguments: &str) -> Option<Settings<'_>> {
    let mut nic = None;
    let mut ip = None;
    let mut echo = None;
    for word in arguments.split_ascii_whitespace() {
        match word.split_once('=')? {
            ("nic", value) => nic = Some(value),
            ("ip", value) => ip = Some(value),
            ("echo", value) => echo = value.parse().ok(),
            _ => return None,
        }
    }
    let (address, prefix) = ip?.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some(Settings {
        nic: nic?,
        address: address.parse().ok()?,
        prefix,
        echo_port: echo?,
    })
}

fn now() -> Instant {
    Instant::from_micros((rt::sys::time_ns() / 1000) as i64)
}

fn main(arguments: &str) -> i32 {
    let Some(settings) = settings(arguments) else {
        println!("netstack: bad arguments {arguments:?} (nic=SERVICE ip=A.B.C.D/N echo=PORT)");
        return 2;
    };
    match run(&settings) {
        Ok(()) => 0,
        Err(message) => {
            println!("netstack: {message}");
            1
        }
    }
}

fn run(settings: &Settings<'_>) -> Result<(), alloc::string::String> {
    use alloc::format;
    let mut names =
        Names::from_handle(abi::initial_handle(1)).map_err(|e| format!("names: {e}"))?;
    // A stack restarted with its NIC's driver waits for the new driver.
    let server = names
        .lookup_alive(settings.nic, 2_000_000_000)
        .map_err(|e| format!("no {} service: {e}", settings.nic))?;
    drop(names);
    let nic = Nic::new(server).map_err(|e| format!("client: {e}"))?;
    let (mac, _) = nic.info().map_err(|e| format!("{}: {e}", settings.nic))?;
    let arrived = Notification::create().map_err(|e| format!("notification: {e}"))?;
    let signaller = arrived
        .copy(abi::RIGHT_SIGNAL | abi::RIGHT_GRANT, 0)
        .map_err(|e| format!("notification: {e}"))?;
    nic.subscribe(&signaller)
        .map_err(|e| format!("{}: {e}", settings.nic))?;
    drop(signaller);

    let mut link = Link {
        nic: RefCell::new(nic),
        frame: vec![0; protocols::net::MAX_FRAME],
        waiting: true,
    };
    let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut interface = Interface::new(config, &mut link, now());
    interface.update_ip_addrs(|addresses| {
        let _ = addresses.push(IpCidr::new(settings.address.into(), settings.prefix));
    });
    let mut sockets = SocketSet::new(Vec::new());
    let echo = udp::Socket::new(
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8 * 1536]),
        udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 8], vec![0; 8 * 1536]),
    );
    let echo = sockets.add(echo);
    sockets
        .get_mut::<udp::Socket>(echo)
        .bind(settings.echo_port)
        .map_err(|e| format!("bind the echo port: {e}"))?;
    println!(
        "netstack: {}/{} on {} ({}), UDP echo on port {}",
        settings.address,
        settings.prefix,
        settings.nic,
        EthernetAddress(mac),
        settings.echo_port
    );
    let ready = Notification::from_handle(abi::initial_handle(2));
    let _ = ready.signal(1);
    drop(ready);
    let mut datagram = vec![0u8; 1536];
    // The bound on this thread's IPC waits, as last set: only the wait
    // for frames has one, and only while the stack has a timer running.
    let mut bound = None;
    loop {
        let time = now();
        interface.poll(time, &mut link, &mut sockets);
        let socket = sockets.get_mut::<udp::Socket>(echo);
        let mut echoed = false;
        while let Ok((len, meta)) = socket.recv_slice(&mut datagram) {
            echoed |= socket.send_slice(&datagram[..len], meta.endpoint).is_ok();
        }
        if echoed {
            interface.poll_egress(time, &mut link, &mut sockets);
        }
        // Wait for frames, or for the stack's next timer.
        let delay = interface.poll_delay(time, &sockets);
        let timeout = delay.map(|d: Duration| {
            core::time::Duration::from_micros(d.total_micros())
                .max(core::time::Duration::from_micros(1))
        });
        let woken = with_bound(&mut bound, timeout, || arrived.wait());
        match woken {
            Ok(_) => link.waiting = true,
            Err(abi::Error::TimedOut) => {}
            Err(e) => return Err(format!("waiting for frames: {e}")),
        }
    }
}

/// Runs `wait` with this thread's IPC waits bounded by `timeout`, and no
/// bound after it (calls to the NIC wait as long as the driver takes);
/// `bound` keeps what was set last, so a loop with no timer running sets
/// nothing.
fn with_bound<R>(
    bound: &mut Option<core::time::Duration>,
    timeout: Option<core::time::Duration>,
    wait: impl FnOnce() -> R,
) -> R {
    let mut set = |want: Option<core::time::Duration>| {
        if *bound != want && rt::ipc::set_timeout(want).is_ok() {
            *bound = want;
        }
    };
    set(timeout);
    let result = wait();
    set(None);
    result
}

/// smoltcp's view of the NIC: frames through the `net` service.
struct Link {
    nic: RefCell<Nic>,
    frame: Vec<u8>,
    /// Whether frames may be waiting at the driver: it says how many
    /// remain with each one it hands over, and signals when more come, so
    /// the stack asks only when there is something to take.
    waiting: bool,
}

impl phy::Device for Link {
    type RxToken<'a> = Received<'a>;
    type TxToken<'a> = Transmit<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Received<'_>, Transmit<'_>)> {
        if !self.waiting {
            return None;
        }
        let taken = self.nic.borrow_mut().receive(&mut self.frame);
        let Ok(Some((len, more))) = taken else {
            self.waiting = false;
            return None;
        };
        self.waiting = more > 0;
        Some((Received(&self.frame[..len]), Transmit { nic: &self.nic }))
    }

    fn transmit(&mut self, _: Instant) -> Option<Transmit<'_>> {
        Some(Transmit { nic: &self.nic })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut capabilities = DeviceCapabilities::default();
        capabilities.medium = Medium::Ethernet;
        capabilities.max_transmission_unit = protocols::net::MAX_FRAME;
        capabilities
    }
}

struct Received<'a>(&'a [u8]);

impl phy::RxToken for Received<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

struct Transmit<'a> {
    nic: &'a RefCell<Nic>,
}

impl phy::TxToken for Transmit<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        // A frame the driver cannot take is lost, as on a wire.
        self.nic.borrow_mut().send_with(len, f).0
    }
}
