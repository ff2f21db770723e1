//! Device resources: the register ranges and I/O ports of the devices the
//! kernel leaves to user space. A capability to one is a plain value (the
//! range), from which a driver makes a device memory object or through
//! which it reads and writes ports.
//!
//! The architecture lists the devices; the portable core checks the list
//! once, so that no capability it hands out ever covers RAM or the kernel
//! image, whatever the firmware or device tree claimed.

use crate::mm::PAGE_SIZE;
use abi::Error;
use core::sync::atomic::{AtomicBool, Ordering};
use hal::boot::{MemoryKind, PhysRange};
use hal::{Arch, DeviceRegisters, UserDevice, UserDevices};
use spin::Once;

static CHECKED: Once<UserDevices> = Once::new();

/// Whether the console's UART is a user device (its driver then owns its
/// input; the kernel only writes to it, polled).
static CONSOLE_HANDED_OVER: AtomicBool = AtomicBool::new(false);

/// Leaves the console's input to a user-space driver: the UART joins the
/// device list. Before the list is first asked for (init's start).
pub fn hand_over_console() {
    CONSOLE_HANDED_OVER.store(true, Ordering::Relaxed);
}

/// Whether console input belongs to a user-space driver.
pub fn console_handed_over() -> bool {
    CONSOLE_HANDED_OVER.load(Ordering::Relaxed)
}

/// Physical memory a range of device registers occupies: whole pages,
/// because that is what a mapping covers.
pub fn page_range(base: u64, size: u64) -> Option<PhysRange> {
    let page = PAGE_SIZE as u64;
    let end = base.checked_add(size)?.checked_next_multiple_of(page)?;
    (size > 0).then_some(PhysRange {
        start: base & !(page - 1),
        end,
    })
}

/// Why a listed device is not handed out, if it is not.
fn refusal<A: Arch>(device: &UserDevice) -> Option<&'static str> {
    let DeviceRegisters::Memory { base, size } = device.registers else {
        return None;
    };
    let Some(range) = page_range(base, size) else {
        return Some("its register range is empty or wraps");
    };
    let info = A::boot_info();
    let overlaps = |other: &PhysRange| range.start < other.end && other.start < range.end;
    if overlaps(&info.kernel_image) {
        return Some("it overlaps the kernel image");
    }
    let ram = info
        .memory
        .regions()
        .iter()
        .any(|region| region.kind != MemoryKind::Reserved && overlaps(&region.range));
    ram.then_some("it overlaps RAM")
}

/// The devices drivers may have: the architecture's list (and the
/// console's UART, once handed over), less any whose registers overlap
/// RAM or the kernel (each refusal logged once).
pub fn user_devices<A: Arch>() -> &'static [UserDevice] {
    CHECKED
        .call_once(|| {
            let mut checked = UserDevices::default();
            let console = console_handed_over().then(A::user_device).flatten();
            for device in A::user_devices().iter().chain(console.as_ref()) {
                match refusal::<A>(device) {
                    Some(reason) => log::warn!(
                        "device {} at {:x?} is not handed out: {reason}",
                        device.name,
                        device.registers
                    ),
                    None => checked.push(*device),
                }
            }
            checked
        })
        .as_slice()
}

/// Checks that `width` bytes at `port` lie in `base..base + count`.
pub fn check_port(base: u16, count: u16, port: usize, width: usize) -> Result<u16, Error> {
    if !matches!(width, 1 | 2 | 4) {
        return Err(Error::InvalidArgument);
    }
    let end = base as usize + count as usize;
    match port.checked_add(width) {
        Some(last) if port >= base as usize && last <= end => Ok(port as u16),
        _ => Err(Error::InvalidArgument),
    }
}

/// The physical range of a device memory object made at `offset` into a
/// device-memory range, `size` bytes rounded up to pages.
pub fn window(base: u64, size: u64, offset: usize, len: usize) -> Result<(u64, usize), Error> {
    let range = page_range(base, size).ok_or(Error::InvalidArgument)?;
    if !offset.is_multiple_of(PAGE_SIZE) || len == 0 {
        return Err(Error::InvalidArgument);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    let start = range
        .start
        .checked_add(offset as u64)
        .ok_or(Error::InvalidArgument)?;
    let end = (pages as u64)
        .checked_mul(PAGE_SIZE as u64)
        .and_then(|bytes| start.checked_add(bytes))
        .ok_or(Error::InvalidArgument)?;
    if end > range.end {
        return Err(Error::InvalidArgument);
    }
    Ok((start, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_checked_with_their_width() {
        assert_eq!(check_port(0x70, 2, 0x70, 1), Ok(0x70));
        assert_eq!(check_port(0x70, 2, 0x71, 1), Ok(0x71));
        assert_eq!(check_port(0x70, 2, 0x70, 2), Ok(0x70));
        assert_eq!(check_port(0x70, 2, 0x71, 2), Err(Error::InvalidArgument));
        assert_eq!(check_port(0x70, 2, 0x6f, 1), Err(Error::InvalidArgument));
        assert_eq!(check_port(0x70, 2, 0x70, 3), Err(Error::InvalidArgument));
        assert_eq!(
            check_port(0x70, 2, usize::MAX, 1),
            Err(Error::InvalidArgument)
        );
        assert_eq!(check_port(0xfffe, 2, 0xfffe, 2), Ok(0xfffe));
    }

    #[test]
    fn device_windows_stay_in_the_pages_of_their_range() {
        // A sub-page device: its page, and nothing beyond.
        assert_eq!(window(0x1c13_0200, 0x200, 0, 1), Ok((0x1c13_0000, 1)));
        assert_eq!(
            window(0x1c13_0200, 0x200, 0, 4097),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            window(0x1c13_0200, 0x200, 4096, 1),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            window(0xfed0_0000, 0x3000, 0x1000, 0x2000),
            Ok((0xfed0_1000, 2))
        );
        assert_eq!(
            window(0xfed0_0000, 0x3000, 0x800, 1),
            Err(Error::InvalidArgument)
        );
        assert_eq!(
            window(0xfed0_0000, 0x3000, 0, 0),
            Err(Error::InvalidArgument)
        );
        assert_eq!(window(0, 0, 0, 1), Err(Error::InvalidArgument));
        assert_eq!(window(u64::MAX - 10, 5, 0, 1), Err(Error::InvalidArgument));
        assert_eq!(
            window(0x1000, 0x1000, usize::MAX & !0xfff, 1),
            Err(Error::InvalidArgument)
        );
    }
}
