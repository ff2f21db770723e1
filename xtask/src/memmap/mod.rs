//! `cargo xtask memmap`: the live memory map, read from outside the guest.
//!
//! QEMU runs the kernel with its RAM backed by a file on the host. Once the
//! shell prompts (boot has finished and init and the shell run), QMP stops
//! the guest; QEMU's `info mtree` says which physical ranges are RAM (and
//! where each lies in the file) and which are device registers. The kernel
//! exports a table (`kernel::inspect`) with its root page table and each
//! process's; the host finds it through the kernel ELF's symbols, walks
//! every table in the file with the architecture library's decoders, and
//! compares the result with the canonical layout from the same library.

mod check;
mod layout;
mod mtree;
mod qmp;
mod ram;
mod render;

use crate::kernel_image::Profile;
use crate::kernel_image::{self, symbols, workspace};
use crate::machine::{Arch, Config, Console, Machine};
use crate::{Result, error, step};
use check::{AddressSpace, Expectations, Problem};
use hal::layout::ImageSections;
use layout::{ArchLayout, Half};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the shell prints when it is ready: boot is over.
const READY: &str = "ferrite> ";
/// How long boot may take before the inspector gives up.
const BOOT_LIMIT: Duration = Duration::from_secs(60);

/// What `cargo xtask memmap` was asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Options {
    pub machine: Machine,
    pub size: crate::machine::Size,
    pub profile: Profile,
    /// Only this process's address space (by program name).
    pub process: Option<String>,
    pub svg: Option<PathBuf>,
    pub json: bool,
}

/// A paused guest's memory map.
pub struct Inspection {
    pub machine: Machine,
    pub ram_mib: u64,
    pub physical: Vec<mtree::PhysRange>,
    pub layout: ArchLayout,
    /// First virtual address past the kernel image (from its ELF).
    pub image_end: u64,
    pub kernel: AddressSpace,
    pub processes: Vec<AddressSpace>,
    pub problems: Vec<Problem>,
}

/// QEMU with its RAM in a file and a QMP socket, killed when dropped.
struct Guest {
    child: Child,
    ram_file: PathBuf,
    socket: PathBuf,
    /// What the guest printed up to the prompt.
    console: String,
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ram_file);
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Adds a file-backed memory backend and a QMP socket to QEMU's arguments.
fn with_ram_file(mut args: Vec<String>, ram_mib: u64, file: &Path, socket: &Path) -> Vec<String> {
    if let Some(machine) = args.iter().position(|a| a == "-M") {
        args[machine + 1] = format!("{},memory-backend={}", args[machine + 1], ram::BACKEND);
    }
    args.extend([
        "-object".to_string(),
        format!(
            "memory-backend-file,id={},size={ram_mib}M,mem-path={},share=on",
            ram::BACKEND,
            file.display()
        ),
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", socket.display()),
    ]);
    args
}

/// Boots `kernel` as `config` says and waits for the shell's prompt.
fn boot(config: &Config, kernel: &Path) -> Result<Guest> {
    let machine = config.machine;
    let ram_mib = config.ram_mib;
    let dir = workspace().join("target").join("xtask");
    std::fs::create_dir_all(&dir)?;
    let ram_file = dir.join(format!("memmap-{}.ram", machine.name()));
    let socket = dir.join(format!("memmap-{}.qmp", machine.name()));
    let _ = std::fs::remove_file(&socket);
    let args = config.qemu_args(kernel, "mode=run", Console::Captured, false)?;
    let args = with_ram_file(args, ram_mib, &ram_file, &socket);
    let mut child = Command::new(machine.arch().qemu_binary())
        .args(&args)
        // Kept open: end of input would close the console.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut guest = Guest {
        child,
        ram_file,
        socket,
        console: String::new(),
    };
    let (sender, receiver) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut chunk) {
            if n == 0 || sender.send(chunk[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + BOOT_LIMIT;
    let output = &mut guest.console;
    while !output.contains(READY) {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(chunk) => output.push_str(&String::from_utf8_lossy(&chunk)),
            Err(_) => {
                let tail: Vec<&str> = output.lines().rev().take(15).collect();
                return Err(error!(
                    "{}: no shell prompt within {} s; last output:\n{}",
                    machine.name(),
                    BOOT_LIMIT.as_secs(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
        }
    }
    Ok(guest)
}

/// The image's sections from the kernel ELF's linker symbols.
fn image_sections(layout: &ArchLayout, elf_bytes: &[u8]) -> Result<ImageSections> {
    let s = &layout.image_symbols;
    let bounds = symbols(elf_bytes, &[s.text, s.rodata, s.data, s.end])?;
    let guards = symbols(elf_bytes, s.guards)?;
    let page = hal::mm::PAGE_SIZE as u64;
    let guards: &'static [(u64, u64)] = Box::leak(
        guards
            .iter()
            .map(|&g| (g, g + page))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    Ok(ImageSections {
        text: (bounds[0], bounds[1]),
        rodata: (bounds[1], bounds[2]),
        data: (bounds[2], bounds[3]),
        guards,
    })
}

/// Boots `machine`, pauses it once the shell runs, and reads and checks
/// its memory map.
pub fn inspect(config: &Config, kernel: &Path) -> Result<Inspection> {
    let machine = config.machine;
    let arch = machine.arch();
    let layout = ArchLayout::of(arch);
    let elf_bytes = std::fs::read(kernel)?;
    let image = image_sections(&layout, &elf_bytes)?;
    let table_virt = symbols(&elf_bytes, &[kernel::inspect::SYMBOL])?[0];

    let mut guest = boot(config, kernel)?;
    let mut qmp = qmp::Qmp::connect(&guest.socket, Duration::from_secs(10))?;
    qmp.execute("stop", serde_json::json!({}))?;
    let physical = mtree::parse_flat_view(&qmp.monitor("info mtree -f")?);
    let cpu_root = match arch {
        Arch::X64 => parse_cr3(&qmp.monitor("info registers")?),
        // QEMU's monitor does not show TTBR0/TTBR1; the kernel's table
        // alone names the roots.
        Arch::Arm => None,
    };
    let ram = ram::Ram::open(&guest.ram_file, physical.clone())?;

    let table_phys = table_virt - layout.image_offset;
    let bytes = ram
        .read(table_phys, kernel::inspect::TABLE_SIZE)
        .ok_or_else(|| error!("the inspection table at {table_phys:#x} is not in RAM"))?;
    let table = kernel::inspect::parse(&bytes).map_err(|e| error!("{e}"))?;

    let (kernel_half, error) = layout::walk(arch, &ram, table.kernel_root, Half::Kernel);
    let kernel_space = AddressSpace {
        name: "kernel".into(),
        pid: None,
        root: table.kernel_root,
        user: Vec::new(),
        kernel: kernel_half,
        walk_error: error,
    };
    let mut processes = Vec::new();
    for entry in table.processes.iter().filter(|e| e.pid != 0) {
        let (user, user_error) = layout::walk(arch, &ram, entry.root, Half::User);
        // ARMv7 processes share the kernel's TTBR1 table; x86_64 ones carry
        // copies of its top-level entries.
        let (kernel_half, kernel_error) = match arch {
            Arch::X64 => layout::walk(arch, &ram, entry.root, Half::Kernel),
            Arch::Arm => (kernel_space.kernel.clone(), None),
        };
        processes.push(AddressSpace {
            name: format!("process {} ({})", entry.pid, abi::name_str(&entry.name)),
            pid: Some(entry.pid),
            root: entry.root,
            user,
            kernel: kernel_half,
            walk_error: user_error.or(kernel_error),
        });
    }
    processes.sort_by_key(|p| p.pid);
    let _ = qmp.execute("quit", serde_json::json!({}));
    let guest_console = std::mem::take(&mut guest.console);
    drop(guest);

    let ram_mib = config.ram_mib;
    let direct_mapped_ram = direct_mapped_ram(&physical, &usable_ram(&guest_console));
    let expect = Expectations {
        layout: &layout,
        image: &image,
        physical: &physical,
        direct_mapped_ram,
    };
    let mut problems = check::check(&expect, &kernel_space, &processes);
    if let Some(root) = cpu_root
        && root != kernel_space.root
        && !processes.iter().any(|p| p.root == root)
    {
        problems.push(Problem::UnknownRoot(root));
    }
    if processes.is_empty() {
        problems.push(Problem::Unwalkable {
            space: "processes".into(),
            reason: "the kernel listed none, though the shell runs".into(),
        });
    }
    Ok(Inspection {
        machine,
        ram_mib,
        physical,
        layout,
        image_end: image.end(),
        kernel: kernel_space,
        processes,
        problems,
    })
}

/// The usable RAM in the firmware's memory map, as the kernel's banner
/// lists it (`  0x000000100000-0x000008000000 usable  127 MiB`), in
/// whole pages.
fn usable_ram(console: &str) -> Vec<(u64, u64)> {
    let page = hal::mm::PAGE_SIZE as u64;
    console
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (span, kind) = (words.next()?, words.next()?);
            if kind != hal::MemoryKind::Usable.name() {
                return None;
            }
            let (start, end) = span.split_once('-')?;
            let parse = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
            Some((
                parse(start)?.next_multiple_of(page),
                parse(end)? & !(page - 1),
            ))
        })
        .filter(|(a, b)| a < b)
        .collect()
}

/// RAM the kernel's direct map must cover: what the firmware calls usable
/// and QEMU backs with RAM.
fn direct_mapped_ram(physical: &[mtree::PhysRange], usable: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for r in physical
        .iter()
        .filter(|r| r.name == ram::BACKEND && r.kind == "ram")
    {
        for &(start, end) in usable {
            let (a, b) = (start.max(r.start), end.min(r.last + 1));
            if a < b {
                out.push((a, b));
            }
        }
    }
    out
}

/// CR3's page-table address from `info registers`.
fn parse_cr3(registers: &str) -> Option<u64> {
    let at = registers.find("CR3=")? + 4;
    let hex: String = registers[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    u64::from_str_radix(&hex, 16)
        .ok()
        .map(|cr3| cr3 & 0x000f_ffff_ffff_f000)
}

/// `cargo xtask memmap`.
pub fn run(options: &Options) -> Result<bool> {
    let arch = options.machine.arch();
    crate::provision::ensure_rust_targets(&[arch])?;
    crate::provision::ensure_qemu(&[arch])?;
    let kernel = kernel_image::build(arch, options.profile)?;
    step(format!("inspecting {}", options.machine.name()));
    let config = options
        .size
        .config(options.machine, options.machine.test_ram_mib());
    let inspection = inspect(&config, &kernel)?;
    let selected: Vec<&AddressSpace> = match &options.process {
        None => inspection.processes.iter().collect(),
        Some(name) => {
            let chosen: Vec<&AddressSpace> = inspection
                .processes
                .iter()
                .filter(|p| p.name.ends_with(&format!("({name})")))
                .collect();
            if chosen.is_empty() {
                let names: Vec<&str> = inspection
                    .processes
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                return Err(error!(
                    "no process named {name:?} (running: {})",
                    names.join(", ")
                ));
            }
            chosen
        }
    };
    if options.json {
        println!("{}", render::json(&inspection, &selected));
    } else {
        print!("{}", render::text(&inspection, &selected));
    }
    if let Some(path) = &options.svg {
        std::fs::write(path, render::svg(&inspection, &selected))?;
        step(format!("wrote {}", path.display()));
    }
    if !options.json {
        render::print_problems(&inspection.problems);
    }
    Ok(inspection.problems.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usable_ram_comes_from_the_banner_in_whole_pages() {
        let banner = "memory map:\n  0x000000000000-0x00000009fc00 usable           639 KiB\n  0x00000009fc00-0x0000000a0000 reserved         1 KiB\n  0x000000100000-0x000017fe0000 usable           383.87 MiB\n";
        assert_eq!(usable_ram(banner), [(0, 0x9f000), (0x10_0000, 0x17fe_0000)]);
        let physical = mtree::parse_flat_view(
            "FlatView #1\n AS \"memory\", root: system\n  0000000000000000-00000000000effff (prio 0, ram): ram0\n  0000000000100000-0000000017ffffff (prio 0, ram): ram0 @0000000000100000\n",
        );
        assert_eq!(
            direct_mapped_ram(&physical, &usable_ram(banner)),
            [(0, 0x9f000), (0x10_0000, 0x17fe_0000)]
        );
    }

    #[test]
    fn cr3_is_read_from_the_register_dump() {
        let dump = "RIP=ffffffff8020fd96 RFL=00000046\nCR0=80010015 CR2=0000000000410000 CR3=0000000017fc8018 CR4=003000a0\n";
        assert_eq!(parse_cr3(dump), Some(0x17fc_8000));
        assert_eq!(parse_cr3("no registers"), None);
    }

    #[test]
    fn the_ram_file_joins_the_machine_options() {
        let args: Vec<String> = ["-M", "q35", "-m", "384M"].map(String::from).to_vec();
        let args = with_ram_file(args, 384, Path::new("/r"), Path::new("/s"));
        assert_eq!(args[1], "q35,memory-backend=ram0");
        assert!(
            args.contains(
                &"memory-backend-file,id=ram0,size=384M,mem-path=/r,share=on".to_string()
            )
        );
        assert!(args.contains(&"unix:/s,server=on,wait=off".to_string()));
    }
}
