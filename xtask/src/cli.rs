//! Command-line parsing, by hand: a few tasks with a few flags each.

use crate::machine::{Arch, Machine};
use crate::{Result, error};

pub const USAGE: &str = "\
usage: cargo xtask <task> [options]

tasks:
  build --arch x64|arm [--release]
        Build the kernel image for an architecture.
  run   --arch x64|arm [--machine microvm|q35] [--kvm] [--gdb] [--release]
        [--append \"kernel args\"]
        Boot in QEMU with the serial console on this terminal.
        Ctrl-A X quits; Ctrl-A C switches to the QEMU monitor.
  test  [--arch x64|arm] [--release]
        Lint, host unit tests, generated documents, then the in-kernel
        suite on every machine (x64-microvm, x64-q35, arm-vexpress-a15).
  bench [--arch x64|arm]
        Boot a release build on every machine with -icount shift=0 and
        report instructions per operation: one line per metric and machine,
        and target/bench/bench.json.
  memmap --arch x64|arm [--machine microvm|q35] [--process NAME]
        [--svg FILE] [--json] [--release]
        Boot to the shell with RAM in a host file, pause, walk the page
        tables from the host and check them against the layout; print
        the physical and virtual maps (or JSON), draw them (SVG). Exits
        non-zero on any mismatch.
  docs  Regenerate docs/memory-map-*.md and docs/syscalls.md from the code.
  lint  rustfmt and clippy (warnings are errors) for the host and both
        kernel targets.
  help  Show this text.

QEMU and the Rust targets are installed on first use where possible.";

/// Debug or release build of the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    /// Cargo's directory name for the profile.
    pub fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct BuildOptions {
    pub arch: Arch,
    pub profile: Profile,
}

#[derive(Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub machine: Machine,
    pub profile: Profile,
    pub kvm: bool,
    pub gdb: bool,
    pub append: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TestOptions {
    pub arch: Option<Arch>,
    pub profile: Profile,
}

#[derive(Debug, PartialEq, Eq)]
pub struct BenchOptions {
    pub arch: Option<Arch>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Lint,
    Bench(BenchOptions),
    Help,
    Docs,
    Build(BuildOptions),
    Run(RunOptions),
    Test(TestOptions),
    Memmap(crate::memmap::Options),
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
            only(&[], &flags)?;
            if flags.release {
                return Err(error!("bench always uses a release build"));
            }
            Ok(Command::Bench(BenchOptions { arch: flags.arch }))
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
        "run" => {
            only(&["--machine", "--kvm", "--gdb", "--append"], &flags)?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("run needs --arch x64|arm"))?;
            let machine = match flags.machine {
                Some(name) => Machine::parse(arch, &name)?,
                None => arch.default_machine(),
            };
            Ok(Command::Run(RunOptions {
                machine,
                profile,
                kvm: flags.kvm,
                gdb: flags.gdb,
                append: flags.append.unwrap_or_default(),
            }))
        }
        "memmap" => {
            only(&["--machine", "--process", "--svg", "--json"], &flags)?;
            let arch = flags
                .arch
                .ok_or_else(|| error!("memmap needs --arch x64|arm"))?;
            let machine = match &flags.machine {
                Some(name) => Machine::parse(arch, name)?,
                None => arch.default_machine(),
            };
            Ok(Command::Memmap(crate::memmap::Options {
                machine,
                profile,
                process: flags.process,
                svg: flags.svg.map(std::path::PathBuf::from),
                json: flags.json,
            }))
        }
        "test" => {
            only(&[], &flags)?;
            Ok(Command::Test(TestOptions {
                arch: flags.arch,
                profile,
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
    fn parses_the_documented_forms() {
        assert_eq!(
            parse_str("run --arch x64 --machine q35 --gdb").unwrap(),
            Command::Run(RunOptions {
                machine: Machine::X64Q35,
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
                profile: Profile::Debug
            })
        );
        assert_eq!(parse_str("").unwrap(), Command::Help);
        assert_eq!(
            parse_str("memmap --arch x64 --machine q35 --process sh --svg m.svg --json").unwrap(),
            Command::Memmap(crate::memmap::Options {
                machine: Machine::X64Q35,
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
    }
}
