//! Command-line parsing, by hand: a few tasks with a few flags each.

pub use crate::kernel_image::Profile;
pub use crate::machine::Size;
use crate::machine::{Arch, Machine, parse_cpus, parse_ram_size};
use crate::{Result, error};

pub const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  build --arch x64|arm [--release]
        Build the kernel image for an architecture.
  run   --arch x64|arm [--machine microvm|q35] [--memory SIZE] [--cpus N]
        [--kvm] [--gdb] [--release] [--append \"kernel args\"]
        Boot in QEMU with the serial console on this terminal.
        Ctrl-A X quits; Ctrl-A C switches to the QEMU monitor.
  gdb   --arch x64|arm [--machine microvm|q35] [--memory SIZE] [--cpus N]
        [--release] [--append \"kernel args\"]
        Start QEMU halted and a debugger attached to it, stopped where the
        kernel enters its portable core.
  test  [--arch x64|arm] [--release] [--memory SIZE] [--cpus N] [--matrix]
        Lint, host unit tests, generated documents, then the in-kernel
        suite on every machine (x64-microvm, x64-q35, arm-vexpress-a15)
        and a boot matrix of other RAM sizes, CPU counts, CPU models and
        hostile boot inputs. --matrix runs every suite at every point of
        the full matrix; --memory/--cpus run the suites at that size only.
  bench [--arch x64|arm] [--memory SIZE] [--cpus N]
        Boot a release build on every machine with -icount shift=0 and
        report instructions per operation: one line per metric and machine,
        and target/bench/bench.json.
  memmap --arch x64|arm [--machine microvm|q35] [--memory SIZE] [--cpus N]
        [--process NAME] [--svg FILE] [--json] [--release]
        Boot to the shell with RAM in a host file, pause, walk the page
        tables from the host and check them against the layout; print
        the physical and virtual maps (or JSON), draw them (SVG). Exits
        non-zero on any mismatch.
  fuzz  --arch x64|arm [--machine microvm|q35] [--memory SIZE] [--cpus N]
        [--iterations N] [--seed S] [--release]
        Boot in fuzz mode: init runs N (default 20000) random system calls
        with adversarial arguments from seed S (default: from the clock,
        printed) in disposable workers, then checks that every frame and
        heap byte came back. Fails on a kernel panic, a hang or a leak.
  docs  Regenerate docs/memory-map-*.md and docs/syscalls.md from the code.
  lint  rustfmt and clippy (warnings are errors) for the host and both
        kernel targets.
  help  Show this text.

SIZE is MiB or a number with M or G (64M, 2G). QEMU, gdb-multiarch and
the Rust targets are installed on first use where possible.";

#[derive(Debug, PartialEq, Eq)]
pub struct BuildOptions {
    pub arch: Arch,
    pub profile: Profile,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub machine: Machine,
    pub size: Size,
    pub profile: Profile,
    pub kvm: bool,
    pub gdb: bool,
    pub append: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TestOptions {
    pub arch: Option<Arch>,
    pub profile: Profile,
    pub size: Size,
    /// Every suite at every point of the full matrix.
    pub matrix: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct FuzzOptions {
    pub machine: Machine,
    pub size: Size,
    pub profile: Profile,
    pub iterations: u64,
    pub seed: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchOptions {
    pub arch: Option<Arch>,
    pub size: Size,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Lint,
    Bench(BenchOptions),
    Help,
    Docs,
    Build(BuildOptions),
    Run(RunOptions),
    Gdb(RunOptions),
    Test(TestOptions),
    Memmap(crate::memmap::Options),
    Fuzz(FuzzOptions),
}

/// Flags common to the tasks, gathered before each task checks its own.
#[derive(Default)]
struct Flags {
    arch: Option<Arch>,
    machine: Option<String>,
    release: bool,
    kvm: bool,
    gdb: bool,
    append: Option<String>,
    process: Option<String>,
    svg: Option<String>,
    json: bool,
    size: Size,
    matrix: bool,
    iterations: Option<u64>,
    seed: Option<u64>,
}

fn number(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<u64> {
    let text = value(args, flag)?;
    text.parse()
        .map_err(|_| error!("{flag} needs a number, not {text:?}"))
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String> {
    args.next().ok_or_else(|| error!("{flag} needs a value"))
}

pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command> {
    let mut args = args.into_iter();
    let task = args.next().unwrap_or_else(|| "help".into());
    let mut flags = Flags::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--arch" => flags.arch = Some(Arch::parse(&value(&mut args, "--arch")?)?),
            "--machine" => flags.machine = Some(value(&mut args, "--machine")?),
            "--release" => flags.release = true,
            "--kvm" => flags.kvm = true,
            "--gdb" => flags.gdb = true,
            "--append" => flags.append = Some(value(&mut args, "--append")?),
            "--process" => flags.process = Some(value(&mut args, "--process")?),
            "--svg" => flags.svg = Some(value(&mut args, "--svg")?),
            "--json" => flags.json = true,
            "--matrix" => flags.matrix = true,
            "--iterations" => flags.iterations = Some(number(&mut args, "--iterations")?),
            "--seed" => flags.seed = Some(number(&mut args, "--seed")?),
            "--memory" => {
                flags.size.memory_mib = Some(parse_ram_size(&value(&mut args, "--memory")?)?)
            }
            "--cpus" => flags.size.cpus = Some(parse_cpus(&value(&mut args, "--cpus")?)?),
            other => return Err(error!("unknown option {other:?}")),
        }
    }
    let profile = if flags.release {
        Profile::Release
    } else {
        Profile::Debug
    };
    let only = |allowed: &[&str], f: &Flags| -> Result<()> {
        let given = [
            ("--machine", f.machine.is_some()),
            ("--kvm", f.kvm),
            ("--gdb", f.gdb),
            ("--append", f.append.is_some()),
            ("--process", f.process.is_some()),
            ("--svg", f.svg.is_some()),
            ("--json", f.json),
            ("--memory", f.size.memory_mib.is_some()),
            ("--cpus", f.size.cpus.is_some()),
            ("--matrix", f.matrix),
            ("--iterations", f.iterations.is_some()),
            ("--seed", f.seed.is_some()),
        ];
        match given
            .iter()
            .find(|(name, set)| *set && !allowed.contains(name))
        {
            Some((name, _)) => Err(error!("{name} does not apply to `{task}`")),
            None => Ok(()),
        }
    };
    match task.as_str() {
        "help" | "--help" | "-h" => Ok(Command::Help),
        "bench" => {
            only(&["--memory", "--cpus"], &flags)?;
            if flags.release {
                return Err(error!("bench always uses a release build"));
            }
            Ok(Command::Bench(BenchOptions {
                arch: flags.arch,
                size: flags.size,
            }))
        }
        "lint" => {
            only(&[], &flags)?;
            if flags.arch.is_some() || flags.release {
                return Err(error!("lint takes no options"));
            }
            Ok(Command::Lint)
        }
        "docs" => {
            only(&[], &flags)?;
            if flags.arch.is_some() || flags.release {
                return Err(error!("docs takes no options"));
            }
            Ok(Command::Docs)
        }
        "build" => {
            only(&[], &flags)?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("build needs --arch x64|arm"))?;
            Ok(Command::Build(BuildOptions { arch, profile }))
        }
        "run" | "gdb" => {
            let allowed: &[&str] = if task == "run" {
                &[
                    "--machine",
                    "--kvm",
                    "--gdb",
                    "--append",
                    "--memory",
                    "--cpus",
                ]
            } else {
                &["--machine", "--append", "--memory", "--cpus"]
            };
            only(allowed, &flags)?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("{task} needs --arch x64|arm"))?;
            let machine = match flags.machine {
                Some(name) => Machine::parse(arch, &name)?,
                None => arch.default_machine(),
            };
            let options = RunOptions {
                machine,
                size: flags.size,
                profile,
                kvm: flags.kvm,
                gdb: flags.gdb || task == "gdb",
                append: flags.append.unwrap_or_default(),
            };
            Ok(if task == "run" {
                Command::Run(options)
            } else {
                Command::Gdb(options)
            })
        }
        "memmap" => {
            only(
                &[
                    "--machine",
                    "--process",
                    "--svg",
                    "--json",
                    "--memory",
                    "--cpus",
                ],
                &flags,
            )?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("memmap needs --arch x64|arm"))?;
            let machine = match &flags.machine {
                Some(name) => Machine::parse(arch, name)?,
                None => arch.default_machine(),
            };
            Ok(Command::Memmap(crate::memmap::Options {
                machine,
                size: flags.size,
                profile,
                process: flags.process,
                svg: flags.svg.map(std::path::PathBuf::from),
                json: flags.json,
            }))
        }
        "fuzz" => {
            only(
                &["--machine", "--memory", "--cpus", "--iterations", "--seed"],
                &flags,
            )?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("fuzz needs --arch x64|arm"))?;
            let machine = match &flags.machine {
                Some(name) => Machine::parse(arch, name)?,
                None => arch.default_machine(),
            };
            Ok(Command::Fuzz(FuzzOptions {
                machine,
                size: flags.size,
                profile,
                iterations: flags.iterations.unwrap_or(20_000),
                seed: flags.seed,
            }))
        }
        "test" => {
            only(&["--memory", "--cpus", "--matrix"], &flags)?;
            if flags.matrix && flags.size != Size::default() {
                return Err(error!(
                    "--matrix chooses its own sizes; leave out --memory and --cpus"
                ));
            }
            Ok(Command::Test(TestOptions {
                arch: flags.arch,
                profile,
                size: flags.size,
                matrix: flags.matrix,
            }))
        }
        other => Err(error!("unknown task {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<Command> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn parses_fuzz_runs() {
        assert_eq!(
            parse_str("fuzz --arch x64 --machine q35 --iterations 1000000 --seed 42").unwrap(),
            Command::Fuzz(FuzzOptions {
                machine: Machine::X64Q35,
                size: Size::default(),
                profile: Profile::Debug,
                iterations: 1_000_000,
                seed: Some(42),
            })
        );
        assert!(parse_str("fuzz --arch arm --seed x").is_err());
        assert!(parse_str("fuzz").is_err(), "no architecture");
        assert!(parse_str("test --seed 3").is_err(), "--seed is fuzz's");
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(
            parse_str("run --arch x64 --machine q35 --gdb").unwrap(),
            Command::Run(RunOptions {
                machine: Machine::X64Q35,
                size: Size::default(),
                profile: Profile::Debug,
                kvm: false,
                gdb: true,
                append: String::new()
            })
        );
        assert_eq!(
            parse_str("build --arch arm --release").unwrap(),
            Command::Build(BuildOptions {
                arch: Arch::Arm,
                profile: Profile::Release
            })
        );
        assert_eq!(
            parse_str("test").unwrap(),
            Command::Test(TestOptions {
                arch: None,
                profile: Profile::Debug,
                size: Size::default(),
                matrix: false,
            })
        );
        assert_eq!(
            parse_str("test --arch arm --memory 1G --cpus 2").unwrap(),
            Command::Test(TestOptions {
                arch: Some(Arch::Arm),
                profile: Profile::Debug,
                size: Size {
                    memory_mib: Some(1024),
                    cpus: Some(2)
                },
                matrix: false,
            })
        );
        assert_eq!(
            parse_str("gdb --arch arm").unwrap(),
            Command::Gdb(RunOptions {
                machine: Machine::ArmVexpressA15,
                size: Size::default(),
                profile: Profile::Debug,
                kvm: false,
                gdb: true,
                append: String::new()
            })
        );
        assert_eq!(parse_str("").unwrap(), Command::Help);
        assert_eq!(
            parse_str("memmap --arch x64 --machine q35 --process sh --svg m.svg --json").unwrap(),
            Command::Memmap(crate::memmap::Options {
                machine: Machine::X64Q35,
                size: Size::default(),
                profile: Profile::Debug,
                process: Some("sh".into()),
                svg: Some("m.svg".into()),
                json: true,
            })
        );
    }

    #[test]
    fn rejects_what_does_not_fit() {
        assert!(parse_str("run").is_err(), "no arch");
        assert!(
            parse_str("run --arch arm --machine q35").is_err(),
            "q35 is not an ARM machine"
        );
        assert!(
            parse_str("build --arch x64 --gdb").is_err(),
            "gdb is for run"
        );
        assert!(parse_str("test --arch sparc").is_err());
        assert!(parse_str("frobnicate").is_err());
        assert!(parse_str("run --arch").is_err(), "missing value");
        assert!(parse_str("memmap").is_err(), "no arch");
        assert!(
            parse_str("run --arch x64 --json").is_err(),
            "json is for memmap"
        );
        assert!(parse_str("test --matrix --memory 1G").is_err());
        assert!(parse_str("lint --cpus 2").is_err());
        assert!(parse_str("gdb --arch x64 --kvm").is_err());
        assert!(parse_str("run --arch x64 --memory big").is_err());
    }
}
