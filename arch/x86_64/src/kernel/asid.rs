//! Address-space IDs on x86_64: PCIDs. With CR4.PCIDE set, TLB entries are
//! tagged with the PCID in CR3's low 12 bits, and a CR3 write with bit 63
//! set keeps the other tags' entries: a switch between processes flushes
//! nothing (the kernel half is global anyway). Tags follow from the root
//! table (see `hal::asid`); PCID 0 is the kernel's tables'.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use hal::asid::Tags;
use x86_64::registers::control::{Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, instructions::tlb::Pcid};

static TAGS: Tags<4096> = Tags::new();
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Switches that had to flush a tag's entries (for tests).
static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// CPUID.01H:ECX bit 17.
fn cpu_has_pcid() -> bool {
    let leaf = core::arch::x86_64::__cpuid(1);
    leaf.ecx & (1 << 17) != 0
}

/// Turns PCIDs on if the CPU has them; CR3 must hold PCID 0 (the kernel's
/// tables, as after boot).
pub fn init() {
    if !cpu_has_pcid() {
        return;
    }
    // SAFETY: CR3's PCID is 0, as enabling requires; nothing else changes.
    unsafe { Cr4::update(|flags| flags.insert(Cr4Flags::PCID)) };
    ENABLED.store(true, Ordering::Relaxed);
}

/// Whether PCIDs are on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Switches flushed so far.
pub fn flushes() -> u64 {
    FLUSHES.load(Ordering::Relaxed)
}

/// Loads CR3 with the tables at `root`, `kernel` if those are the kernel's
/// own.
///
/// # Safety
/// The tables map the kernel half, as every root does.
pub unsafe fn load(root: u64, kernel: bool) {
    let frame = PhysFrame::containing_address(PhysAddr::new_truncate(root));
    if !enabled() {
        // SAFETY: as the caller promises.
        unsafe { Cr3::write(frame, Cr3Flags::empty()) };
        return;
    }
    let (tag, stale) = match kernel {
        // The kernel's tables change their user half only at boot: flush
        // on every load, which is rare (kernel threads, a space's end).
        true => (0, true),
        false => TAGS.claim(root),
    };
    let pcid = Pcid::new(tag as u16).expect("tags are below 4096");
    // SAFETY: as the caller promises.
    unsafe {
        if stale {
            FLUSHES.fetch_add(1, Ordering::Relaxed);
            Cr3::write_pcid(frame, pcid);
        } else {
            Cr3::write_pcid_no_flush(frame, pcid);
        }
    }
}

/// The tables at `root` changed while another space was active, or went:
/// entries the TLB holds under its tag are out of date.
pub fn forget(root: u64) {
    TAGS.forget(root);
}
