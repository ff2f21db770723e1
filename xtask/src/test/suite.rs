//! The in-kernel and user-level suites: booting with a suite's mode, reading
//! its result lines, and checking the kill reports.

use super::*;

/// What the kernel prints when it wants the host to type, and what the host
/// types (a line, checked by the console input test).
pub(super) const INPUT_PROMPT: &str = "ktest: input please";

pub(super) const INPUT_LINE: &str = "ferrite-typed-input";

/// Events of the kernel's test protocol (see `kernel::ktest`).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SuiteEvent<'a> {
    Begin(usize),
    Pass { name: &'a str, time: &'a str },
    Fail { name: &'a str, message: &'a str },
    Skip { name: &'a str, reason: &'a str },
    End { results: usize },
}

/// Reads a protocol line. The marker may follow other bytes on the line: a
/// device test that misbehaves can leave stray bytes on the console.
pub(super) fn parse_suite_line<'a>(line: &'a str, marker: &str) -> Option<SuiteEvent<'a>> {
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

/// Boots with `cmdline` and records the results of the test suite that
/// prints `marker` lines, prefixing test names with `prefix`; the suite
/// must run to completion and the machine end with success or "tests
/// failed".
pub(super) fn suite_boot(
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
pub(super) fn fault_reports(scope: &str, boot: &qemu::Boot, tally: &mut Tally) {
    let reports: Vec<&String> = boot
        .lines
        .iter()
        .filter(|l| l.starts_with("ferrite: process ") && l.contains(" killed: "))
        .collect();
    let malformed: Vec<&&String> = reports.iter().filter(|l| !is_kill_report(l)).collect();
    let probes = reports
        .iter()
        .filter(|l| l.contains(" (probe) killed: "))
        .count();
    // Six fault kinds kill on both architectures (division by zero only
    // traps on x86_64), and the memory test kills three more probes.
    let detail = if probes < 9 {
        format!("{probes} reports of probes killed, expected at least 9")
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

/// Whether `line` is the kernel's report of killing a process: `ferrite:
/// process N (name) killed: CAUSE: FAULT ... at pc 0x...`, or for a fault
/// injected, `... killed: fault injected by process M`.
pub(super) fn is_kill_report(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("ferrite: process ") else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(" (") else {
        return false;
    };
    let Some((name, cause)) = rest.split_once(") killed: ") else {
        return false;
    };
    let injected = cause
        .strip_prefix("fault injected by process ")
        .is_some_and(|by| by.parse::<u32>().is_ok());
    pid.parse::<u32>().is_ok() && !name.is_empty() && (injected || cause.contains(" at pc 0x"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_reports_are_recognised() {
        assert!(is_kill_report(
            "ferrite: process 9 (probe) killed: #PF page fault: page not mapped reading 0x0 at pc 0x202023 (syndrome 0xe00000004)"
        ));
        assert!(is_kill_report(
            "ferrite: process 5 (virtio) killed: fault injected by process 1"
        ));
        assert!(!is_kill_report(
            "ferrite: process x (probe) killed: y at pc 0x1"
        ));
        assert!(!is_kill_report("ferrite: process 9 () killed: y at pc 0x1"));
        assert!(!is_kill_report("ferrite: process 9 (probe) killed: no pc"));
        assert!(!is_kill_report(
            "ferrite: process 9 (probe) killed: fault injected by process x"
        ));
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
