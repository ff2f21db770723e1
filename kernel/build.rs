//! Embeds the boot archive of user programs. `cargo xtask` builds the
//! programs for the kernel's target, packs them and names the archive in
//! `FERRITE_USER_PROGRAMS`; without it (host tests, lint) the kernel gets
//! an empty archive.

use std::{env, fs, path::PathBuf};

fn main() {
    const VARIABLE: &str = "FERRITE_USER_PROGRAMS";
    println!("cargo:rerun-if-env-changed={VARIABLE}");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("user-programs.far");
    let archive = match env::var_os(VARIABLE) {
        Some(path) => {
            let path = PathBuf::from(path);
            println!("cargo:rerun-if-changed={}", path.display());
            fs::read(&path).unwrap_or_else(|e| panic!("{VARIABLE}={}: {e}", path.display()))
        }
        None => Vec::new(),
    };
    fs::write(&out, archive).expect("write the embedded archive");
}
