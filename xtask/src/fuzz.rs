//! `cargo xtask fuzz`: boots a machine in the kernel's fuzz mode, where
//! init runs the system-call fuzzer (`user/programs/src/bin/fuzz.rs`) and
//! then checks that every frame and heap byte came back. The run passes if
//! the machine ends with success: no kernel panic (status 2), no hang (the
//! time limit), no memory lost (init's `fuzz: LEAK` and status 1).

use crate::cli::FuzzOptions;
use crate::machine::{Config, Console};
use crate::{Result, kernel_image, provision, qemu, seconds, step};
use std::path::Path;
use std::time::Duration;

/// What one fuzzing boot found.
pub struct Outcome {
    /// The kernel's exit status, if it set one.
    pub exit: Option<u8>,
    pub timed_out: bool,
    /// Init's and the fuzzer's summary lines (`fuzz: ...`).
    pub summary: Vec<String>,
    /// The guest's last lines, for a report.
    pub tail: Vec<String>,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.exit == Some(kernel::exit_code::SUCCESS) && !self.timed_out
    }

    /// Why it failed, in a line.
    pub fn problem(&self) -> String {
        match (self.timed_out, self.exit) {
            (true, _) => "the machine hung (no exit within the time limit)".into(),
            (_, Some(kernel::exit_code::PANIC)) => "the kernel panicked".into(),
            (_, Some(code)) if code != kernel::exit_code::SUCCESS => format!(
                "ended with status {code} ({}): {}",
                kernel::exit_code::name(code),
                self.summary.last().map_or("", String::as_str)
            ),
            (_, None) => "QEMU ended without the kernel's exit status".into(),
            _ => String::new(),
        }
    }
}

/// A time limit for `calls` calls: the fuzzer makes some thousands a
/// second under emulation, and workers that block are killed after 0.3 s.
fn time_limit(calls: u64) -> Duration {
    Duration::from_secs(120 + calls / 500)
}

/// Boots `config` to fuzz `calls` system calls from `seed`.
pub fn fuzz_boot(config: &Config, kernel: &Path, seed: u64, calls: u64) -> Result<Outcome> {
    let cmdline = format!("mode=fuzz init.fuzz.seed={seed} init.fuzz.calls={calls}");
    let args = config.qemu_args(kernel, &cmdline, Console::Captured, false)?;
    let arch = config.machine.arch();
    let boot = qemu::boot(arch.qemu_binary(), &args, time_limit(calls), &[], |_| {})?;
    let summary = boot
        .lines
        .iter()
        .filter_map(|l| l.find("fuzz: ").map(|at| l[at..].to_string()))
        .collect();
    Ok(Outcome {
        exit: boot.status.and_then(|s| arch.decode_exit(s)),
        timed_out: boot.timed_out,
        summary,
        tail: boot.tail(30).to_vec(),
        elapsed: boot.elapsed,
    })
}

/// A seed from the clock, for runs that do not choose one.
pub fn fresh_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
}

pub fn run(options: &FuzzOptions) -> Result<bool> {
    let machine = options.machine;
    provision::ensure_qemu(&[machine.arch()])?;
    let kernel = kernel_image::build(machine.arch(), options.profile)?;
    let config = options.size.config(machine, machine.test_ram_mib());
    let seed = options.seed.unwrap_or_else(fresh_seed);
    step(format!(
        "fuzzing {} with {} system calls from seed {seed}",
        config.scope(),
        options.iterations
    ));
    let outcome = fuzz_boot(&config, &kernel, seed, options.iterations)?;
    for line in &outcome.summary {
        println!("{line}");
    }
    let passed = outcome.passed();
    if passed {
        step(format!(
            "{}: no panic, no hang, no memory lost in {}",
            config.scope(),
            seconds(outcome.elapsed)
        ));
    } else {
        step(format!(
            "{}: {} (seed {seed}; `cargo xtask fuzz --arch {} --machine {} --iterations {} --seed {seed}` repeats it)",
            config.scope(),
            outcome.problem(),
            machine.arch().name(),
            machine.qemu_name(),
            options.iterations
        ));
        for line in &outcome.tail {
            println!("    | {line}");
        }
    }
    Ok(passed)
}
