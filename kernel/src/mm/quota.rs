//! Memory quotas: how many frames of user memory a process, and the
//! processes it gives the quota to, may hold. A quota is a budget of
//! pages; a [`Charge`] holds some of it and gives them back when it goes.
//! A quota split off another ([`Quota::split`]) holds its own budget as a
//! charge on the first, so the budget returns when the split quota goes.
//!
//! At boot, init's quota is every frame free then. It is a limit, not a
//! reservation: the kernel's reserve and its own records of processes
//! come out of the same frames, so memory can run out before the quota
//! does, and then the process whose page fault finds no frame is killed,
//! as without quotas. Charged to a process's quota: its program image and stack
//! (when it starts), anonymous memory (when it is mapped, so a fault
//! never fails for want of quota) and memory objects (when they are made,
//! to whoever made them, for as long as they live). The kernel's own
//! records of a process (its page tables, thread records and stacks,
//! capability table) are not charged.

use super::heap::try_arc;
use abi::Error;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

/// A budget of pages.
pub struct Quota {
    limit: usize,
    used: AtomicUsize,
    /// Where the budget came from: a charge on the quota this was split
    /// off (`None` for init's).
    _budget: Option<Charge>,
}

/// Pages held of a quota, given back when dropped.
pub struct Charge {
    quota: Arc<Quota>,
    pages: usize,
}

impl Quota {
    /// A quota of `pages` that comes from nowhere: init's.
    pub fn root(pages: usize) -> Result<Arc<Quota>, Error> {
        try_arc(Quota {
            limit: pages,
            used: AtomicUsize::new(0),
            _budget: None,
        })
        .map_err(|_| Error::OutOfMemory)
    }

    /// A new quota of `pages`, taken from this one's budget until it goes.
    pub fn split(self: &Arc<Self>, pages: usize) -> Result<Arc<Quota>, Error> {
        let budget = self.charge(pages)?;
        try_arc(Quota {
            limit: pages,
            used: AtomicUsize::new(0),
            _budget: Some(budget),
        })
        .map_err(|_| Error::OutOfMemory)
    }

    /// Holds `pages` of the budget; `LimitReached` if fewer are left.
    pub fn charge(self: &Arc<Self>, pages: usize) -> Result<Charge, Error> {
        let mut charge = Charge {
            quota: Arc::clone(self),
            pages: 0,
        };
        charge.add(pages)?;
        Ok(charge)
    }

    /// The budget, in pages.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Pages held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn take(&self, pages: usize) -> Result<(), Error> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(pages).filter(|&total| total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| Error::LimitReached)
    }
}

impl Charge {
    /// Holds `pages` more; `LimitReached` (holding what it did) if the
    /// quota has fewer left.
    pub fn add(&mut self, pages: usize) -> Result<(), Error> {
        self.quota.take(pages)?;
        self.pages += pages;
        Ok(())
    }

    /// Gives `pages` back (at most what it holds).
    pub fn remove(&mut self, pages: usize) {
        let pages = pages.min(self.pages);
        self.quota.used.fetch_sub(pages, Ordering::Relaxed);
        self.pages -= pages;
    }

    /// Pages held.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The quota charged.
    pub fn quota(&self) -> &Arc<Quota> {
        &self.quota
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.quota.used.fetch_sub(self.pages, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_stay_within_the_budget_and_come_back() {
        let quota = Quota::root(10).unwrap();
        let mut a = quota.charge(4).unwrap();
        assert_eq!(quota.used(), 4);
        assert!(matches!(quota.charge(7), Err(Error::LimitReached)));
        assert_eq!(quota.used(), 4, "a refused charge holds nothing");
        a.add(6).unwrap();
        assert!(a.add(1).is_err());
        assert_eq!((a.pages(), quota.used()), (10, 10));
        a.remove(3);
        assert_eq!(quota.used(), 7);
        drop(a);
        assert_eq!(quota.used(), 0);
        assert!(quota.charge(usize::MAX).is_err(), "no overflow");
    }

    #[test]
    fn a_split_quota_holds_its_budget_of_the_first_until_it_goes() {
        let root = Quota::root(100).unwrap();
        let child = root.split(30).unwrap();
        assert_eq!((root.used(), child.limit(), child.used()), (30, 30, 0));
        let grandchild = child.split(20).unwrap();
        let held = grandchild.charge(20).unwrap();
        assert!(grandchild.charge(1).is_err());
        assert!(child.charge(11).is_err(), "20 of 30 are the grandchild's");
        assert!(root.split(71).is_err());
        drop(grandchild);
        assert_eq!(child.used(), 20, "its charge keeps the split quota");
        drop(held);
        assert_eq!(child.used(), 0);
        drop(child);
        assert_eq!(root.used(), 0);
    }
}
