//! The boot matrix: machine configurations other than each machine's test
//! default (RAM sizes, CPU counts, CPU models, firmware options) and
//! hostile boot inputs (device trees, command lines), each with what must
//! happen there.

use crate::machine::{Arch, Config, DeviceTree, Machine};
use crate::{Result, error};
use arch_armv7::board::TreeOptions;
use arch_armv7::layout::RAM_BASE;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// What a point of the matrix must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The in-kernel suite, the user-level suite and the shell session all
    /// pass, as at the default configuration (and the live memory map
    /// matches the layout, if `memmap`).
    Suites { memmap: bool },
    /// The shell answers and powers off; the console shows `banner`.
    Shell { banner: &'static str },
    /// Booted with `cmdline` (raw bytes: it may not be UTF-8), the kernel
    /// ends with `status` and prints a line containing `output`.
    Ends {
        cmdline: OsString,
        status: u8,
        output: &'static str,
    },
    /// Booted as it is, the kernel ends by itself with one of `allowed`
    /// (never a panic, never a hang).
    Survives { allowed: &'static [u8] },
}

/// One configuration and its check.
#[derive(Clone, Debug)]
pub struct Point {
    pub config: Config,
    pub check: Check,
}

fn point(config: Config, check: Check) -> Point {
    Point { config, check }
}

fn sized(machine: Machine, ram_mib: u64, cpus: u32) -> Config {
    let mut config = Config::new(machine, ram_mib);
    config.cpus = cpus;
    config
}

const SMP_BANNER: &str = "cpus: * found, 1 used (no SMP support yet: the others stay parked)";

/// The points `cargo xtask test` runs for `arch`: small and large RAM,
/// more CPUs, other CPU models and firmware, hostile inputs.
pub fn default_points(arch: Arch) -> Result<Vec<Point>> {
    let suites = Check::Suites { memmap: false };
    let mut points = Vec::new();
    match arch {
        Arch::X64 => {
            points.push(point(sized(Machine::X64Microvm, 64, 1), suites.clone()));
            points.push(point(sized(Machine::X64Q35, 4096, 1), suites.clone()));
            let mut no_smep = Config::new(Machine::X64Microvm, 128);
            no_smep.cpu_model = Some("qemu64".into());
            points.push(point(no_smep, suites.clone()));
            let mut no_acpi = Config::new(Machine::X64Microvm, 128);
            no_acpi.machine_options = Some("acpi=off".into());
            points.push(point(no_acpi, suites.clone()));
            // qboot leaves every PCI BAR unassigned: the kernel places them.
            let mut modern = Config::new(Machine::X64Microvm, 128);
            modern.modern_mmio = true;
            points.push(point(modern, suites.clone()));
            let mut qboot = Config::new(Machine::X64Q35, 512);
            qboot.firmware = Some("qboot.rom");
            points.push(point(qboot, suites.clone()));
            points.push(point(
                sized(Machine::X64Q35, 384, 2),
                Check::Shell { banner: SMP_BANNER },
            ));
        }
        Arch::Arm => {
            points.push(point(
                sized(Machine::ArmVexpressA15, 128, 1),
                suites.clone(),
            ));
            points.push(point(
                sized(Machine::ArmVexpressA15, 1024, 1),
                suites.clone(),
            ));
            points.push(point(
                sized(Machine::ArmVexpressA15, 2048, 1),
                suites.clone(),
            ));
            let mut modern = Config::new(Machine::ArmVexpressA15, 256);
            modern.modern_mmio = true;
            points.push(point(modern, suites.clone()));
            points.push(point(
                sized(Machine::ArmVexpressA15, 256, 2),
                Check::Shell { banner: SMP_BANNER },
            ));
            points.extend(hostile_trees()?);
            points.extend(mutated_trees()?);
        }
    }
    points.extend(hostile_cmdlines(arch.default_machine()));
    Ok(points)
}

/// The full matrix of `cargo xtask test --matrix`: every suite at every
/// RAM size from 32 MiB to 8 GiB (x86) or 128 MiB to 2 GiB (ARM) and at 1
/// to 4 CPUs, then the hostile inputs.
pub fn full_points(arch: Arch) -> Result<Vec<Point>> {
    let suites = Check::Suites { memmap: true };
    let (sizes, smallest): (&[u64], u64) = match arch {
        Arch::X64 => (&[32, 64, 128, 256, 512, 1024, 2048, 4096, 8192], 32),
        Arch::Arm => (&[128, 256, 512, 1024, 2048], 128),
    };
    let mut points = Vec::new();
    for &machine in arch.machines() {
        for &ram in sizes {
            points.push(point(sized(machine, ram, 1), suites.clone()));
        }
        for cpus in 2..=4 {
            points.push(point(
                sized(machine, machine.test_ram_mib().max(smallest), cpus),
                suites.clone(),
            ));
        }
    }
    // Then what the default run checks beyond these sizes (other CPU models
    // and firmware, the shell with more CPUs, hostile inputs).
    for extra in default_points(arch)? {
        let covered = matches!(extra.check, Check::Suites { .. })
            && points.iter().any(|p| p.config == extra.config);
        if !covered {
            points.push(extra);
        }
    }
    // The largest RAM sizes last: for a while after a guest of several GiB
    // exits, the host's reclaiming of its memory stalls the next guests
    // (a 100 ms tick window then lost nine ticks in ten), which timing
    // tests would take for the kernel's fault.
    points.sort_by_key(|p| p.config.ram_mib >= 4096);
    Ok(points)
}

/// Device trees no machine should boot with, loaded as they are (QEMU
/// would otherwise repair them), and what the kernel must say.
fn hostile_trees() -> Result<Vec<Point>> {
    let ram = (RAM_BASE as u64, 256 << 20);
    let kernel_start = RAM_BASE as u64 + 0x1_0000;
    // Name, memory ranges, reservations, what the kernel must say.
    type Tree = (&'static str, Vec<(u64, u64)>, Vec<(u64, u64)>, &'static str);
    let trees: [Tree; 5] = [
        ("no-memory", vec![], vec![], "no /memory node describes RAM"),
        (
            "empty-memory",
            vec![(RAM_BASE as u64, 0)],
            vec![],
            "has size 0",
        ),
        (
            "memory-elsewhere",
            vec![(RAM_BASE as u64 + (512 << 20), 64 << 20)],
            vec![],
            "is not inside usable RAM",
        ),
        (
            "overlapping-memory",
            vec![ram, (RAM_BASE as u64 + (128 << 20), 256 << 20)],
            vec![],
            "overlap",
        ),
        (
            "reserved-kernel",
            vec![ram],
            vec![(kernel_start, 0x10_0000)],
            "overlaps the kernel image",
        ),
    ];
    let mut blobs = Vec::new();
    for (name, memory, reservations, output) in trees {
        let options = TreeOptions {
            memory,
            reservations,
            cpus: 1,
            bootargs: "",
        };
        let blob = arch_armv7::board::device_tree(&options)
            .map_err(|e| error!("writing the device tree {name}: {e:?}"))?;
        blobs.push((name, blob, output));
    }
    blobs.push((
        "garbage",
        vec![0x5a; 256],
        "unusable device tree: bad magic",
    ));
    let mut points = Vec::new();
    for (name, blob, output) in blobs {
        let path = crate::machine::write_boot_file(&format!("hostile-{name}.dtb"), &blob)?;
        let mut config = Config::new(Machine::ArmVexpressA15, 256);
        config.device_tree = DeviceTree::Raw(path);
        points.push(point(
            config,
            Check::Ends {
                cmdline: OsString::new(),
                status: kernel::exit_code::BOOT_FAILURE,
                output,
            },
        ));
    }
    Ok(points)
}

/// Device trees made by mutating the board's at random (seeded, so the
/// same every run): loaded as they are, each boots, or is refused with a
/// reason, never a panic or a hang.
const MUTATED_TREES: u64 = 8;

fn mutated_trees() -> Result<Vec<Point>> {
    // A tree that boots asks to end at once, so both outcomes end.
    const BOOTARGS: &str = "mode=exit exit.code=0";
    let mut options = TreeOptions::board(256 << 20, 1);
    options.bootargs = BOOTARGS;
    let good = arch_armv7::board::device_tree(&options)
        .map_err(|e| error!("writing the board's device tree: {e:?}"))?;
    // The command line is left alone: a mutation there would only ask
    // for something else (the shell, which does not end).
    let args_at = good
        .windows(BOOTARGS.len())
        .position(|w| w == BOOTARGS.as_bytes())
        .ok_or_else(|| error!("the board's tree lacks its bootargs"))?;
    let mut points = Vec::new();
    for n in 0..MUTATED_TREES {
        let mut rng = hal::rand::XorShift::new(0x5eed_0000 + n);
        let mut blob = good.clone();
        for _ in 0..rng.below(6) + 1 {
            let at = rng.below(blob.len());
            if (args_at..args_at + BOOTARGS.len()).contains(&at) {
                continue;
            }
            blob[at] = rng.next() as u8;
        }
        let path = crate::machine::write_boot_file(&format!("mutated-{n}.dtb"), &blob)?;
        let mut config = Config::new(Machine::ArmVexpressA15, 256);
        config.device_tree = DeviceTree::Raw(path);
        points.push(point(
            config,
            Check::Survives {
                allowed: &[
                    kernel::exit_code::SUCCESS,
                    kernel::exit_code::BOOT_FAILURE,
                    kernel::exit_code::BAD_CMDLINE,
                ],
            },
        ));
    }
    Ok(points)
}

/// Command lines that must be taken whole or refused, never cut or
/// ignored.
fn hostile_cmdlines(machine: Machine) -> Vec<Point> {
    let config = || Config::new(machine, machine.test_ram_mib());
    let limit = hal::boot::MAX_CMDLINE;
    // Long, but within the limit: the last word still counts.
    let long = format!("pad={} mode=exit exit.code=42", "x".repeat(2000));
    let too_long = format!("mode=exit exit.code=42 pad={}", "x".repeat(limit));
    let mut not_utf8 = b"mode=exit exit.code=42 name=".to_vec();
    not_utf8.push(0xff);
    vec![
        point(
            config(),
            Check::Ends {
                cmdline: long.into(),
                status: 42,
                output: "exiting with status 42 as asked",
            },
        ),
        point(
            config(),
            Check::Ends {
                cmdline: too_long.into(),
                status: kernel::exit_code::BAD_CMDLINE,
                output: "refusing to boot: the command line is longer than",
            },
        ),
        point(
            config(),
            Check::Ends {
                cmdline: OsString::from_vec(not_utf8),
                status: kernel::exit_code::BAD_CMDLINE,
                output: "refusing to boot: the command line is not UTF-8 (byte 0xff at offset 28)",
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_covers_what_it_promises() {
        for arch in Arch::ALL {
            let points = default_points(arch).unwrap();
            assert!(points.iter().any(|p| p.config.cpus > 1), "{arch:?}: CPUs");
            assert!(
                points
                    .iter()
                    .any(|p| matches!(p.check, Check::Ends { status, .. } if status == kernel::exit_code::BAD_CMDLINE)),
                "{arch:?}: command lines"
            );
            let full = full_points(arch).unwrap();
            let sizes: Vec<u64> = full.iter().map(|p| p.config.ram_mib).collect();
            let (low, high) = match arch {
                Arch::X64 => (32, 8192),
                Arch::Arm => (128, 2048),
            };
            assert_eq!(sizes.iter().min(), Some(&low));
            assert_eq!(sizes.iter().max(), Some(&high));
            assert!(full.iter().any(|p| p.config.cpus == 4));
            for point in default_points(arch).unwrap() {
                assert!(
                    full.iter().any(|p| p.config == point.config
                        && match point.check {
                            Check::Suites { .. } => matches!(p.check, Check::Suites { .. }),
                            _ => p.check == point.check,
                        }),
                    "{arch:?}: {} missing from the full matrix",
                    point.config.scope()
                );
            }
        }
        let arm = default_points(Arch::Arm).unwrap();
        let hostile = arm
            .iter()
            .filter(|p| matches!(p.config.device_tree, DeviceTree::Raw(_)))
            .count();
        assert_eq!(
            hostile,
            6 + MUTATED_TREES as usize,
            "hostile and mutated device trees"
        );
    }
}
