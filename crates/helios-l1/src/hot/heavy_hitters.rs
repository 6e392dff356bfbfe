//! Which entries of a shard are hit most: a small heavy-hitter summary of the
//! hits the policy hears about.
//!
//! The policy's count-min sketch cannot rank the hottest keys: its 4-bit
//! counters saturate at 15, and under Zipf(0.99) over a million keys some
//! 4,600 keys reach 15 between two resets. The hot tier needs the top few
//! hundred, so each shard keeps a fixed-size summary of the hit records it
//! drains, in the spirit of Misra–Gries and HeavyKeeper: each entry may live
//! in one of two buckets; a hit on a tracked entry counts up, a hit on an
//! untracked one takes an empty bucket or decays the weaker of its two
//! buckets by one. A key hit `n` times more often than the bucket's
//! competitors keeps its bucket, so the heaviest keys survive while rare ones
//! churn. Counts are halved every `AGE_EVERY × buckets` recorded hits (as
//! the sketch resets after a sample), so the summary follows a moving
//! working set at any request rate; halving per refresh instead would make
//! the counts depend on the clock.

/// One tracked entry. `count == 0` means the bucket is free.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    index: u32,
    hash: u32,
    count: u32,
}

/// Recorded hits per bucket between two halvings. With 16 hits per bucket
/// a key needs about 1/(16 × buckets) of a shard's hits to keep a count above
/// the promotion threshold, which is below the share of the last entry a
/// full hot tier holds under Zipf(0.99) (1/(1024 × 14.4) of all hits).
const AGE_EVERY: u32 = 16;

/// A thinned summary records one hit in this many (see
/// [`HeavyHitters::thin`]).
pub(crate) const THIN: u64 = 8;

/// The golden ratio in 64-bit fixed point: stepping by it visits the
/// 64-bit circle evenly (a Weyl sequence), so "below 1/THIN of the circle"
/// keeps every THIN-th step on average with no short period a workload
/// could fall into step with.
const WEYL_STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// Per-shard summary; lives under the shard lock.
#[derive(Debug)]
pub(crate) struct HeavyHitters {
    buckets: Box<[Bucket]>,
    mask: usize,
    /// Hits recorded since the last halving.
    recorded: u32,
    /// Every recorded hit, halved with the counts: what the tracked counts
    /// are shares of.
    total: u64,
    /// `AGE_EVERY × buckets`.
    age_at: u32,
    /// A hit is recorded when the Weyl sequence `weyl` lands at or below
    /// this: `u64::MAX` records every hit, `u64::MAX / THIN` one in THIN.
    keep_at_most: u64,
    weyl: u64,
    /// Hashes with any of these bits are not recorded (see `ShardHot`):
    /// they neither take buckets nor count in `total`, whose shares the
    /// hot tier's gate judges.
    excluded: u32,
}

/// A tracked entry: slab index, policy hash and hits since the last halving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hitter {
    pub(crate) index: u32,
    pub(crate) hash: u32,
    pub(crate) count: u32,
}

impl HeavyHitters {
    /// A summary with about `buckets` buckets (a power of two, at least 8),
    /// ignoring hits on hashes with any of `excluded`'s bits.
    pub(crate) fn new(buckets: usize, excluded: u32) -> Self {
        let n = buckets.max(8).next_power_of_two();
        Self {
            buckets: vec![Bucket::default(); n].into_boxed_slice(),
            mask: n - 1,
            recorded: 0,
            total: 0,
            age_at: u32::try_from(n)
                .unwrap_or(u32::MAX)
                .saturating_mul(AGE_EVERY),
            keep_at_most: u64::MAX,
            weyl: 0,
            excluded,
        }
    }

    /// Records one hit in [`THIN`] from now on (`true`) or every hit. A
    /// thinned summary sees an even sample of the hits: counts and `total`
    /// shrink alike, so shares and ranks stay what they were, and since
    /// halving goes by recorded hits the counts keep their size; only the
    /// window they cover grows THIN times longer. The hot tier thins while
    /// its gate is well shut, where the summary only has to notice a skew
    /// growing, and so saves most of its cost per replayed hit.
    pub(crate) fn thin(&mut self, thin: bool) {
        self.keep_at_most = if thin { u64::MAX / THIN } else { u64::MAX };
    }

    /// Whether the summary records one hit in [`THIN`].
    pub(crate) fn is_thinned(&self) -> bool {
        self.keep_at_most != u64::MAX
    }

    /// The two buckets `hash` may occupy (different bits for each).
    #[inline(always)]
    fn choices(&self, hash: u32) -> (usize, usize) {
        let a = hash as usize & self.mask;
        let b = (hash.rotate_right(16).wrapping_mul(0x9e37_79b9) >> 7) as usize & self.mask;
        (a, b)
    }

    /// Counts one hit on the entry at slab `index` with policy `hash`.
    /// The sampling test is inline; the count is out of line: the
    /// policy's replay of buffered hits calls this per hit, and the whole
    /// of it inlined made that loop's body too large for the compiler to
    /// keep the loop inlined (about +1% instructions on the 95%-read mix).
    #[inline(always)]
    pub(crate) fn record(&mut self, index: u32, hash: u32) {
        self.weyl = self.weyl.wrapping_add(WEYL_STEP);
        if self.weyl > self.keep_at_most || hash & self.excluded != 0 {
            return;
        }
        self.count(index, hash);
    }

    #[inline(never)]
    fn count(&mut self, index: u32, hash: u32) {
        self.recorded += 1;
        self.total += 1;
        if self.recorded >= self.age_at {
            self.age();
        }
        let (a, b) = self.choices(hash);
        for i in [a, b] {
            let bucket = &mut self.buckets[i];
            if bucket.count > 0 && bucket.index == index && bucket.hash == hash {
                bucket.count = bucket.count.saturating_add(1);
                return;
            }
        }
        let weaker = if self.buckets[b].count < self.buckets[a].count {
            b
        } else {
            a
        };
        let bucket = &mut self.buckets[weaker];
        if bucket.count == 0 {
            *bucket = Bucket {
                index,
                hash,
                count: 1,
            };
        } else {
            bucket.count -= 1;
        }
    }

    /// Multiplies the count of the entry at slab `index` (if tracked) by
    /// `num / den`, keeping a tracked entry tracked (at least 1). The hot
    /// tier calls it when an entry starts or stops being sampled, so that a
    /// count always means hits at the entry's current sampling rate.
    pub(crate) fn rescale(&mut self, index: u32, hash: u32, num: u32, den: u32) {
        let (a, b) = self.choices(hash);
        for i in [a, b] {
            let bucket = &mut self.buckets[i];
            if bucket.count > 0 && bucket.index == index && bucket.hash == hash {
                let scaled = u64::from(bucket.count) * u64::from(num) / u64::from(den.max(1));
                bucket.count = u32::try_from(scaled).unwrap_or(u32::MAX).max(1);
                return;
            }
        }
    }

    /// Every tracked entry.
    pub(crate) fn hitters(&self) -> impl Iterator<Item = Hitter> + '_ {
        self.buckets.iter().filter(|b| b.count > 0).map(|b| Hitter {
            index: b.index,
            hash: b.hash,
            count: b.count,
        })
    }

    /// Halves every count, so old popularity fades.
    pub(crate) fn age(&mut self) {
        self.recorded = 0;
        self.total /= 2;
        for b in self.buckets.iter_mut() {
            b.count /= 2;
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
        self.recorded = 0;
        self.total = 0;
    }

    /// Hits recorded, aged like the counts (so every count is at most this).
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn bytes(&self) -> usize {
        self.buckets.len() * std::mem::size_of::<Bucket>()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn excluded_hashes_take_no_bucket_and_no_share() {
        let class = 1 << 31;
        let mut hh = HeavyHitters::new(64, class);
        for i in 0..1_000u32 {
            hh.record(i % 4, (i % 4) | class);
        }
        assert_eq!(hh.total(), 0, "no share of the hits");
        assert_eq!(hh.hitters().count(), 0, "no bucket");
        hh.record(7, 7);
        assert_eq!(hh.total(), 1);
        assert_eq!(hh.hitters().map(|h| h.index).collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn a_thinned_summary_keeps_one_hit_in_thin_and_the_same_shares() {
        // 1,024 buckets: ages after 16,384 recorded hits, not within this.
        let mut hh = HeavyHitters::new(1024, 0);
        hh.thin(true);
        assert!(hh.is_thinned());
        let n = 80_000u32;
        for i in 0..n {
            // Key 0 takes 1/4 of the hits and key 1 1/8, in a short cycle a
            // periodic sampler could fall into step with.
            let key = match i % 8 {
                0 | 4 => 0,
                2 => 1,
                _ => 100 + i % 500,
            };
            hh.record(key, key.wrapping_mul(0x85eb_ca6b));
        }
        let total = hh.total();
        let expected = u64::from(n) / THIN;
        assert!(
            total.abs_diff(expected) * 50 < expected,
            "{total} recorded, expected ~{expected}"
        );
        let share = |key: u32| {
            let count = hh.hitters().find(|h| h.index == key).map_or(0, |h| h.count);
            f64::from(count) / total as f64
        };
        assert!((share(0) - 0.25).abs() < 0.03, "key 0: {}", share(0));
        assert!((share(1) - 0.125).abs() < 0.03, "key 1: {}", share(1));
        // Back to every hit.
        hh.thin(false);
        assert!(!hh.is_thinned());
        let before = hh.total();
        for _ in 0..100 {
            hh.record(0, 0);
        }
        assert_eq!(hh.total(), before + 100);
    }

    #[test]
    fn the_heaviest_keys_survive_a_stream_of_rare_ones() {
        let mut hh = HeavyHitters::new(64, 0);
        let mut rng = 0x1234_5678_u64;
        for round in 0..10_000u32 {
            // Keys 0..4 get half the hits, the rest go to 10,000 rare keys.
            let key = if round % 2 == 0 {
                round / 2 % 4
            } else {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                100 + (rng % 10_000) as u32
            };
            hh.record(key, key.wrapping_mul(0x85eb_ca6b));
        }
        let mut top: Vec<Hitter> = hh.hitters().collect();
        top.sort_by_key(|h| std::cmp::Reverse(h.count));
        let top4: Vec<u32> = top.iter().take(4).map(|h| h.index).collect();
        for key in 0..4 {
            assert!(top4.contains(&key), "key {key} lost: {top:?}");
        }
        // Aged every 1,024 hits, so the total is what arrived since, plus
        // the halved history.
        let total = hh.total();
        assert!((1_024..2_048).contains(&total), "{total}");
        let tracked: u64 = hh.hitters().map(|h| u64::from(h.count)).sum();
        assert!(tracked <= total, "{tracked} > {total}");
        hh.age();
        assert_eq!(hh.total(), total / 2);
        assert!(hh.hitters().all(|h| h.count <= 1250));
        let first = top[0];
        hh.rescale(first.index, first.hash, 1, 64);
        let count = |hh: &HeavyHitters| {
            hh.hitters()
                .find(|h| h.index == first.index)
                .map(|h| h.count)
        };
        assert_eq!(count(&hh), Some((first.count / 2 / 64).max(1)));
        hh.rescale(first.index, first.hash, 64, 1);
        assert_eq!(count(&hh), Some((first.count / 2 / 64).max(1) * 64));
        hh.clear();
        assert_eq!(hh.hitters().count(), 0);
        assert_eq!(hh.total(), 0);
    }
}
