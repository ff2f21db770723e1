//! Address-space tags for the TLB (x86_64 PCIDs, ARMv7 ASIDs), so that a
//! switch of address space need not flush it.
//!
//! A space's tag follows from its root table's address, so switching
//! needs no lookup in a per-space record; a table of owners says whether
//! the tag's entries in the TLB are the space's own. When two live spaces
//! share a tag, or a space changed while another was active, the owner is
//! not the space and the switch flushes the tag's entries. Tag 0 is left
//! to the kernel.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The owners of `N` tags, each known by its root table's page number (0:
/// none), which fits the machine's word (a 32-bit machine addresses at
/// most 40 bits of physical memory) so that no owner check needs a
/// double-word atomic.
pub struct Tags<const N: usize> {
    owners: [AtomicUsize; N],
}

impl<const N: usize> Default for Tags<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Tags<N> {
    pub const fn new() -> Self {
        Tags {
            owners: [const { AtomicUsize::new(0) }; N],
        }
    }

    /// The tag of the space rooted at `root` (page-aligned, not 0).
    pub const fn tag(root: u64) -> usize {
        // In the machine's word: a 64-bit division would be a library
        // call on a 32-bit machine, and the page number's low bits decide.
        (Self::page(root) % (N - 1)) + 1
    }

    /// The page number that stands for `root` in the owner table.
    const fn page(root: u64) -> usize {
        (root >> 12) as usize
    }

    /// The tag of `root` for a switch to it, and whether the TLB may hold
    /// entries of that tag that are not `root`'s (so the switch must flush
    /// them). The space owns its tag from here.
    pub fn claim(&self, root: u64) -> (usize, bool) {
        let tag = Self::tag(root);
        let owner = &self.owners[tag];
        let page = Self::page(root);
        // Mostly the space owns its tag still: a load, no atomic exchange.
        let stale = owner.load(Ordering::Relaxed) != page;
        if stale {
            owner.store(page, Ordering::Relaxed);
        }
        (tag, stale)
    }

    /// The TLB may hold out-of-date entries of `root`'s tag (its tables
    /// changed while it was not active, or it went): the next switch to
    /// it flushes them.
    pub fn forget(&self, root: u64) {
        let _ = self.owners[Self::tag(root)].compare_exchange(
            Self::page(root),
            0,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_keeps_its_tag_until_another_takes_it_or_it_changes() {
        let tags = Tags::<256>::new();
        let (a, b) = (0x10_0000, 0x20_0000);
        let (tag_a, stale) = tags.claim(a);
        assert!(stale, "first use");
        assert!(tag_a != 0 && tag_a < 256);
        assert_eq!(tags.claim(a), (tag_a, false), "again: no flush");
        let (tag_b, stale) = tags.claim(b);
        assert!(stale);
        assert_ne!(tag_a, tag_b);
        assert_eq!(tags.claim(a), (tag_a, false), "b did not disturb a");
        tags.forget(a);
        assert_eq!(tags.claim(a), (tag_a, true), "changed while away");
        // A space whose tag another holds flushes, and so does the other
        // when it comes back.
        let clash = a + 255 * 4096;
        assert_eq!(Tags::<256>::tag(clash), tag_a);
        assert_eq!(tags.claim(clash), (tag_a, true));
        assert_eq!(tags.claim(a), (tag_a, true));
        // Forgetting a space that no longer owns the tag leaves the owner.
        tags.forget(clash);
        assert_eq!(tags.claim(a), (tag_a, false));
    }

    #[test]
    fn tag_zero_is_never_given() {
        for root in (0..10_000u64).map(|n| n * 4096) {
            assert_ne!(Tags::<4096>::tag(root), 0);
            assert_ne!(Tags::<256>::tag(root), 0);
        }
    }
}
