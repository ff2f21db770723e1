//! `cargo xtask bench`: boots a release build on every machine in
//! benchmark mode under `-icount shift=0` (so the guest's cycle counters
//! count instructions, the same on every run), and reports each metric's
//! statistics as a line and as JSON.

use crate::cli::{BenchOptions, Profile};
use crate::kernel_image::{self, workspace};
use crate::machine::{Arch, Config, Console, Machine};
use crate::{Result, error, provision, qemu, seconds, step};
use std::fmt::Write;
use std::time::Duration;

const BOOT_TIME_LIMIT: Duration = Duration::from_secs(300);

/// Summary statistics of one metric's samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub min: f64,
    pub q1: f64,
    pub median: f64,
    pub mean: f64,
    pub q3: f64,
    pub max: f64,
    /// Sample standard deviation (0 for a single sample).
    pub stddev: f64,
}

/// The `p` quantile of sorted values, interpolating between neighbours.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * p;
    let low = h.floor() as usize;
    let high = (low + 1).min(sorted.len() - 1);
    sorted[low] + (h - low as f64) * (sorted[high] - sorted[low])
}

pub fn stats(samples: &[u64]) -> Option<Stats> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted: Vec<f64> = samples.iter().map(|&s| s as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let variance = if n > 1 {
        sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    Some(Stats {
        n,
        min: sorted[0],
        q1: quantile(&sorted, 0.25),
        median: quantile(&sorted, 0.5),
        mean,
        q3: quantile(&sorted, 0.75),
        max: sorted[n - 1],
        stddev: variance.sqrt(),
    })
}

/// A project target for a metric (in guest instructions), with Linux 6.1's
/// figure on the same machines for comparison.
struct Target {
    metric: &'static str,
    at_most: f64,
    /// 0: no figure (Linux has no user-space interrupt handlers).
    linux_x64: f64,
    linux_arm: f64,
}

const TARGETS: &[Target] = &[
    Target {
        // `call` + `reply_recv` between two processes; Linux's figure is a
        // pipe round trip between two processes.
        metric: "ipc_call_reply_round_trip",
        at_most: 500.0,
        linux_x64: 12_820.0,
        linux_arm: 14_207.0,
    },
    Target {
        // From the device raising the line to the first instruction of
        // the user-space handler the notification wakes.
        metric: "irq_to_user_handler",
        at_most: 1500.0,
        linux_x64: 0.0,
        linux_arm: 0.0,
    },
    Target {
        metric: "null_syscall",
        at_most: 100.0,
        linux_x64: 338.0,
        linux_arm: 164.0,
    },
    Target {
        metric: "thread_switch_yield",
        at_most: 500.0,
        linux_x64: 2100.0,
        linux_arm: 2100.0,
    },
    Target {
        metric: "anonymous_page_fault",
        at_most: 1500.0,
        linux_x64: 3300.0,
        linux_arm: 3300.0,
    },
    Target {
        // Under -icount shift=0 a nanosecond of guest time is one
        // instruction.
        metric: "boot_to_first_user_instruction",
        at_most: 2_000_000.0,
        linux_x64: 1_200_000_000.0,
        linux_arm: 1_200_000_000.0,
    },
];

/// Linux 6.1's in-kernel drivers on the same QEMU devices, in guest
/// instructions per request with idle time taken out (`O_DIRECT` on
/// /dev/vda, `cache=writeback`), per machine: x64-q35, x64-microvm,
/// arm-vexpress-a15. The target is half of Linux's figure, with the
/// drivers in user space.
const DEVICE_TARGETS: &[(&str, [f64; 3])] = &[
    ("blk_seq_read_64k", [28_300.0, 26_200.0, 33_400.0]),
    ("blk_seq_write_64k", [26_500.0, 24_500.0, 31_800.0]),
    ("blk_rand_read_4k", [19_400.0, 16_900.0, 19_200.0]),
    ("blk_rand_write_4k", [18_300.0, 17_700.0, 19_700.0]),
    ("udp_echo_64", [16_600.0, 17_400.0, 18_200.0]),
];

/// Linux's figure for a device metric on the machine a scope names.
fn device_linux(scope: &str, figures: &[f64; 3]) -> Option<f64> {
    let machine = scope.split(':').next()?;
    let index = ["x64-q35", "x64-microvm", "arm-vexpress-a15"]
        .iter()
        .position(|m| *m == machine)?;
    Some(figures[index])
}

/// One line per target and machine: the median against the target and
/// against Linux, as ratios from this run.
fn target_lines(results: &[Result_]) -> Vec<String> {
    let mut lines = Vec::new();
    for r in results.iter().filter(|r| r.unit == "instructions") {
        let Some((_, figures)) = DEVICE_TARGETS.iter().find(|(m, _)| *m == r.metric) else {
            continue;
        };
        let Some(linux) = device_linux(&r.machine, figures) else {
            continue;
        };
        let (median, target) = (r.stats.median, linux / 2.0);
        lines.push(format!(
            "target {} {} median={median} target={target} of_target={:.2} linux={linux} faster_than_linux={:.1}x {}",
            r.machine,
            r.metric,
            median / target,
            linux / median.max(1.0),
            if median <= target { "met" } else { "MISSED" }
        ));
    }
    for r in results {
        let Some(target) = TARGETS.iter().find(|t| t.metric == r.metric) else {
            continue;
        };
        // Instructions where the metric has them; the boot is in ns.
        if r.unit == "ns" && r.metric != "boot_to_first_user_instruction" {
            continue;
        }
        let linux = if r.machine.starts_with("arm") {
            target.linux_arm
        } else {
            target.linux_x64
        };
        let median = r.stats.median;
        let against_linux = if linux > 0.0 {
            format!(
                "linux={linux} faster_than_linux={:.1}x",
                linux / median.max(1.0)
            )
        } else {
            "linux=none".to_string()
        };
        lines.push(format!(
            "target {} {} median={median} target={} of_target={:.2} {against_linux} {}",
            r.machine,
            r.metric,
            target.at_most,
            median / target.at_most,
            if median <= target.at_most {
                "met"
            } else {
                "MISSED"
            }
        ));
    }
    // The headline is also judged against the machine's own null call.
    let median = |machine: &str, metric: &str| {
        results
            .iter()
            .find(|r| r.machine == machine && r.metric == metric && r.unit == "instructions")
            .map(|r| r.stats.median)
    };
    let mut machines: Vec<&str> = results.iter().map(|r| r.machine.as_str()).collect();
    machines.dedup();
    for machine in machines {
        if let (Some(round_trip), Some(null)) = (
            median(machine, "ipc_call_reply_round_trip"),
            median(machine, "null_syscall"),
        ) {
            let ratio = round_trip / null.max(1.0);
            lines.push(format!(
                "target {machine} ipc_round_trip_over_null_syscall ratio={ratio:.2} target={IPC_OVER_NULL_SYSCALL} {}",
                if ratio <= IPC_OVER_NULL_SYSCALL { "met" } else { "MISSED" }
            ));
        }
    }
    lines
}

/// The IPC round trip may cost at most this many null system calls.
const IPC_OVER_NULL_SYSCALL: f64 = 6.0;

/// Metrics whose cost must not grow with RAM.
const RAM_INDEPENDENT: [&str; 2] = ["frame_alloc_free", "frame_free_scattered"];

/// The RAM of the second boot of each architecture's default machine: as
/// much as the matrix tests (ARM's kernel uses the first 1 GiB of it).
fn scaling_ram_mib(arch: Arch) -> u64 {
    match arch {
        Arch::X64 => 4096,
        Arch::Arm => 2048,
    }
}

/// For each RAM-independent metric measured at a machine's test RAM and at
/// its scaling RAM: both medians, their ratio from this run, and the rate
/// in operations per second of guest time (one instruction is 1 ns under
/// icount).
fn scaling_lines(results: &[Result_]) -> Vec<String> {
    let mut lines = Vec::new();
    for arch in Arch::ALL {
        let machine = arch.default_machine();
        let small = Config::new(machine, machine.test_ram_mib());
        let large = Config::new(machine, scaling_ram_mib(arch));
        for metric in RAM_INDEPENDENT {
            let find = |config: &Config| {
                results
                    .iter()
                    .find(|r| r.machine == config.scope() && r.metric == metric)
                    .map(|r| r.stats.median.max(1.0))
            };
            let (Some(at_small), Some(at_large)) = (find(&small), find(&large)) else {
                continue;
            };
            lines.push(format!(
                "scaling {} {metric} ram={}M median={at_small} per_second={:.0} ram={}M median={at_large} per_second={:.0} ratio={:.2}",
                machine.name(),
                small.ram_mib,
                1e9 / at_small,
                large.ram_mib,
                1e9 / at_large,
                at_large / at_small
            ));
        }
    }
    lines
}

/// One metric of one machine.
pub struct Result_ {
    /// The configuration's name (`x64-q35`, `x64-microvm:4096M`).
    pub machine: String,
    pub metric: String,
    pub unit: String,
    pub stats: Stats,
}

/// Reads `kbench: metric NAME UNIT v1 v2 ...` (the kernel's metrics) or
/// `ubench: metric ...` (init's).
fn parse_metric(line: &str) -> Option<(String, String, Vec<u64>)> {
    let marker = ["kbench: metric ", "ubench: metric "]
        .into_iter()
        .find(|m| line.contains(m))?;
    let rest = &line[line.find(marker)? + marker.len()..];
    let mut words = rest.split_whitespace();
    let name = words.next()?.to_string();
    let unit = words.next()?.to_string();
    let values: Option<Vec<u64>> = words.map(|w| w.parse().ok()).collect();
    Some((name, unit, values?))
}

fn line(r: &Result_) -> String {
    let s = &r.stats;
    format!(
        "bench {} {} unit={} n={} min={} q1={} median={} mean={:.1} q3={} max={} stddev={:.1}",
        r.machine, r.metric, r.unit, s.n, s.min, s.q1, s.median, s.mean, s.q3, s.max, s.stddev
    )
}

fn json(results: &[Result_]) -> String {
    let mut out = String::from(
        "{\n  \"counter\": \"guest instructions (-icount shift=0)\",\n  \"results\": [\n",
    );
    for (i, r) in results.iter().enumerate() {
        let s = &r.stats;
        let _ = write!(
            out,
            "    {{\"machine\": \"{}\", \"metric\": \"{}\", \"unit\": \"{}\", \"n\": {}, \"min\": {}, \"q1\": {}, \"median\": {}, \"mean\": {}, \"q3\": {}, \"max\": {}, \"stddev\": {}}}",
            r.machine, r.metric, r.unit, s.n, s.min, s.q1, s.median, s.mean, s.q3, s.max, s.stddev
        );
        out.push_str(if i + 1 < results.len() { ",\n" } else { "\n" });
    }
    out.push_str("  ]\n}\n");
    out
}

/// Datagrams of the UDP echo benchmark, and their payload: as many as the
/// guest's side expects (`bench_devices::ECHOES` in init).
const ECHOES: usize = 64;
const ECHO_BYTES: usize = 64;

fn run_machine(config: &Config, kernel: &std::path::Path) -> Result<Vec<Result_>> {
    let machine = config.machine;
    let (peer, ports) = crate::net::Peer::bind(crate::net::VIRTIO_LINK)?;
    let mut config = config.clone();
    config.net = Some(ports);
    let config = &config;
    let mut args = config.qemu_args(kernel, "mode=bench", Console::Captured, false)?;
    // sleep=off: an idle CPU jumps to its next timer event rather than
    // waiting in host time, so idle stretches (and the boot figure) are the
    // same on every run.
    args.extend(["-icount", "shift=0,sleep=off"].map(String::from));
    if machine.arch() == Arch::X64 {
        // The RTC, whose periodic interrupt `irq_to_user_handler` uses,
        // then keeps guest time like every other device.
        args.extend(["-rtc", "clock=vm"].map(String::from));
    }
    step(format!("benchmarking {}", machine.name()));
    // The UDP echo benchmark: the guest says when it is ready (the host
    // learns its MAC and warms up, then types `start`) and when it counts
    // (the host sends the datagrams, then types `done`).
    // The prompts include the line ends: the script types as soon as its
    // prompt's text has arrived, and the host's part of each step runs
    // when the whole line has.
    let script = [
        qemu::Step {
            prompt: "ubench: udp-echo ready\r\n",
            text: "start\r",
        },
        qemu::Step {
            prompt: "ubench: udp-echo go\r\n",
            text: "done\r",
        },
    ];
    let mut mac = None;
    let mut echo_ns: Vec<u64> = Vec::new();
    let mut echo_error = None;
    let payload = [0x5au8; ECHO_BYTES];
    let boot = qemu::boot(
        machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |line| {
            if line.contains("ubench: udp-echo ready") {
                match peer.arp() {
                    Ok(found) => {
                        mac = Some(found);
                        for n in 0..5 {
                            let _ = peer.udp_echo(found, 41_000 + n, &payload);
                        }
                    }
                    Err(e) => echo_error = Some(e),
                }
            } else if line.contains("ubench: udp-echo go")
                && let Some(mac) = mac
            {
                std::thread::sleep(Duration::from_millis(20));
                for n in 0..ECHOES {
                    match peer.udp_echo(mac, 42_000 + n as u16, &payload) {
                        Ok(took) => echo_ns.push(took.as_nanos() as u64),
                        Err(e) => echo_error = Some(e),
                    }
                }
            }
        },
    )?;
    if let Some(e) = echo_error {
        println!("    udp echo on {}: {e}", machine.name());
        // What the guest's NIC counted, to tell lost frames from lost
        // replies.
        for line in boot.lines.iter().filter(|l| {
            l.contains("udp-echo") || l.contains("bench: end") || l.contains("kbench: begin")
        }) {
            println!("    | {line}");
        }
    }
    let finished = ["kbench: end", "ubench: end"]
        .iter()
        .all(|marker| boot.lines.iter().any(|l| l.contains(marker)));
    let exit = boot.status.and_then(|s| machine.arch().decode_exit(s));
    if !finished || exit != Some(kernel::exit_code::SUCCESS) {
        for line in boot.tail(20) {
            println!("    | {line}");
        }
        return Err(error!(
            "{}: the benchmark run did not finish (exit {exit:?})",
            machine.name()
        ));
    }
    let mut results = Vec::new();
    if let Some(stats) = stats(&echo_ns) {
        results.push(Result_ {
            machine: config.scope(),
            metric: "udp_echo_64_host_wall".into(),
            unit: "ns".into(),
            stats,
        });
    }
    for (metric, unit, samples) in boot.lines.iter().filter_map(|l| parse_metric(l)) {
        if let Some(stats) = stats(&samples) {
            results.push(Result_ {
                machine: config.scope(),
                metric,
                unit,
                stats,
            });
        }
    }
    step(format!(
        "{}: {} metrics in {}",
        machine.name(),
        results.len(),
        seconds(boot.elapsed)
    ));
    Ok(results)
}

pub fn run(options: &BenchOptions) -> Result<()> {
    let arches: Vec<Arch> = options.arch.map_or(Arch::ALL.to_vec(), |a| vec![a]);
    provision::ensure_rust_targets(&arches)?;
    provision::ensure_qemu(&arches)?;
    let mut results = Vec::new();
    for arch in arches {
        let kernel = kernel_image::build(arch, Profile::Release)?;
        for &machine in arch.machines() {
            let config = options.size.config(machine, machine.test_ram_mib());
            results.extend(run_machine(&config, &kernel)?);
        }
        if options.size == crate::machine::Size::default() {
            // The default machine again with much more RAM: what must not
            // depend on the amount of RAM is compared below.
            let machine = arch.default_machine();
            let config = Config::new(machine, scaling_ram_mib(arch));
            results.extend(run_machine(&config, &kernel)?);
            if arch == Arch::X64 {
                // q35 with qboot: the boot without SeaBIOS's time, the
                // kernel placing every PCI BAR.
                let mut config = Config::new(Machine::X64Q35, Machine::X64Q35.test_ram_mib());
                config.firmware = Some("qboot.rom");
                results.extend(run_machine(&config, &kernel)?);
            }
        }
    }
    for r in &results {
        println!("{}", line(r));
    }
    for line in target_lines(&results) {
        println!("{line}");
    }
    for line in scaling_lines(&results) {
        println!("{line}");
    }
    let dir = workspace().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.json");
    std::fs::write(&path, json(&results))?;
    step(format!(
        "wrote {}",
        path.strip_prefix(workspace()).unwrap_or(&path).display()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_known_samples() {
        let s = stats(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        assert_eq!(
            (s.n, s.min, s.q1, s.median, s.q3, s.max),
            (9, 1.0, 3.0, 5.0, 7.0, 9.0)
        );
        assert_eq!(s.mean, 5.0);
        assert!((s.stddev - 7.5f64.sqrt()).abs() < 1e-9);
        let one = stats(&[42]).unwrap();
        assert_eq!((one.median, one.stddev), (42.0, 0.0));
        assert_eq!(stats(&[]), None);
        // Interpolated quartiles.
        let s = stats(&[10, 20, 30, 40]).unwrap();
        assert_eq!((s.q1, s.median, s.q3), (17.5, 25.0, 32.5));
    }

    #[test]
    fn scaling_compares_the_same_metric_at_two_ram_sizes() {
        let result = |machine: &str, metric: &str, median: u64| Result_ {
            machine: machine.into(),
            metric: metric.into(),
            unit: "instructions".into(),
            stats: stats(&[median]).unwrap(),
        };
        let lines = scaling_lines(&[
            result("x64-microvm", "frame_free_scattered", 100),
            result("x64-microvm:4096M", "frame_free_scattered", 110),
            result("x64-microvm:4096M", "frame_alloc_free", 150),
        ]);
        assert_eq!(
            lines,
            [
                "scaling x64-microvm frame_free_scattered ram=128M median=100 per_second=10000000 ram=4096M median=110 per_second=9090909 ratio=1.10"
            ]
        );
    }

    #[test]
    fn reads_metric_lines_and_writes_json() {
        let (name, unit, values) =
            parse_metric("kbench: metric frame_alloc_free instructions 3 1 2").unwrap();
        assert_eq!(
            (name.as_str(), unit.as_str(), values),
            ("frame_alloc_free", "instructions", vec![3, 1, 2])
        );
        assert!(parse_metric("kbench: metric broken instructions 1 x").is_none());
        let r = Result_ {
            machine: "x64-q35".into(),
            metric: name,
            unit,
            stats: stats(&[3, 1, 2]).unwrap(),
        };
        assert_eq!(
            line(&r),
            "bench x64-q35 frame_alloc_free unit=instructions n=3 min=1 q1=1.5 median=2 mean=2.0 q3=2.5 max=3 stddev=1.0"
        );
        let text = json(&[r]);
        assert!(text.contains("\"metric\": \"frame_alloc_free\""));
        assert!(text.contains("\"q1\": 1.5"));
    }
}
