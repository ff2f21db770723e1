//! The architectures and QEMU machines Ferrite runs on, and how to start
//! each one.

use crate::{Result, error};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    X64,
    Arm,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X64, Arch::Arm];

    pub fn parse(name: &str) -> Result<Arch> {
        match name {
            "x64" | "x86_64" => Ok(Arch::X64),
            "arm" | "armv7" => Ok(Arch::Arm),
            other => Err(error!(
                "unknown architecture {other:?} (expected x64 or arm)"
            )),
        }
    }

    /// The name used on xtask's command line.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X64 => "x64",
            Arch::Arm => "arm",
        }
    }

    /// The Rust target the kernel is built for.
    pub fn target(self) -> &'static str {
        match self {
            Arch::X64 => "x86_64-unknown-none",
            Arch::Arm => "armv7a-none-eabi",
        }
    }

    /// The package holding the kernel binary.
    pub fn package(self) -> &'static str {
        match self {
            Arch::X64 => "arch-x86_64",
            Arch::Arm => "arch-armv7",
        }
    }

    pub fn qemu_binary(self) -> &'static str {
        match self {
            Arch::X64 => "qemu-system-x86_64",
            Arch::Arm => "qemu-system-arm",
        }
    }

    pub fn machines(self) -> &'static [Machine] {
        match self {
            Arch::X64 => &[Machine::X64Microvm, Machine::X64Q35],
            Arch::Arm => &[Machine::ArmVexpressA15],
        }
    }

    pub fn default_machine(self) -> Machine {
        self.machines()[0]
    }

    /// The kernel's exit code from QEMU's exit status, if the kernel set it.
    pub fn decode_exit(self, status: i32) -> Option<u8> {
        match self {
            Arch::X64 => arch_x86_64::exit_status::decode(status),
            Arch::Arm => arch_armv7::exit_status::decode(status),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    X64Microvm,
    X64Q35,
    ArmVexpressA15,
}

/// What the guest is started for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Console {
    /// Serial on stdin/stdout with QEMU's monitor multiplexed (Ctrl-A).
    Interactive,
    /// Serial output captured by xtask; no input, no monitor.
    Captured,
}

impl Machine {
    pub fn parse(arch: Arch, name: &str) -> Result<Machine> {
        arch.machines()
            .iter()
            .copied()
            .find(|m| m.qemu_name() == name || m.name() == name)
            .ok_or_else(|| {
                let known: Vec<_> = arch.machines().iter().map(|m| m.qemu_name()).collect();
                error!(
                    "{name:?} is not an {} machine (known: {})",
                    arch.name(),
                    known.join(", ")
                )
            })
    }

    /// `arch-machine`, as test reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Machine::X64Microvm => "x64-microvm",
            Machine::X64Q35 => "x64-q35",
            Machine::ArmVexpressA15 => "arm-vexpress-a15",
        }
    }

    /// QEMU's name for the machine, which the kernel reports too.
    pub fn qemu_name(self) -> &'static str {
        match self {
            Machine::X64Microvm => "microvm",
            Machine::X64Q35 => "q35",
            Machine::ArmVexpressA15 => "vexpress-a15",
        }
    }

    pub fn arch(self) -> Arch {
        match self {
            Machine::X64Microvm | Machine::X64Q35 => Arch::X64,
            Machine::ArmVexpressA15 => Arch::Arm,
        }
    }

    /// RAM for test boots. Each machine gets a different size, so a kernel
    /// that reported a fixed number could not pass on all of them.
    pub fn test_ram_mib(self) -> u64 {
        match self {
            Machine::X64Microvm => 128,
            Machine::X64Q35 => 384,
            Machine::ArmVexpressA15 => 256,
        }
    }

    /// RAM for interactive runs.
    pub fn run_ram_mib(self) -> u64 {
        256
    }

    /// QEMU's arguments to boot `kernel` with `ram_mib` of RAM and the given
    /// kernel command line. `dtb` is required on ARM.
    pub fn qemu_args(
        self,
        kernel: &Path,
        dtb: Option<&Path>,
        ram_mib: u64,
        cmdline: &str,
        console: Console,
        kvm: bool,
    ) -> Vec<String> {
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        match self {
            Machine::X64Microvm => push(&["-M", "microvm", "-bios", "qboot.rom"]),
            Machine::X64Q35 => push(&["-M", "q35"]),
            Machine::ArmVexpressA15 => push(&["-M", "vexpress-a15", "-cpu", "cortex-a15"]),
        }
        if self.arch() == Arch::X64 {
            if kvm {
                // QEMU aborts on the host model's arch-capabilities MSR
                // under nested KVM; everything else of the host CPU is fine.
                push(&["-accel", "kvm", "-cpu", "host,-arch-capabilities"]);
            } else {
                push(&["-cpu", "max"]);
            }
            push(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        } else {
            // The PL041 audio model otherwise complains about host audio.
            push(&[
                "-audio",
                "none",
                "-semihosting-config",
                "enable=on,target=native",
            ]);
        }
        push(&["-nodefaults", "-display", "none", "-no-reboot"]);
        match console {
            Console::Interactive => push(&["-serial", "mon:stdio"]),
            Console::Captured => push(&["-serial", "stdio"]),
        }
        let ram = format!("{ram_mib}M");
        push(&["-m", &ram]);
        push(&["-kernel", &kernel.display().to_string()]);
        if let Some(dtb) = dtb {
            push(&["-dtb", &dtb.display().to_string()]);
        }
        push(&["-append", cmdline]);
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_round_trip() {
        for arch in Arch::ALL {
            for &machine in arch.machines() {
                assert_eq!(machine.arch(), arch);
                assert_eq!(Machine::parse(arch, machine.qemu_name()).unwrap(), machine);
                assert_eq!(Machine::parse(arch, machine.name()).unwrap(), machine);
            }
        }
    }

    #[test]
    fn exit_statuses_decode_per_arch() {
        // What each exit device makes of kernel code 0.
        assert_eq!(Arch::X64.decode_exit(33), Some(0));
        assert_eq!(Arch::Arm.decode_exit(16), Some(0));
        assert_eq!(Arch::X64.decode_exit(1), None);
        assert_eq!(Arch::Arm.decode_exit(1), None);
    }

    #[test]
    fn arm_boots_with_the_device_tree_and_semihosting() {
        let args = Machine::ArmVexpressA15.qemu_args(
            Path::new("k"),
            Some(Path::new("b.dtb")),
            256,
            "mode=test",
            Console::Captured,
            false,
        );
        let line = args.join(" ");
        assert!(line.contains("-dtb b.dtb"));
        assert!(line.contains("-m 256M"));
        assert!(line.contains("semihosting"));
        assert!(line.ends_with("-append mode=test"));
    }
}
