//! The network, checked from the host: xtask is the guest's only peer on
//! a loopback link and sends it ARP, ICMP echo and UDP datagrams, checking
//! every reply, while the guest runs its shell.

use super::*;
use crate::net::{E1000_LINK, Peer, VIRTIO_LINK};
use shell::{SHELL_PROMPT, matches_pattern};

/// Datagram sizes sent to the echo port: small, odd, and a full frame's
/// worth (1472 bytes of UDP payload in 1500 of IP).
const UDP_SIZES: [usize; 3] = [1, 333, 1472];

pub(super) fn network_answers(
    config: &Config,
    kernel: &Path,
    tally: &mut Tally,
) -> Result<Duration> {
    let scope = config.scope();
    step(format!("booting {scope} to talk to it over the network"));
    let mut config = config.clone();
    let (peer, ports) = Peer::bind(VIRTIO_LINK)?;
    config.net = Some(ports);
    // q35's E1000 is checked the same way, on its own link.
    let e1000 = match config.has_e1000() {
        true => {
            let (peer, ports) = Peer::bind(E1000_LINK)?;
            config.e1000_net = Some(ports);
            Some(peer)
        }
        false => None,
    };
    let args = boot_args(&config, kernel, "mode=run")?;
    // The stack announces itself once it serves; the exchange runs then,
    // and the shell is asked for the NIC's counts after it. Then the
    // VirtIO NIC's driver is crashed: init restarts it and the stack on
    // it, which announces itself again, and the exchange runs again.
    let script = [
        qemu::Step {
            prompt: "netstack: ",
            text: "net stats\r",
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "crash net\r",
        },
        qemu::Step {
            prompt: "init: restarted net-stack as process ",
            text: "net stats\r",
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "poweroff\r",
        },
    ];
    let mut results = Results::new();
    let mut virtio_stacks = 0;
    let boot = qemu::boot(
        config.machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |line| {
            // Each stack announces itself: the one on `net` comes up
            // first, the E1000's (`net1`) after it.
            // `contains`: a character typed may land ahead of the line.
            if line.contains("netstack: ") && line.contains(" on net ") {
                virtio_stacks += 1;
                let nic = match virtio_stacks {
                    1 => "virtio",
                    _ => "virtio_after_its_driver_crashed",
                };
                exchange(&peer, nic, &mut results);
            }
            if let Some(e1000) = &e1000
                && line.contains("netstack: ")
                && line.contains(" on net1 ")
            {
                exchange(e1000, "e1000", &mut results);
            }
        },
    )?;
    let expected = if e1000.is_some() { 12 } else { 8 };
    if results.len() < expected {
        results.push((
            "net::every_stack_starts".into(),
            Err(format!(
                "{} of {expected} checks ran: a network stack never announced itself",
                results.len()
            )),
        ));
    }
    let mut failed = false;
    for (name, result) in &results {
        let detail = result.as_ref().err().cloned().unwrap_or_default();
        failed |= result.is_err();
        tally.record(result.is_ok(), &scope, name, &detail);
    }
    // What the guest counted: at least what was sent it, and nothing lost.
    let stats = boot
        .lines
        .iter()
        .find(|l| matches_pattern(l, "received * frames, sent * frames, dropped 0"));
    tally.record(
        stats.is_some(),
        &scope,
        "net::stats_count_the_frames",
        if stats.is_some() {
            ""
        } else {
            "no `net stats` line with no frames dropped"
        },
    );
    if failed || stats.is_none() {
        show_failure_context(&boot);
    }
    Ok(boot.elapsed)
}

/// What the checks found, by name.
type Results = Vec<(String, std::result::Result<(), String>)>;

/// ARP, pings and UDP echoes over one link; the checks are named after
/// the NIC (`net::virtio::...`, `net::e1000::...`).
fn exchange(peer: &Peer, nic: &str, results: &mut Results) {
    let name = |check: &str| format!("net::{nic}::{check}");
    let mac = peer.arp();
    results.push((
        name("arp_is_answered"),
        mac.as_ref().map(drop).map_err(Clone::clone),
    ));
    let Ok(mac) = mac else {
        return;
    };
    let pings = (1..=3u16)
        .map(|seq| peer.ping(mac, seq, format!("ferrite ping {seq}").as_bytes()))
        .collect::<std::result::Result<Vec<_>, _>>();
    results.push((name("icmp_echo_is_answered"), pings.map(drop)));
    let echoes = UDP_SIZES
        .iter()
        .enumerate()
        .map(|(n, &size)| {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + n) as u8).collect();
            peer.udp_echo(mac, 40_000 + n as u16, &data)
        })
        .collect::<std::result::Result<Vec<_>, _>>();
    results.push((name("udp_datagrams_are_echoed"), echoes.map(drop)));
    // More datagrams than the driver has transmit buffers: each comes
    // back, so buffers are taken back as the device sends.
    let many = (0..40u16)
        .map(|n| peer.udp_echo(mac, 43_000 + n, &n.to_le_bytes()))
        .collect::<std::result::Result<Vec<_>, _>>();
    results.push((name("forty_datagrams_in_a_row_are_echoed"), many.map(drop)));
}
