//! `cargo xtask test`: host unit tests, then the in-kernel suite on every
//! machine, one line per test and per machine, and a final tally.

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
const BOOT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Packages whose unit tests run on the host, and which of their targets.
const HOST_TEST_PACKAGES: [(&str, &str); 7] = [
    ("hal", "--lib"),
    ("abi", "--lib"),
    ("kernel", "--lib"),
    ("drivers", "--lib"),
    ("arch-x86_64", "--lib"),
    ("arch-armv7", "--lib"),
    ("xtask", "--bins"),
];

/// Output lines shown when a machine fails.
const FAILURE_CONTEXT_LINES: usize = 30;

/// What the kernel prints when it wants the host to type, and what the host
/// types (a line, checked by the console input test).
const INPUT_PROMPT: &str = "ktest: input please";
const INPUT_LINE: &str = "ferrite-typed-input";

/// The exit code the round-trip check asks the kernel for.
const ROUND_TRIP_CODE: u8 = 42;

#[derive(Default)]
pub struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    /// A test that could not run on this machine, with the reason.
    fn skip(&mut self, scope: &str, name: &str, reason: &str) {
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
            if options.size == crate::cli::Size::default() {
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

fn lint(tally: &mut Tally) -> Result<()> {
    let started = Instant::now();
    step("lint: rustfmt and clippy");
    for check in crate::lint::checks() {
        let output = crate::lint::run_check(&check)?;
        let ok = output.status.success();
        tally.record(ok, "lint", &check.name, "");
        if !ok {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            for line in text.lines().take(60) {
                println!("    | {line}");
            }
        }
    }
    step(format!("lint finished in {}", seconds(started.elapsed())));
    Ok(())
}

/// The result of one libtest line, `test name ... ok`.
fn parse_libtest_line(line: &str) -> Option<(&str, bool)> {
    let rest = line.strip_prefix("test ")?;
    let (name, verdict) = rest.rsplit_once(" ... ")?;
    match verdict.trim() {
        "ok" => Some((name, true)),
        "FAILED" => Some((name, false)),
        _ => None, // ignored tests and benches are not results
    }
}

fn host_tests(tally: &mut Tally) -> Result<()> {
    let started = Instant::now();
    step("host unit tests");
    let before = (tally.passed, tally.failed);
    for (package, target) in HOST_TEST_PACKAGES {
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args(["test", "--package", package, target])
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut results = 0;
        for (name, ok) in stdout.lines().filter_map(parse_libtest_line) {
            tally.record(ok, &format!("host {package}"), name, "");
            results += 1;
        }
        if !output.status.success() && results == 0 {
            // It did not get as far as running tests: show why.
            let stderr = String::from_utf8_lossy(&output.stderr);
            tally.record(
                false,
                &format!("host {package}"),
                "unit tests build and run",
                "",
            );
            for line in stderr
                .lines()
                .rev()
                .take(FAILURE_CONTEXT_LINES)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                println!("    | {line}");
            }
        } else if !output.status.success() {
            for line in stdout.lines().skip_while(|l| !l.starts_with("failures:")) {
                println!("    | {line}");
            }
        }
    }
    step(format!(
        "host: {} passed, {} failed in {}",
        tally.passed - before.0,
        tally.failed - before.1,
        seconds(started.elapsed())
    ));
    Ok(())
}

/// Events of the kernel's test protocol (see `kernel::ktest`).
#[derive(Debug, PartialEq, Eq)]
enum SuiteEvent<'a> {
    Begin(usize),
    Pass { name: &'a str, time: &'a str },
    Fail { name: &'a str, message: &'a str },
    Skip { name: &'a str, reason: &'a str },
    End { results: usize },
}

/// Reads a protocol line. The marker may follow other bytes on the line: a
/// device test that misbehaves can leave stray bytes on the console.
fn parse_suite_line<'a>(line: &'a str, marker: &str) -> Option<SuiteEvent<'a>> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let (word, rest) = rest.split_once(' ')?;
    match word {
        "begin" => rest.trim().parse().ok().map(SuiteEvent::Begin),
        "pass" => {
            let (name, time) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(SuiteEvent::Pass { name, time })
        }
        "fail" => {
            let (name, message) = rest.split_once(": ").unwrap_or((rest, ""));
            Some(SuiteEvent::Fail { name, message })
        }
        "skip" => {
            let (name, reason) = rest.split_once(": ").unwrap_or((rest, ""));
            Some(SuiteEvent::Skip { name, reason })
        }
        "end" => {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let count = |n: &str| n.parse::<usize>().ok();
            let results = match words.as_slice() {
                [passed, "passed", failed, "failed"] => count(passed)? + count(failed)?,
                [passed, "passed", failed, "failed", skipped, "skipped"] => {
                    count(passed)? + count(failed)? + count(skipped)?
                }
                _ => return None,
            };
            Some(SuiteEvent::End { results })
        }
        _ => None,
    }
}

fn boot_args(config: &Config, kernel: &Path, cmdline: &str) -> Result<Vec<String>> {
    config.qemu_args(kernel, cmdline, Console::Captured, false)
}

fn show_failure_context(boot: &qemu::Boot) {
    println!("    guest output (last {FAILURE_CONTEXT_LINES} lines):");
    for line in boot.tail(FAILURE_CONTEXT_LINES) {
        println!("    | {line}");
    }
    for line in boot.stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("    | qemu: {line}");
    }
}

/// Why a boot did not end with a kernel-chosen status, if it did not.
fn abnormal_end(arch: Arch, boot: &qemu::Boot) -> Option<String> {
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

/// Lines piped into `cargo xtask run` before the guest starts: more than
/// the kernel's 256-byte input ring, a nested shell left with `exit`, and
/// `poweroff`.
fn typed_ahead_script() -> String {
    let mut script = String::from("help\r");
    for n in 0..BURST_LINES {
        script.push_str(&format!("echo burst-{n:02} {}\r", "-".repeat(24)));
    }
    script.push_str("run sh\rexit 7\rpoweroff\r");
    script
}

const BURST_LINES: usize = 16;

/// Runs `cargo xtask run` as a user would, with its input piped in before
/// the shell prompts, and checks that every line was answered.
fn typed_ahead_input(config: &Config, tally: &mut Tally) -> Result<Duration> {
    let machine = config.machine;
    let scope = config.scope();
    step(format!("piping commands into `cargo xtask run` on {scope}"));
    let script = typed_ahead_script();
    let xtask = std::env::current_exe()?;
    let args = [
        "run",
        "--arch",
        machine.arch().name(),
        "--machine",
        machine.qemu_name(),
    ];
    let typing = [qemu::Step {
        prompt: "",
        text: &script,
    }];
    let boot = qemu::boot(
        &xtask.display().to_string(),
        &args,
        BOOT_TIME_LIMIT,
        &typing,
        |_| {},
    )?;
    let has = |pattern: &str| boot.lines.iter().any(|l| matches_pattern(l, pattern));
    let mut missing: Vec<String> = ["commands:", "[process * (sh) exited with status 7]"]
        .iter()
        .map(|p| p.to_string())
        .chain((0..BURST_LINES).map(|n| format!("burst-{n:02} {}", "-".repeat(24))))
        .filter(|p| !has(p))
        .collect();
    if !has("ferrite: powered off by process 2 with status 0") {
        missing.push("the outer shell's poweroff".into());
    }
    let detail = if boot.timed_out {
        format!(
            "no exit within {} s; missing {missing:?}",
            BOOT_TIME_LIMIT.as_secs()
        )
    } else if missing.is_empty() {
        String::new()
    } else {
        format!("no answer for {missing:?}")
    };
    tally.record(
        detail.is_empty(),
        &scope,
        "console::input_typed_before_the_prompt_is_kept",
        &detail,
    );
    if !detail.is_empty() {
        show_failure_context(&boot);
    }
    Ok(boot.elapsed)
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
    }
    Ok(())
}

/// Boots in run mode, checks the banner, asks the shell for the uptime and
/// powers off.
fn shell_answers(config: &Config, kernel: &Path, banner: &str, tally: &mut Tally) -> Result<()> {
    let scope = config.scope();
    step(format!(
        "booting {scope} ({}) to the shell",
        config.describe()
    ));
    let args = boot_args(config, kernel, "mode=run")?;
    let script = [
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "uptime\r",
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "poweroff\r",
        },
    ];
    let boot = qemu::boot(
        config.machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |_| {},
    )?;
    let has = |pattern: &str| boot.lines.iter().any(|l| matches_pattern(l, pattern));
    let exit = boot
        .status
        .and_then(|s| config.machine.arch().decode_exit(s));
    let detail = if let Some(reason) = abnormal_end(config.machine.arch(), &boot) {
        reason
    } else if !has(banner) {
        format!("no line like {banner:?}")
    } else if !has("up *.* s, 2 processes, * threads") {
        "the shell did not answer `uptime`".into()
    } else if exit != Some(kernel::exit_code::SUCCESS) {
        format!("ended with {exit:?} after poweroff")
    } else {
        String::new()
    };
    tally.record(
        detail.is_empty(),
        &scope,
        "boot::reaches_the_shell",
        &detail,
    );
    if !detail.is_empty() {
        show_failure_context(&boot);
    }
    Ok(())
}

/// Boots with `cmdline` and checks the exit status and one line.
fn boot_ends(
    config: &Config,
    kernel: &Path,
    cmdline: &std::ffi::OsStr,
    status: u8,
    output: &str,
    tally: &mut Tally,
) -> Result<()> {
    let scope = config.scope();
    let shown: String = cmdline.to_string_lossy().chars().take(40).collect();
    step(format!(
        "booting {scope} ({}) with command line {shown:?}... ({} bytes)",
        config.describe(),
        cmdline.len()
    ));
    let mut args: Vec<std::ffi::OsString> = boot_args(config, kernel, "")?
        .into_iter()
        .map(Into::into)
        .collect();
    if let Some(at) = args.iter().position(|a| a == "-append") {
        args[at + 1] = cmdline.to_owned();
    }
    let boot = qemu::boot(
        config.machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &[],
        |_| {},
    )?;
    let exit = boot
        .status
        .and_then(|s| config.machine.arch().decode_exit(s));
    let detail = if let Some(reason) = abnormal_end(config.machine.arch(), &boot) {
        reason
    } else if exit != Some(status) {
        format!(
            "ended with {}, not {} ({status})",
            exit.map_or("no status".into(), |e| format!(
                "{} ({e})",
                kernel::exit_code::name(e)
            )),
            kernel::exit_code::name(status)
        )
    } else if !boot.lines.iter().any(|l| l.contains(output)) {
        format!("no line containing {output:?}")
    } else {
        String::new()
    };
    let name =
        if status == kernel::exit_code::BOOT_FAILURE || status == kernel::exit_code::BAD_CMDLINE {
            "boot::refuses_with_a_reason"
        } else {
            "boot::ends_as_asked"
        };
    tally.record(detail.is_empty(), &scope, name, &detail);
    if !detail.is_empty() {
        show_failure_context(&boot);
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

/// Boots with `cmdline` and records the results of the test suite that
/// prints `marker` lines, prefixing test names with `prefix`; the suite
/// must run to completion and the machine end with success or "tests
/// failed".
fn suite_boot(
    config: &Config,
    kernel: &Path,
    cmdline: &str,
    script: &[qemu::Step<'_>],
    marker: &str,
    prefix: &str,
    tally: &mut Tally,
) -> Result<qemu::Boot> {
    let before_failed = tally.failed;
    let machine = config.machine;
    let scope = &config.scope();
    let at_default = *config == Config::new(machine, machine.test_ram_mib());
    let args = boot_args(config, kernel, cmdline)?;
    let mut announced = None;
    let mut end = None;
    let mut results = 0;
    let boot = qemu::boot(
        machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        script,
        |line| match parse_suite_line(line, marker) {
            Some(SuiteEvent::Begin(n)) => announced = Some(n),
            Some(SuiteEvent::Pass { name, time }) => {
                results += 1;
                tally.record(
                    true,
                    scope,
                    &format!("{prefix}{name}"),
                    &format!("({time})"),
                );
            }
            Some(SuiteEvent::Fail { name, message }) => {
                results += 1;
                tally.record(false, scope, &format!("{prefix}{name}"), message);
            }
            Some(SuiteEvent::Skip { name, reason }) => {
                results += 1;
                if at_default {
                    // The default configurations have everything the
                    // tests check: a skip there hides a fault.
                    tally.record(
                        false,
                        scope,
                        &format!("{prefix}{name}"),
                        &format!("skipped on the default configuration: {reason}"),
                    );
                } else {
                    tally.skip(scope, &format!("{prefix}{name}"), reason);
                }
            }
            Some(SuiteEvent::End { results }) => end = Some(results),
            None => {}
        },
    )?;
    let exit = boot.status.and_then(|s| machine.arch().decode_exit(s));
    let problem = if let Some(reason) = abnormal_end(machine.arch(), &boot) {
        Some(reason)
    } else if exit == Some(kernel::exit_code::PANIC) {
        Some("the kernel panicked".into())
    } else if announced.is_none() || end != announced || end != Some(results) {
        Some(format!(
            "suite incomplete: {results} results, {announced:?} announced, {end:?} at the end (exit: {})",
            exit.map_or("none", kernel::exit_code::name)
        ))
    } else if exit != Some(kernel::exit_code::SUCCESS)
        && exit != Some(kernel::exit_code::TESTS_FAILED)
    {
        Some(format!(
            "ended with {}",
            exit.map_or("no status", kernel::exit_code::name)
        ))
    } else {
        None
    };
    if let Some(problem) = &problem {
        tally.record(
            false,
            scope,
            &format!("{prefix}suite runs to completion"),
            problem,
        );
    }
    if problem.is_some() || tally.failed > before_failed {
        show_failure_context(&boot);
    }
    Ok(boot)
}

/// Every process the kernel killed in the user-level suite was reported
/// on the console with its id, name, fault and addresses.
fn fault_reports(scope: &str, boot: &qemu::Boot, tally: &mut Tally) {
    let reports: Vec<&String> = boot
        .lines
        .iter()
        .filter(|l| l.contains(" killed: "))
        .collect();
    let malformed: Vec<&&String> = reports
        .iter()
        .filter(|l| !is_kill_report(l, "probe"))
        .collect();
    // Six fault kinds kill on both architectures (division by zero only
    // traps on x86_64), and the memory test kills three more probes.
    let detail = if reports.len() < 9 {
        format!("{} kill reports, expected at least 9", reports.len())
    } else if let Some(line) = malformed.first() {
        format!("report lacks process, fault or address: {line:?}")
    } else {
        String::new()
    };
    tally.record(
        detail.is_empty(),
        scope,
        "user::kills_are_reported_with_process_fault_and_address",
        &detail,
    );
}

/// Whether `line` is the kernel's report of killing process `name`:
/// `ferrite: process N (name) killed: CAUSE: FAULT ... at pc 0x...`.
fn is_kill_report(line: &str, name: &str) -> bool {
    let Some(rest) = line.strip_prefix("ferrite: process ") else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(' ') else {
        return false;
    };
    pid.parse::<u32>().is_ok()
        && rest.starts_with(&format!("({name}) killed: "))
        && rest.contains(" at pc 0x")
}

/// What the shell session types, one command per prompt, and what each
/// must print. The commands run in order; `poweroff` ends the machine.
const SHELL_PROMPT: &str = "ferrite> ";

struct ShellCheck {
    name: &'static str,
    typed: &'static str,
    /// Output lines that must appear, each as a whole line or (with a
    /// trailing `*`) as a line's start.
    expected: &'static [&'static str],
}

const SHELL_CHECKS: &[ShellCheck] = &[
    ShellCheck {
        name: "shell::help_lists_commands_and_programs",
        typed: "help\r",
        expected: &[
            "commands:",
            "  run PROGRAM [ARGS]*",
            "programs for run: *hello*",
        ],
    },
    ShellCheck {
        name: "shell::echo_prints_its_arguments",
        typed: "echo hello from the host\r",
        expected: &["hello from the host"],
    },
    ShellCheck {
        name: "shell::backspace_edits_the_line",
        typed: "ecx\x7fho edi\x08ited\r",
        expected: &["edited"],
    },
    ShellCheck {
        name: "shell::ps_lists_init_and_the_shell",
        typed: "ps\r",
        expected: &[
            "  PID  PPID STATE*",
            "    1     0 blocked*init",
            "    2     1 running*sh",
        ],
    },
    ShellCheck {
        name: "shell::mem_reports_frames_and_heap",
        typed: "mem\r",
        expected: &[
            "frames: * KiB free of * KiB*",
            "kernel heap: * KiB used of * KiB",
        ],
    },
    ShellCheck {
        name: "shell::uptime_reports_time_and_counts",
        typed: "uptime\r",
        expected: &["up *.* s, 2 processes, 4 threads"],
    },
    ShellCheck {
        name: "shell::irqs_counts_timer_and_console",
        typed: "irqs\r",
        expected: &["  IRQ      COUNT NAME", "* timer", "* console"],
    },
    ShellCheck {
        name: "shell::unknown_command_is_explained",
        typed: "frobnicate now\r",
        expected: &["sh: unknown command: frobnicate (type help for the list)"],
    },
    ShellCheck {
        name: "shell::run_starts_a_program",
        typed: "run hello from xtask\r",
        expected: &["hello from process 3 from xtask"],
    },
    ShellCheck {
        name: "shell::run_reports_a_killed_program",
        typed: "run probe fault null-read\r",
        expected: &["[process 4 (probe) killed: page not mapped at 0x0 (pc 0x*)]"],
    },
    ShellCheck {
        name: "shell::missing_program_is_explained",
        typed: "run nonesuch\r",
        expected: &["run: nonesuch: not found"],
    },
    ShellCheck {
        name: "shell::poweroff_ends_the_machine",
        typed: "poweroff\r",
        expected: &["ferrite: powered off by process 2 with status 0"],
    },
];

/// Inspects the running machine's page tables from the host and checks
/// them against the layout.
fn memmap_check(config: &Config, kernel: &Path, tally: &mut Tally) -> Duration {
    let scope = &config.scope();
    step(format!("booting {scope} to inspect its page tables"));
    let started = Instant::now();
    match crate::memmap::inspect(config, kernel) {
        Ok(inspection) => {
            let detail = match inspection.problems.as_slice() {
                [] => String::new(),
                problems => {
                    for problem in problems {
                        println!("    | {problem}");
                    }
                    format!(
                        "{} mismatch(es); the first: {}",
                        problems.len(),
                        problems[0]
                    )
                }
            };
            tally.record(
                detail.is_empty(),
                scope,
                "memmap::live_tables_match_the_layout",
                &detail,
            );
            let names: Vec<&str> = inspection
                .processes
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            let inspected = names.iter().any(|n| n.ends_with("(init)"))
                && names.iter().any(|n| n.ends_with("(sh)"))
                && inspection.processes.iter().all(|p| !p.user.is_empty());
            tally.record(
                inspected,
                scope,
                "memmap::init_and_the_shell_are_inspected",
                &if inspected {
                    String::new()
                } else {
                    format!("processes found: {names:?}")
                },
            );
        }
        Err(e) => tally.record(
            false,
            scope,
            "memmap::live_tables_match_the_layout",
            &e.to_string(),
        ),
    }
    started.elapsed()
}

/// Whether `line` matches `pattern`, where `*` stands for any text.
fn matches_pattern(line: &str, pattern: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Boots in run mode and drives the shell over the serial console.
fn shell_session(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<Duration> {
    let machine = config.machine;
    let scope = &config.scope();
    step(format!("booting {scope} to drive the shell"));
    let args = boot_args(config, kernel, "mode=run")?;
    let script: Vec<qemu::Step<'_>> = SHELL_CHECKS
        .iter()
        .map(|c| qemu::Step {
            prompt: SHELL_PROMPT,
            text: c.typed,
        })
        .collect();
    let boot = qemu::boot(
        machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |_| {},
    )?;
    // The output of each command runs from its prompt line to the next.
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in &boot.lines {
        if line.starts_with(SHELL_PROMPT) {
            sections.push(Vec::new());
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    let mut failed = false;
    for (n, check) in SHELL_CHECKS.iter().enumerate() {
        let output = sections.get(n).map(Vec::as_slice).unwrap_or(&[]);
        let missing: Vec<&str> = check
            .expected
            .iter()
            .copied()
            .filter(|p| !output.iter().any(|l| matches_pattern(l, p)))
            .collect();
        let detail = if n >= boot.typed {
            "never prompted for this command".to_string()
        } else if missing.is_empty() {
            String::new()
        } else {
            format!("no line like {missing:?} in {output:?}")
        };
        failed |= !detail.is_empty();
        tally.record(detail.is_empty(), scope, check.name, &detail);
    }
    let exit = boot.status.and_then(|s| machine.arch().decode_exit(s));
    let ended = exit == Some(kernel::exit_code::SUCCESS);
    tally.record(
        ended,
        scope,
        "shell::session_ends_with_success",
        &if ended {
            String::new()
        } else {
            abnormal_end(machine.arch(), &boot).unwrap_or_else(|| format!("ended with {exit:?}"))
        },
    );
    if failed || !ended {
        show_failure_context(&boot);
    }
    Ok(boot.elapsed)
}

/// What each deliberate kernel fault's report must contain, per
/// architecture: the exception, the registers the issue asks for, and the
/// panic line with its location.
fn crash_markers(arch: Arch, kind: &str) -> &'static [&'static str] {
    match (arch, kind) {
        (Arch::X64, "page-fault") => &[
            "#PF page fault",
            "cr2 0x1000",
            "rip 0x",
            "rax 0x",
            "KERNEL PANIC at",
        ],
        (Arch::X64, _) => &["#DF double fault", "rip 0x", "KERNEL PANIC at"],
        (Arch::Arm, "page-fault") => &[
            "data abort in kernel mode",
            "DFAR 0x00001000",
            "DFSR 0x",
            "pc  0x",
            "KERNEL PANIC at",
        ],
        (Arch::Arm, _) => &["abort while entering an abort handler", "KERNEL PANIC at"],
    }
}

/// Boots with a deliberate kernel fault and checks that it is reported,
/// with the details, and ends the machine with the panic status.
fn crash_reports(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let machine = config.machine;
    for kind in ["page-fault", "stack-overflow"] {
        let args = boot_args(config, kernel, &format!("mode=crash crash.kind={kind}"))?;
        let boot = qemu::boot(
            machine.arch().qemu_binary(),
            &args,
            BOOT_TIME_LIMIT,
            &[],
            |_| {},
        )?;
        let exit = boot.status.and_then(|s| machine.arch().decode_exit(s));
        let output = boot.lines.join("\n");
        let missing: Vec<&str> = crash_markers(machine.arch(), kind)
            .iter()
            .copied()
            .filter(|m| !output.contains(m))
            .collect();
        let detail = if let Some(reason) = abnormal_end(machine.arch(), &boot) {
            reason
        } else if exit != Some(kernel::exit_code::PANIC) {
            format!("ended with {exit:?}, not the panic status")
        } else if !missing.is_empty() {
            format!("report lacks {missing:?}")
        } else {
            String::new()
        };
        tally.record(
            detail.is_empty(),
            &config.scope(),
            &format!("trap::kernel_{}_reported", kind.replace('-', "_")),
            &detail,
        );
        if !detail.is_empty() {
            show_failure_context(&boot);
        }
    }
    Ok(())
}

/// Boots once more asking the kernel to exit with a chosen code, and checks
/// that the host reads that code back.
fn exit_round_trip(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let machine = config.machine;
    let cmdline = format!("mode=exit exit.code={ROUND_TRIP_CODE}");
    let args = boot_args(config, kernel, &cmdline)?;
    let boot = qemu::boot(
        machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &[],
        |_| {},
    )?;
    let exit = boot.status.and_then(|s| machine.arch().decode_exit(s));
    let ok = exit == Some(ROUND_TRIP_CODE);
    let detail = if ok {
        String::new()
    } else {
        abnormal_end(machine.arch(), &boot)
            .unwrap_or_else(|| format!("asked for {ROUND_TRIP_CODE}, host read {exit:?}"))
    };
    tally.record(ok, &config.scope(), "exit::status_round_trip", &detail);
    if !ok {
        show_failure_context(&boot);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_patterns_match_whole_lines() {
        assert!(matches_pattern("hello", "hello"));
        assert!(!matches_pattern("hello there", "hello"));
        assert!(matches_pattern("hello there", "hello*"));
        assert!(matches_pattern(
            "    1     0 blocked    1   116K  3ms init",
            "    1     0 blocked*init"
        ));
        assert!(matches_pattern(
            "up 1.234 s, 2 processes",
            "up *.* s, 2 processes"
        ));
        assert!(!matches_pattern(
            "up 1.234 s, 3 processes",
            "up *.* s, 2 processes"
        ));
        assert!(matches_pattern("   36       12 timer", "* timer"));
    }

    #[test]
    fn kill_reports_are_recognised() {
        assert!(is_kill_report(
            "ferrite: process 9 (probe) killed: #PF page fault: page not mapped reading 0x0 at pc 0x202023 (syndrome 0xe00000004)",
            "probe"
        ));
        assert!(!is_kill_report(
            "ferrite: process x (probe) killed: y at pc 0x1",
            "probe"
        ));
        assert!(!is_kill_report(
            "ferrite: process 9 (sh) killed: y at pc 0x1",
            "probe"
        ));
        assert!(!is_kill_report(
            "ferrite: process 9 (probe) killed: no pc",
            "probe"
        ));
    }

    #[test]
    fn reads_libtest_lines() {
        assert_eq!(parse_libtest_line("test a::b ... ok"), Some(("a::b", true)));
        assert_eq!(
            parse_libtest_line("test a::b ... FAILED"),
            Some(("a::b", false))
        );
        assert_eq!(parse_libtest_line("test a::b ... ignored"), None);
        assert_eq!(parse_libtest_line("test result: ok. 3 passed"), None);
    }

    #[test]
    fn reads_the_kernel_test_protocol() {
        assert_eq!(
            parse_suite_line("ktest: begin 12", "ktest: "),
            Some(SuiteEvent::Begin(12))
        );
        assert_eq!(
            parse_suite_line("ktest: pass boot::x 0.215 ms", "ktest: "),
            Some(SuiteEvent::Pass {
                name: "boot::x",
                time: "0.215 ms"
            })
        );
        assert_eq!(
            parse_suite_line("ktest: fail a::b: sent 0x55: lost (x.rs:3)", "ktest: "),
            Some(SuiteEvent::Fail {
                name: "a::b",
                message: "sent 0x55: lost (x.rs:3)"
            })
        );
        assert_eq!(
            parse_suite_line("ktest: end 11 passed 1 failed", "ktest: "),
            Some(SuiteEvent::End { results: 12 })
        );
        assert_eq!(
            parse_suite_line("ktest: end 11 passed 1 failed 2 skipped", "ktest: "),
            Some(SuiteEvent::End { results: 14 })
        );
        assert_eq!(
            parse_suite_line("ktest: skip a::b: no SMEP (x.rs:3)", "ktest: "),
            Some(SuiteEvent::Skip {
                name: "a::b",
                reason: "no SMEP (x.rs:3)"
            })
        );
        assert_eq!(parse_suite_line("ktest: end garbage", "ktest: "), None);
        assert_eq!(
            parse_suite_line("\u{fffd}U\u{0}ktest: begin 3", "ktest: "),
            Some(SuiteEvent::Begin(3))
        );
        assert_eq!(parse_suite_line("kernel: pass x", "ktest: "), None);
        assert_eq!(
            parse_suite_line("utest: pass a 1 ms", "utest: "),
            Some(SuiteEvent::Pass {
                name: "a",
                time: "1 ms"
            })
        );
    }
}
