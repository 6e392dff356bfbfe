//! A count-min sketch of 4-bit counters that estimates how often a key was
//! seen recently: the "TinyLFU" in W-TinyLFU.
//!
//! Port of Caffeine's `FrequencySketch` (Ben Manes, Apache-2.0): each key maps
//! to four counters inside one 64-byte block (one cache line per lookup),
//! counters saturate at 15, and after `sample_size` increments every counter
//! is halved so that the sketch forgets old popularity (Einziger, Friedman,
//! Manes: "TinyLFU: A Highly Efficient Cache Admission Policy", 2017).
//!
//! # Width
//! The table has one 64-bit word of 16 counters (4 per row) per entry it is
//! sized for, as Caffeine's, but not rounded up to a power of two: blocks
//! are picked by multiply-shift, so a unit-weight cache's table costs 8
//! bytes per entry at every capacity rather than 8 to 16. (A weighted
//! cache's table, sized before anyone knows how many entries fit, grows in
//! powers of two of its entry count: 8 to 16 bytes per entry.)
//!
//! Until session 14 the table had half a word per entry (rounded up), which
//! saved 4 bytes per entry but cost up to 0.65 pp on heavy-tailed Zipf
//! traces, where count-min collisions blur the long tail (BENCHMARKS.md,
//! "Sketch width"); the policy's nodes gave up their weight field to pay
//! for it (`weights.rs`).

/// Increments between two halvings, per tracked entry (Caffeine: 10).
const SAMPLE_FACTOR: u64 = 10;
/// Smallest table: 512 words (4 KiB, 64 blocks), the table of a 512-entry
/// cache (of a 1,024-entry one at the half width it was measured with).
/// Caffeine sizes the table to the capacity, which leaves a small cache only
/// a few blocks (4 at 64 entries), and count-min collisions then swamp the
/// estimates. Measured over the shared traces (4 to 3 runs each,
/// BENCHMARKS.md "Sketch floor"): no floor 4.97 pp mean gap to Bélády, 35.8
/// sizes trailing the best peer; 256 words 4.78 / 34.3; 512 words 4.72 /
/// 32.7; 1,024 words 4.84 / 31.5; 4,096 words 5.58 / 28.5 (larger floors help
/// small recency-biased caches further but cost loops and zigzags up to 27
/// pp). Only caches below 512 entries per shard are affected.
const MIN_WORDS: usize = 512;
const RESET_MASK: u64 = 0x7777_7777_7777_7777;
const ONE_MASK: u64 = 0x1111_1111_1111_1111;

/// Eight words of counters, one cache line: the four counters of a key
/// are all in one block, so a lookup touches one line. The alignment is
/// what makes that so: a `Box<[u64]>` is only guaranteed 8-byte alignment,
/// and unless it happens to start a line every block straddles two (until
/// session 17 they did: BENCHMARKS.md, "Sketch blocks on cache lines").
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Block([u64; 8]);

const _: () = assert!(std::mem::size_of::<Block>() == 64 && std::mem::align_of::<Block>() == 64);

#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Box<[Block]>,
    /// Blocks in the table (its length, as the `u32` that `block` scales).
    blocks: u32,
    /// Entries the sketch is sized for, rounded up to a power of two: the
    /// most its aging tracks, and the size of the policy's ghost tables.
    capacity: usize,
    /// Increments between halvings: `SAMPLE_FACTOR` × the entries the
    /// aging is sized for (see [`track`](Self::track)).
    sample_size: u64,
    /// Increments since the last halving.
    size: u64,
}

fn spread(mut x: u32) -> u32 {
    x ^= x >> 17;
    x = x.wrapping_mul(0xed5a_d4bb);
    x ^= x >> 11;
    x = x.wrapping_mul(0xac4c_1b51);
    x ^= x >> 15;
    x
}

fn rehash(mut x: u32) -> u32 {
    x = x.wrapping_mul(0x3184_8bab);
    x ^= x >> 14;
    x
}

impl FrequencySketch {
    /// A sketch sized for about `entries` distinct hot entries.
    pub(crate) fn new(entries: usize) -> Self {
        let capacity = entries.max(1).next_power_of_two();
        // Whole blocks, as many as a `u32` can count (`u32::MAX` blocks is
        // 256 GiB, far beyond the 2^30 entries a policy can link).
        let blocks = u32::try_from(entries.max(MIN_WORDS).div_ceil(8)).unwrap_or(u32::MAX);
        Self {
            table: vec![Block::default(); blocks as usize].into_boxed_slice(),
            blocks,
            capacity,
            sample_size: SAMPLE_FACTOR * capacity as u64,
            size: 0,
        }
    }

    /// Sizes the aging period (increments between halvings) for about
    /// `entries` resident entries, within the table's capacity. TinyLFU
    /// ages after 10 × the cache's size in entries; a weighted cache's
    /// table is sized before anyone knows how many entries will fit, so
    /// its policy tells the sketch as it learns (`Policy::retrack`).
    pub(crate) fn track(&mut self, entries: usize) {
        // `capacity` is a power of two, so the clamp keeps this in range.
        let tracked = entries.clamp(1, self.capacity).next_power_of_two();
        self.sample_size = SAMPLE_FACTOR * tracked as u64;
    }

    /// Entries the aging period is sized for: the policy's entry count for
    /// its periods too.
    pub(crate) fn tracked(&self) -> usize {
        (self.sample_size / SAMPLE_FACTOR) as usize
    }

    /// Entries the sketch is sized for.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Increments between halvings.
    #[cfg(test)]
    pub(crate) fn sample_size(&self) -> u64 {
        self.sample_size
    }

    /// The block of `hash` and the 16-bit hash choosing its four counters
    /// within it (one cache line per lookup).
    #[inline(always)]
    fn block(&self, hash: u32) -> (usize, u32) {
        let block_hash = spread(hash);
        let counter_hash = rehash(block_hash);
        // Multiply-shift maps the hash onto the blocks evenly (Lemire's
        // range reduction): block `block_hash × blocks / 2^32`.
        let block = (u64::from(block_hash) * u64::from(self.blocks)) >> 32;
        (block as usize, counter_hash)
    }

    /// Counter `i` (0..4) of `counter_hash`: a word within the block (row
    /// `i` owns words `2i` and `2i + 1`) and a bit shift within the word.
    #[inline(always)]
    fn counter(counter_hash: u32, i: u32) -> (usize, u32) {
        let h = counter_hash >> (i << 3);
        let index = (h >> 1) & 15;
        let offset = (h & 1) as usize;
        (offset + ((i as usize) << 1), index << 2)
    }

    /// Hints the block [`increment`](Self::increment) of `hash` will touch.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u32) {
        let (block, _) = self.block(hash);
        if let Some(block) = self.table.get(block) {
            crate::prefetch::prefetch(block);
        }
    }

    /// Estimated recent frequency of `hash`, 0..=15.
    #[inline]
    pub(crate) fn frequency(&self, hash: u32) -> u8 {
        let (block, counter_hash) = self.block(hash);
        // A fixed-size array: indices below 8 need no bounds checks.
        let Some(Block(block)) = self.table.get(block) else {
            return 0;
        };
        let mut min = 15;
        for i in 0..4 {
            let (word, shift) = Self::counter(counter_hash, i);
            min = min.min((block[word & 7] >> shift) & 0xf);
        }
        min as u8
    }

    /// Records one occurrence of `hash`.
    #[inline]
    pub(crate) fn increment(&mut self, hash: u32) {
        let (block, counter_hash) = self.block(hash);
        let Some(Block(block)) = self.table.get_mut(block) else {
            return;
        };
        let mut added = false;
        for i in 0..4 {
            let (word, shift) = Self::counter(counter_hash, i);
            let word = &mut block[word & 7];
            let mask = 0xf << shift;
            if *word & mask != mask {
                *word += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample_size {
                self.halve();
            }
        }
    }

    /// Halves every counter (the "reset" of TinyLFU).
    fn halve(&mut self) {
        let mut odd = 0u64;
        for word in self.table.iter_mut().flat_map(|block| block.0.iter_mut()) {
            odd += u64::from((*word & ONE_MASK).count_ones());
            *word = (*word >> 1) & RESET_MASK;
        }
        self.size = (self.size - (odd >> 2)) >> 1;
    }

    /// Heap bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<Block>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_halve() {
        let mut s = FrequencySketch::new(64);
        for _ in 0..20 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 15);
        assert!(s.frequency(43) <= 1, "an unseen key is (nearly) zero");
        s.halve();
        assert_eq!(s.frequency(42), 7);
    }

    #[test]
    fn blocks_cover_a_table_of_any_size() {
        for entries in [1, 512, 1_000, 31_250, 100_003] {
            let s = FrequencySketch::new(entries);
            let words = s.table.len() * 8;
            assert!(words >= entries.max(MIN_WORDS) && words < entries.max(MIN_WORDS) + 8);
            let mut used = vec![false; s.table.len()];
            for h in (0..words as u32 * 64).map(|k| k.wrapping_mul(0x9e37_79b9)) {
                let (block, _) = s.block(h);
                assert!(block < s.table.len(), "block {block} of {}", s.table.len());
                used[block] = true;
            }
            assert!(used.iter().all(|&u| u), "{entries}: a block is never used");
        }
        // The last block is reachable and counts.
        let mut s = FrequencySketch::new(1_000);
        let h = (0..u32::MAX)
            .find(|&h| s.block(h).0 == s.table.len() - 1)
            .unwrap();
        s.increment(h);
        s.increment(h);
        assert_eq!(s.frequency(h), 2);
    }

    #[test]
    fn every_block_is_one_cache_line() {
        for entries in [1, 1_000, 100_003] {
            let s = FrequencySketch::new(entries);
            assert_eq!(s.table.as_ptr() as usize % 64, 0, "the table starts a line");
            assert_eq!(s.bytes(), s.table.len() * 64);
        }
    }

    #[test]
    fn tracking_stays_within_the_table() {
        let mut s = FrequencySketch::new(1024);
        s.track(usize::MAX);
        assert_eq!((s.tracked(), s.sample_size()), (1024, 10_240));
        s.track(0);
        assert_eq!((s.tracked(), s.sample_size()), (1, 10));
        s.track(100);
        assert_eq!((s.tracked(), s.sample_size()), (128, 1_280));
    }

    #[test]
    fn ages_after_sample_size() {
        let mut s = FrequencySketch::new(16);
        for _ in 0..15 {
            s.increment(1);
        }
        // Enough other increments to trigger at least one halving.
        for k in 0..s.sample_size() as u32 {
            s.increment(1000 + k);
        }
        assert!(s.frequency(1) < 15);
    }
}
