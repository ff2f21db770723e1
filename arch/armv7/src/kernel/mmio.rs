//! Mapping device registers into the kernel's MMIO window.
//!
//! Sections (1 MiB) are handed out from the window in order; a device in a
//! section already mapped reuses it. The boot translation table is edited
//! in place; the memory subsystem takes over this job later.

use arch_armv7::{layout, mmu};
use spin::Mutex;

unsafe extern "C" {
    static mut boot_l1_table: [u32; 4096];
}

const WINDOW_SECTIONS: usize = (layout::MMIO_WINDOW_SIZE / mmu::SECTION_SIZE) as usize;

/// Physical section base mapped at each window slot, in order of use.
static SLOTS: Mutex<([u32; WINDOW_SECTIONS], usize)> = Mutex::new(([0; WINDOW_SECTIONS], 0));

/// The kernel virtual address of device register `paddr`, mapping its
/// section as device memory if needed. `None` if the window is full or the
/// address is beyond 32 bits.
pub fn map_device(paddr: u64) -> Option<usize> {
    let paddr = u32::try_from(paddr).ok()?;
    let section = paddr & !(mmu::SECTION_SIZE - 1);
    let offset = paddr - section;
    let mut slots = SLOTS.lock();
    let (bases, used) = &mut *slots;
    let slot = match bases[..*used].iter().position(|&b| b == section) {
        Some(slot) => slot,
        None => {
            if *used == WINDOW_SECTIONS {
                return None;
            }
            let slot = *used;
            let virt = layout::MMIO_WINDOW_BASE + slot as u32 * mmu::SECTION_SIZE;
            // SAFETY: the window's L1 entries belong to this module (the
            // lock is held) and are unused; boot_l1_table is the live table.
            unsafe {
                let entry = &raw mut boot_l1_table[(virt >> 20) as usize];
                entry.write_volatile(mmu::section(section, mmu::DEVICE_SECTION));
            }
            invalidate_tlb_entry(virt);
            bases[slot] = section;
            *used += 1;
            slot
        }
    };
    Some((layout::MMIO_WINDOW_BASE + slot as u32 * mmu::SECTION_SIZE + offset) as usize)
}

/// Makes a changed translation for `virt` visible.
fn invalidate_tlb_entry(virt: u32) {
    // SAFETY: barrier and TLB maintenance only; TLBIMVA drops any stale
    // translation of `virt` (ASID 0: kernel mappings are global).
    unsafe {
        core::arch::asm!(
            "dsb ishst",
            "mcr p15, 0, {va}, c8, c7, 1",
            "mcr p15, 0, {zero}, c7, c5, 6",
            "dsb ish",
            "isb",
            va = in(reg) virt & !0xfff,
            zero = in(reg) 0,
            options(nostack, preserves_flags)
        );
    }
}

/// The entry of the live L1 table for `virt`.
pub fn l1_entry(virt: u32) -> u32 {
    // SAFETY: reading one aligned word of the live table.
    unsafe { (&raw const boot_l1_table[(virt >> 20) as usize]).read_volatile() }
}

/// Physical address of the live L1 table.
pub fn l1_table_paddr() -> u32 {
    (&raw const boot_l1_table) as u32 - layout::KERNEL_VIRT_OFFSET
}
