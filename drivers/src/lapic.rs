//! The x86 local APIC in xAPIC (memory-mapped) mode: enabling it, its
//! timer, end of interrupt, in-service state and self-IPIs.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

/// A 32-bit register in its 16-byte slot.
#[repr(C)]
pub struct Slot<R> {
    pub register: R,
    _pad: [u32; 3],
}

register_structs! {
    /// The local APIC's registers.
    pub Registers {
        (0x000 => _reserved0),
        (0x020 => id: Slot<ReadOnly<u32>>),
        (0x030 => version: Slot<ReadOnly<u32>>),
        (0x040 => _reserved1),
        (0x080 => task_priority: Slot<ReadWrite<u32>>),
        (0x090 => _reserved2),
        (0x0b0 => end_of_interrupt: Slot<WriteOnly<u32>>),
        (0x0c0 => _reserved3),
        (0x0f0 => spurious: Slot<ReadWrite<u32>>),
        (0x100 => in_service: [Slot<ReadOnly<u32>>; 8]),
        (0x180 => _reserved4),
        (0x280 => error_status: Slot<ReadWrite<u32>>),
        (0x290 => _reserved5),
        (0x300 => command_low: Slot<ReadWrite<u32>>),
        (0x310 => command_high: Slot<ReadWrite<u32>>),
        (0x320 => lvt_timer: Slot<ReadWrite<u32>>),
        (0x330 => _reserved6),
        (0x350 => lvt_lint0: Slot<ReadWrite<u32>>),
        (0x360 => lvt_lint1: Slot<ReadWrite<u32>>),
        (0x370 => lvt_error: Slot<ReadWrite<u32>>),
        (0x380 => timer_initial: Slot<ReadWrite<u32>>),
        (0x390 => timer_current: Slot<ReadOnly<u32>>),
        (0x3a0 => _reserved7),
        (0x3e0 => timer_divide: Slot<ReadWrite<u32>>),
        (0x3f0 => _reserved8),
        (0x400 => @END),
    }
}

const LVT_MASKED: u32 = 1 << 16;
const TIMER_PERIODIC: u32 = 1 << 17;
const SOFTWARE_ENABLE: u32 = 1 << 8;
/// Divide configuration 0b0011: the bus clock divided by 16.
const DIVIDE_BY_16: u32 = 0b0011;
const DELIVERY_PENDING: u32 = 1 << 12;
const LEVEL_ASSERT: u32 = 1 << 14;
const SHORTHAND_SELF: u32 = 0b01 << 18;

/// A local APIC, less its timer: what interrupt handlers share.
pub struct LocalApic {
    registers: &'static Registers,
}

/// The local APIC's timer, driven by its one owner: starting and
/// stopping it are sequences of writes, so they take `&mut self`.
pub struct ApicTimer {
    registers: &'static Registers,
}

// SAFETY: every CPU reaches its own local APIC at this address, so CPUs
// sharing the value never share registers. Each `&self` method is one
// access (`send_self` writes the high command word, always 0, before the
// low one, so an interleaved `send_self` leaves the same state), and the
// one multi-write sequence, `enable`, takes `&mut self`.
unsafe impl Sync for LocalApic {}
// SAFETY: as above.
unsafe impl Send for LocalApic {}
// SAFETY: an `ApicTimer` is the only handle on the timer registers (see
// `LocalApic::new`), and moving it moves that ownership.
unsafe impl Send for ApicTimer {}

impl LocalApic {
    /// The APIC and its timer, each with its own registers.
    ///
    /// # Safety
    /// `base` must map this CPU's local APIC registers as uncached device
    /// memory, and no other `LocalApic` may exist for it.
    pub unsafe fn new(base: usize) -> (LocalApic, ApicTimer) {
        // SAFETY: the caller guarantees the mapping.
        let registers = unsafe { &*(base as *const Registers) };
        (LocalApic { registers }, ApicTimer { registers })
    }

    /// This CPU's APIC ID.
    pub fn id(&self) -> u32 {
        self.registers.id.register.get() >> 24
    }

    /// Enables the APIC with `spurious_vector` for spurious interrupts and
    /// `error_vector` for errors; masks the legacy LINT inputs and the
    /// timer; accepts every priority.
    pub fn enable(&mut self, spurious_vector: u8, error_vector: u8) {
        let r = self.registers;
        r.lvt_lint0.register.set(LVT_MASKED);
        r.lvt_lint1.register.set(LVT_MASKED);
        r.lvt_timer.register.set(LVT_MASKED);
        r.lvt_error.register.set(error_vector as u32);
        r.task_priority.register.set(0);
        r.spurious
            .register
            .set(SOFTWARE_ENABLE | spurious_vector as u32);
        // Clear any error latched before the APIC was set up.
        r.error_status.register.set(0);
    }

    /// Whether `vector` is in service (delivered by this APIC and not yet
    /// ended).
    pub fn in_service(&self, vector: u8) -> bool {
        let word = self.registers.in_service[(vector / 32) as usize]
            .register
            .get();
        word & (1 << (vector % 32)) != 0
    }

    /// Signals end of interrupt for the highest-priority in-service vector.
    pub fn end_of_interrupt(&self) {
        self.registers.end_of_interrupt.register.set(0);
    }

    /// Sends `vector` to this CPU.
    pub fn send_self(&self, vector: u8) {
        let r = self.registers;
        r.command_high.register.set(0);
        r.command_low
            .register
            .set(SHORTHAND_SELF | LEVEL_ASSERT | vector as u32);
        while r.command_low.register.get() & DELIVERY_PENDING != 0 {
            core::hint::spin_loop();
        }
    }
}

impl ApicTimer {
    /// Counts down from `initial` once, masked (for calibration); the rate
    /// is the bus clock divided by 16.
    pub fn start_calibration_count(&mut self, initial: u32) {
        let r = self.registers;
        r.timer_divide.register.set(DIVIDE_BY_16);
        r.lvt_timer.register.set(LVT_MASKED);
        r.timer_initial.register.set(initial);
    }

    /// The timer's current count.
    pub fn count(&self) -> u32 {
        self.registers.timer_current.register.get()
    }

    /// Interrupts with `vector` every `period` counts (bus clock / 16).
    pub fn start_periodic(&mut self, vector: u8, period: u32) {
        let r = self.registers;
        r.timer_divide.register.set(DIVIDE_BY_16);
        r.lvt_timer.register.set(TIMER_PERIODIC | vector as u32);
        r.timer_initial.register.set(period.max(1));
    }

    /// Stops the timer.
    pub fn stop(&mut self) {
        self.registers.lvt_timer.register.set(LVT_MASKED);
        self.registers.timer_initial.register.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(C, align(4096))]
    struct Block([u32; 256]);

    #[test]
    fn register_offsets_and_encodings() {
        let block = Box::leak(Box::new(Block([0; 256])));
        block.0[0x100 / 4 + 2 * 4] = 1 << 3; // in service: vector 67
        // SAFETY: a leaked block standing in for the registers.
        let (mut apic, mut timer) = unsafe { LocalApic::new(block as *mut Block as usize) };
        apic.enable(0xff, 0xfe);
        assert_eq!(block.0[0xf0 / 4], 0x1ff);
        assert_eq!(block.0[0x350 / 4], LVT_MASKED);
        timer.start_periodic(0x20, 1000);
        assert_eq!(block.0[0x320 / 4], TIMER_PERIODIC | 0x20);
        assert_eq!(block.0[0x380 / 4], 1000);
        assert_eq!(block.0[0x3e0 / 4], DIVIDE_BY_16);
        assert!(apic.in_service(67));
        assert!(!apic.in_service(66));
        apic.send_self(0x7f);
        assert_eq!(block.0[0x300 / 4], 0x4407f);
        timer.stop();
        assert_eq!(block.0[0x320 / 4], LVT_MASKED);
        assert_eq!(block.0[0x380 / 4], 0);
    }
}
