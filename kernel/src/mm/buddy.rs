//! A binary buddy allocator over frame numbers whose every operation costs
//! at most a few steps per block order, whatever the amount of RAM and the
//! pattern of frees.
//!
//! Written here rather than taken from `buddy_system_allocator`: its frame
//! allocator keeps free blocks in ordered sets on the kernel heap, and its
//! intrusive heap merges by scanning a free list, so freeing many scattered
//! frames cost far more than linear time (minutes at a few GiB). Here each
//! free block carries its own list links (stored in the free frame itself,
//! through [`LinkStore`]), and one bit per frame says whether the frame
//! heads a free block, so finding and unlinking a buddy is constant time.

/// Block orders: blocks of 1 to 2^(ORDERS - 1) frames (2 GiB).
pub const ORDERS: usize = 20;

/// No frame: ends a free list.
const NONE: usize = usize::MAX;

/// The links of a free block, kept in its first frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Link {
    pub next: usize,
    pub prev: usize,
    pub order: usize,
}

/// Where free blocks keep their [`Link`]: in the kernel, the free frame
/// itself through the direct map; in host tests, a table.
pub trait LinkStore {
    fn read(&self, frame: usize) -> Link;
    fn write(&mut self, frame: usize, link: Link);
}

/// Bits of the head bitmap per word.
const WORD_BITS: usize = usize::BITS as usize;

/// Words of bitmap needed to cover `frames` frames.
pub const fn bitmap_words(frames: usize) -> usize {
    frames.div_ceil(WORD_BITS)
}

/// Why a block could not be given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The block lies (partly) outside the frames this allocator covers.
    OutOfRange,
    /// The block is not aligned to its size.
    Misaligned,
    /// The block's first frame already heads a free block: a double free.
    AlreadyFree,
}

pub struct Buddy<'a, S: LinkStore> {
    links: S,
    heads: [usize; ORDERS],
    /// Bit `f - base` is set when frame `f` heads a free block.
    bitmap: &'a mut [usize],
    base: usize,
    frames: usize,
}

impl<'a, S: LinkStore> Buddy<'a, S> {
    /// An empty allocator for frames `base .. base + frames`, which must
    /// fit `bitmap` (see [`bitmap_words`]); it is cleared here.
    pub fn new(links: S, bitmap: &'a mut [usize], base: usize, frames: usize) -> Self {
        let frames = frames.min(bitmap.len() * WORD_BITS);
        bitmap.fill(0);
        Buddy {
            links,
            heads: [NONE; ORDERS],
            bitmap,
            base,
            frames,
        }
    }

    fn covers(&self, first: usize, count: usize) -> bool {
        first >= self.base
            && first
                .checked_add(count)
                .is_some_and(|end| end <= self.base + self.frames)
    }

    fn bit(&self, frame: usize) -> bool {
        let n = frame - self.base;
        self.bitmap[n / WORD_BITS] & (1 << (n % WORD_BITS)) != 0
    }

    fn set_bit(&mut self, frame: usize, on: bool) {
        let n = frame - self.base;
        let word = &mut self.bitmap[n / WORD_BITS];
        if on {
            *word |= 1 << (n % WORD_BITS);
        } else {
            *word &= !(1 << (n % WORD_BITS));
        }
    }

    fn push(&mut self, frame: usize, order: usize) {
        let next = self.heads[order];
        if next != NONE {
            let mut link = self.links.read(next);
            link.prev = frame;
            self.links.write(next, link);
        }
        self.links.write(
            frame,
            Link {
                next,
                prev: NONE,
                order,
            },
        );
        self.heads[order] = frame;
        self.set_bit(frame, true);
    }

    fn unlink(&mut self, frame: usize, link: Link) {
        if link.prev == NONE {
            self.heads[link.order] = link.next;
        } else {
            let mut prev = self.links.read(link.prev);
            prev.next = link.next;
            self.links.write(link.prev, prev);
        }
        if link.next != NONE {
            let mut next = self.links.read(link.next);
            next.prev = link.prev;
            self.links.write(link.next, next);
        }
        self.set_bit(frame, false);
    }

    /// A naturally aligned block of 2^`order` frames: its first frame.
    pub fn allocate(&mut self, order: usize) -> Option<usize> {
        let found = (order..ORDERS).find(|&k| self.heads[k] != NONE)?;
        let frame = self.heads[found];
        let link = self.links.read(frame);
        self.unlink(frame, link);
        // Split down to the order asked for, freeing the upper halves.
        for k in (order..found).rev() {
            self.push(frame + (1 << k), k);
        }
        Some(frame)
    }

    /// Gives back a block from [`Buddy::allocate`] (or frames never handed
    /// out, see [`Buddy::add`]), merging it with free buddies.
    pub fn free(&mut self, frame: usize, order: usize) -> Result<(), FreeError> {
        if order >= ORDERS || !self.covers(frame, 1 << order) {
            return Err(FreeError::OutOfRange);
        }
        if frame & ((1 << order) - 1) != 0 {
            return Err(FreeError::Misaligned);
        }
        if self.bit(frame) {
            return Err(FreeError::AlreadyFree);
        }
        let (mut frame, mut order) = (frame, order);
        while order + 1 < ORDERS {
            let buddy = frame ^ (1 << order);
            if !self.covers(buddy, 1) || !self.bit(buddy) {
                break;
            }
            let link = self.links.read(buddy);
            if link.order != order {
                break; // the buddy heads a smaller free block
            }
            self.unlink(buddy, link);
            frame &= !(1 << order);
            order += 1;
        }
        self.push(frame, order);
        Ok(())
    }

    /// Adds frames `first .. end` as free blocks; returns how many frames
    /// were added (those outside the covered span are not).
    pub fn add(&mut self, first: usize, end: usize) -> usize {
        let first = first.max(self.base);
        let end = end.min(self.base + self.frames);
        let mut frame = first;
        while frame < end {
            // The largest aligned block that starts here and fits.
            let align = if frame == 0 {
                ORDERS - 1
            } else {
                (frame.trailing_zeros() as usize).min(ORDERS - 1)
            };
            let fits = (usize::BITS - 1 - (end - frame).leading_zeros()) as usize;
            let order = align.min(fits);
            if self.free(frame, order).is_err() {
                break; // already free: the range overlapped an earlier one
            }
            frame += 1 << order;
        }
        frame - first
    }

    /// Free blocks of each order.
    #[cfg(test)]
    pub fn free_blocks(&self) -> [usize; ORDERS] {
        let mut counts = [0; ORDERS];
        for (order, count) in counts.iter_mut().enumerate() {
            let mut frame = self.heads[order];
            while frame != NONE {
                *count += 1;
                frame = self.links.read(frame).next;
            }
        }
        counts
    }
}

/// Links kept in a table, for host tests.
#[cfg(test)]
#[derive(Default)]
pub struct Table(std::collections::HashMap<usize, Link>);

#[cfg(test)]
impl LinkStore for Table {
    fn read(&self, frame: usize) -> Link {
        self.0[&frame]
    }
    fn write(&mut self, frame: usize, link: Link) {
        self.0.insert(frame, link);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn buddy(bitmap: &mut Vec<usize>, base: usize, frames: usize) -> Buddy<'_, Table> {
        bitmap.resize(bitmap_words(frames), 0);
        Buddy::new(Table::default(), bitmap, base, frames)
    }

    fn free_frames(b: &Buddy<'_, Table>) -> usize {
        b.free_blocks()
            .iter()
            .enumerate()
            .map(|(order, n)| n << order)
            .sum()
    }

    #[test]
    fn a_range_becomes_aligned_blocks_and_merges_back() {
        let mut bits = Vec::new();
        let mut b = buddy(&mut bits, 0x100, 0x300);
        assert_eq!(b.add(0x103, 0x400), 0x2fd);
        assert_eq!(free_frames(&b), 0x2fd);
        let mut taken = Vec::new();
        while let Some(frame) = b.allocate(0) {
            assert!((0x103..0x400).contains(&frame));
            taken.push(frame);
        }
        assert_eq!(taken.len(), 0x2fd);
        assert_eq!(BTreeSet::from_iter(taken.iter()).len(), taken.len());
        // Odd frames first, then even: every free but the last merges.
        taken.sort_unstable_by_key(|f| (f % 2 == 0, *f));
        for frame in taken {
            b.free(frame, 0).unwrap();
        }
        let blocks = b.free_blocks();
        assert_eq!(free_frames(&b), 0x2fd);
        assert_eq!(blocks[9], 1, "0x200-0x400 merges into one block");
        assert_eq!(blocks[8], 0, "0x100-0x200 lacks its first three frames");
        assert_eq!(b.allocate(10), None);
        assert_eq!(b.allocate(9), Some(0x200));
    }

    #[test]
    fn double_frees_and_foreign_blocks_are_refused() {
        let mut bits = Vec::new();
        let mut b = buddy(&mut bits, 0, 64);
        b.add(0, 64);
        let frame = b.allocate(2).unwrap();
        assert_eq!(frame % 4, 0);
        b.free(frame, 2).unwrap();
        assert_eq!(b.free(frame, 2), Err(FreeError::AlreadyFree));
        assert_eq!(b.free(64, 0), Err(FreeError::OutOfRange));
        assert_eq!(b.free(2, 2), Err(FreeError::Misaligned));
        assert_eq!(b.free(0, ORDERS), Err(FreeError::OutOfRange));
        assert_eq!(b.add(0, 64), 0, "already free");
        assert_eq!(b.allocate(6), Some(0));
    }

    #[test]
    fn random_workloads_match_a_model() {
        let mut rng = hal::rand::XorShift::new(0x9e37_79b9_7f4a_7c15);
        let mut next = move |n: usize| rng.below(n);
        for round in 0..40 {
            let base = next(1 << 12);
            let frames = 1 + next(4096);
            let mut bits = Vec::new();
            let mut b = buddy(&mut bits, base, frames);
            let added = b.add(base, base + frames);
            assert_eq!(added, frames);
            let mut used: BTreeSet<usize> = BTreeSet::new();
            let mut live: Vec<(usize, usize)> = Vec::new();
            for _ in 0..2000 {
                if next(3) != 0 {
                    let order = next(6);
                    if let Some(frame) = b.allocate(order) {
                        assert_eq!(frame % (1 << order), 0, "alignment");
                        for f in frame..frame + (1 << order) {
                            assert!((base..base + frames).contains(&f), "round {round}");
                            assert!(used.insert(f), "frame {f:#x} handed out twice");
                        }
                        live.push((frame, order));
                    }
                } else if !live.is_empty() {
                    let (frame, order) = live.swap_remove(next(live.len()));
                    for f in frame..frame + (1 << order) {
                        used.remove(&f);
                    }
                    b.free(frame, order).unwrap();
                }
                assert_eq!(free_frames(&b) + used.len(), frames);
            }
            for (frame, order) in live.drain(..) {
                b.free(frame, order).unwrap();
            }
            // Everything merged back: as few blocks as the range allows.
            let mut fresh_bits = Vec::new();
            let mut fresh = buddy(&mut fresh_bits, base, frames);
            fresh.add(base, base + frames);
            assert_eq!(b.free_blocks(), fresh.free_blocks(), "round {round}");
        }
    }
}
