//! A list with a fixed capacity, for parsers that run before there is a heap.

/// Up to `N` items, in order; the rest are counted as dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedList<T: Copy + Default, const N: usize> {
    items: [T; N],
    len: usize,
    /// Items that did not fit.
    pub dropped: usize,
}

impl<T: Copy + Default, const N: usize> Default for FixedList<T, N> {
    fn default() -> Self {
        FixedList {
            items: [T::default(); N],
            len: 0,
            dropped: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> FixedList<T, N> {
    /// Appends `item`, or counts it as dropped when full.
    pub fn push(&mut self, item: T) {
        if self.len < N {
            self.items[self.len] = item;
            self.len += 1;
        } else {
            self.dropped += 1;
        }
    }

    /// The items kept.
    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    /// The items kept, to change in place.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.items[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_n_and_counts_the_rest() {
        let mut list = FixedList::<u8, 2>::default();
        for i in 0..5 {
            list.push(i);
        }
        assert_eq!(list.as_slice(), &[0, 1]);
        assert_eq!(list.dropped, 3);
    }
}
