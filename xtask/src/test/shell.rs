//! The shell, driven over the serial console: the scripted session, the
//! boot matrix's shell check, and input typed before the prompt.

use super::*;

/// Lines piped into `cargo xtask run` before the guest starts: more than
/// the kernel's 256-byte input ring, a nested shell left with `exit`, and
/// `poweroff`.
pub(super) fn typed_ahead_script() -> String {
    let mut script = String::from("help\r");
    for n in 0..BURST_LINES {
        script.push_str(&format!("echo burst-{n:02} {}\r", "-".repeat(24)));
    }
    script.push_str("run sh\rexit 7\rpoweroff\r");
    script
}

pub(super) const BURST_LINES: usize = 16;

/// Runs `cargo xtask run` as a user would, with its input piped in before
/// the shell prompts, and checks that every line was answered.
pub(super) fn typed_ahead_input(config: &Config, tally: &mut Tally) -> Result<Duration> {
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
    let pids = Pids::of(config);
    if !has(&pids.expand("ferrite: powered off by process {sh} with status 0")) {
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

/// Boots in run mode, checks the banner, asks the shell for the uptime and
/// powers off.
pub(super) fn shell_answers(
    config: &Config,
    kernel: &Path,
    banner: &str,
    tally: &mut Tally,
) -> Result<()> {
    let scope = config.scope();
    step(format!(
        "booting {scope} ({}) to the shell",
        config.describe()
    ));
    let boot = shell_boot(config, kernel, "uptime\r")?;
    let has = |pattern: &str| boot.lines.iter().any(|l| matches_pattern(l, pattern));
    let exit = boot
        .status
        .and_then(|s| config.machine.arch().decode_exit(s));
    let detail = if let Some(reason) = abnormal_end(config.machine.arch(), &boot) {
        reason
    } else if !has(banner) {
        format!("no line like {banner:?}")
    } else if !has(&Pids::of(config).expand("up *.* s, {processes} processes, * threads")) {
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

/// What the shell session types, one command per prompt, and what each
/// must print. The commands run in order; `poweroff` ends the machine.
pub(super) const SHELL_PROMPT: &str = "ferrite> ";

pub(super) struct ShellCheck {
    name: &'static str,
    typed: &'static str,
    /// Output lines that must appear, each as a whole line or (with a
    /// trailing `*`) as a line's start.
    expected: &'static [&'static str],
}

pub(super) const SHELL_CHECKS: &[ShellCheck] = &[
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
            "    {sh}     1 running*sh",
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
        // init (its name service, its supervisor), the drivers, the
        // shell; the kernel's boot and idle threads.
        expected: &["up *.* s, {processes} processes, {threads} threads"],
    },
    ShellCheck {
        name: "shell::irqs_counts_timer_and_console",
        typed: "irqs\r",
        expected: &["  IRQ      COUNT NAME", "* timer", "* {uart}"],
    },
    ShellCheck {
        name: "shell::unknown_command_is_explained",
        typed: "frobnicate now\r",
        expected: &["sh: unknown command: frobnicate (type help for the list)"],
    },
    ShellCheck {
        name: "shell::run_starts_a_program",
        typed: "run hello from xtask\r",
        expected: &["hello from process {next} from xtask"],
    },
    ShellCheck {
        name: "shell::run_reports_a_killed_program",
        typed: "run probe fault null-read\r",
        expected: &["[process {after_next} (probe) killed: page not mapped at 0x0 (pc 0x*)]"],
    },
    ShellCheck {
        name: "shell::missing_program_is_explained",
        typed: "run nonesuch\r",
        expected: &["run: nonesuch: not found"],
    },
    ShellCheck {
        name: "shell::poweroff_ends_the_machine",
        typed: "poweroff\r",
        expected: &["ferrite: powered off by process {sh} with status 0"],
    },
];

/// The process ids and counts a booted shell sees: init is 1, then one
/// process per driver (every device xtask attaches has one), then the
/// shell, then the programs it runs.
pub(super) struct Pids {
    drivers: usize,
    /// The console UART's name in the device list.
    uart: &'static str,
}

impl Pids {
    pub(super) fn of(config: &Config) -> Pids {
        Pids {
            drivers: config.service_count(),
            uart: match config.machine.arch() {
                Arch::X64 => "uart16550",
                Arch::Arm => "pl011",
            },
        }
    }

    /// `pattern` with `{sh}`, `{next}`, `{after_next}`, `{processes}`,
    /// `{threads}` and `{uart}` filled in.
    pub(super) fn expand(&self, pattern: &str) -> String {
        let sh = 2 + self.drivers;
        pattern
            .replace("{sh}", &sh.to_string())
            .replace("{next}", &(sh + 1).to_string())
            .replace("{after_next}", &(sh + 2).to_string())
            .replace("{processes}", &sh.to_string())
            // One per process, and init's name service and supervisor,
            // the console driver's input thread, the kernel's boot and
            // idle threads.
            .replace("{threads}", &(sh + 5).to_string())
            .replace("{uart}", self.uart)
    }
}

/// Whether `line` matches `pattern`, where `*` stands for any text.
pub(super) fn matches_pattern(line: &str, pattern: &str) -> bool {
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
pub(super) fn shell_session(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<Duration> {
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
    let pids = Pids::of(config);
    for (n, check) in SHELL_CHECKS.iter().enumerate() {
        let output = sections.get(n).map(Vec::as_slice).unwrap_or(&[]);
        let missing: Vec<String> = check
            .expected
            .iter()
            .map(|p| pids.expand(p))
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

/// Boots to the shell, types `command`, then powers off.
pub(super) fn shell_boot(config: &Config, kernel: &Path, command: &str) -> Result<qemu::Boot> {
    let args = boot_args(config, kernel, "mode=run")?;
    let script = [
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: command,
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "poweroff\r",
        },
    ];
    qemu::boot(
        config.machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |_| {},
    )
}

/// What the supervision session must print, by check (a line may start
/// after a prompt, which does not end its line): each crash or kill
/// reported by the kernel and by init, the restart, the restarted driver
/// serving, `ps` counting the restarts, and init's own death reported
/// with the status the machine ends with.
const SUPERVISION_CHECKS: &[(&str, &[&str])] = &[
    (
        "supervisor::a_crashed_driver_is_reported_and_restarted",
        &[
            "*ferrite: process * (virtio) killed: fault injected by process 1",
            // A driver that dies within a second of starting waits a
            // back-off before its restart.
            "*init: blk (process *) killed: fault injected by process 1; restarting it in * ms",
            "*init: restarted blk as process * (restart 1)",
        ],
    ),
    (
        "supervisor::the_restarted_driver_serves",
        &["     0  0000000000000000*"],
    ),
    (
        "supervisor::a_killed_driver_is_restarted",
        &[
            "*init: rng (process *) killed; restarting it in * ms",
            "*init: restarted rng as process * (restart 1)",
        ],
    ),
    (
        "supervisor::ps_counts_restarts",
        &[
            "*       1 virtio (blk)",
            "*       1 virtio (rng)",
            "*       0 virtio (net)",
        ],
    ),
    (
        "supervisor::its_own_death_is_reported_and_ends_the_machine",
        &[
            "*init: crashing the supervisor on request",
            "*ferrite: process 1 (init) killed: *",
            "*init, the supervisor, was killed by a fault: *; ending the machine with status 5 (init failed)",
        ],
    ),
];

/// The supervisor, from the shell: `crash blk` and `kill rng` end the
/// drivers, init reports and restarts them, the new block driver serves,
/// `ps` shows the restarts, and `crash 1` faults init itself, after which
/// the kernel ends the machine with `INIT_FAILED`.
pub(super) fn supervision_from_the_shell(
    config: &Config,
    kernel: &Path,
    tally: &mut Tally,
) -> Result<Duration> {
    let scope = config.scope();
    step(format!(
        "booting {scope} to crash its services from the shell"
    ));
    let args = boot_args(config, kernel, "mode=run")?;
    let script = [
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "crash blk\r",
        },
        qemu::Step {
            prompt: "init: restarted blk as process ",
            text: "blk read 0 1\r",
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "kill rng\r",
        },
        qemu::Step {
            prompt: "init: restarted rng as process ",
            text: "ps\r",
        },
        qemu::Step {
            prompt: SHELL_PROMPT,
            text: "crash 1\r",
        },
    ];
    let boot = qemu::boot(
        config.machine.arch().qemu_binary(),
        &args,
        BOOT_TIME_LIMIT,
        &script,
        |_| {},
    )?;
    let mut failed = false;
    for (name, patterns) in SUPERVISION_CHECKS {
        let missing: Vec<&&str> = patterns
            .iter()
            .filter(|p| !boot.lines.iter().any(|l| matches_pattern(l, p)))
            .collect();
        let detail = match missing.is_empty() {
            true => String::new(),
            false => format!("no line like {missing:?}"),
        };
        failed |= !detail.is_empty();
        tally.record(detail.is_empty(), &scope, name, &detail);
    }
    let exit = boot
        .status
        .and_then(|s| config.machine.arch().decode_exit(s));
    let ended = exit == Some(kernel::exit_code::INIT_FAILED);
    let detail = match ended {
        true => String::new(),
        false => abnormal_end(config.machine.arch(), &boot)
            .unwrap_or_else(|| format!("ended with {exit:?}, not INIT_FAILED")),
    };
    tally.record(
        ended,
        &scope,
        "supervisor::its_death_ends_the_machine_with_init_failed",
        &detail,
    );
    if failed || !ended {
        show_failure_context(&boot);
    }
    Ok(boot.elapsed)
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
}
