//! `cargo xtask test`: lint and host unit tests, then the suites on every
//! machine and the boot matrix, one line per test and a final tally. Each
//! kind of check has a module: `host` (lint, unit tests), `suite` (the
//! in-kernel and user-level suites), `shell`, `disk` (the block device
//! seen from the host), `net` (the network, from the host), `crash` (boots that must end a given way) and
//! `memmap`.

mod crash;
mod disk;
mod host;
mod memmap;
mod net;
mod shell;
mod suite;

use crash::{boot_ends, crash_reports, exit_round_trip};
use host::{host_tests, lint};
use memmap::memmap_check;
use shell::shell_session;
use shell::{shell_answers, typed_ahead_input};
use suite::{INPUT_LINE, INPUT_PROMPT, fault_reports, suite_boot};

use crate::cli::TestOptions;
use crate::kernel_image::{self, workspace};
use crate::machine::{Arch, Config, Console};
use crate::matrix::{self, Check};
use crate::{Result, provision, qemu, seconds, step};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A test boot takes well under a second under TCG; this allows for a
/// heavily loaded machine while still catching hangs.
pub(super) const BOOT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Output lines shown when a machine fails.
pub(super) const FAILURE_CONTEXT_LINES: usize = 30;

#[derive(Default)]
pub struct Tally {
    pub(super) passed: usize,
    pub(super) failed: usize,
    pub(super) skipped: usize,
}

impl Tally {
    /// A test that could not run on this machine, with the reason.
    pub(super) fn skip(&mut self, scope: &str, name: &str, reason: &str) {
        println!("  skip  {scope:<17} {name}: {reason}");
        self.skipped += 1;
    }

    pub fn record(&mut self, ok: bool, scope: &str, name: &str, detail: &str) {
        let (mark, separator) = if ok { ("ok  ", " ") } else { ("FAIL", ": ") };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("{separator}{detail}")
        };
        println!("  {mark}  {scope:<17} {name}{detail}");
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
        }
    }
}

pub fn run(options: &TestOptions) -> Result<bool> {
    let started = Instant::now();
    let arches: Vec<Arch> = options.arch.map_or(Arch::ALL.to_vec(), |a| vec![a]);
    provision::ensure_rust_targets(&arches)?;
    provision::ensure_qemu(&arches)?;
    crate::lint::ensure_components()?;
    let mut tally = Tally::default();
    lint(&mut tally)?;
    host_tests(&mut tally)?;
    for document in crate::docs::documents() {
        let result = crate::docs::check(&document);
        let detail = result.as_ref().err().cloned().unwrap_or_default();
        tally.record(
            result.is_ok(),
            "docs",
            &format!("{} matches the code", document.name()),
            &detail,
        );
    }
    for arch in arches {
        let kernel = match kernel_image::build(arch, options.profile) {
            Ok(kernel) => kernel,
            Err(e) => {
                tally.record(false, arch.name(), "kernel builds", &e.to_string());
                continue;
            }
        };
        let points = if options.matrix {
            matrix::full_points(arch)?
        } else {
            for &machine in arch.machines() {
                let config = options.size.config(machine, machine.test_ram_mib());
                machine_tests(&config, &kernel, &mut tally)?;
            }
            // A chosen size replaces the matrix.
            if options.size == crate::machine::Size::default() {
                matrix::default_points(arch)?
            } else {
                Vec::new()
            }
        };
        let started = Instant::now();
        let before = (tally.passed, tally.failed);
        for point in &points {
            matrix_point(point, &kernel, &mut tally)?;
        }
        if !points.is_empty() {
            step(format!(
                "{} boot matrix: {} points, {} passed, {} failed in {}",
                arch.name(),
                points.len(),
                tally.passed - before.0,
                tally.failed - before.1,
                seconds(started.elapsed())
            ));
        }
    }
    step(format!(
        "all tests finished in {}",
        seconds(started.elapsed())
    ));
    println!(
        "{} passed, {} failed, {} skipped",
        tally.passed, tally.failed, tally.skipped
    );
    Ok(tally.failed == 0)
}

pub(super) fn boot_args(config: &Config, kernel: &Path, cmdline: &str) -> Result<Vec<String>> {
    config.qemu_args(kernel, cmdline, Console::Captured, false)
}

pub(super) fn show_failure_context(boot: &qemu::Boot) {
    println!("    guest output (last {FAILURE_CONTEXT_LINES} lines):");
    for line in boot.tail(FAILURE_CONTEXT_LINES) {
        println!("    | {line}");
    }
    for line in boot.stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("    | qemu: {line}");
    }
}

/// Boots `config` with `args` and no typing; returns the boot and the
/// kernel's exit status, if it set one.
pub(super) fn unscripted_boot(
    config: &Config,
    args: &[impl AsRef<std::ffi::OsStr>],
) -> Result<(qemu::Boot, Option<u8>)> {
    let arch = config.machine.arch();
    let boot = qemu::boot(arch.qemu_binary(), args, BOOT_TIME_LIMIT, &[], |_| {})?;
    let exit = boot.status.and_then(|s| arch.decode_exit(s));
    Ok((boot, exit))
}

/// Why a boot did not end with a kernel-chosen status, if it did not.
pub(super) fn abnormal_end(arch: Arch, boot: &qemu::Boot) -> Option<String> {
    if boot.timed_out {
        return Some(format!(
            "no exit within {} s: the guest hung",
            BOOT_TIME_LIMIT.as_secs()
        ));
    }
    match boot.status {
        None => Some("QEMU was killed by a signal".into()),
        Some(status) => match arch.decode_exit(status) {
            None => Some(format!(
                "QEMU exited with status {status}, not through the kernel's exit path"
            )),
            Some(_) => None,
        },
    }
}

fn machine_tests(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let before = (tally.passed, tally.failed);
    let mut elapsed = suites(config, kernel, tally)?;
    elapsed += typed_ahead_input(config, tally)?;
    elapsed += disk::block_data_survives_a_reboot(config, kernel, tally)?;
    elapsed += disk::acknowledged_writes_survive_a_kill(config, kernel, DURABILITY_RUNS, tally)?;
    elapsed += net::network_answers(config, kernel, tally)?;
    elapsed += shell::supervision_from_the_shell(config, kernel, tally)?;
    elapsed += fuzz_check(config, kernel, tally)?;
    elapsed += memmap_check(config, kernel, tally);
    exit_round_trip(config, kernel, tally)?;
    crash_reports(config, kernel, tally)?;
    step(format!(
        "{}: {} passed, {} failed in {} (test boots)",
        config.scope(),
        tally.passed - before.0,
        tally.failed - before.1,
        seconds(elapsed)
    ));
    Ok(())
}

/// Times a test run kills each machine after acknowledged writes.
const DURABILITY_RUNS: u32 = 20;

/// System calls a test run fuzzes per machine (`cargo xtask fuzz` runs
/// more).
const FUZZ_CALLS: u64 = 20_000;

/// A short run of the system-call fuzzer from a fresh seed (printed, so a
/// failure can be repeated): no panic, no hang, no memory lost.
fn fuzz_check(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<Duration> {
    let scope = config.scope();
    let seed = crate::fuzz::fresh_seed();
    step(format!(
        "fuzzing {scope}: {FUZZ_CALLS} system calls from seed {seed}"
    ));
    let outcome = crate::fuzz::fuzz_boot(config, kernel, seed, FUZZ_CALLS)?;
    let passed = outcome.passed();
    let detail = match passed {
        true => String::new(),
        false => format!("{} (seed {seed})", outcome.problem()),
    };
    tally.record(
        passed,
        &scope,
        "fuzz::system_calls_leave_the_kernel_whole",
        &detail,
    );
    if !passed {
        println!("    guest output (last 30 lines):");
        for line in &outcome.tail {
            println!("    | {line}");
        }
    }
    Ok(outcome.elapsed)
}

/// One point of the boot matrix.
fn matrix_point(point: &matrix::Point, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let config = &point.config;
    match &point.check {
        Check::Suites { memmap } => {
            suites(config, kernel, tally)?;
            if *memmap {
                memmap_check(config, kernel, tally);
            }
        }
        Check::Shell { banner } => shell_answers(config, kernel, banner, tally)?,
        Check::Ends {
            cmdline,
            status,
            output,
        } => boot_ends(config, kernel, cmdline, *status, output, tally)?,
        Check::Survives { allowed } => crash::boot_survives(config, kernel, allowed, tally)?,
    }
    Ok(())
}

/// The in-kernel suite, the user-level suite and the shell session at
/// `config`; returns the time the boots took.
fn suites(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<Duration> {
    let machine = config.machine;
    let scope = config.scope();
    let ram = config.ram_mib;
    step(format!(
        "booting {scope} ({}) for the in-kernel tests",
        config.describe()
    ));
    let unix_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let cmdline = format!(
        "mode=test test.ram_mib={ram} test.machine={} test.unix_time={unix_time} test.input={INPUT_LINE}",
        machine.qemu_name()
    );
    let typed = format!("{INPUT_LINE}\r");
    let typing = [qemu::Step {
        prompt: INPUT_PROMPT,
        text: &typed,
    }];
    let boot = suite_boot(config, kernel, &cmdline, &typing, "ktest: ", "", tally)?;
    let banner = boot
        .lines
        .iter()
        .any(|l| l.starts_with("Ferrite ") && l.contains(machine.qemu_name()));
    tally.record(banner, &scope, "console::banner_reaches_host", "");
    let mut elapsed = boot.elapsed;

    step(format!("booting {scope} for the user-level tests"));
    let boot = suite_boot(
        config,
        kernel,
        "mode=user-test",
        &[],
        "utest: ",
        "user::",
        tally,
    )?;
    fault_reports(&scope, &boot, tally);
    elapsed += boot.elapsed;
    elapsed += shell_session(config, kernel, tally)?;
    Ok(elapsed)
}
