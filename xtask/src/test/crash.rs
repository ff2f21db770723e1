//! Boots that must end a given way: deliberate kernel faults, the exit
//! status round trip, refused boot inputs.

use super::*;

/// The exit code the round-trip check asks the kernel for.
pub(super) const ROUND_TRIP_CODE: u8 = 42;

/// Boots with `cmdline` and checks the exit status and one line.
/// Boots `config` as it is (its device tree carries the command line)
/// and checks that the kernel ends by itself with one of `allowed`: a
/// tree that makes no sense is refused with a reason, never a panic or a
/// hang.
pub(super) fn boot_survives(
    config: &Config,
    kernel: &Path,
    allowed: &[u8],
    tally: &mut Tally,
) -> Result<()> {
    let scope = config.scope();
    step(format!("booting {scope} on a mutated device tree"));
    let args = boot_args(config, kernel, "")?;
    let (boot, exit) = unscripted_boot(config, &args)?;
    let detail = if let Some(reason) = abnormal_end(config.machine.arch(), &boot) {
        reason
    } else {
        match exit {
            Some(code) if allowed.contains(&code) => String::new(),
            Some(code) => format!("ended with {} ({code})", kernel::exit_code::name(code)),
            None => "no status".into(),
        }
    };
    tally.record(
        detail.is_empty(),
        &scope,
        "boot::a_mutated_device_tree_boots_or_is_refused",
        &detail,
    );
    if !detail.is_empty() {
        show_failure_context(&boot);
    }
    Ok(())
}

pub(super) fn boot_ends(
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
    let (boot, exit) = unscripted_boot(config, &args)?;
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

/// What each deliberate kernel fault's report must contain, per
/// architecture: the exception, the registers the issue asks for, and the
/// panic line with its location.
pub(super) fn crash_markers(arch: Arch, kind: &str) -> &'static [&'static str] {
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
pub(super) fn crash_reports(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let machine = config.machine;
    for kind in ["page-fault", "stack-overflow", "thread-stack-overflow"] {
        let args = boot_args(config, kernel, &format!("mode=crash crash.kind={kind}"))?;
        let (boot, exit) = unscripted_boot(config, &args)?;
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
pub(super) fn exit_round_trip(config: &Config, kernel: &Path, tally: &mut Tally) -> Result<()> {
    let machine = config.machine;
    let cmdline = format!("mode=exit exit.code={ROUND_TRIP_CODE}");
    let args = boot_args(config, kernel, &cmdline)?;
    let (boot, exit) = unscripted_boot(config, &args)?;
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
