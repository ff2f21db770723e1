//! The architectures and QEMU machines Ferrite runs on, and how to start
//! each one.

use crate::{Result, error};
use std::path::{Path, PathBuf};

/// The guest's size, where a task lets the user choose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    /// RAM in MiB, if not the task's default.
    pub memory_mib: Option<u64>,
    /// CPUs, if not one.
    pub cpus: Option<u32>,
}

impl Size {
    /// `machine` at this size, with `default_mib` of RAM unless chosen.
    pub fn config(self, machine: Machine, default_mib: u64) -> Config {
        let mut config = Config::new(machine, self.memory_mib.unwrap_or(default_mib));
        config.cpus = self.cpus.unwrap_or(1);
        config
    }
}

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
}

/// Where an ARM guest's device tree comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceTree {
    /// The board's tree for the configured RAM, passed with `-dtb` (QEMU
    /// edits it: memory size, bootargs, VirtIO nodes).
    Board,
    /// A file loaded as it is at the RAM base, without `-dtb`, so QEMU
    /// cannot repair it: for hostile-input tests.
    Raw(PathBuf),
}

/// One way of starting a machine: its RAM, CPUs and boot inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub machine: Machine,
    pub ram_mib: u64,
    pub cpus: u32,
    /// x86: the CPU model (`max` by default, which has SMEP and SMAP).
    pub cpu_model: Option<String>,
    /// Options added to `-M` (for example `acpi=off` on microvm).
    pub machine_options: Option<String>,
    /// x86: firmware other than the machine's own (`qboot.rom` on q35,
    /// which leaves every BAR to the kernel).
    pub firmware: Option<&'static str>,
    pub device_tree: DeviceTree,
    /// The image behind the VirtIO block device.
    pub disk: Disk,
    /// QEMU's cache mode for it: `writeback`, or `directsync` (the device
    /// completes a write only once it reached the image, for the
    /// durability check).
    pub disk_cache: &'static str,
    /// VirtIO-MMIO version 2 (QEMU's default is the legacy version 1).
    pub modern_mmio: bool,
    /// The loopback ports of the network link, for a test that talks to
    /// the guest; `None`: ports no one talks on.
    pub net: Option<crate::net::Ports>,
    /// q35: the same for the E1000's link.
    pub e1000_net: Option<crate::net::Ports>,
}

/// The image behind a boot's block device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disk {
    /// A new zeroed image of [`DISK_BYTES`] for each boot.
    Fresh,
    /// This file, as it is (to boot twice on one disk).
    Image(PathBuf),
}

/// q35's slot for the E1000 (after the VirtIO functions').
const E1000_SLOT: u8 = 5;

/// The size of the disk images xtask makes.
pub const DISK_BYTES: u64 = 4 << 20;

/// A new zeroed disk image (sparse) called after `name`, replacing any
/// earlier one of that name.
pub fn fresh_disk(name: &str) -> Result<PathBuf> {
    let dir = crate::workspace()
        .join("target")
        .join("xtask")
        .join("disks");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{}.img", name.replace(':', "-")));
    let file = std::fs::File::create(&path).map_err(|e| error!("{}: {e}", path.display()))?;
    file.set_len(DISK_BYTES)
        .map_err(|e| error!("{}: {e}", path.display()))?;
    Ok(path)
}

impl Config {
    pub fn new(machine: Machine, ram_mib: u64) -> Config {
        Config {
            machine,
            ram_mib,
            cpus: 1,
            cpu_model: None,
            machine_options: None,
            firmware: None,
            device_tree: DeviceTree::Board,
            disk: Disk::Fresh,
            disk_cache: "writeback",
            modern_mmio: false,
            net: None,
            e1000_net: None,
        }
    }

    /// A short description for progress lines and test names, e.g.
    /// `1024 MiB, 2 CPUs, -cpu qemu64`.
    pub fn describe(&self) -> String {
        let mut text = format!("{} MiB", self.ram_mib);
        if self.cpus != 1 {
            text.push_str(&format!(", {} CPUs", self.cpus));
        }
        if let Some(model) = &self.cpu_model {
            text.push_str(&format!(", -cpu {model}"));
        }
        if let Some(options) = &self.machine_options {
            text.push_str(&format!(", {options}"));
        }
        if let Some(firmware) = self.firmware {
            text.push_str(&format!(", -bios {firmware}"));
        }
        if self.modern_mmio {
            text.push_str(", VirtIO-MMIO version 2");
        }
        if let DeviceTree::Raw(path) = &self.device_tree {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            text.push_str(&format!(", raw tree {}", name.unwrap_or_default()));
        }
        text
    }

    /// The name test reports give this configuration: the machine's, with
    /// what differs from the machine's test defaults (`x64-q35:4096M:smp2`).
    pub fn scope(&self) -> String {
        let mut scope = self.machine.name().to_string();
        if self.ram_mib != self.machine.test_ram_mib() {
            scope.push_str(&format!(":{}M", self.ram_mib));
        }
        if self.cpus != 1 {
            scope.push_str(&format!(":smp{}", self.cpus));
        }
        if let Some(model) = &self.cpu_model {
            scope.push_str(&format!(":{model}"));
        }
        if let Some(options) = &self.machine_options {
            scope.push_str(&format!(":{options}"));
        }
        if let Some(firmware) = self.firmware {
            scope.push_str(&format!(":{}", firmware.trim_end_matches(".rom")));
        }
        if self.modern_mmio {
            scope.push_str(":mmio2");
        }
        if let DeviceTree::Raw(path) = &self.device_tree {
            let stem = path.file_stem().map(|n| n.to_string_lossy().into_owned());
            scope.push_str(&format!(":{}", stem.unwrap_or_default()));
        }
        scope
    }

    /// The devices every boot has for the user-space drivers, with their
    /// PCI slots on q35 (a slot each, so a line each): VirtIO over MMIO on
    /// microvm and vexpress-a15, over PCI on q35.
    const VIRTIO_DEVICES: [(&str, u8); 3] = [("rng", 2), ("blk", 3), ("net", 4)];

    /// QEMU's arguments for the devices (and the disk behind the block
    /// device).
    fn device_args(&self) -> Result<Vec<String>> {
        let on_pci = self.machine == Machine::X64Q35;
        let disk = match &self.disk {
            Disk::Image(path) => path.clone(),
            Disk::Fresh => fresh_disk(&self.scope())?,
        };
        let ports = match self.net {
            Some(ports) => ports,
            None => crate::net::idle_ports()?,
        };
        let mut args = vec!["-netdev".to_string(), crate::net::netdev("net0", ports)];
        if self.has_e1000() {
            let ports = match self.e1000_net {
                Some(ports) => ports,
                None => crate::net::idle_ports()?,
            };
            args.extend([
                "-netdev".to_string(),
                crate::net::netdev("net1", ports),
                "-device".to_string(),
                format!("e1000,netdev=net1,addr={E1000_SLOT:#x}"),
            ]);
        }
        if self.modern_mmio {
            args.extend(["-global".into(), "virtio-mmio.force-legacy=false".into()]);
        }
        args.extend([
            "-drive".to_string(),
            format!(
                "file={},format=raw,if=none,id=disk0,cache={}",
                disk.display(),
                self.disk_cache
            ),
        ]);
        for (kind, slot) in Self::VIRTIO_DEVICES {
            let mut device = match on_pci {
                true => format!("virtio-{kind}-pci,addr={slot:#x}"),
                false => format!("virtio-{kind}-device"),
            };
            match kind {
                "blk" => device.push_str(",drive=disk0"),
                "net" => device.push_str(",netdev=net0"),
                _ => {}
            }
            args.extend(["-device".to_string(), device]);
        }
        Ok(args)
    }

    /// q35 also has an E1000, on a link of its own.
    pub fn has_e1000(&self) -> bool {
        self.machine == Machine::X64Q35
    }

    /// How many processes init starts before the shell: a driver per
    /// device attached, the console's driver, and a network stack on each
    /// NIC.
    pub fn service_count(&self) -> usize {
        let e1000 = if self.has_e1000() { 2 } else { 0 };
        Self::VIRTIO_DEVICES.len() + 2 + e1000
    }

    /// What the kernel command line gets for init's services: the
    /// guest's address on each network (`net`, then `net1`: the E1000).
    fn init_options(&self) -> String {
        let mut options = String::new();
        let links = [crate::net::VIRTIO_LINK, crate::net::E1000_LINK];
        let count = if self.has_e1000() { 2 } else { 1 };
        for link in &links[..count] {
            options.push_str(&format!(
                " init.{nic}.ip={ip}/{prefix} init.{nic}.echo={echo}",
                nic = link.nic,
                ip = link.guest_ip,
                prefix = crate::net::PREFIX,
                echo = crate::net::ECHO_PORT
            ));
        }
        options
    }

    /// QEMU's arguments to boot `kernel` with the given kernel command
    /// line. Writes the board's device tree for ARM.
    pub fn qemu_args(
        &self,
        kernel: &Path,
        cmdline: &str,
        console: Console,
        kvm: bool,
    ) -> Result<Vec<String>> {
        let machine = self.machine;
        let mut args: Vec<String> = Vec::new();
        let mut push = |items: &[&str]| args.extend(items.iter().map(|s| s.to_string()));
        let with_options = |name: &str| match &self.machine_options {
            Some(options) => format!("{name},{options}"),
            None => name.to_string(),
        };
        match machine {
            Machine::X64Microvm => push(&["-M", &with_options("microvm"), "-bios", "qboot.rom"]),
            Machine::X64Q35 => {
                push(&["-M", &with_options("q35")]);
                if let Some(firmware) = self.firmware {
                    push(&["-bios", firmware]);
                }
            }
            Machine::ArmVexpressA15 => push(&[
                "-M",
                &with_options("vexpress-a15"),
                "-cpu",
                self.cpu_model.as_deref().unwrap_or("cortex-a15"),
            ]),
        }
        if machine.arch() == Arch::X64 {
            if kvm {
                // QEMU aborts on the host model's arch-capabilities MSR
                // under nested KVM; everything else of the host CPU is fine.
                push(&["-accel", "kvm", "-cpu", "host,-arch-capabilities"]);
            } else {
                push(&["-cpu", self.cpu_model.as_deref().unwrap_or("max")]);
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
        let ram = format!("{}M", self.ram_mib);
        push(&["-m", &ram]);
        if self.cpus != 1 {
            push(&["-smp", &self.cpus.to_string()]);
        }
        push(&["-kernel", &kernel.display().to_string()]);
        if machine.arch() == Arch::Arm {
            match &self.device_tree {
                DeviceTree::Board => {
                    let dtb = board_dtb(self.ram_mib, self.cpus)?;
                    push(&["-dtb", &dtb.display().to_string()]);
                }
                DeviceTree::Raw(path) => {
                    let loader = format!(
                        "loader,file={},addr={:#x},force-raw=on",
                        path.display(),
                        arch_armv7::layout::RAM_BASE
                    );
                    push(&["-device", &loader]);
                }
            }
        }
        args.extend(self.device_args()?);
        args.extend([
            "-append".to_string(),
            format!("{cmdline}{}", self.init_options()),
        ]);
        Ok(args)
    }
}

/// Reads a RAM size: a number of MiB, or a number with a unit (`64M`,
/// `512MiB`, `2G`, `1GiB`).
pub fn parse_ram_size(text: &str) -> Result<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| error!("{text:?} is not a RAM size (examples: 64M, 512M, 2G)"))?;
    let mib = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => Some(number),
        "g" | "gb" | "gib" => number.checked_mul(1024),
        _ => return Err(error!("{text:?}: unknown unit {unit:?} (use M or G)")),
    };
    match mib {
        Some(mib) if mib > 0 => Ok(mib),
        _ => Err(error!("{text:?} is not a usable RAM size")),
    }
}

/// Reads a CPU count (1 to 8).
pub fn parse_cpus(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(n @ 1..=8) => Ok(n),
        _ => Err(error!("{text:?} is not a CPU count from 1 to 8")),
    }
}

/// Writes `bytes` to `name` in xtask's output directory and returns its
/// path.
pub fn write_boot_file(name: &str, bytes: &[u8]) -> Result<PathBuf> {
    let dir = crate::workspace().join("target").join("xtask");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| error!("{}: {e}", path.display()))?;
    Ok(path)
}

/// The board's device tree for `ram_mib` of RAM and `cpus` CPUs.
pub fn board_dtb(ram_mib: u64, cpus: u32) -> Result<PathBuf> {
    let options = arch_armv7::board::TreeOptions::board(ram_mib << 20, cpus);
    let blob = arch_armv7::board::device_tree(&options)
        .map_err(|e| error!("writing the board's device tree: {e:?}"))?;
    write_boot_file(&format!("vexpress-a15-{ram_mib}m-{cpus}cpu.dtb"), &blob)
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
        let mut config = Config::new(Machine::ArmVexpressA15, 256);
        config.device_tree = DeviceTree::Raw(PathBuf::from("b.dtb"));
        let args = config
            .qemu_args(Path::new("k"), "mode=test", Console::Captured, false)
            .unwrap();
        let line = args.join(" ");
        assert!(line.contains("-device loader,file=b.dtb,addr=0x80000000,force-raw=on"));
        assert!(!line.contains("-dtb"));
        assert!(line.contains("-m 256M"));
        assert!(!line.contains("-smp"));
        assert!(line.contains("semihosting"));
        assert!(line.ends_with("-append mode=test init.net.ip=10.0.2.15/24 init.net.echo=7"));
    }

    #[test]
    fn configurations_reach_the_command_line() {
        let mut config = Config::new(Machine::X64Microvm, 2048);
        config.cpus = 4;
        config.cpu_model = Some("qemu64".into());
        config.machine_options = Some("acpi=off".into());
        let line = config
            .qemu_args(Path::new("k"), "mode=run", Console::Captured, false)
            .unwrap()
            .join(" ");
        assert!(line.contains("-M microvm,acpi=off"), "{line}");
        assert!(line.contains("-cpu qemu64"), "{line}");
        assert!(line.contains("-m 2048M -smp 4"), "{line}");
        assert_eq!(config.describe(), "2048 MiB, 4 CPUs, -cpu qemu64, acpi=off");
    }

    #[test]
    fn ram_sizes_and_cpu_counts_parse() {
        assert_eq!(parse_ram_size("64M").unwrap(), 64);
        assert_eq!(parse_ram_size("512").unwrap(), 512);
        assert_eq!(parse_ram_size("2G").unwrap(), 2048);
        assert_eq!(parse_ram_size("1GiB").unwrap(), 1024);
        assert!(parse_ram_size("0").is_err());
        assert!(parse_ram_size("lots").is_err());
        assert!(parse_ram_size("3T").is_err());
        assert!(parse_ram_size("99999999999999999999G").is_err());
        assert_eq!(parse_cpus("4").unwrap(), 4);
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("x").is_err());
    }
}
