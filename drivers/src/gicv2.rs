//! The Arm GICv2 interrupt controller: distributor and CPU interface.
//!
//! The kernel runs in the Secure state on vexpress-a15, so every interrupt
//! is put in group 0 and group 0 is signalled as IRQ (GICC_CTLR.FIQEn = 0).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// The distributor's registers.
    pub Distributor {
        (0x000 => control: ReadWrite<u32>),
        (0x004 => type_: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x080 => group: [ReadWrite<u32>; 32]),
        (0x100 => set_enable: [ReadWrite<u32>; 32]),
        (0x180 => clear_enable: [ReadWrite<u32>; 32]),
        (0x200 => _set_pending: [ReadWrite<u32>; 32]),
        (0x280 => clear_pending: [ReadWrite<u32>; 32]),
        (0x300 => _reserved1),
        (0x400 => priority: [ReadWrite<u8>; 1024]),
        (0x800 => targets: [ReadWrite<u8>; 1024]),
        (0xc00 => config: [ReadWrite<u32>; 64]),
        (0xd00 => _reserved2),
        (0xf00 => software_interrupt: WriteOnly<u32>),
        (0xf04 => @END),
    }
}

register_structs! {
    /// The CPU interface's registers.
    pub CpuInterface {
        (0x000 => control: ReadWrite<u32>),
        (0x004 => priority_mask: ReadWrite<u32>),
        (0x008 => binary_point: ReadWrite<u32>),
        (0x00c => acknowledge: ReadOnly<u32>),
        (0x010 => end_of_interrupt: WriteOnly<u32>),
        (0x014 => @END),
    }
}

/// Interrupt IDs from 1020 up are special: 1023 means "nothing pending".
pub const SPECIAL_IDS: u32 = 1020;
/// Software-generated interrupts are IDs 0-15.
pub const SGI_COUNT: u32 = 16;
/// Shared peripheral interrupts start at this ID.
pub const FIRST_SPI: u32 = 32;
/// The priority given to every interrupt (lower is more urgent).
const DEFAULT_PRIORITY: u8 = 0xa0;
/// Priorities below this are signalled.
const PRIORITY_MASK: u32 = 0xf0;

/// A GICv2.
pub struct Gic {
    distributor: &'static Distributor,
    cpu: &'static CpuInterface,
    lines: u32,
}

// SAFETY: every `&self` method is a single access that cannot tear or
// race with another: a write to a set-enable, clear-enable or SGI register
// (which change only the bits written), or an acknowledge or end of
// interrupt on the CPU interface of the CPU that makes it. What needs
// read-modify-write sequences (`init`) takes `&mut self`.
unsafe impl Sync for Gic {}
// SAFETY: as above.
unsafe impl Send for Gic {}

/// An acknowledged interrupt, to be ended with [`Gic::end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acknowledged(u32);

impl Acknowledged {
    /// The interrupt ID.
    pub fn id(self) -> u32 {
        self.0 & 0x3ff
    }
}

impl Gic {
    /// # Safety
    /// The addresses must map the GIC's distributor and CPU interface as
    /// device memory, used by nothing else.
    pub unsafe fn new(distributor: usize, cpu_interface: usize) -> Gic {
        // SAFETY: the caller guarantees the mappings.
        let (distributor, cpu) = unsafe {
            (
                &*(distributor as *const Distributor),
                &*(cpu_interface as *const CpuInterface),
            )
        };
        let lines = (32 * ((distributor.type_.get() & 0x1f) + 1)).min(SPECIAL_IDS);
        Gic {
            distributor,
            cpu,
            lines,
        }
    }

    /// Interrupt IDs this GIC has.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Resets to a known state: everything in group 0 at one priority,
    /// routed to this CPU, level-triggered and disabled; then enables the
    /// distributor and the CPU interface.
    pub fn init(&mut self) {
        let d = self.distributor;
        d.control.set(0);
        for word in 0..(self.lines / 32) as usize {
            d.group[word].set(0);
            d.clear_enable[word].set(u32::MAX);
            d.clear_pending[word].set(u32::MAX);
        }
        for id in 0..self.lines as usize {
            d.priority[id].set(DEFAULT_PRIORITY);
            if id >= FIRST_SPI as usize {
                d.targets[id].set(1);
            }
        }
        for word in (FIRST_SPI / 16) as usize..(self.lines / 16) as usize {
            d.config[word].set(0);
        }
        d.control.set(1);
        self.cpu.priority_mask.set(PRIORITY_MASK);
        self.cpu.binary_point.set(0);
        self.cpu.control.set(1);
    }

    /// Enables or disables interrupt `id`.
    pub fn set_enabled(&self, id: u32, enabled: bool) -> bool {
        if id >= self.lines {
            return false;
        }
        let (word, bit) = ((id / 32) as usize, 1 << (id % 32));
        if enabled {
            self.distributor.set_enable[word].set(bit);
        } else {
            self.distributor.clear_enable[word].set(bit);
        }
        true
    }

    /// Takes the highest-priority pending interrupt; `None` if the GIC has
    /// nothing for this CPU (a spurious interrupt).
    pub fn acknowledge(&self) -> Option<Acknowledged> {
        let iar = self.cpu.acknowledge.get();
        ((iar & 0x3ff) < SPECIAL_IDS).then_some(Acknowledged(iar))
    }

    /// Ends an acknowledged interrupt.
    pub fn end(&self, interrupt: Acknowledged) {
        self.cpu.end_of_interrupt.set(interrupt.0);
    }

    /// Raises software-generated interrupt `id` (0-15) on this CPU.
    pub fn raise_sgi_to_self(&self, id: u32) -> bool {
        if id >= SGI_COUNT {
            return false;
        }
        // Target list filter 0b10: the requesting CPU only.
        self.distributor.software_interrupt.set((0b10 << 24) | id);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(4096))]
    struct Block([u32; 1024]);

    fn gic(type_bits: u32) -> (Gic, &'static mut Block, &'static mut Block) {
        let d = Box::leak(Box::new(Block([0; 1024])));
        let c = Box::leak(Box::new(Block([0; 1024])));
        d.0[1] = type_bits;
        // SAFETY: leaked blocks standing in for the register windows.
        let gic = unsafe { Gic::new(d as *mut Block as usize, c as *mut Block as usize) };
        (gic, d, c)
    }

    #[test]
    fn init_routes_everything_to_group_0_on_this_cpu() {
        let (mut gic, d, c) = gic(0x2); // 96 lines, as on vexpress-a15
        assert_eq!(gic.lines(), 96);
        gic.init();
        assert_eq!(d.0[0], 1, "distributor enabled");
        assert_eq!(c.0[0], 1, "CPU interface enabled, group 0 as IRQ");
        assert_eq!(c.0[1], PRIORITY_MASK);
        let bytes: Vec<u8> = d.0.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(bytes[0x400 + 37], DEFAULT_PRIORITY);
        assert_eq!(bytes[0x800 + 37], 1, "SPI 37 targets CPU 0");
        assert_eq!(d.0[0x180 / 4 + 1], u32::MAX, "everything disabled");
    }

    #[test]
    fn enable_sgi_and_limits() {
        let (gic, d, _) = gic(0x2);
        assert!(gic.set_enabled(37, true));
        assert_eq!(d.0[0x100 / 4 + 1], 1 << 5);
        assert!(!gic.set_enabled(96, true), "beyond the lines");
        assert!(gic.raise_sgi_to_self(15));
        assert_eq!(d.0[0xf00 / 4], 0x0200_000f);
        assert!(!gic.raise_sgi_to_self(16));
    }
}
