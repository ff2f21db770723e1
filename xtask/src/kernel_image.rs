//! Building kernel images and the files QEMU boots them with.

use crate::cli::Profile;
use crate::machine::Arch;
use crate::{Result, error, provision, seconds, step};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace());
    command
}

/// Where the user programs' sources are: each file or directory in it is
/// one program.
const PROGRAMS_DIR: &str = "user/programs/src/bin";

/// The user programs' names, from their sources.
pub fn user_program_names() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(workspace().join(PROGRAMS_DIR))? {
        let path = entry?.path();
        let name = if path.is_dir() && path.join("main.rs").is_file() {
            path.file_name()
        } else if path.extension().is_some_and(|e| e == "rs") {
            path.file_stem()
        } else {
            None
        };
        if let Some(name) = name.and_then(|n| n.to_str()) {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Where the packed user programs for `arch` go.
pub fn user_archive_path(arch: Arch, profile: Profile) -> PathBuf {
    workspace()
        .join("target")
        .join(arch.target())
        .join(profile.dir())
        .join("user-programs.far")
}

/// Builds the user programs for `arch` and packs them into the boot
/// archive; returns its path.
pub fn build_user_programs(arch: Arch, profile: Profile) -> Result<PathBuf> {
    let mut command = cargo();
    command.args([
        "build",
        "--quiet",
        "--package",
        "user-programs",
        "--bins",
        "--target",
        arch.target(),
    ]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    if !command.status()?.success() {
        return Err(error!("building the {} user programs failed", arch.name()));
    }
    let dir = workspace()
        .join("target")
        .join(arch.target())
        .join(profile.dir());
    let names = user_program_names()?;
    let mut files = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| error!("{}: {e}", path.display()))?;
        files.push((name.as_str(), bytes));
    }
    let entries: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let archive =
        kernel::archive::build(&entries).map_err(|e| error!("packing the user programs: {e:?}"))?;
    let path = user_archive_path(arch, profile);
    std::fs::write(&path, &archive)?;
    Ok(path)
}

/// Builds the kernel for `arch`, with its user programs, and returns the
/// image's path.
pub fn build(arch: Arch, profile: Profile) -> Result<PathBuf> {
    provision::ensure_rust_targets(&[arch])?;
    let started = Instant::now();
    step(format!(
        "building the {} kernel ({})",
        arch.name(),
        profile.dir()
    ));
    let archive = build_user_programs(arch, profile)?;
    let mut command = cargo();
    command.env("FERRITE_USER_PROGRAMS", &archive);
    command.args([
        "build",
        "--quiet",
        "--package",
        arch.package(),
        "--bin",
        "ferrite",
        "--target",
        arch.target(),
    ]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    let status = command.status()?;
    if !status.success() {
        return Err(error!("building the {} kernel failed", arch.name()));
    }
    let image = workspace()
        .join("target")
        .join(arch.target())
        .join(profile.dir())
        .join("ferrite");
    let shown = image.strip_prefix(workspace()).unwrap_or(&image);
    step(format!(
        "built {} in {}",
        shown.display(),
        seconds(started.elapsed())
    ));
    Ok(image)
}

/// Writes the vexpress-a15 device tree for `ram_mib` of RAM and returns its
/// path. It comes from the board description in the ARM crate.
pub fn board_dtb(ram_mib: u64) -> Result<PathBuf> {
    let blob = arch_armv7::board::device_tree(ram_mib << 20)
        .map_err(|e| error!("writing the device tree: {e:?}"))?;
    let dir = workspace().join("target").join("xtask");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("vexpress-a15-{ram_mib}m.dtb"));
    std::fs::write(&path, blob)?;
    Ok(path)
}
