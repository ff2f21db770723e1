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

/// Builds the kernel for `arch` and returns the image's path.
pub fn build(arch: Arch, profile: Profile) -> Result<PathBuf> {
    provision::ensure_rust_targets(&[arch])?;
    let started = Instant::now();
    step(format!(
        "building the {} kernel ({})",
        arch.name(),
        profile.dir()
    ));
    let mut command = cargo();
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
