//! The shell on the serial console: reads a line with simple editing and
//! runs a built-in command or a program from the boot archive. Init
//! passes it its control capability (for `poweroff`) and a capability to
//! the name service (for the device commands, in `devices`).

#![no_std]
#![no_main]

extern crate alloc;

mod devices;

use alloc::string::String;
use alloc::vec::Vec;
use rt::process::{self, Exit};
use rt::{print, println, sys};

rt::entry!(main);

const PROMPT: &str = "ferrite> ";
/// Longest line kept; further typing is refused with a bell.
const MAX_LINE: usize = 256;

struct Command {
    name: &'static str,
    usage: &'static str,
    help: &'static str,
    run: fn(&str),
}

const COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "help",
        help: "list the commands",
        run: help,
    },
    Command {
        name: "echo",
        usage: "echo TEXT",
        help: "print TEXT",
        run: echo,
    },
    Command {
        name: "ps",
        usage: "ps",
        help: "list processes, and the services init restarts",
        run: ps,
    },
    Command {
        name: "kill",
        usage: "kill PID|SERVICE",
        help: "end a service's process (init restarts it)",
        run: devices::kill,
    },
    Command {
        name: "crash",
        usage: "crash PID|SERVICE",
        help: "inject a fault into a service's process (1: init itself)",
        run: devices::crash,
    },
    Command {
        name: "mem",
        usage: "mem",
        help: "show memory use",
        run: mem,
    },
    Command {
        name: "uptime",
        usage: "uptime",
        help: "time since boot",
        run: uptime,
    },
    Command {
        name: "irqs",
        usage: "irqs",
        help: "interrupt counts",
        run: irqs,
    },
    Command {
        name: "devices",
        usage: "devices",
        help: "devices left to drivers, and their drivers",
        run: devices::devices,
    },
    Command {
        name: "rng",
        usage: "rng [BYTES]",
        help: "random bytes from the rng service",
        run: devices::rng,
    },
    Command {
        name: "blk",
        usage: "blk info|read|write",
        help: "the disk, through the blk service",
        run: devices::blk,
    },
    Command {
        name: "net",
        usage: "net stats [NIC]",
        help: "a network interface's address and counts",
        run: devices::net,
    },
    Command {
        name: "run",
        usage: "run PROGRAM [ARGS]",
        help: "run a program and wait for it",
        run: run_program,
    },
    Command {
        name: "exit",
        usage: "exit [STATUS]",
        help: "leave this shell (init starts a new one at the top)",
        run: exit,
    },
    Command {
        name: "poweroff",
        usage: "poweroff [STATUS]",
        help: "turn the machine off",
        run: poweroff,
    },
];

fn main(_: &str) -> i32 {
    // Console input comes only from the console service.
    match devices::names().map(|mut names| rt::io::connect(&mut names)) {
        Some(Ok(())) => {}
        Some(Err(e)) => println!("sh: no console service ({e}): no input"),
        None => println!("sh: no name service: no console input"),
    }
    match process::system() {
        Ok(system) => println!(
            "Ferrite {} shell on {} ({}); type help for commands.",
            abi::name_str(&system.version),
            abi::name_str(&system.machine),
            abi::name_str(&system.arch)
        ),
        Err(_) => println!("Ferrite shell; type help for commands."),
    }
    let mut editor = LineEditor::default();
    loop {
        print!("{PROMPT}");
        let line = editor.read_line();
        execute(line.trim());
    }
}

fn execute(line: &str) {
    if line.is_empty() {
        return;
    }
    let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
    match COMMANDS.iter().find(|c| c.name == name) {
        Some(command) => (command.run)(rest.trim()),
        None => println!("sh: unknown command: {name} (type help for the list)"),
    }
}

/// Line input with editing: backspace, Ctrl-U (erase line), Ctrl-C
/// (discard line); escape sequences (arrow keys) are ignored.
#[derive(Default)]
struct LineEditor {
    line: String,
    /// Bytes read but not yet handled (typed ahead of the next prompt).
    pending: Vec<u8>,
    /// The previous byte was CR: a following LF is the same line end.
    after_cr: bool,
    /// Inside an escape sequence.
    escape: Escape,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    Started,
    Sequence,
}

impl LineEditor {
    fn read_line(&mut self) -> String {
        self.line.clear();
        let mut echo: Vec<u8> = Vec::new();
        loop {
            if self.pending.is_empty() {
                // One byte at a time: what was typed ahead past this line
                // stays in the console for whoever reads next (a program
                // this line starts, such as a nested shell).
                let mut buffer = [0u8; 1];
                match rt::io::read(&mut buffer) {
                    Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                    Err(e) => {
                        println!("sh: console read failed: {e}");
                        sys::exit(1);
                    }
                }
            }
            let mut used = 0;
            let mut ended = false;
            while used < self.pending.len() && !ended {
                ended = self.take(self.pending[used], &mut echo);
                used += 1;
            }
            // What follows a line end waits for the next prompt.
            self.pending.drain(..used);
            rt::io::write(&echo);
            echo.clear();
            if ended {
                return core::mem::take(&mut self.line);
            }
        }
    }

    /// Handles one byte, adding what to echo; true at the end of a line.
    fn take(&mut self, byte: u8, echo: &mut Vec<u8>) -> bool {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        match (self.escape, byte) {
            (Escape::Started, b'[' | b'O') => {
                self.escape = Escape::Sequence;
                return false;
            }
            (Escape::Started, _) => self.escape = Escape::None,
            (Escape::Sequence, 0x40..=0x7e) => {
                self.escape = Escape::None;
                return false;
            }
            (Escape::Sequence, _) => return false,
            (Escape::None, _) => {}
        }
        match byte {
            b'\r' => {
                self.after_cr = true;
                echo.extend_from_slice(b"\n");
                return true;
            }
            b'\n' if after_cr => {}
            b'\n' => {
                echo.extend_from_slice(b"\n");
                return true;
            }
            0x7f | 0x08 if !self.line.is_empty() => {
                self.line.pop();
                echo.extend_from_slice(b"\x08 \x08");
            }
            0x15 => {
                for _ in 0..self.line.len() {
                    echo.extend_from_slice(b"\x08 \x08");
                }
                self.line.clear();
            }
            0x03 => {
                echo.extend_from_slice(b"^C\n");
                self.line.clear();
                return true;
            }
            0x1b => self.escape = Escape::Started,
            0x20..=0x7e if self.line.len() < MAX_LINE => {
                self.line.push(byte as char);
                echo.push(byte);
            }
            0x20..=0x7e => echo.push(0x07),
            _ => {}
        }
        false
    }
}

fn help(_: &str) {
    println!("commands:");
    for command in COMMANDS {
        println!("  {:<20} {}", command.usage, command.help);
    }
    match process::programs() {
        Ok(names) => {
            let names: Vec<&str> = names.iter().map(abi::name_str).collect();
            println!("programs for run: {}", names.join(", "));
        }
        Err(e) => println!("help: cannot list programs: {e}"),
    }
}

fn echo(text: &str) {
    println!("{text}");
}

fn tick_hz() -> u64 {
    process::system().map_or(1000, |s| s.tick_hz.max(1) as u64)
}

fn ps(_: &str) {
    let processes = match process::processes() {
        Ok(p) => p,
        Err(e) => return println!("ps: {e}"),
    };
    let hz = tick_hz();
    // The services init keeps: their restarts, and the names they serve.
    let services = devices::services().unwrap_or_default();
    println!("  PID  PPID STATE    THREADS  MEMORY    CPU RESTARTS NAME");
    for p in processes {
        let service = services
            .iter()
            .find(|s| s.pid == p.pid && s.state == protocols::supervisor::State::Running);
        let (restarts, serves) = match service {
            Some(s) => (
                alloc::format!("{}", s.restarts),
                alloc::format!(" ({})", s.name()),
            ),
            None => ("-".into(), String::new()),
        };
        let state = match p.state {
            0 => "running",
            1 => "blocked",
            2 => "zombie",
            _ => "?",
        };
        println!(
            "{:>5} {:>5} {:<8} {:>7} {:>6}K {:>5}ms {:>8} {}{serves}",
            p.pid,
            p.parent,
            state,
            p.threads,
            p.resident_pages * 4,
            p.cpu_ticks * 1000 / hz,
            restarts,
            abi::name_str(&p.name)
        );
    }
    for s in services
        .iter()
        .filter(|s| s.state != protocols::supervisor::State::Running)
    {
        println!(
            "service {}: {} (restarted {} times, last process {})",
            s.name(),
            s.state.name(),
            s.restarts,
            s.pid
        );
    }
}

fn mem(_: &str) {
    match process::memory() {
        Ok(m) => {
            let kib = |frames: u64| frames * m.page_size / 1024;
            println!(
                "frames: {} KiB free of {} KiB ({} used)",
                kib(m.free_frames),
                kib(m.total_frames),
                kib(m.total_frames - m.free_frames)
            );
            println!(
                "kernel heap: {} KiB used of {} KiB",
                m.heap_used / 1024,
                m.heap_total / 1024
            );
        }
        Err(e) => println!("mem: {e}"),
    }
}

fn uptime(_: &str) {
    let ns = sys::time_ns();
    match process::system() {
        Ok(s) => println!(
            "up {}.{:03} s, {} processes, {} threads",
            ns / 1_000_000_000,
            ns / 1_000_000 % 1000,
            s.processes,
            s.threads
        ),
        Err(_) => println!("up {}.{:03} s", ns / 1_000_000_000, ns / 1_000_000 % 1000),
    }
}

fn irqs(_: &str) {
    match process::interrupts() {
        Ok(lines) => {
            println!("  IRQ      COUNT NAME");
            for line in lines {
                println!(
                    "{:>5} {:>10} {}",
                    line.irq,
                    line.count,
                    abi::name_str(&line.name)
                );
            }
        }
        Err(e) => println!("irqs: {e}"),
    }
}

fn run_program(arguments: &str) {
    let (program, rest) = arguments.split_once(' ').unwrap_or((arguments, ""));
    if program.is_empty() {
        return println!("usage: run PROGRAM [ARGS]");
    }
    // A program the shell runs can find services (and a nested shell
    // its console) through the shell's name-service capability.
    let child = match process::start(program, rest.trim(), &[devices::names_handle()]) {
        Ok(child) => child,
        Err(e) => return println!("run: {program}: {e}"),
    };
    let pid = child.pid;
    match child.wait() {
        Ok(Exit::Code(0)) => {}
        Ok(exit) => println!("[process {pid} ({program}) {exit}]"),
        Err(e) => println!("run: lost process {pid}: {e}"),
    }
}

/// A status argument: none means 0.
fn status_argument(arguments: &str, command: &str) -> Option<u8> {
    match arguments {
        "" => Some(0),
        text => text.parse::<u8>().ok().or_else(|| {
            println!("usage: {command} [STATUS 0-255]");
            None
        }),
    }
}

fn exit(arguments: &str) {
    if let Some(status) = status_argument(arguments, "exit") {
        sys::exit(status as i32);
    }
}

fn poweroff(arguments: &str) {
    if let Some(status) = status_argument(arguments, "poweroff") {
        // init passes its control capability first.
        let error = sys::power_off(abi::initial_handle(0), status);
        println!("poweroff: {error}");
    }
}
