//! Configuration space: finding functions, following bridges, and reading
//! a function's BARs with their sizes (for [`super::bars::plan`]).
//!
//! Written here rather than taken from `pci_types`, which sizes memory BARs
//! without turning decoding off first (so a BAR probed with all ones
//! decodes over whatever lies there meanwhile) and does not size I/O BARs.

use super::Address;
use super::bars::{Bar, Space, State};

/// Access to configuration space, 32 bits at a time.
pub trait ConfigSpace {
    /// The register at `offset` (a multiple of 4, below 4096) of
    /// `function`: all ones where no function answers.
    fn read(&self, function: Address, offset: u16) -> u32;
    /// Writes the register at `offset` of `function`.
    fn write(&self, function: Address, offset: u16, value: u32);
}

const ID: u16 = 0x00;
const COMMAND: u16 = 0x04;
const CLASS: u16 = 0x08;
const HEADER: u16 = 0x0c;
const FIRST_BAR: u16 = 0x10;
const BUS_NUMBERS: u16 = 0x18;
const INTERRUPT: u16 = 0x3c;
/// The command register's I/O and memory decode bits.
const DECODE: u32 = 0b11;
const BUS_MASTER: u32 = 1 << 2;

/// What a function's configuration header says of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Function {
    pub address: Address,
    pub vendor: u16,
    pub device: u16,
    pub class: u8,
    pub subclass: u8,
    pub prog_if: u8,
    /// 0 for an endpoint, 1 for a PCI-to-PCI bridge.
    pub header_type: u8,
    pub multifunction: bool,
    /// The bus behind a bridge.
    pub secondary_bus: Option<u8>,
    /// INTA# to INTD# as 1 to 4; 0: none.
    pub interrupt_pin: u8,
}

impl Function {
    /// How many BARs its header has.
    pub fn bar_count(&self) -> u8 {
        match self.header_type {
            0 => 6,
            1 => 2,
            _ => 0,
        }
    }
}

/// The function at `address`, if one answers.
pub fn function(config: &impl ConfigSpace, address: Address) -> Option<Function> {
    let id = config.read(address, ID);
    let vendor = id as u16;
    if vendor == 0xffff || vendor == 0 {
        return None;
    }
    let class = config.read(address, CLASS);
    let header = (config.read(address, HEADER) >> 16) as u8;
    let header_type = header & 0x7f;
    let secondary_bus = (header_type == 1).then(|| (config.read(address, BUS_NUMBERS) >> 8) as u8);
    Some(Function {
        address,
        vendor,
        device: (id >> 16) as u16,
        class: (class >> 24) as u8,
        subclass: (class >> 16) as u8,
        prog_if: (class >> 8) as u8,
        header_type,
        multifunction: header & 0x80 != 0,
        secondary_bus,
        interrupt_pin: (config.read(address, INTERRUPT) >> 8) as u8,
    })
}

/// Calls `found` for every function on bus `first` and on the buses its
/// bridges lead to, up to `last`; each bus is scanned once, however the
/// bridges are numbered.
pub fn scan(config: &impl ConfigSpace, first: u8, last: u8, mut found: impl FnMut(Function)) {
    let mut seen = [0u64; 4];
    let mut pending = [0u8; 256];
    let (mut next, mut queued) = (0, 1);
    pending[0] = first;
    seen[first as usize / 64] |= 1 << (first % 64);
    while next < queued {
        let bus = pending[next];
        next += 1;
        for device in 0..32 {
            let Some(zero) = function(config, Address::new(bus, device, 0)) else {
                continue;
            };
            let functions = if zero.multifunction { 8 } else { 1 };
            for number in 0..functions {
                let Some(found_function) = (match number {
                    0 => Some(zero),
                    _ => function(config, Address::new(bus, device, number)),
                }) else {
                    continue;
                };
                if let Some(secondary) = found_function.secondary_bus
                    && (first..=last).contains(&secondary)
                    && seen[secondary as usize / 64] & 1 << (secondary % 64) == 0
                {
                    seen[secondary as usize / 64] |= 1 << (secondary % 64);
                    pending[queued] = secondary;
                    queued += 1;
                }
                found(found_function);
            }
        }
    }
}

/// Calls `found` with each BAR `function` implements, sized, its address
/// as the firmware left it (0: unassigned). Decoding is off while the
/// BARs are probed and as it was after.
pub fn read_bars(config: &impl ConfigSpace, function: &Function, mut found: impl FnMut(Bar)) {
    let address = function.address;
    let command = config.read(address, COMMAND);
    config.write(address, COMMAND, command & !DECODE);
    let probe = |offset: u16| {
        let original = config.read(address, offset);
        config.write(address, offset, u32::MAX);
        let mask = config.read(address, offset);
        config.write(address, offset, original);
        (original, mask)
    };
    let mut index = 0;
    while index < function.bar_count() {
        let offset = FIRST_BAR + 4 * index as u16;
        let (original, mask) = probe(offset);
        let mut bar = Bar {
            owner: address,
            vendor: function.vendor,
            device: function.device,
            index,
            space: Space::Memory,
            base: 0,
            size: 0,
            wide: false,
            state: State::Unchecked,
        };
        index += 1;
        if original & 1 == 1 {
            // I/O: a device that decodes 16 bits reads the upper ones as 0.
            let mask = mask & !0b11;
            if mask == 0 {
                continue;
            }
            let mask = if mask >> 16 == 0 {
                mask | 0xffff_0000
            } else {
                mask
            };
            bar.space = Space::Io;
            bar.base = u64::from(original & !0b11);
            bar.size = u64::from((!mask).wrapping_add(1));
        } else {
            let wide = (original >> 1) & 0b11 == 0b10;
            let low = mask & !0xf;
            let (high_original, high_mask) = match wide {
                true if index < function.bar_count() => {
                    index += 1;
                    probe(offset + 4)
                }
                true => (0, 0),
                false => (0, u32::MAX),
            };
            if low == 0 && (!wide || high_mask == 0) {
                continue;
            }
            let mask = u64::from(high_mask) << 32 | u64::from(low);
            bar.wide = wide;
            bar.base = u64::from(high_original) << 32 | u64::from(original & !0xf);
            bar.size = (!mask).wrapping_add(1);
        }
        found(bar);
    }
    config.write(address, COMMAND, command);
}

/// Writes the address `plan` placed `bar` at.
pub fn write_bar(config: &impl ConfigSpace, bar: &Bar) {
    let offset = FIRST_BAR + 4 * bar.index as u16;
    let type_bits =
        config.read(bar.owner, offset) & if bar.space == Space::Io { 0b11 } else { 0xf };
    config.write(bar.owner, offset, bar.base as u32 & !0xf | type_bits);
    if bar.wide {
        config.write(bar.owner, offset + 4, (bar.base >> 32) as u32);
    }
}

/// Turns the function's decoding on (memory and I/O) or off; bus
/// mastering (its own memory accesses, DMA) stays as it is, for its
/// driver to ask for.
pub fn set_decoding(config: &impl ConfigSpace, function: Address, on: bool) {
    let command = config.read(function, COMMAND) & 0xffff;
    let command = match on {
        true => command | DECODE,
        false => command & !(DECODE | BUS_MASTER),
    };
    config.write(function, COMMAND, command);
}

#[cfg(test)]
pub(crate) mod model {
    //! A configuration space that behaves like devices' registers do.

    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A function: its first 64 registers, and which bits of each BAR
    /// decode (the rest read back as written only for the type bits).
    pub struct ModelFunction {
        pub registers: [u32; 64],
        pub bar_masks: [u32; 6],
    }

    #[derive(Default)]
    pub struct Model {
        pub functions: RefCell<HashMap<Address, ModelFunction>>,
        /// BAR probes seen while decoding was on.
        pub probes_while_decoding: RefCell<u32>,
    }

    impl Model {
        pub fn add(&self, address: Address, id: u32, class: u32, header: u32, bars: &[(u32, u32)]) {
            let mut registers = [0u32; 64];
            registers[0] = id;
            registers[1] = 0x3;
            registers[2] = class;
            registers[3] = header << 16;
            let mut bar_masks = [0u32; 6];
            for (n, &(value, mask)) in bars.iter().enumerate() {
                registers[4 + n] = value;
                bar_masks[n] = mask;
            }
            self.functions.borrow_mut().insert(
                address,
                ModelFunction {
                    registers,
                    bar_masks,
                },
            );
        }

        pub fn register(&self, address: Address, offset: u16) -> u32 {
            self.functions.borrow()[&address].registers[offset as usize / 4]
        }
    }

    impl ConfigSpace for Model {
        fn read(&self, function: Address, offset: u16) -> u32 {
            self.functions
                .borrow()
                .get(&function)
                .map_or(u32::MAX, |f| {
                    f.registers.get(offset as usize / 4).copied().unwrap_or(0)
                })
        }

        fn write(&self, function: Address, offset: u16, value: u32) {
            let mut functions = self.functions.borrow_mut();
            let Some(f) = functions.get_mut(&function) else {
                return;
            };
            let n = offset as usize / 4;
            if (4..10).contains(&n) {
                let bar = n - 4;
                let mask = f.bar_masks[bar];
                if value == u32::MAX && f.registers[1] & DECODE != 0 {
                    *self.probes_while_decoding.borrow_mut() += 1;
                }
                let fixed = f.registers[n] & !mask;
                f.registers[n] = value & mask | fixed;
            } else if n < 64 {
                f.registers[n] = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::model::Model;
    use super::*;

    fn at(bus: u8, device: u8, function: u8) -> Address {
        Address::new(bus, device, function)
    }

    #[test]
    fn bars_are_sized_with_decoding_off_and_left_as_they_were() {
        let model = Model::default();
        model.add(
            at(0, 3, 0),
            0x1000_1af4,
            0x0200_0000,
            0,
            &[
                // I/O, 32 ports at 0xc040 (16-bit decode).
                (0xc041, 0x0000_ffe1 | 1),
                // Memory, 4 KiB at 0xfebd_1000.
                (0xfebd_1000, 0xffff_f000),
                // Unimplemented.
                (0, 0),
                // 64-bit prefetchable, 16 KiB, unassigned; its high half.
                (0xc, 0xffff_c000 | 0xc),
                (0, 0xffff_ffff),
            ],
        );
        let function = function(&model, at(0, 3, 0)).unwrap();
        let mut bars = Vec::new();
        read_bars(&model, &function, |bar| bars.push(bar));
        let shapes: Vec<_> = bars
            .iter()
            .map(|b| (b.index, b.space, b.base, b.size, b.wide))
            .collect();
        assert_eq!(
            shapes,
            [
                (0, Space::Io, 0xc040, 0x20, false),
                (1, Space::Memory, 0xfebd_1000, 0x1000, false),
                (3, Space::Memory, 0, 0x4000, true),
            ]
        );
        assert_eq!(*model.probes_while_decoding.borrow(), 0);
        assert_eq!(
            model.register(at(0, 3, 0), 0x04) & DECODE,
            DECODE,
            "decoding back on"
        );
        assert_eq!(
            model.register(at(0, 3, 0), 0x10),
            0xc041,
            "BARs as they were"
        );
        // A placed BAR is written with its type bits, both halves.
        let placed = Bar {
            base: 0x8_0000_4000,
            ..bars[2]
        };
        write_bar(&model, &placed);
        assert_eq!(model.register(at(0, 3, 0), 0x1c), 0x4000 | 0xc);
        assert_eq!(model.register(at(0, 3, 0), 0x20), 0x8);
    }

    #[test]
    fn a_scan_finds_every_function_and_follows_bridges_once() {
        let model = Model::default();
        // The host bridge, a multifunction device, a bridge to bus 1
        // (twice over: a loop must not scan bus 1 again), and behind it
        // an endpoint.
        model.add(at(0, 0, 0), 0x29c0_8086, 0x0600_0000, 0, &[]);
        model.add(at(0, 31, 0), 0x2918_8086, 0x0601_0000, 0x80, &[]);
        model.add(at(0, 31, 2), 0x2922_8086, 0x0106_0100, 0, &[]);
        model.add(at(0, 2, 0), 0x0001_1b36, 0x0604_0000, 1, &[]);
        model
            .functions
            .borrow_mut()
            .get_mut(&at(0, 2, 0))
            .unwrap()
            .registers[6] = 0x0000_0100;
        model.add(at(1, 0, 0), 0x0001_1b36, 0x0604_0000, 1, &[]);
        model
            .functions
            .borrow_mut()
            .get_mut(&at(1, 0, 0))
            .unwrap()
            .registers[6] = 0x0000_0101;
        model.add(at(1, 5, 0), 0x1041_1af4, 0x0200_0000, 0, &[]);
        let mut found = Vec::new();
        scan(&model, 0, 255, |f| {
            found.push((f.address, f.vendor, f.device, f.class))
        });
        assert_eq!(
            found,
            [
                (at(0, 0, 0), 0x8086, 0x29c0, 0x06),
                (at(0, 2, 0), 0x1b36, 0x0001, 0x06),
                (at(0, 31, 0), 0x8086, 0x2918, 0x06),
                (at(0, 31, 2), 0x8086, 0x2922, 0x01),
                (at(1, 0, 0), 0x1b36, 0x0001, 0x06),
                (at(1, 5, 0), 0x1af4, 0x1041, 0x02),
            ]
        );
        // Decoding off clears bus mastering too.
        set_decoding(&model, at(1, 5, 0), false);
        assert_eq!(model.register(at(1, 5, 0), 0x04) & 0x7, 0);
    }
}
