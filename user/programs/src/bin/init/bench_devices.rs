//! The benchmarks of the drivers in user space, through their services
//! from init (a client process): the block device's sequential and random
//! reads and writes, and console output. Run after the kernel-path
//! benchmarks, with the drivers started then.
//!
//! Each metric is printed three ways: instructions per request with the
//! time the CPU sat idle waiting for the device taken out (the headline,
//! as Linux's figures are counted), the same with the idle time in, and
//! guest nanoseconds per request (under `-icount shift=0`, time in guest
//! instructions, idle included), from which throughput follows.

use crate::drivers;
use alloc::string::String;
use alloc::vec::Vec;
use protocols::block::SECTOR_SIZE;
use rt::block::Block;
use rt::{arch, sys};

const SAMPLES: usize = 15;
const BATCH: u64 = 8;

/// The cycle counter and the idle count, as a pair taken together.
fn now() -> (u64, u64) {
    let idle = rt::process::system().map_or(0, |s| s.idle_cycles);
    (arch::cycle_counter(), idle)
}

/// Per request: busy instructions, all instructions, ns.
struct Samples {
    busy: Vec<u64>,
    all: Vec<u64>,
    ns: Vec<u64>,
}

fn sample(mut op: impl FnMut() -> bool) -> Option<Samples> {
    for _ in 0..BATCH {
        if !op() {
            return None;
        }
    }
    let mut samples = Samples {
        busy: Vec::new(),
        all: Vec::new(),
        ns: Vec::new(),
    };
    for _ in 0..SAMPLES {
        let t0 = sys::time_ns();
        let (c0, i0) = now();
        for _ in 0..BATCH {
            if !op() {
                return None;
            }
        }
        let (c1, i1) = now();
        let t1 = sys::time_ns();
        let all = arch::cycles_between(c0, c1);
        let idle = i1.wrapping_sub(i0);
        samples.all.push(all / BATCH);
        samples.busy.push(all.saturating_sub(idle) / BATCH);
        samples.ns.push((t1 - t0) / BATCH);
    }
    Some(samples)
}

/// A metric's name, unit and samples, for the caller to print.
pub type Measured = Vec<(String, &'static str, Vec<u64>)>;

fn report(out: &mut Measured, name: &str, samples: Option<Samples>) {
    let Some(samples) = samples else {
        rt::println!("ubench: {name} failed");
        return;
    };
    out.push((name.into(), "instructions", samples.busy));
    out.push((
        alloc::format!("{name}_with_idle"),
        "instructions",
        samples.all,
    ));
    out.push((name.into(), "ns", samples.ns));
}

/// A pseudo-random sequence (a fixed seed: every run reads the same
/// sectors).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Starts the drivers and measures them.
pub fn run() -> Measured {
    let mut out = Measured::new();
    drivers::start();
    drivers::wait_until_up();
    let Ok(server) = drivers::service("blk") else {
        rt::println!("ubench: no blk service");
        return out;
    };
    let Ok(mut disk) = Block::open(&server, 64 * 1024) else {
        rt::println!("ubench: cannot open the disk");
        return out;
    };
    let sectors = disk.info().sectors;
    let big = 64 * 1024 / SECTOR_SIZE;
    let small = 4096 / SECTOR_SIZE;
    let mut at = 0u64;
    let mut sequential = |disk: &mut Block, write: bool| {
        let sector = at;
        at = (at + big as u64) % (sectors - big as u64);
        match write {
            true => disk.write(sector, big, 0).is_ok(),
            false => disk.read(sector, big, 0).is_ok(),
        }
    };
    let read = sample(|| sequential(&mut disk, false));
    report(&mut out, "blk_seq_read_64k", read);
    let write = sample(|| sequential(&mut disk, true));
    report(&mut out, "blk_seq_write_64k", write);
    let mut random = Lcg(0x4652_5254);
    let slots = sectors / small as u64;
    let mut scattered = |disk: &mut Block, write: bool| {
        let sector = random.next() % slots * small as u64;
        match write {
            true => disk.write(sector, small, 0).is_ok(),
            false => disk.read(sector, small, 0).is_ok(),
        }
    };
    let read = sample(|| scattered(&mut disk, false));
    report(&mut out, "blk_rand_read_4k", read);
    let write = sample(|| scattered(&mut disk, true));
    report(&mut out, "blk_rand_write_4k", write);
    report(&mut out, "console_write_256", console_write());
    drivers::start_stacks();
    if let Some(samples) = udp_echo() {
        out.push(("udp_echo_64".into(), "instructions", samples));
    }
    out
}

/// Datagrams the host sends in the UDP echo benchmark (xtask's side of it
/// is `bench::udp_echo`).
const ECHOES: u64 = 64;

/// Reads console input up to the end of a line.
fn read_line() -> Option<()> {
    loop {
        match rt::io::read_byte().ok()? {
            b'\r' | b'\n' => return Some(()),
            _ => {}
        }
    }
}

/// Instructions the system spends per UDP echo the host asks for: the
/// host warms up, then `ECHOES` datagrams go to the echo port one after
/// another while init waits on the console; the host's `done` line ends
/// the count. Idle time is taken out.
fn udp_echo() -> Option<Vec<u64>> {
    let mut names = crate::names::capability(rt::names::CLIENT)
        .and_then(rt::names::Names::from_handle)
        .ok()?;
    rt::io::connect(&mut names).ok()?;
    drop(names);
    rt::println!("ubench: udp-echo ready");
    read_line()?;
    rt::println!("ubench: udp-echo go");
    let (c0, i0) = now();
    read_line()?;
    let (c1, i1) = now();
    // What the NIC counted, for a run whose echoes did not all come back.
    if let Ok(server) = drivers::service("net")
        && let Ok(stats) = rt::net::Nic::new(server)
            .map_err(drop)
            .and_then(|n| n.stats().map_err(drop))
    {
        rt::println!(
            "ubench: udp-echo nic received={} sent={} dropped={}",
            stats.received,
            stats.sent,
            stats.dropped
        );
    }
    let all = arch::cycles_between(c0, c1);
    Some(alloc::vec![
        all.saturating_sub(i1.wrapping_sub(i0)) / ECHOES
    ])
}

/// Writes of 256 bytes (a line of dots) through the console service.
fn console_write() -> Option<Samples> {
    let mut names = crate::names::capability(rt::names::CLIENT)
        .and_then(rt::names::Names::from_handle)
        .ok()?;
    let output = names.lookup(protocols::console::OUTPUT).ok()?;
    drop(names);
    let mut buffer = rt::ipc::IpcBuffer::register().ok()?;
    let mut line = [b'.'; 256];
    line[255] = b'\n';
    sample(|| {
        buffer.bytes()[..line.len()].copy_from_slice(&line);
        let message =
            rt::ipc::Message::new(protocols::console::WRITE, [0; 4]).with_payload(line.len());
        output.call(message).is_ok()
    })
}
