//! Address-space IDs on ARMv7: ASIDs. User pages are not global, so their
//! TLB entries carry the ASID that CONTEXTIDR held when they were walked,
//! and a switch of TTBR0 with a change of ASID keeps the other spaces'
//! entries: a switch between processes flushes nothing. Tags follow from
//! the root table (see `hal::asid`); ASID 0 is reserved for the moment of
//! the switch and for having no user half. Page invalidations reach every
//! ASID (TLBIMVAA), so only a clash or a space's end makes a tag stale.

use crate::cp15::{Contextidr, TlbiAsid};
use aarch32_cpu::asm::{dsb, isb};
use aarch32_cpu::register::{BpIAll, SysRegRead, SysRegWrite};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use hal::asid::Tags;

/// The tags, and the user table TTBR0 walks (0: none, as after boot),
/// which a switch reads and writes together: one static, one address.
struct Switching {
    user_table: AtomicU32,
    tags: Tags<256>,
}

static SWITCHING: Switching = Switching {
    user_table: AtomicU32::new(0),
    tags: Tags::new(),
};
/// Switches that had to flush a tag's entries (for tests).
static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Switches flushed so far.
pub fn flushes() -> u64 {
    FLUSHES.load(Ordering::Relaxed)
}

/// The ASID in CONTEXTIDR now.
pub fn current() -> u32 {
    Contextidr::read_raw() & 0xff
}

/// The user table TTBR0 walks, as the last [`switch`] left it (0: none).
#[inline(always)]
pub fn user_table() -> u32 {
    SWITCHING.user_table.load(Ordering::Relaxed)
}

/// Runs `write_tables` (which loads TTBR0 for `root`, or turns the user
/// half off for `None`) with the ASID changed around it as the
/// architecture requires: to the reserved ASID 0 first, so that no walk
/// pairs the old ASID with the new tables or the reverse, then to the new
/// space's.
///
/// # Safety
/// `write_tables` must only change the user half's translation.
#[inline(always)]
pub unsafe fn switch(root: Option<u32>, write_tables: impl FnOnce()) {
    SWITCHING
        .user_table
        .store(root.unwrap_or(0), Ordering::Relaxed);
    // SAFETY: ASID 0 tags no user entry; the kernel half is global.
    unsafe { Contextidr::write_raw(0) };
    isb();
    write_tables();
    isb();
    let Some(root) = root else {
        return;
    };
    let (tag, stale) = SWITCHING.tags.claim(root as u64);
    // SAFETY: the tables at `root` are loaded; entries tagged `tag` from
    // here are theirs.
    unsafe { Contextidr::write_raw(tag as u32) };
    isb();
    if stale {
        FLUSHES.fetch_add(1, Ordering::Relaxed);
        dsb();
        // SAFETY: TLB maintenance only.
        unsafe { TlbiAsid::write_raw(tag as u32) };
        BpIAll::write();
        dsb();
        isb();
    }
}

/// The space rooted at `root` went: its tag's entries are out of date for
/// whatever space takes the tag next.
pub fn forget(root: u32) {
    SWITCHING.tags.forget(root as u64);
}
