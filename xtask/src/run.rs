//! `cargo xtask run`: boot a machine with the console on this terminal;
//! `cargo xtask gdb`: the same, halted, with a debugger attached.

use crate::cli::RunOptions;
use crate::machine::{Arch, Config, Console};
use crate::{Result, error, kernel_image, provision, step};
use std::path::Path;
use std::process::{Command, Stdio};

/// The port QEMU's `-s` opens for the debugger.
const GDB_PORT: u16 = 1234;

/// The guest's configuration and QEMU's arguments for an interactive boot.
fn prepare(options: &RunOptions) -> Result<(Config, std::path::PathBuf, Vec<String>)> {
    let machine = options.machine;
    let arch = machine.arch();
    if options.kvm {
        if arch != Arch::X64 {
            return Err(error!(
                "KVM runs only x86 guests on this host; run ARM without --kvm"
            ));
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(|e| error!("--kvm needs a usable /dev/kvm: {e}"))?;
    }
    provision::ensure_qemu(&[arch])?;
    let kernel = kernel_image::build(arch, options.profile)?;
    let config = options.size.config(machine, machine.run_ram_mib());
    let cmdline = format!("mode=run {}", options.append).trim().to_string();
    let mut args = config.qemu_args(&kernel, &cmdline, Console::Interactive, options.kvm)?;
    if options.gdb {
        args.extend(["-s", "-S"].map(String::from));
    }
    Ok((config, kernel, args))
}

fn report_exit(arch: Arch, status: std::process::ExitStatus) {
    match status.code().and_then(|s| arch.decode_exit(s)) {
        Some(code) => step(format!(
            "kernel exited: {} ({code})",
            kernel::exit_code::name(code)
        )),
        None => step(format!("QEMU ended: {status}")),
    }
}

pub fn run(options: &RunOptions) -> Result<()> {
    let (config, kernel, args) = prepare(options)?;
    let arch = config.machine.arch();
    if options.gdb {
        step(format!(
            "QEMU waits for a debugger: {} {} -ex 'target remote localhost:{GDB_PORT}' \
             (or use `cargo xtask gdb`)",
            debugger(arch),
            kernel.display()
        ));
    }
    step(format!(
        "booting {} with {}; Ctrl-A X quits",
        config.machine.name(),
        config.describe()
    ));
    let status = Command::new(arch.qemu_binary()).args(&args).status()?;
    report_exit(arch, status);
    Ok(())
}

/// The debugger for `arch`: the host's gdb reads x86_64; ARM needs the
/// multi-architecture build.
fn debugger(arch: Arch) -> &'static str {
    match arch {
        Arch::X64 => "gdb",
        Arch::Arm => "gdb-multiarch",
    }
}

/// The debugger's commands: attach, stop where the portable core starts.
pub fn gdb_commands(kernel: &Path, core_entry: u64) -> Vec<String> {
    vec![
        format!("file {}", kernel.display()),
        format!("target remote localhost:{GDB_PORT}"),
        format!("break *{core_entry:#x}"),
        "continue".into(),
    ]
}

/// Starts QEMU halted in the background (its console on this terminal's
/// output) and the debugger in the foreground, stopped at `kmain`.
pub fn gdb(options: &RunOptions) -> Result<()> {
    let arch = options.machine.arch();
    // gdb-multiarch reads both architectures; plain gdb only the host's.
    provision::ensure_tool("gdb-multiarch", "gdb-multiarch")?;
    let (config, kernel, args) = prepare(options)?;
    let entry = kernel_image::core_entry(&std::fs::read(&kernel)?)?;
    // The console is QEMU's standard output; the debugger owns the terminal's
    // input, so the guest's console input is not connected.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| if a == "mon:stdio" { "stdio".into() } else { a })
        .collect();
    step(format!(
        "booting {} with {}, halted for the debugger; the kernel's console prints here",
        config.machine.name(),
        config.describe()
    ));
    let mut qemu = Command::new(arch.qemu_binary())
        .args(&args)
        .stdin(Stdio::null())
        .spawn()?;
    let mut command = Command::new("gdb-multiarch");
    command.arg("-q");
    for line in gdb_commands(&kernel, entry) {
        command.args(["-ex", &line]);
    }
    step(format!(
        "gdb-multiarch stops at kernel::kmain ({entry:#x}); `continue` boots on, `quit` ends both"
    ));
    let debugger_status = command.status();
    let _ = qemu.kill();
    let status = qemu.wait()?;
    debugger_status?;
    report_exit(arch, status);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debugger_attaches_and_stops_at_the_core_entry() {
        let commands = gdb_commands(Path::new("k.elf"), 0xc001_0000);
        assert_eq!(commands[0], "file k.elf");
        assert_eq!(commands[1], "target remote localhost:1234");
        assert_eq!(commands[2], "break *0xc0010000");
    }
}
