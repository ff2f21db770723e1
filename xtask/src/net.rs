//! The host's end of a guest's network: QEMU's `-netdev dgram` carries
//! each Ethernet frame as one UDP datagram between QEMU's socket and this
//! one, both on the loopback address. xtask speaks raw frames (built and
//! parsed with `smoltcp`'s wire types) to check what the guest answers.

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr,
    UdpPacket, UdpRepr,
};
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// One of the guest's links: its NIC's service, the guest's address on it
/// (its stack gets it on the command line) and the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub nic: &'static str,
    pub guest_ip: Ipv4Address,
    pub host_ip: Ipv4Address,
}

/// The VirtIO NIC's link, every machine's.
pub const VIRTIO_LINK: Link = Link {
    nic: "net",
    guest_ip: Ipv4Address::new(10, 0, 2, 15),
    host_ip: Ipv4Address::new(10, 0, 2, 2),
};
/// The E1000's link, on q35.
pub const E1000_LINK: Link = Link {
    nic: "net1",
    guest_ip: Ipv4Address::new(10, 0, 3, 15),
    host_ip: Ipv4Address::new(10, 0, 3, 2),
};
/// The networks' prefix; the host's MAC on each.
pub const PREFIX: u8 = 24;
pub const HOST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
/// The UDP port the guest echoes on.
pub const ECHO_PORT: u16 = 7;

/// The two UDP ports of one guest's link: QEMU's, and the host's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub guest: u16,
    pub host: u16,
}

/// A loopback port free now (bound and let go: QEMU binds it next).
pub fn free_port() -> std::io::Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Ports for a boot no one talks to: QEMU's frames go to a socket that
/// stays open and reads nothing, so nothing is refused.
pub fn idle_ports() -> std::io::Result<Ports> {
    static SINK: OnceLock<Option<UdpSocket>> = OnceLock::new();
    let sink = SINK.get_or_init(|| UdpSocket::bind("127.0.0.1:0").ok());
    let host = match sink {
        Some(socket) => socket.local_addr()?.port(),
        None => free_port()?,
    };
    Ok(Ports {
        guest: free_port()?,
        host,
    })
}

/// QEMU's `-netdev` for a link on `ports`.
pub fn netdev(id: &str, ports: Ports) -> String {
    format!(
        "dgram,id={id},local.type=inet,local.host=127.0.0.1,local.port={},remote.type=inet,remote.host=127.0.0.1,remote.port={}",
        ports.guest, ports.host
    )
}

/// An ARP packet from the host to `destination`, in its Ethernet frame.
fn arp_frame(arp: &ArpRepr, destination: EthernetAddress) -> Vec<u8> {
    let mut frame = vec![0u8; 14 + arp.buffer_len()];
    let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
    EthernetRepr {
        src_addr: HOST_MAC,
        dst_addr: destination,
        ethertype: EthernetProtocol::Arp,
    }
    .emit(&mut ethernet);
    arp.emit(&mut ArpPacket::new_unchecked(ethernet.payload_mut()));
    frame
}

/// The host's end of a link.
pub struct Peer {
    socket: UdpSocket,
    guest: SocketAddr,
    link: Link,
}

impl Peer {
    /// Binds the host's port for `link`; the guest's is chosen free.
    pub fn bind(link: Link) -> std::io::Result<(Peer, Ports)> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let ports = Ports {
            guest: free_port()?,
            host: socket.local_addr()?.port(),
        };
        let guest = SocketAddr::from(([127, 0, 0, 1], ports.guest));
        Ok((
            Peer {
                socket,
                guest,
                link,
            },
            ports,
        ))
    }

    fn send(&self, frame: &[u8]) -> Result<(), String> {
        self.socket
            .send_to(frame, self.guest)
            .map(drop)
            .map_err(|e| format!("sending a frame: {e}"))
    }

    /// The first frame within `within` that `accept` turns into a value.
    fn await_frame<T>(
        &self,
        within: Duration,
        mut accept: impl FnMut(&[u8]) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        let mut buffer = [0u8; 2048];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            match self.socket.recv_from(&mut buffer) {
                Ok((len, _)) => {
                    if let Some(value) = accept(&buffer[..len]) {
                        return Some(value);
                    }
                    self.answer_arp(&buffer[..len]);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(_) => return None,
            }
        }
    }

    /// Answers the guest's ARP request for the host's address, as a peer
    /// on a real link does (the guest's stack forgets its neighbours
    /// after a while and asks again).
    fn answer_arp(&self, bytes: &[u8]) {
        let Ok(ethernet) = EthernetFrame::new_checked(bytes) else {
            return;
        };
        if ethernet.ethertype() != EthernetProtocol::Arp {
            return;
        }
        let Ok(packet) = ArpPacket::new_checked(ethernet.payload()) else {
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return;
        };
        if target_protocol_addr != self.link.host_ip {
            return;
        }
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: HOST_MAC,
            source_protocol_addr: self.link.host_ip,
            target_hardware_addr: source_hardware_addr,
            target_protocol_addr: source_protocol_addr,
        };
        let _ = self.send(&arp_frame(&reply, source_hardware_addr));
    }

    /// Asks for the guest's MAC with ARP (a few tries: the guest's stack
    /// may still be starting); returns it from the reply.
    pub fn arp(&self) -> Result<EthernetAddress, String> {
        let request = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Request,
            source_hardware_addr: HOST_MAC,
            source_protocol_addr: self.link.host_ip,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: self.link.guest_ip,
        };
        let frame = arp_frame(&request, EthernetAddress::BROADCAST);
        for _ in 0..20 {
            self.send(&frame)?;
            let reply = self.await_frame(Duration::from_millis(250), |bytes| {
                let ethernet = EthernetFrame::new_checked(bytes).ok()?;
                if ethernet.ethertype() != EthernetProtocol::Arp {
                    return None;
                }
                match ArpRepr::parse(&ArpPacket::new_checked(ethernet.payload()).ok()?).ok()? {
                    ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Reply,
                        source_hardware_addr,
                        source_protocol_addr,
                        target_hardware_addr,
                        target_protocol_addr,
                    } if source_protocol_addr == self.link.guest_ip
                        && target_protocol_addr == self.link.host_ip
                        && target_hardware_addr == HOST_MAC =>
                    {
                        Some(source_hardware_addr)
                    }
                    _ => None,
                }
            });
            if let Some(mac) = reply {
                return Ok(mac);
            }
        }
        Err(format!("no ARP reply for {}", self.link.guest_ip))
    }

    /// An IPv4 frame to the guest carrying `payload_len` bytes of
    /// `protocol`, written by `fill`.
    fn ipv4_frame(
        &self,
        guest_mac: EthernetAddress,
        protocol: IpProtocol,
        payload_len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Vec<u8> {
        let ip = Ipv4Repr {
            src_addr: self.link.host_ip,
            dst_addr: self.link.guest_ip,
            next_header: protocol,
            payload_len,
            hop_limit: 64,
        };
        let mut frame = vec![0u8; 14 + ip.buffer_len() + payload_len];
        let mut ethernet = EthernetFrame::new_unchecked(&mut frame[..]);
        EthernetRepr {
            src_addr: HOST_MAC,
            dst_addr: guest_mac,
            ethertype: EthernetProtocol::Ipv4,
        }
        .emit(&mut ethernet);
        let mut packet = Ipv4Packet::new_unchecked(ethernet.payload_mut());
        ip.emit(&mut packet, &ChecksumCapabilities::default());
        fill(packet.payload_mut());
        frame
    }

    /// The IPv4 packet from the guest to the host a frame holds, if it is
    /// one, with its checksums verified.
    fn packet_from_guest<'a>(
        &self,
        bytes: &'a [u8],
        protocol: IpProtocol,
    ) -> Option<Ipv4Packet<&'a [u8]>> {
        let ethernet = EthernetFrame::new_checked(bytes).ok()?;
        if ethernet.ethertype() != EthernetProtocol::Ipv4 || ethernet.dst_addr() != HOST_MAC {
            return None;
        }
        let packet = Ipv4Packet::new_checked(&bytes[14..]).ok()?;
        let ip = Ipv4Repr::parse(&packet, &ChecksumCapabilities::default()).ok()?;
        (ip.src_addr == self.link.guest_ip
            && ip.dst_addr == self.link.host_ip
            && ip.next_header == protocol)
            .then_some(packet)
    }

    /// Pings the guest; the reply must carry the request's identifier,
    /// sequence number and data.
    pub fn ping(
        &self,
        guest_mac: EthernetAddress,
        seq_no: u16,
        data: &[u8],
    ) -> Result<Duration, String> {
        let request = Icmpv4Repr::EchoRequest {
            ident: 0x4652,
            seq_no,
            data,
        };
        let frame = self.ipv4_frame(
            guest_mac,
            IpProtocol::Icmp,
            request.buffer_len(),
            |payload| {
                request.emit(
                    &mut Icmpv4Packet::new_unchecked(payload),
                    &ChecksumCapabilities::default(),
                )
            },
        );
        let sent = Instant::now();
        self.send(&frame)?;
        let answered = self.await_frame(Duration::from_secs(2), |bytes| {
            let packet = self.packet_from_guest(bytes, IpProtocol::Icmp)?;
            let icmp = Icmpv4Packet::new_checked(packet.payload()).ok()?;
            match Icmpv4Repr::parse(&icmp, &ChecksumCapabilities::default()).ok()? {
                Icmpv4Repr::EchoReply {
                    ident: 0x4652,
                    seq_no: seq,
                    data: echoed,
                } if seq == seq_no && echoed == data => Some(()),
                _ => None,
            }
        });
        answered
            .map(|()| sent.elapsed())
            .ok_or_else(|| format!("no echo reply to ping {seq_no}"))
    }

    /// Sends `data` to the guest's UDP echo port; the reply must come back
    /// from that port to the sender's with the same bytes. Returns the
    /// round trip's wall time.
    pub fn udp_echo(
        &self,
        guest_mac: EthernetAddress,
        src_port: u16,
        data: &[u8],
    ) -> Result<Duration, String> {
        let udp = UdpRepr {
            src_port,
            dst_port: ECHO_PORT,
        };
        let length = udp.header_len() + data.len();
        let frame = self.ipv4_frame(guest_mac, IpProtocol::Udp, length, |payload| {
            udp.emit(
                &mut UdpPacket::new_unchecked(payload),
                &self.link.host_ip.into(),
                &self.link.guest_ip.into(),
                data.len(),
                |buffer| buffer.copy_from_slice(data),
                &ChecksumCapabilities::default(),
            )
        });
        let sent = Instant::now();
        self.send(&frame)?;
        let answered = self.await_frame(Duration::from_secs(2), |bytes| {
            let packet = self.packet_from_guest(bytes, IpProtocol::Udp)?;
            let datagram = UdpPacket::new_checked(packet.payload()).ok()?;
            let repr = UdpRepr::parse(
                &datagram,
                &self.link.guest_ip.into(),
                &self.link.host_ip.into(),
                &ChecksumCapabilities::default(),
            )
            .ok()?;
            (repr.src_port == ECHO_PORT && repr.dst_port == src_port && datagram.payload() == data)
                .then_some(())
        });
        answered
            .map(|()| sent.elapsed())
            .ok_or_else(|| format!("no UDP echo of {} bytes from port {src_port}", data.len()))
    }
}
