//! A VirtIO-PCI function's configuration space, as its driver sees it:
//! the function's own ECAM page (a device-memory capability init passed),
//! with the BARs kept as the kernel placed and checked them.
//!
//! `virtio-drivers` sizes each BAR the usual way (write all ones, read
//! back, restore). The BARs are the kernel's to place and the driver's
//! registers are fixed by the capabilities it was given, so writes to the
//! BAR registers never reach the device: sizing is answered from the
//! device list's sizes, and reads give the address the kernel set.

use abi::DeviceInfo;
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::transport::pci::bus::{ConfigurationAccess, DeviceFunction};

const FIRST_BAR: u8 = 0x10;
const BAR_END: u8 = 0x28;

/// One BAR as the device list gives it.
#[derive(Clone, Copy)]
struct Bar {
    index: u8,
    size: u64,
}

pub struct Config {
    page: NonNull<u32>,
    function: DeviceFunction,
    bars: Vec<Bar>,
    /// The BAR registers being sized (all ones written).
    sizing: [bool; 6],
}

impl Config {
    /// The configuration space of `function` mapped at `page`, with the
    /// BARs `devices` lists for it.
    pub fn new(page: NonNull<u8>, function: u32, devices: &[DeviceInfo]) -> Config {
        let bars = devices
            .iter()
            .filter(|d| d.pci_function == function && d.pci_bar < 6)
            .map(|d| Bar {
                index: d.pci_bar as u8,
                size: d.size,
            })
            .collect();
        Config {
            page: page.cast(),
            function: device_function(function),
            bars,
            sizing: [false; 6],
        }
    }

    pub fn function(&self) -> DeviceFunction {
        self.function
    }

    fn read_register(&self, offset: u8) -> u32 {
        // SAFETY: the page is the function's configuration space, mapped
        // uncached; `offset` is a word's, below 256.
        unsafe { self.page.add(usize::from(offset / 4)).read_volatile() }
    }

    /// What BAR register `register` (0-5) reads while being sized: the
    /// size mask of the BAR it belongs to (either half of a 64-bit one).
    fn size_mask(&self, register: u8) -> u32 {
        let own = self.bars.iter().find(|b| b.index == register);
        let lower = register
            .checked_sub(1)
            .and_then(|below| self.bars.iter().find(|b| b.index == below));
        match (own, lower) {
            (Some(bar), _) => {
                let value = self.read_register(FIRST_BAR + 4 * register);
                // The flag bits (I/O: 2, memory: 4) read as they are.
                let flags = if value & 1 == 1 { 0b11 } else { 0b1111 };
                ((!(bar.size - 1)) as u32 & !flags) | (value & flags)
            }
            (None, Some(bar)) if self.read_register(FIRST_BAR + 4 * bar.index) & 0b111 == 0b100 => {
                ((!(bar.size - 1)) >> 32) as u32
            }
            _ => 0,
        }
    }
}

/// `bus << 8 | device << 3 | function` as the crate names it.
pub fn device_function(function: u32) -> DeviceFunction {
    DeviceFunction {
        bus: (function >> 8) as u8,
        device: (function >> 3 & 0x1f) as u8,
        function: (function & 7) as u8,
    }
}

impl ConfigurationAccess for Config {
    fn read_word(&self, device_function: DeviceFunction, register_offset: u8) -> u32 {
        if device_function != self.function {
            // No other function's space was given: it reads as absent.
            return u32::MAX;
        }
        let offset = register_offset & !3;
        if (FIRST_BAR..BAR_END).contains(&offset) {
            let register = (offset - FIRST_BAR) / 4;
            if self.sizing[usize::from(register)] {
                return self.size_mask(register);
            }
        }
        self.read_register(offset)
    }

    fn write_word(&mut self, device_function: DeviceFunction, register_offset: u8, data: u32) {
        if device_function != self.function {
            return;
        }
        let offset = register_offset & !3;
        if (FIRST_BAR..BAR_END).contains(&offset) {
            self.sizing[usize::from((offset - FIRST_BAR) / 4)] = data == u32::MAX;
            return;
        }
        // SAFETY: as in `read_register`.
        unsafe { self.page.add(usize::from(offset / 4)).write_volatile(data) }
    }

    unsafe fn unsafe_clone(&self) -> Config {
        Config {
            page: self.page,
            function: self.function,
            bars: self.bars.clone(),
            sizing: self.sizing,
        }
    }
}
