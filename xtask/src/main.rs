//! `cargo xtask`: builds Ferrite, runs it in QEMU and tests it.
//!
//! Tasks are plain functions over `std::process::Command`. Besides the
//! project's own crates the tool uses `serde_json` (QMP, JSON output) and
//! `elf` (the kernel's symbols), so it builds in seconds on a fresh machine.

mod apt;
mod bench;
mod cli;
mod docs;
mod fuzz;
mod kernel_image;
mod lint;
mod machine;
mod matrix;
mod memmap;
mod modgraph;
mod net;
mod provision;
mod qemu;
mod run;
mod test;

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

/// An error to report to the user, already phrased for them.
#[derive(Debug)]
pub struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

/// Builds an [`Error`] from format arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::Error(format!($($arg)*)) };
}

pub type Result<T> = std::result::Result<T, Error>;

/// Prints a progress line (on stderr: stdout is for results, such as
/// `memmap --json`).
/// The workspace root.
pub fn workspace() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

pub fn step(message: impl fmt::Display) {
    eprintln!("xtask: {message}");
}

/// Seconds with one decimal, for progress lines.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("xtask: {e}\n");
            eprintln!("{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let outcome = match command {
        cli::Command::Help => {
            println!("{}", cli::USAGE);
            Ok(true)
        }
        cli::Command::Docs => docs::write().map(|_| true),
        cli::Command::Lint => lint::run(),
        cli::Command::Bench(options) => bench::run(&options).map(|_| true),
        cli::Command::Build(options) => {
            kernel_image::build(options.arch, options.profile).map(|_| true)
        }
        cli::Command::Run(options) => run::run(&options).map(|_| true),
        cli::Command::Gdb(options) => run::gdb(&options).map(|_| true),
        cli::Command::Test(options) => test::run(&options),
        cli::Command::Memmap(options) => memmap::run(&options),
        cli::Command::Fuzz(options) => fuzz::run(&options),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
