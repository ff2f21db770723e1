//! `cargo xtask run`: boot a machine with the console on this terminal.

use crate::cli::RunOptions;
use crate::machine::{Arch, Console};
use crate::{Result, error, kernel_image, provision, step};
use std::process::Command;

pub fn run(options: &RunOptions) -> Result<()> {
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
    let ram_mib = machine.run_ram_mib();
    let dtb = match arch {
        Arch::Arm => Some(kernel_image::board_dtb(ram_mib)?),
        Arch::X64 => None,
    };
    let cmdline = format!("mode=run {}", options.append).trim().to_string();
    let mut args = machine.qemu_args(
        &kernel,
        dtb.as_deref(),
        ram_mib,
        &cmdline,
        Console::Interactive,
        options.kvm,
    );
    if options.gdb {
        args.extend(["-s", "-S"].map(String::from));
        let gdb = if arch == Arch::X64 {
            "gdb"
        } else {
            "gdb-multiarch"
        };
        step(format!(
            "QEMU waits for a debugger: {gdb} {} -ex 'target remote localhost:1234'",
            kernel.display()
        ));
    }
    step(format!(
        "booting {} with {ram_mib} MiB; Ctrl-A X quits",
        machine.name()
    ));
    let status = Command::new(arch.qemu_binary()).args(&args).status()?;
    match status.code().and_then(|s| arch.decode_exit(s)) {
        Some(code) => step(format!(
            "kernel exited: {} ({code})",
            kernel::exit_code::name(code)
        )),
        None => step(format!("QEMU ended: {status}")),
    }
    Ok(())
}
