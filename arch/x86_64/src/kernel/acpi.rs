//! Finding the MADT and the MCFG: the `acpi` crate walks RSDP -> RSDT/XSDT
//! and checks checksums; the entries are read by `arch_x86_64::madt` and
//! `arch_x86_64::mcfg`.

use crate::memory;
use acpi::{AcpiHandler, AcpiTable, AcpiTables, PhysicalMapping, madt::Madt as AcpiMadt};
use arch_x86_64::madt::{self, Madt};
use arch_x86_64::mcfg::{self, EcamRegion, McfgError};
use core::ptr::NonNull;
use hal::list::FixedList;
use kernel::mm::frames::KernelFrames;

/// Maps tables read-only in the firmware-table window.
#[derive(Clone, Copy)]
struct Handler;

/// A read-only zero page, for table pointers the firmware window refuses:
/// the crate then sees an invalid table and reports it.
static ZEROS: [u8; 4096] = [0; 4096];

impl AcpiHandler for Handler {
    unsafe fn map_physical_region<T>(
        &self,
        physical_address: usize,
        size: usize,
    ) -> PhysicalMapping<Self, T> {
        let virt = match memory::map_firmware(physical_address as u64, size, &KernelFrames) {
            Ok(virt) => virt,
            Err(e) => {
                log::warn!("ACPI: cannot map {size} bytes at {physical_address:#x}: {e}");
                ZEROS.as_ptr() as usize
            }
        };
        let start = NonNull::new(virt as *mut T).expect("mapped addresses are not null");
        // SAFETY: the region is mapped (or the zero page stands in) for the
        // kernel's lifetime; mappings are never torn down.
        unsafe { PhysicalMapping::new(physical_address, start, size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {
        // Firmware tables stay mapped: they are few and small.
    }
}

/// Why no MADT could be read.
#[derive(Debug)]
pub enum MadtSourceError {
    Acpi(acpi::AcpiError),
    Malformed(madt::MadtError),
}

impl core::fmt::Display for MadtSourceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MadtSourceError::Acpi(e) => write!(f, "ACPI tables: {e:?}"),
            MadtSourceError::Malformed(e) => write!(f, "{e}"),
        }
    }
}

/// Finds and reads the MADT through the RSDP at `rsdp`.
pub fn read_madt(rsdp: u64) -> Result<Madt, MadtSourceError> {
    // SAFETY: the RSDP address comes from the boot loader; the handler maps
    // whatever the tables point at read-only and never writes.
    let tables =
        unsafe { AcpiTables::from_rsdp(Handler, rsdp as usize) }.map_err(MadtSourceError::Acpi)?;
    let mapping = tables
        .find_table::<AcpiMadt>()
        .map_err(MadtSourceError::Acpi)?;
    let length = mapping
        .region_length()
        .max(mapping.get().header.length as usize);
    // Map the whole table (the crate mapped its header, then its length).
    let virt = memory::map_firmware(mapping.physical_start() as u64, length, &KernelFrames)
        .map_err(|_| MadtSourceError::Malformed(madt::MadtError::Truncated))?;
    // SAFETY: `length` bytes are mapped read-only at `virt`.
    let bytes = unsafe { core::slice::from_raw_parts(virt as *const u8, length) };
    madt::parse(bytes).map_err(MadtSourceError::Malformed)
}

/// The ECAM regions the MCFG lists; empty without one (microvm).
pub fn read_mcfg(rsdp: u64) -> Result<FixedList<EcamRegion, 4>, McfgError> {
    // SAFETY: as in `read_madt`.
    let Ok(tables) = (unsafe { AcpiTables::from_rsdp(Handler, rsdp as usize) }) else {
        return Ok(FixedList::default());
    };
    let Ok(mapping) = tables.find_table::<acpi::mcfg::Mcfg>() else {
        return Ok(FixedList::default());
    };
    // Map the whole table (the crate mapped its header, then its length),
    // at most 64 KiB of it: `parse` checks the length against the bytes.
    let length = mapping
        .region_length()
        .max(mapping.get().header().length as usize)
        .min(64 * 1024);
    let virt = memory::map_firmware(mapping.physical_start() as u64, length, &KernelFrames)
        .map_err(|_| McfgError::Truncated)?;
    // SAFETY: `length` bytes are mapped read-only at `virt`.
    let bytes = unsafe { core::slice::from_raw_parts(virt as *const u8, length) };
    mcfg::parse(bytes)
}

/// The HPET's register block, from the ACPI HPET table, if there is one;
/// the tables are walked once (both the device list and PCI ask).
pub fn hpet_address(rsdp: u64) -> Option<u64> {
    static HPET: spin::Once<Option<u64>> = spin::Once::new();
    *HPET.call_once(|| {
        // SAFETY: as in `read_madt`.
        let tables = unsafe { AcpiTables::from_rsdp(Handler, rsdp as usize) }.ok()?;
        let hpet = acpi::HpetInfo::new(&tables).ok()?;
        Some(hpet.base_address as u64)
    })
}
