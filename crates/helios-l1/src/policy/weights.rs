//! The policy's record of each entry's weight, kept only when weights vary.

/// The weight of each entry the policy holds, by slab index.
///
/// While every weight set is 1 (the default [`UnitWeigher`], or any weigher
/// that only ever returns 1) nothing is stored: every entry weighs 1. The
/// first other weight switches to one `u32` per slab index, filled with 1
/// for the entries before it, for good. A unit-weight cache saves 4 bytes of
/// metadata per entry this way (BENCHMARKS.md, "Memory"), and it does not
/// trust [`Weigher::is_unit`], which a user's weigher could get wrong.
///
/// [`UnitWeigher`]: crate::UnitWeigher
/// [`Weigher::is_unit`]: crate::Weigher::is_unit
#[derive(Debug, Default)]
pub(super) struct Weights {
    /// `None` while every weight set so far was 1; else indexed by slab
    /// index, covering every index ever set.
    each: Option<Vec<u32>>,
}

impl Weights {
    /// The weight last set for `index` (1 if none was ever set while all
    /// were 1). Callers ask only about indices they have set.
    #[inline(always)]
    pub(super) fn get(&self, index: u32) -> u32 {
        match &self.each {
            None => 1,
            Some(each) => each[index as usize],
        }
    }

    /// Records `weight` for `index`. `indices` is how many slab indices the
    /// policy has seen so far, so that a switch to stored weights covers
    /// all of them.
    #[inline(always)]
    pub(super) fn set(&mut self, index: u32, weight: u32, indices: usize) {
        // The common case inline: nothing to store.
        if weight != 1 || self.each.is_some() {
            self.store(index, weight, indices);
        }
    }

    #[inline(never)]
    fn store(&mut self, index: u32, weight: u32, indices: usize) {
        let i = index as usize;
        match &mut self.each {
            None => {
                let mut each = vec![1; indices.max(i + 1)];
                each[i] = weight;
                self.each = Some(each);
            }
            Some(each) => {
                if i >= each.len() {
                    each.resize(i + 1, 1);
                }
                each[i] = weight;
            }
        }
    }

    /// Heap bytes.
    pub(super) fn bytes(&self) -> usize {
        self.each
            .as_ref()
            .map_or(0, |each| each.capacity() * std::mem::size_of::<u32>())
    }
}

#[cfg(test)]
mod tests {
    use super::Weights;

    #[test]
    fn unit_weights_store_nothing_until_another_weight_arrives() {
        let mut w = Weights::default();
        for i in 0..100 {
            w.set(i, 1, i as usize + 1);
        }
        assert_eq!(w.bytes(), 0);
        assert_eq!(w.get(42), 1);
        w.set(7, 5, 100);
        assert!(w.bytes() >= 100 * 4);
        // Earlier entries keep weight 1; the new one has its own.
        assert_eq!((w.get(0), w.get(7), w.get(99)), (1, 5, 1));
        w.set(150, 3, 151);
        w.set(0, 0, 151);
        assert_eq!((w.get(150), w.get(0), w.get(149)), (3, 0, 1));
    }
}
