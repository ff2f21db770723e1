//! Making sure the tools exist: the Rust targets and QEMU.
//!
//! On a Debian or Ubuntu machine where xtask runs as root, missing QEMU
//! packages are installed, each step printed. Anywhere else xtask stops and
//! prints the command for the user to run.

use crate::machine::Arch;
use crate::{Result, apt, error, step};
use std::path::Path;
use std::process::Command;

/// Oldest QEMU the project is known to need: microvm with PVH boot,
/// `-audio none`, and the semihosting and debug-exit behaviour relied on.
/// Tested with 10.0.
pub const MIN_QEMU: (u32, u32) = (8, 0);

/// Adds the kernel targets if rustup lacks them. `rust-toolchain.toml` names
/// them, but rustup only installs them with a toolchain it installs itself,
/// not into one that is already present.
pub fn ensure_rust_targets(arches: &[Arch]) -> Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output();
    let installed = match installed {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
        _ => {
            // Without rustup the toolchain must already have the targets;
            // cargo will say so if it does not.
            return Ok(());
        }
    };
    let missing: Vec<&str> = arches
        .iter()
        .map(|a| a.target())
        .filter(|t| !installed.lines().any(|line| line.trim() == *t))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(format!(
        "adding Rust targets: rustup target add {}",
        missing.join(" ")
    ));
    let status = Command::new("rustup")
        .args(["target", "add"])
        .args(&missing)
        .status()?;
    if !status.success() {
        return Err(error!("`rustup target add {}` failed", missing.join(" ")));
    }
    Ok(())
}

/// Parses "QEMU emulator version 10.0.2 (Debian ...)".
pub fn parse_qemu_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version ").nth(1)?;
    let version = rest
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn qemu_version(binary: &str) -> Option<String> {
    let output = Command::new(binary).arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Facts about the host that decide how QEMU can be installed.
struct Host {
    root: bool,
    debian_like: bool,
    /// `ID` from os-release: `debian`, `ubuntu`, ...
    id: String,
    codename: String,
}

fn host() -> Host {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false);
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let field = |key: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default()
    };
    let debian_like = field("ID") == "debian"
        || field("ID") == "ubuntu"
        || field("ID_LIKE").split_whitespace().any(|id| id == "debian");
    Host {
        root,
        debian_like,
        id: field("ID"),
        codename: field("VERSION_CODENAME"),
    }
}

const PACKAGES: [&str; 2] = ["qemu-system-x86", "qemu-system-arm"];

/// The shell commands that install QEMU on this host, given its package
/// sources; or what the user must add first.
fn install_commands(
    host: &Host,
    sources: &[apt::Source],
) -> std::result::Result<Vec<String>, String> {
    let packages = PACKAGES.join(" ");
    if host.id == "debian" && host.codename == "bookworm" {
        // Bookworm's own QEMU (7.2) is too old, and these machines carry
        // qemu-utils from backports, which conflicts with it: install from
        // backports, on the mirror the machine already uses.
        let suite = "bookworm-backports";
        let mut commands = Vec::new();
        match apt::plan_suite(sources, &host.codename, suite) {
            apt::SuitePlan::Present => {}
            apt::SuitePlan::Add { path, contents } => {
                commands.push(apt::write_command(&path, &contents))
            }
            apt::SuitePlan::NoReleaseSource => {
                return Err(format!(
                    "no APT source for Debian {codename} was found in /etc/apt/sources.list or \
                     /etc/apt/sources.list.d/, so there is no mirror to add {suite} from.\n\
                     Add a source for {suite} (for example a deb822 file \
                     /etc/apt/sources.list.d/{suite}.sources with Types: deb, URIs: <your mirror>, \
                     Suites: {suite}, Components: main), then install QEMU with:\n  \
                     apt-get update && apt-get install -y --no-install-recommends -t {suite} {packages}",
                    codename = host.codename
                ));
            }
        }
        commands.push("apt-get update".into());
        commands.push(format!(
            "apt-get install -y --no-install-recommends -t {suite} {packages}"
        ));
        Ok(commands)
    } else {
        // Newer Debian releases and Ubuntu carry a recent enough QEMU in
        // their own archive.
        Ok(vec![
            "apt-get update".into(),
            format!("apt-get install -y --no-install-recommends {packages}"),
        ])
    }
}

/// Runs each install command with `sh`, printing it first ("installing
/// WHAT: COMMAND"); stops at the first that fails.
fn run_install_commands(what: &str, commands: &[String]) -> Result<()> {
    for command in commands {
        step(format!("installing {what}: {command}"));
        let status = Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !status.success() {
            return Err(error!("`{command}` failed ({status})"));
        }
    }
    Ok(())
}

/// Makes sure QEMU for `arches` is installed and recent enough.
pub fn ensure_qemu(arches: &[Arch]) -> Result<()> {
    let missing: Vec<&str> = arches
        .iter()
        .map(|a| a.qemu_binary())
        .filter(|b| qemu_version(b).is_none())
        .collect();
    if !missing.is_empty() {
        let host = host();
        let planned = if host.debian_like {
            Some(install_commands(
                &host,
                &apt::machine_sources(Path::new("/")),
            ))
        } else {
            None
        };
        if let Some(Err(what_to_add)) = &planned {
            return Err(error!("{} not found: {what_to_add}", missing.join(", ")));
        }
        if let (true, Some(Ok(commands))) = (host.root, &planned) {
            step(format!("{} not found; installing QEMU", missing.join(", ")));
            run_install_commands("QEMU", commands)?;
        } else {
            let commands = if let Some(Ok(commands)) = &planned {
                commands
                    .iter()
                    .map(|c| format!("  sudo sh -c \"{}\"", c.replace('"', "\\\"")))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                format!(
                    "  install QEMU >= {}.{} providing {}",
                    MIN_QEMU.0,
                    MIN_QEMU.1,
                    missing.join(" and ")
                )
            };
            return Err(error!(
                "{} not found. Install QEMU with:\n{commands}",
                missing.join(", ")
            ));
        }
    }
    for arch in arches {
        let binary = arch.qemu_binary();
        let text = qemu_version(binary)
            .ok_or_else(|| error!("{binary} still not runnable after installing"))?;
        let version = parse_qemu_version(&text)
            .ok_or_else(|| error!("cannot read the version of {binary}: {text:?}"))?;
        if (version.0, version.1) < MIN_QEMU {
            return Err(error!(
                "{binary} is version {}.{}.{}; Ferrite needs {}.{} or newer",
                version.0, version.1, version.2, MIN_QEMU.0, MIN_QEMU.1
            ));
        }
    }
    Ok(())
}

/// Makes sure `binary` runs, installing Debian's `package` (from the
/// release's own archive) when it is missing and this is a Debian-like
/// host where xtask is root.
pub fn ensure_tool(binary: &str, package: &str) -> Result<()> {
    let runs = |b: &str| {
        Command::new(b)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs(binary) {
        return Ok(());
    }
    let host = host();
    let commands = [
        "apt-get update".to_string(),
        format!("apt-get install -y --no-install-recommends {package}"),
    ];
    if !(host.root && host.debian_like) {
        return Err(error!(
            "{binary} not found. Install the {package} package, e.g.:\n  sudo sh -c \"{}\"",
            commands.join(" && ")
        ));
    }
    run_install_commands(package, &commands)?;
    if runs(binary) {
        Ok(())
    } else {
        Err(error!(
            "{binary} still not runnable after installing {package}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_qemu_versions() {
        let debian =
            "QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright";
        assert_eq!(parse_qemu_version(debian), Some((10, 0, 2)));
        assert_eq!(
            parse_qemu_version("QEMU emulator version 8.2"),
            Some((8, 2, 0))
        );
        assert_eq!(parse_qemu_version("nonsense"), None);
    }

    fn host(id: &str, codename: &str) -> Host {
        Host {
            root: true,
            debian_like: true,
            id: id.into(),
            codename: codename.into(),
        }
    }

    #[test]
    fn bookworm_installs_from_backports_on_its_own_mirror() {
        let sources = apt::parse_deb822(
            "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\nComponents: main\n",
        );
        let commands = install_commands(&host("debian", "bookworm"), &sources).unwrap();
        assert!(commands[0].starts_with("printf '%s\\n' 'Types: deb' 'URIs: http://mirror.example/debian' 'Suites: bookworm-backports'"), "{commands:?}");
        assert!(commands[0].ends_with("> /etc/apt/sources.list.d/bookworm-backports.sources"));
        assert_eq!(commands[1], "apt-get update");
        assert!(commands[2].contains("-t bookworm-backports qemu-system-x86 qemu-system-arm"));
    }

    #[test]
    fn a_configured_backports_suite_is_used_as_it_is() {
        let sources = apt::parse_one_line(
            "deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian bookworm-backports main\n",
        );
        let commands = install_commands(&host("debian", "bookworm"), &sources).unwrap();
        assert_eq!(commands.len(), 2, "{commands:?}");
        assert_eq!(commands[0], "apt-get update");
    }

    #[test]
    fn no_debian_source_says_what_to_add() {
        let message = install_commands(&host("debian", "bookworm"), &[]).unwrap_err();
        assert!(message.contains("Suites: bookworm-backports"), "{message}");
        assert!(message.contains("-t bookworm-backports qemu-system-x86 qemu-system-arm"));
    }

    #[test]
    fn ubuntu_and_newer_debian_use_their_own_archive() {
        for (id, codename) in [("ubuntu", "noble"), ("debian", "trixie")] {
            let commands = install_commands(&host(id, codename), &[]).unwrap();
            assert!(!commands.join(" ").contains("backports"), "{id} {codename}");
            assert!(commands[1].ends_with("qemu-system-x86 qemu-system-arm"));
        }
    }
}
