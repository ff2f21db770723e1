//! `cargo xtask lint`: rustfmt and clippy over every crate, for the host and
//! for each kernel target, and the module-cycle rule (see `modgraph`);
//! `cargo xtask test` runs it first.

use crate::kernel_image::Profile;
use crate::kernel_image::workspace;
use crate::machine::Arch;
use crate::{Result, error, seconds, step};
use std::process::{Command, Output};
use std::time::Instant;

/// One check: what it is called, cargo's arguments and environment.
pub struct Check {
    pub name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The checks, in the order they run.
pub fn checks() -> Vec<Check> {
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    let mut checks = vec![
        Check {
            name: "rustfmt".into(),
            args: words("fmt --all -- --check"),
            env: Vec::new(),
        },
        Check {
            name: "clippy host crates".into(),
            args: words(
                "clippy --workspace --exclude arch-x86_64 --exclude arch-armv7 \
                 --exclude ferrite-rt --exclude ferrite-nic --exclude user-programs --all-targets -- -D warnings",
            ),
            env: Vec::new(),
        },
        Check {
            name: "clippy architecture libraries".into(),
            args: words(
                "clippy --package arch-x86_64 --package arch-armv7 --lib --tests -- -D warnings",
            ),
            env: Vec::new(),
        },
    ];
    for arch in Arch::ALL {
        // The archive a test build embeds, so that linting does not make
        // the next build recompile the kernel with a different one.
        let archive = crate::kernel_image::user_archive_path(arch, Profile::Debug);
        let env = if archive.is_file() {
            vec![(
                "FERRITE_USER_PROGRAMS".to_string(),
                archive.display().to_string(),
            )]
        } else {
            Vec::new()
        };
        checks.push(Check {
            name: format!("clippy {} kernel", arch.name()),
            args: words(&format!(
                "clippy --package {} --bin ferrite --target {} -- -D warnings",
                arch.package(),
                arch.target()
            )),
            env,
        });
        checks.push(Check {
            name: format!("clippy {} user programs", arch.name()),
            args: words(&format!(
                "clippy --package ferrite-rt --package ferrite-nic --package user-programs --target {} -- -D warnings",
                arch.target()
            )),
            env: Vec::new(),
        });
    }
    checks
}

/// Makes sure rustup has the lint tools (a toolchain that was already
/// installed does not get `rust-toolchain.toml`'s components).
pub fn ensure_components() -> Result<()> {
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed"])
        .output();
    let Ok(installed) = installed else {
        return Ok(());
    };
    let installed = String::from_utf8_lossy(&installed.stdout).into_owned();
    let missing: Vec<&str> = ["clippy", "rustfmt"]
        .into_iter()
        .filter(|c| !installed.lines().any(|l| l.starts_with(&format!("{c}-"))))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(format!(
        "adding Rust components: rustup component add {}",
        missing.join(" ")
    ));
    let status = Command::new("rustup")
        .args(["component", "add"])
        .args(&missing)
        .status()?;
    if !status.success() {
        return Err(error!(
            "`rustup component add {}` failed",
            missing.join(" ")
        ));
    }
    Ok(())
}

/// Runs one check; returns its output.
pub fn run_check(check: &Check) -> Result<Output> {
    Ok(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace())
            .args(&check.args)
            .envs(check.env.iter().map(|(k, v)| (k, v)))
            .output()?,
    )
}

/// `cargo xtask lint`.
pub fn run() -> Result<bool> {
    ensure_components()?;
    crate::provision::ensure_rust_targets(&Arch::ALL)?;
    let mut clean = true;
    for check in checks() {
        let started = Instant::now();
        let output = run_check(&check)?;
        let ok = output.status.success();
        step(format!(
            "{}: {} in {}",
            check.name,
            if ok { "clean" } else { "FAILED" },
            seconds(started.elapsed())
        ));
        if !ok {
            clean = false;
            print!("{}", String::from_utf8_lossy(&output.stdout));
            print!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let cycles = module_cycles()?;
    step(format!(
        "module cycles: {}",
        if cycles.is_empty() { "none" } else { "FOUND" }
    ));
    for cycle in &cycles {
        println!("    {cycle}");
    }
    Ok(clean && cycles.is_empty())
}

/// Every circle of references between sibling modules in any crate of the
/// workspace, one line each (none is the rule).
pub fn module_cycles() -> Result<Vec<String>> {
    let workspace = workspace();
    let mut found = Vec::new();
    let roots = crate::modgraph::crate_roots(&workspace);
    if roots.len() < 10 {
        return Err(error!(
            "found only {} crates to check: {roots:?}",
            roots.len()
        ));
    }
    for root in roots {
        let graph = crate::modgraph::read_crate(&root).map_err(|e| error!("{e}"))?;
        for group in crate::modgraph::cycles(&graph) {
            let names: Vec<String> = group
                .iter()
                .map(|m| format!("crate::{}", m.join("::")))
                .collect();
            let root = root.strip_prefix(&workspace).unwrap_or(&root);
            found.push(format!("{}: {}", root.display(), names.join(" <-> ")));
        }
    }
    Ok(found)
}
