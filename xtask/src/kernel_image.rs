//! Building kernel images and the files QEMU boots them with.

use crate::machine::Arch;
use crate::{Result, error, provision, seconds, step};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

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

pub use crate::workspace;

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

/// Bytes kept of the truncated test image: the ELF header and part of the
/// program headers.
const TRUNCATED_IMAGE_LEN: usize = 100;

/// A copy of an ELF executable whose executable segment is also marked
/// writable (which the kernel must refuse: W^X).
pub fn make_text_writable(image: &[u8]) -> Option<Vec<u8>> {
    const PT_LOAD: u32 = 1;
    const PF_X: u32 = 1;
    const PF_W: u32 = 2;
    let read = |at: usize, len: usize| -> Option<u64> {
        let bytes = image.get(at..at + len)?;
        Some(bytes.iter().rev().fold(0, |v, &b| v << 8 | b as u64))
    };
    // ELF64 or ELF32, little-endian: where the header fields are.
    let (phoff, phentsize, phnum, flags_at) = match image.get(4)? {
        2 => (read(32, 8)?, read(54, 2)?, read(56, 2)?, 4),
        1 => (read(28, 4)?, read(42, 2)?, read(44, 2)?, 24),
        _ => return None,
    };
    let mut copy = image.to_vec();
    for n in 0..phnum {
        let header = usize::try_from(phoff + n * phentsize).ok()?;
        let flags = read(header + flags_at, 4)? as u32;
        if read(header, 4)? as u32 == PT_LOAD && flags & PF_X != 0 {
            copy[header + flags_at..header + flags_at + 4]
                .copy_from_slice(&(flags | PF_W).to_le_bytes());
            return Some(copy);
        }
    }
    None
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
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| error!("{}: {e}", path.display()))?;
        files.push((name.as_str(), bytes));
    }
    // Two broken copies of `hello`, for the tests of the kernel's checks.
    let hello = files
        .iter()
        .find(|(name, _)| *name == "hello")
        .map(|(_, bytes)| bytes.clone())
        .ok_or_else(|| error!("no hello program to derive the broken images from"))?;
    let truncated = hello[..hello.len().min(TRUNCATED_IMAGE_LEN)].to_vec();
    let writable_text = make_text_writable(&hello)
        .ok_or_else(|| error!("hello has no executable segment to make writable"))?;
    files.push(("broken-truncated", truncated));
    files.push(("broken-wx", writable_text));
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

/// Calls `each` with every named symbol of a kernel ELF: name, address.
fn for_each_symbol(elf_bytes: &[u8], mut each: impl FnMut(&str, u64)) -> Result<()> {
    let file = elf::ElfBytes::<elf::endian::AnyEndian>::minimal_parse(elf_bytes)
        .map_err(|e| error!("kernel ELF: {e}"))?;
    let (table, strings) = file
        .symbol_table()
        .map_err(|e| error!("kernel ELF symbols: {e}"))?
        .ok_or_else(|| error!("the kernel ELF has no symbol table"))?;
    for symbol in table.iter() {
        if let Ok(name) = strings.get(symbol.st_name as usize) {
            each(name, symbol.st_value);
        }
    }
    Ok(())
}

/// The addresses of `names` in the kernel ELF's symbol table.
pub fn symbols(elf_bytes: &[u8], names: &[&str]) -> Result<Vec<u64>> {
    let mut found = vec![None; names.len()];
    for_each_symbol(elf_bytes, |name, address| {
        if let Some(i) = names.iter().position(|n| *n == name) {
            found[i].get_or_insert(address);
        }
    })?;
    names
        .iter()
        .zip(found)
        .map(|(name, address)| address.ok_or_else(|| error!("the kernel ELF has no symbol {name}")))
        .collect()
}

/// The address of the portable core's entry, `kernel::kmain`. It is
/// generic over the architecture, so its symbol carries a hash and (in a
/// debugger) a type parameter; both are found here rather than typed.
pub fn core_entry(elf_bytes: &[u8]) -> Result<u64> {
    // Rust's legacy mangling: _ZN 6kernel 5kmain 17h<hash> E.
    const PREFIX: &str = "_ZN6kernel5kmain17h";
    let mut found = Vec::new();
    for_each_symbol(elf_bytes, |name, address| {
        if name.starts_with(PREFIX) {
            found.push(address);
        }
    })?;
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [address] => Ok(*address),
        [] => Err(error!("the kernel ELF has no kernel::kmain symbol")),
        many => Err(error!(
            "the kernel ELF has {} kernel::kmain instances",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header with two program headers: R (PT_LOAD), R+X (PT_LOAD).
    fn two_segments() -> Vec<u8> {
        let mut image = vec![0u8; 64 + 2 * 56];
        image[..5].copy_from_slice(b"\x7fELF\x02");
        image[32..40].copy_from_slice(&64u64.to_le_bytes());
        image[54..56].copy_from_slice(&56u16.to_le_bytes());
        image[56..58].copy_from_slice(&2u16.to_le_bytes());
        for (n, flags) in [(0, 4u32), (1, 5u32)] {
            let at = 64 + n * 56;
            image[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            image[at + 4..at + 8].copy_from_slice(&flags.to_le_bytes());
        }
        image
    }

    #[test]
    fn only_the_executable_segment_becomes_writable() {
        let image = two_segments();
        let patched = make_text_writable(&image).unwrap();
        let flags = |bytes: &[u8], n: usize| {
            let at = 64 + n * 56 + 4;
            u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
        };
        assert_eq!((flags(&patched, 0), flags(&patched, 1)), (4, 7));
        assert_eq!(patched.len(), image.len());
        assert_eq!(make_text_writable(&image[..70]), None);
        assert_eq!(make_text_writable(b"not an ELF file"), None);
    }
}
