//! The x86 I/O APIC: routes device interrupt lines to CPU vectors.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

register_structs! {
    /// The two windows through which every I/O APIC register is reached.
    pub Registers {
        (0x00 => select: ReadWrite<u32>),
        (0x04 => _reserved),
        (0x10 => window: ReadWrite<u32>),
        (0x14 => @END),
    }
}

const VERSION: u32 = 0x01;
const REDIRECTION_TABLE: u32 = 0x10;
const MASKED: u32 = 1 << 16;
const LEVEL_TRIGGERED: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;

/// How a line signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal {
    /// Active low rather than high.
    pub active_low: bool,
    /// Level- rather than edge-triggered.
    pub level: bool,
}

impl Signal {
    /// ISA interrupts: edge-triggered, active high.
    pub const ISA: Signal = Signal {
        active_low: false,
        level: false,
    };
}

/// An I/O APIC. Every register is reached through a select/window pair,
/// so every access takes `&mut self`: users sharing one (CPUs, a kernel
/// and its interrupt handlers, threads of a user-space driver) serialise
/// with a lock of their choosing. It is not `Sync`.
pub struct IoApic {
    registers: &'static Registers,
}

// SAFETY: the registers are MMIO reachable from any CPU or thread; moving
// the only handle elsewhere is fine.
unsafe impl Send for IoApic {}

impl IoApic {
    /// # Safety
    /// `base` must map the I/O APIC's registers as uncached device memory.
    pub unsafe fn new(base: usize) -> IoApic {
        // SAFETY: the caller guarantees the mapping.
        let registers = unsafe { &*(base as *const Registers) };
        IoApic { registers }
    }

    fn read(&mut self, register: u32) -> u32 {
        self.registers.select.set(register);
        self.registers.window.get()
    }

    fn write(&mut self, register: u32, value: u32) {
        self.registers.select.set(register);
        self.registers.window.set(value);
    }

    /// How many lines it has.
    pub fn lines(&mut self) -> u32 {
        ((self.read(VERSION) >> 16) & 0xff) + 1
    }

    /// Routes `line` to `vector` on the CPU with APIC ID `destination`,
    /// masked or not.
    pub fn route(&mut self, line: u32, vector: u8, destination: u8, signal: Signal, masked: bool) {
        let mut low = vector as u32;
        if signal.active_low {
            low |= ACTIVE_LOW;
        }
        if signal.level {
            low |= LEVEL_TRIGGERED;
        }
        if masked {
            low |= MASKED;
        }
        self.write(REDIRECTION_TABLE + 2 * line + 1, (destination as u32) << 24);
        self.write(REDIRECTION_TABLE + 2 * line, low);
    }

    /// How `line` is routed: its vector, whether it is masked, and how it
    /// signals.
    pub fn entry(&mut self, line: u32) -> (u8, bool, Signal) {
        let low = self.read(REDIRECTION_TABLE + 2 * line);
        let signal = Signal {
            active_low: low & ACTIVE_LOW != 0,
            level: low & LEVEL_TRIGGERED != 0,
        };
        (low as u8, low & MASKED != 0, signal)
    }

    /// Masks or unmasks `line`, keeping its route.
    pub fn set_masked(&mut self, line: u32, masked: bool) {
        let register = REDIRECTION_TABLE + 2 * line;
        let low = self.read(register);
        self.write(register, if masked { low | MASKED } else { low & !MASKED });
    }
}
