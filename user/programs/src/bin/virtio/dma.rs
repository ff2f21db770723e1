//! The `virtio-drivers` HAL of a driver in user space: DMA memory is
//! physically contiguous memory objects (`memory_create` with
//! `MEMORY_CONTIGUOUS`, located with `memory_physical`); device registers
//! are the device-memory capabilities init passed.
//!
//! `share` needs the physical address of a caller's buffer. A buffer
//! inside DMA memory this process made, or inside a client's buffer
//! attached as a window, is translated in place, so the device moves
//! bulk data straight to and from the client's memory. Anything else
//! (a small header on the heap, an indirect descriptor table) is copied
//! through a bounce region, reused from a pool so a request costs no
//! system calls.

use alloc::vec::Vec;
use core::ptr::NonNull;
use rt::device::{DeviceMemory, Dma};

use spin::Mutex;
use virtio_drivers::{BufferDirection, Hal, PhysAddr};

const PAGE: usize = 4096;

/// Contiguous memory mapped in this process.
struct Region {
    physical: u64,
    address: usize,
    len: usize,
}

impl Region {
    /// The physical address of `[address, address + len)` if it lies in
    /// this region.
    fn translate(&self, address: usize, len: usize) -> Option<u64> {
        let end = address.checked_add(len)?;
        (address >= self.address && end <= self.address + self.len)
            .then(|| self.physical + (address - self.address) as u64)
    }
}

/// DMA memory this process made, with its region.
struct Owned {
    region: Region,
    _dma: Dma,
}

impl Owned {
    fn create(pages: usize) -> Option<Owned> {
        let dma = Dma::new(pages * PAGE).ok()?;
        Some(Owned {
            region: Region {
                physical: dma.physical(),
                address: dma.address(),
                len: dma.len(),
            },
            _dma: dma,
        })
    }
}

/// A bounce region in use: what it stands in for.
struct Bounce {
    owned: Owned,
    original: NonNull<[u8]>,
}

/// Device registers the driver may map: physical base, bytes, the
/// capability, and where they are mapped once they are.
struct Registers {
    base: u64,
    size: u64,
    capability: DeviceMemory,
    mapped: Option<usize>,
}

struct State {
    allocations: Vec<Owned>,
    windows: Vec<Region>,
    bounces: Vec<Bounce>,
    pool: Vec<Owned>,
    registers: Vec<Registers>,
}

// SAFETY: the driver's threads reach the state only through the lock;
// the pointers in it are to this process's memory.
unsafe impl Send for State {}

static STATE: Mutex<State> = Mutex::new(State {
    allocations: Vec::new(),
    windows: Vec::new(),
    bounces: Vec::new(),
    pool: Vec::new(),
    registers: Vec::new(),
});

/// Makes device registers at physical `base` (`size` bytes) mappable
/// through `capability`.
pub fn add_registers(base: u64, size: u64, capability: DeviceMemory) {
    STATE.lock().registers.push(Registers {
        base,
        size,
        capability,
        mapped: None,
    });
}

/// Where the registers at `physical` (`len` bytes) are mapped, mapping
/// their range the first time.
pub fn registers(physical: u64, len: usize) -> Option<NonNull<u8>> {
    let mut state = STATE.lock();
    let range = state
        .registers
        .iter_mut()
        .find(|r| physical >= r.base && physical + len as u64 <= r.base + r.size)?;
    let page_base = range.base & !(PAGE as u64 - 1);
    let mapped = match range.mapped {
        Some(address) => address,
        None => {
            let bytes = (range.base + range.size - page_base) as usize;
            let memory = range.capability.memory(0, bytes).ok()?;
            let address = memory.map(true).ok()?.address;
            // The mapping keeps the object; the capability may go.
            drop(memory);
            range.mapped = Some(address);
            address
        }
    };
    NonNull::new((mapped + (physical - page_base) as usize) as *mut u8)
}

/// A client's buffer (contiguous memory at `physical`, mapped at
/// `address`) becomes a window the device reaches directly.
pub fn add_window(physical: u64, address: usize, len: usize) {
    STATE.lock().windows.push(Region {
        physical,
        address,
        len,
    });
}

/// Forgets the window mapped at `address`.
pub fn remove_window(address: usize) {
    STATE.lock().windows.retain(|w| w.address != address);
}

/// Allocates `pages` of DMA memory; returns its physical address and
/// where it is mapped.
pub fn allocate(pages: usize) -> Option<(u64, NonNull<u8>)> {
    let owned = Owned::create(pages)?;
    let result = (
        owned.region.physical,
        NonNull::new(owned.region.address as *mut u8)?,
    );
    STATE.lock().allocations.push(owned);
    Some(result)
}

pub struct DmaHal;

// SAFETY: allocations are contiguous, zeroed (fresh memory objects),
// page-aligned, mapped only here and kept until `dma_dealloc`; registers
// are mapped from the capabilities init gave for them; a shared buffer's
// physical address is either its own (inside contiguous memory mapped
// here) or a bounce region's whose contents are copied in and out.
unsafe impl Hal for DmaHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        allocate(pages).unwrap_or((0, NonNull::dangling()))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        let mut state = STATE.lock();
        state
            .allocations
            .retain(|owned| owned.region.physical != paddr);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        // The transport asks only for what the device's BARs say; a BAR
        // outside what init passed is a device this driver was not given.
        registers(paddr, size)
            .unwrap_or_else(|| panic!("no registers given at {paddr:#x} ({size} bytes)"))
    }

    unsafe fn share(buffer: NonNull<[u8]>, direction: BufferDirection) -> PhysAddr {
        let address = buffer.as_ptr() as *mut u8 as usize;
        let len = buffer.len();
        let mut state = STATE.lock();
        let known = state
            .allocations
            .iter()
            .map(|owned| &owned.region)
            .chain(state.windows.iter())
            .find_map(|region| region.translate(address, len));
        if let Some(physical) = known {
            return physical;
        }
        let pages = len.div_ceil(PAGE).max(1);
        let reused = state.pool.iter().position(|o| o.region.len >= len);
        let owned = match reused {
            Some(index) => state.pool.swap_remove(index),
            None => match Owned::create(pages) {
                Some(owned) => owned,
                None => panic!("no memory for a {len}-byte bounce buffer"),
            },
        };
        if direction != BufferDirection::DeviceToDriver {
            // SAFETY: the caller's buffer is valid for reads of `len`
            // bytes; the bounce region is at least that long and ours.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    address as *const u8,
                    owned.region.address as *mut u8,
                    len,
                )
            };
        }
        let physical = owned.region.physical;
        state.bounces.push(Bounce {
            owned,
            original: buffer,
        });
        physical
    }

    unsafe fn unshare(paddr: PhysAddr, buffer: NonNull<[u8]>, direction: BufferDirection) {
        let mut state = STATE.lock();
        let Some(index) = state
            .bounces
            .iter()
            .position(|b| b.owned.region.physical == paddr)
        else {
            // Translated in place: nothing to copy.
            return;
        };
        let bounce = state.bounces.swap_remove(index);
        if direction != BufferDirection::DriverToDevice {
            let len = buffer.len().min(bounce.original.len());
            // SAFETY: the caller's buffer is valid for writes of its
            // length; the bounce region holds at least that much.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    bounce.owned.region.address as *const u8,
                    buffer.as_ptr() as *mut u8,
                    len,
                )
            };
        }
        state.pool.push(bounce.owned);
    }
}
