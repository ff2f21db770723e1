//! Lists of threads threaded through the thread table: each thread carries
//! one pair of links, because it waits in at most one list at a time (a
//! run queue, the sleep list, or a wait list). Linking and unlinking never
//! allocate and take constant time, which the scheduler's paths need.

/// Which list a thread is in. The scheduler's own lists are named; a
/// wait queue that an object owns is known by its address, so a thread
/// can be taken out of it (when killed) without knowing the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A run queue, by priority.
    Run(u8),
    /// Sleeping until a deadline.
    Sleep,
    /// Ended, waiting for its stack to be freed.
    Dead,
    /// Waiting in the wait queue at this address, which an object owns.
    Queue(QueueAddress),
    /// In the list of IPC deadlines (by a thread's second links).
    Deadline,
}

/// Where a wait queue is: only the wait-queue module makes one and turns
/// it back into the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddress(pub(super) *const ());

// SAFETY: the address is only followed under the scheduler lock, which
// is why wait queues may be shared between CPUs at all.
unsafe impl Send for QueueAddress {}

/// A thread's place in a list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Links {
    prev: Option<u32>,
    next: Option<u32>,
    place: Option<Place>,
}

impl Links {
    /// The list the thread is in, if any.
    pub fn place(&self) -> Option<Place> {
        self.place
    }
}

/// What holds the links: the thread table (or a plain vector in tests).
pub trait LinkTable {
    /// The links of entry `index`, which must exist.
    fn links(&mut self, index: usize) -> &mut Links;
}

impl LinkTable for alloc::vec::Vec<Links> {
    fn links(&mut self, index: usize) -> &mut Links {
        &mut self[index]
    }
}

/// A doubly linked list of thread-table indices. The list does not know
/// its own [`Place`]; whoever links an entry names it, so that the entry
/// can later be found and unlinked.
#[derive(Debug, Default)]
pub struct ThreadList {
    head: Option<u32>,
    tail: Option<u32>,
    len: usize,
}

impl ThreadList {
    /// An empty list.
    pub const fn new() -> ThreadList {
        ThreadList {
            head: None,
            tail: None,
            len: 0,
        }
    }

    /// Entries in the list.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first entry.
    pub fn front(&self) -> Option<usize> {
        self.head.map(|i| i as usize)
    }

    /// Appends `index`, which must be in no list, as being at `place`.
    pub fn push_back(&mut self, table: &mut impl LinkTable, index: usize, place: Place) {
        let links = table.links(index);
        debug_assert_eq!(links.place, None, "entry {index} is already listed");
        *links = Links {
            prev: self.tail,
            next: None,
            place: Some(place),
        };
        match self.tail {
            Some(tail) => table.links(tail as usize).next = Some(index as u32),
            None => self.head = Some(index as u32),
        }
        self.tail = Some(index as u32);
        self.len += 1;
    }

    /// Makes `index`, whose links are `links` (in no list), the only entry
    /// of this empty list, as being at `place`.
    pub fn push_only(&mut self, index: usize, links: &mut Links, place: Place) {
        debug_assert!(self.is_empty() && links.place.is_none());
        *links = Links {
            prev: None,
            next: None,
            place: Some(place),
        };
        self.head = Some(index as u32);
        self.tail = self.head;
        self.len = 1;
    }

    /// Takes `index`, whose links are `links`, out of the list if it is
    /// the only entry; says whether it was.
    pub fn take_only(&mut self, index: usize, links: &mut Links) -> bool {
        if self.len != 1 || self.head != Some(index as u32) {
            return false;
        }
        *links = Links::default();
        self.head = None;
        self.tail = None;
        self.len = 0;
        true
    }

    /// Inserts `index` before the first entry whose key is greater than
    /// its own, keeping the list sorted by `key` and stable among equals.
    pub fn insert_sorted<T: LinkTable>(
        &mut self,
        table: &mut T,
        index: usize,
        place: Place,
        key: impl Fn(&T, usize) -> u64,
    ) {
        let own = key(table, index);
        let mut cursor = self.head;
        while let Some(at) = cursor {
            if key(table, at as usize) > own {
                break;
            }
            cursor = table.links(at as usize).next;
        }
        let Some(before) = cursor else {
            self.push_back(table, index, place);
            return;
        };
        let prev = table.links(before as usize).prev;
        *table.links(index) = Links {
            prev,
            next: Some(before),
            place: Some(place),
        };
        table.links(before as usize).prev = Some(index as u32);
        match prev {
            Some(prev) => table.links(prev as usize).next = Some(index as u32),
            None => self.head = Some(index as u32),
        }
        self.len += 1;
    }

    /// Removes and returns the first entry.
    pub fn pop_front(&mut self, table: &mut impl LinkTable) -> Option<usize> {
        let head = self.head? as usize;
        self.remove(table, head);
        Some(head)
    }

    /// Unlinks `index`, which must be in this list.
    pub fn remove(&mut self, table: &mut impl LinkTable, index: usize) {
        // Read and cleared in one look at the entry.
        let links = core::mem::take(table.links(index));
        debug_assert!(links.place.is_some(), "entry {index} is in no list");
        match links.prev {
            Some(prev) => table.links(prev as usize).next = links.next,
            None => self.head = links.next,
        }
        match links.next {
            Some(next) => table.links(next as usize).prev = links.prev,
            None => self.tail = links.prev,
        }
        self.len -= 1;
    }

    /// The entries in order (walks the links).
    #[cfg(test)]
    pub fn collect(&self, table: &mut impl LinkTable) -> alloc::vec::Vec<usize> {
        let mut out = alloc::vec::Vec::new();
        let mut cursor = self.head;
        while let Some(at) = cursor {
            out.push(at as usize);
            cursor = table.links(at as usize).next;
        }
        out
    }
}

/// Thread priorities: 0 is the lowest, `PRIORITIES - 1` the highest.
pub const PRIORITIES: usize = 8;

/// One run queue per priority, and a bit per non-empty queue so that the
/// highest ready priority is found with one instruction.
#[derive(Debug)]
pub struct RunQueues {
    queues: [ThreadList; PRIORITIES],
    ready: u32,
}

impl Default for RunQueues {
    fn default() -> Self {
        Self::new()
    }
}

impl RunQueues {
    /// Empty queues.
    pub const fn new() -> RunQueues {
        RunQueues {
            queues: [const { ThreadList::new() }; PRIORITIES],
            ready: 0,
        }
    }

    /// Queues `index` at the back of its priority's queue.
    pub fn push(&mut self, table: &mut impl LinkTable, index: usize, priority: u8) {
        let priority = (priority as usize).min(PRIORITIES - 1);
        self.queues[priority].push_back(table, index, Place::Run(priority as u8));
        self.ready |= 1 << priority;
    }

    /// The highest priority with a ready entry.
    pub fn highest(&self) -> Option<u8> {
        (self.ready != 0).then(|| (31 - self.ready.leading_zeros()) as u8)
    }

    /// Whether an entry of `priority` may run before every queued one.
    #[inline(always)]
    pub fn allows(&self, priority: u8) -> bool {
        self.highest().is_none_or(|highest| priority >= highest)
    }

    /// Takes the first entry of the highest non-empty priority.
    pub fn pop(&mut self, table: &mut impl LinkTable) -> Option<usize> {
        let priority = self.highest()? as usize;
        let index = self.queues[priority].pop_front(table);
        if self.queues[priority].is_empty() {
            self.ready &= !(1 << priority);
        }
        index
    }

    /// Unlinks `index` from the queue of `priority`.
    pub fn remove(&mut self, table: &mut impl LinkTable, index: usize, priority: u8) {
        let priority = priority as usize;
        self.queues[priority].remove(table, index);
        if self.queues[priority].is_empty() {
            self.ready &= !(1 << priority);
        }
    }

    /// Entries queued in all priorities.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queues.iter().map(ThreadList::len).sum()
    }

    /// Whether nothing is ready.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ready == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn table(n: usize) -> Vec<Links> {
        vec![Links::default(); n]
    }

    #[test]
    fn push_pop_and_remove_keep_order_and_links() {
        let mut t = table(5);
        let mut list = ThreadList::new();
        for i in [3, 1, 4, 0] {
            list.push_back(&mut t, i, Place::Sleep);
        }
        assert_eq!(list.collect(&mut t), [3, 1, 4, 0]);
        list.remove(&mut t, 4);
        assert_eq!(list.collect(&mut t), [3, 1, 0]);
        assert_eq!(t[4], Links::default());
        list.remove(&mut t, 3);
        list.remove(&mut t, 0);
        assert_eq!(list.collect(&mut t), [1]);
        assert_eq!(list.pop_front(&mut t), Some(1));
        assert!(list.is_empty());
        assert_eq!(list.pop_front(&mut t), None);
        // Every entry can be listed again.
        for i in 0..5 {
            list.push_back(&mut t, i, Place::Dead);
        }
        assert_eq!(list.len(), 5);
        assert_eq!(t[2].place(), Some(Place::Dead));
    }

    #[test]
    fn sorted_insertion_is_stable() {
        let mut keys = [30u64, 10, 20, 10, 40, 0];
        let mut t = table(keys.len());
        let mut list = ThreadList::new();
        for i in 0..keys.len() {
            list.insert_sorted(&mut t, i, Place::Sleep, |_, i| keys[i]);
        }
        assert_eq!(list.collect(&mut t), [5, 1, 3, 2, 0, 4]);
        list.remove(&mut t, 2);
        keys[2] = 35;
        list.insert_sorted(&mut t, 2, Place::Sleep, |_, i| keys[i]);
        assert_eq!(list.collect(&mut t), [5, 1, 3, 0, 2, 4]);
    }

    #[test]
    fn run_queues_serve_the_highest_priority_first_round_robin_within() {
        let mut t = table(6);
        let mut run = RunQueues::new();
        run.push(&mut t, 0, 1);
        run.push(&mut t, 1, 5);
        run.push(&mut t, 2, 1);
        run.push(&mut t, 3, 5);
        assert_eq!(run.highest(), Some(5));
        assert_eq!(run.pop(&mut t), Some(1));
        run.push(&mut t, 1, 5); // back of its queue
        assert_eq!(run.pop(&mut t), Some(3));
        assert_eq!(run.pop(&mut t), Some(1));
        assert_eq!(run.highest(), Some(1));
        run.remove(&mut t, 2, 1);
        assert_eq!(run.pop(&mut t), Some(0));
        assert!(run.is_empty());
        assert_eq!(run.pop(&mut t), None);
        // Priorities beyond the range are clamped to the highest.
        run.push(&mut t, 4, 200);
        assert_eq!(run.highest(), Some(PRIORITIES as u8 - 1));
        assert_eq!(t[4].place(), Some(Place::Run(PRIORITIES as u8 - 1)));
        assert_eq!(run.len(), 1);
    }
}
