//! The device tree: finding it where the loader left it, and keeping it
//! with what was read from it for the modules that need devices.

use arch_armv7::dtb::{self, DeviceTreeInfo, DtbError};
use arch_armv7::layout;
use spin::Once;

static DEVICE_TREE: Once<(&'static [u8], DeviceTreeInfo<'static>)> = Once::new();

/// The kernel virtual address of physical `paddr` if the boot mapping of
/// RAM covers `[paddr, paddr + len)`.
fn boot_mapped(paddr: u64, len: u64) -> Option<usize> {
    let start = layout::RAM_BASE as u64;
    let end = start + layout::BOOT_MAPPED_SIZE as u64;
    (paddr >= start && paddr.checked_add(len)? <= end)
        .then(|| (paddr + layout::KERNEL_VIRT_OFFSET as u64) as usize)
}

/// Finds the device tree: where the loader's r2 points, else at the base
/// of RAM (where QEMU puts it for ELF images). The blob must lie in the
/// boot-mapped RAM. It is returned writable so NOPs can be stripped in place.
pub fn find_device_tree(loader_dtb: u32) -> Result<&'static mut [u8], DtbError> {
    let mut last_error = DtbError::BadMagic(0);
    for candidate in [loader_dtb as u64, layout::RAM_BASE as u64] {
        if candidate == 0 {
            continue;
        }
        let Some(header) = boot_mapped(candidate, 8) else {
            continue;
        };
        // SAFETY: the 8 header bytes are inside the boot mapping of RAM.
        let header = unsafe { core::slice::from_raw_parts(header as *const u8, 8) };
        let size = match dtb::total_size(header) {
            Ok(size) => size,
            Err(error) => {
                last_error = error;
                continue;
            }
        };
        let Some(virt) = boot_mapped(candidate, size as u64) else {
            return Err(DtbError::Truncated);
        };
        // SAFETY: the whole blob is inside the boot mapping of RAM, which
        // nothing else uses; this is the only reference made to it.
        return Ok(unsafe { core::slice::from_raw_parts_mut(virt as *mut u8, size) });
    }
    Err(last_error)
}

/// Keeps the validated tree and what was read from it.
pub fn keep(blob: &'static [u8], info: DeviceTreeInfo<'static>) {
    DEVICE_TREE.call_once(|| (blob, info));
}

/// The device tree and what was read from it, once kept.
pub fn get() -> Option<&'static (&'static [u8], DeviceTreeInfo<'static>)> {
    DEVICE_TREE.get()
}
