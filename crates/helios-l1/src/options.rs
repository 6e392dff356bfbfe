//! Building a cache: capacity, weigher, shard count and hasher.

use std::marker::PhantomData;
use std::sync::OnceLock;
use std::time::Duration;

use crate::cache::Cache;
use crate::error::BuildError;
use crate::hash::DefaultHashBuilder;
use crate::hot::HotTierConfig;
use crate::recording::HitRecording;
use crate::removal::{ListenerSet, OnInsert, OnRemoval, RemovalCause};
use crate::retention::{Retention, RetentionFn};
use crate::weigher::{UnitWeigher, Weigher};

/// Smallest capacity (in weight units) a shard gets by default. Each shard
/// runs its own policy, and a policy over very few entries loses hit ratio to
/// hash imbalance and a too-coarse window; below this the default uses fewer
/// shards. Set with the first engine; no sweep of it is recorded
/// (BENCHMARKS.md, "Shard count", measures only what more shards do to
/// throughput), so every shared trace size below 8,192 runs on one shard.
const MIN_DEFAULT_SHARD_CAPACITY: u64 = 4096;
/// Smallest capacity a shard gets by default when entries have real weights
/// (a custom weigher): 64 Mi weight units, 64 MiB for byte weights. An entry
/// heavier than its shard's share is refused, and a shard holding only a
/// few of the largest entries loses hit ratio; entry sizes are unknown when
/// the cache is built, so the floor is generous: a byte-weighted cache below
/// 128 MiB has one shard (one policy, as moka has), which on synthetic
/// weighted traces cost no hit ratio against peers where 8 shards of a 1 MB
/// cache refused every object over 125 KB (BENCHMARKS.md, "Weighted
/// traces"). Reads stay lock-free either way; writers of a write-heavy
/// weighted cache may want `shards(n)`.
const MIN_WEIGHTED_SHARD_CAPACITY: u64 = 1 << 26;
/// Most entries one shard can index: its slab hands out 24-bit indices
/// (the table packs an index and an 8-bit tag into one word), 2^24 − 2 of
/// them. A shard evicts by count well before (about 15.7 million entries,
/// the rest of the indices left for slots that wait for readers), whatever
/// the entries weigh: so a unit-weight cache holds at most about 15.7
/// million entries per shard, and a cache of entries weighing 0 stays
/// bounded too.
pub const MAX_ENTRIES_PER_SHARD: u64 = crate::raw::MAX_INDEX as u64 + 1;
/// Most shards [`default_shards`] picks to keep a unit-weight capacity
/// within the entries its shards can hold. A larger capacity (`u64::MAX`
/// as "unbounded", say) keeps the CPU-based count, and its shards evict by
/// count instead.
const MAX_DEFAULT_SHARDS: u64 = 1 << 12;
/// Default shards per CPU: enough that writers rarely meet on a lock. A
/// write holds its shard's lock for about a microsecond (it replays the
/// shard's buffered hits, inserts and evicts), and a writer that finds the
/// lock taken spins, then yields to the kernel. On the 2-core host, 16
/// shards instead of 8 at capacity 100,000 (where the 4,096-entry floor stops it)
/// ran the 95%-read mixes 1–9% faster over three same-process runs, and
/// 100% reads 0.98–1.05× (BENCHMARKS.md, "Shard count"); 32 shards (a lower
/// floor) gained 7–11% on the mixes but lost 0–6% on reads.
const SHARDS_PER_CPU: usize = 16;
/// Default hot-tier size. Under Zipf(0.99) over 10^6 keys the top 1,024
/// keys take about half of all hits; a u64 -> u64 table of that size is
/// 82 KiB (slots and tags), within L2. BENCHMARKS.md ("hot tier") measures
/// other sizes.
pub const DEFAULT_HOT_TIER_ENTRIES: usize = 1024;
/// Default least share of hits, in percent, the hot tier's entries must take
/// for it to serve reads. Measured on this project's 2-core host (BENCHMARKS.md,
/// "When the hot tier pays"): with 2 threads reading Zipf streams, the tier
/// costs 10–16% of read throughput when its entries take 61% of hits (Zipf
/// 0.99), breaks even at about 81% (Zipf 1.15) and gains 8% at 85% and 1.9×
/// at 98%. Below the threshold the tier keeps ranking entries but serves
/// nothing, and a read pays one filter load.
pub const DEFAULT_HOT_TIER_MIN_HIT_SHARE: u8 = 80;
/// Largest accepted hot tier: a refresh copies every entry under all shard
/// locks, so its cost grows with the size.
pub const MAX_HOT_TIER_ENTRIES: usize = 1 << 16;
/// Default least time between two hot-tier refreshes: each refresh locks
/// every shard for tens of microseconds (BENCHMARKS.md), so 25 ms keeps that
/// below 0.5% of one core, while a new hot key waits at most ~25 ms.
pub const DEFAULT_HOT_TIER_REFRESH: Duration = Duration::from_millis(25);

/// Number of CPUs, probed once (`available_parallelism` reads cgroup files).
pub(crate) fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// The default shard count for `capacity` with unit weights: `16 × CPUs`
/// rounded up to a power of two, reduced so each shard keeps at least 4,096
/// entries, and raised (up to 4,096 shards) so that no shard has to hold
/// more entries than it can index ([`MAX_ENTRIES_PER_SHARD`]). (With a
/// custom weigher the floor is 64 Mi weight units per shard instead; see
/// [`CacheBuilder::shards`].)
pub fn default_shards(capacity: u64) -> usize {
    let shards = shards_with_floor(capacity, MIN_DEFAULT_SHARD_CAPACITY);
    let needed = capacity
        .div_ceil(crate::policy::MAX_SHARD_ENTRIES)
        .next_power_of_two();
    if needed > shards as u64 && needed <= MAX_DEFAULT_SHARDS {
        needed as usize
    } else {
        shards
    }
}

fn shards_with_floor(capacity: u64, floor: u64) -> usize {
    let by_cpu = (cpus() * SHARDS_PER_CPU).next_power_of_two();
    let by_capacity = (capacity / floor).max(1);
    // Largest power of two not above `by_capacity`.
    let by_capacity = 1usize << (63 - by_capacity.leading_zeros()).min(usize::BITS - 1);
    by_cpu.min(by_capacity)
}

/// Options for a [`Cache`]; [`build`](Self::build) validates them.
///
/// ```
/// use helios_l1::Cache;
/// let cache: Cache<String, Vec<u8>, _> = Cache::builder()
///     .capacity(64 << 20) // 64 MiB
///     .weigher(|k: &String, v: &Vec<u8>| (k.len() + v.len()) as u64)
///     .build()?;
/// cache.insert("greeting".to_string(), b"hello".to_vec()).ok();
/// assert_eq!(cache.get("greeting").as_deref(), Some(&b"hello"[..]));
/// # Ok::<(), helios_l1::BuildError>(())
/// ```
#[must_use]
pub struct CacheBuilder<K, V, W = UnitWeigher, S = DefaultHashBuilder> {
    capacity: u64,
    shards: Option<usize>,
    hit_recording: HitRecording,
    hot_tier: HotTierConfig,
    on_insert: Option<OnInsert<K, V>>,
    on_removal: Option<OnRemoval<K, V>>,
    retention: Option<RetentionFn<K, V>>,
    /// `Some(public side word)`: entries have side words (`side_words`).
    side_words: Option<u64>,
    weigher: W,
    hasher: S,
    _entries: PhantomData<fn(K, V)>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> CacheBuilder<K, V> {
    /// Options with no capacity yet (building them fails until one is set),
    /// unit weights, the default shard count and hasher.
    pub fn new() -> Self {
        Self {
            capacity: 0,
            shards: None,
            hit_recording: HitRecording::default(),
            hot_tier: HotTierConfig {
                entries: DEFAULT_HOT_TIER_ENTRIES,
                period: DEFAULT_HOT_TIER_REFRESH,
                min_hit_share: DEFAULT_HOT_TIER_MIN_HIT_SHARE,
            },
            on_insert: None,
            on_removal: None,
            retention: None,
            side_words: None,
            weigher: UnitWeigher,
            hasher: DefaultHashBuilder::default(),
            _entries: PhantomData,
        }
    }
}

impl<K, V, W, S> CacheBuilder<K, V, W, S> {
    /// Total capacity in weight units (entries, with the default weigher).
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }

    /// Number of shards, a power of two. The capacity is split evenly among
    /// them, and no entry may weigh more than one shard's share. Default:
    /// [`default_shards`] with unit weights; with a custom weigher, as many
    /// shards as keep 64 Mi weight units (64 MiB of bytes) each, so a
    /// byte-weighted cache below 128 MiB has one shard and can hold entries
    /// up to its whole capacity. Whatever the weights, a shard holds at
    /// most about 15.7 million entries ([`MAX_ENTRIES_PER_SHARD`]) and
    /// evicts by count beyond: give a unit-weight cache of more entries
    /// than that per shard more shards.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Whether every hit must reach the policy. Off (the default), a hit
    /// whose read buffer is full drains it only if the shard lock is free
    /// and [`reader_drains_per_write`](Self::reader_drains_per_write) allows,
    /// and otherwise goes unrecorded, so a hit never waits. On, such a hit
    /// waits for its shard's lock and drains the buffer first: hits may
    /// wait, but the policy sees exactly what a single-threaded cache would.
    /// Meant for measuring what the lossy buffers cost in hit ratio
    /// (`helios replay --exact-recording`).
    pub fn exact_hit_recording(mut self, exact: bool) -> Self {
        self.hit_recording.exact = exact;
        self
    }

    /// How many times between two writes to a shard a reader whose
    /// read-buffer stripe is full may replay the buffer into the policy
    /// itself, under a try-lock that never waits (default
    /// [`DEFAULT_READER_DRAINS_PER_WRITE`](crate::DEFAULT_READER_DRAINS_PER_WRITE)).
    /// 0 drops hit records beyond the buffer until the next write: cheapest
    /// for read-mostly workloads, at some hit ratio on workloads with long
    /// runs of hits (the `recording` module docs and BENCHMARKS.md have the
    /// figures). Ignored with [`exact_hit_recording`](Self::exact_hit_recording).
    pub fn reader_drains_per_write(mut self, drains: u32) -> Self {
        self.hit_recording.reader_drains_per_write = drains;
        self
    }

    /// Most entries in the hot tier (see the crate docs); 0 turns it off.
    /// Default [`DEFAULT_HOT_TIER_ENTRIES`], at most
    /// [`MAX_HOT_TIER_ENTRIES`]. The tier also never holds more than 1/16 of
    /// the capacity by weight.
    pub fn hot_tier_entries(mut self, entries: usize) -> Self {
        self.hot_tier.entries = entries;
        self
    }

    /// Least share of hits, in percent (0 to 100), that the entries a
    /// refresh chooses must take for the hot tier to serve reads; below it
    /// the tier publishes no entries until the share recovers (and stops
    /// serving only once the share falls 3 points below). 0 makes the tier
    /// serve whatever its share. Default [`DEFAULT_HOT_TIER_MIN_HIT_SHARE`];
    /// [`HotTierStats`](crate::HotTierStats) shows the measured share.
    pub fn hot_tier_min_hit_share(mut self, percent: u8) -> Self {
        self.hot_tier.min_hit_share = percent;
        self
    }

    /// Least time between two hot-tier refreshes (which re-rank the hottest
    /// entries). Default [`DEFAULT_HOT_TIER_REFRESH`]. A period too long to
    /// add to the clock, such as `Duration::MAX`, means the tier refreshes
    /// only when [`Cache::refresh_hot_tier`](crate::Cache::refresh_hot_tier)
    /// asks.
    pub fn hot_tier_refresh(mut self, period: Duration) -> Self {
        self.hot_tier.period = period;
        self
    }

    /// Calls `listener` for every entry that leaves the cache, with the
    /// reason. It runs on the thread whose call removed the entry, while
    /// that entry's shard is locked: keep it short, and do not write to the
    /// cache from it (reads are fine; a write to the same shard would
    /// deadlock).
    pub fn removal_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.on_removal = Some(Box::new(move |k, _, v, cause, _| listener(k, v, cause)));
        self
    }

    /// Like [`removal_listener`](Self::removal_listener), also told the
    /// entry's side word and the weight it was charged at (for exact
    /// accounting on top).
    pub(crate) fn weighed_removal_listener(
        mut self,
        listener: impl Fn(&K, u64, &V, RemovalCause, u64) + Send + Sync + 'static,
    ) -> Self {
        self.on_removal = Some(Box::new(listener));
        self
    }

    /// Like [`insert_listener`](Self::insert_listener), also told the
    /// entry's side word and the weight it is charged at.
    pub(crate) fn weighed_insert_listener(
        mut self,
        listener: impl Fn(&K, u64, &V, u64) + Send + Sync + 'static,
    ) -> Self {
        self.on_insert = Some(Box::new(listener));
        self
    }

    /// Like [`retention`](Self::retention), also shown the entry's side
    /// word.
    pub(crate) fn sided_retention(
        mut self,
        retention: impl Fn(&K, u64, &V) -> Retention + Send + Sync + 'static,
    ) -> Self {
        self.retention = Some(Box::new(retention));
        self
    }

    /// A side word beside every entry (`crate::equivalent`): an agent
    /// store's namespaces. Entries stored through the public [`Cache`] API
    /// get `public_side`.
    pub(crate) fn side_words(mut self, public_side: u64) -> Self {
        self.side_words = Some(public_side);
        self
    }

    /// Calls `listener` for every entry stored (inserted or replacing
    /// another), under the same conditions as
    /// [`removal_listener`](Self::removal_listener); for one key it is
    /// always called before the entry's removal is reported.
    pub fn insert_listener(mut self, listener: impl Fn(&K, &V) + Send + Sync + 'static) -> Self {
        self.on_insert = Some(Box::new(move |k, _, v, _| listener(k, v)));
        self
    }

    /// Lets `retention` override the policy for particular entries: it is
    /// asked about an entry when eviction is about to evict it or compare
    /// it, under the entry's shard lock (the same rules as
    /// [`removal_listener`](Self::removal_listener) apply). A
    /// [`Retention::Pinned`] entry is passed over while the shard holds
    /// anything else it could evict; a [`Retention::Expendable`] one loses
    /// every admission duel against the others. Without it (the default)
    /// eviction is the policy's alone, at no cost.
    pub fn retention(
        mut self,
        retention: impl Fn(&K, &V) -> Retention + Send + Sync + 'static,
    ) -> Self {
        self.retention = Some(Box::new(move |k, _, v| retention(k, v)));
        self
    }

    /// How much of the capacity each entry uses.
    pub fn weigher<W2: Weigher<K, V>>(self, weigher: W2) -> CacheBuilder<K, V, W2, S> {
        CacheBuilder {
            capacity: self.capacity,
            shards: self.shards,
            hit_recording: self.hit_recording,
            hot_tier: self.hot_tier,
            on_insert: self.on_insert,
            on_removal: self.on_removal,
            retention: self.retention,
            side_words: self.side_words,
            weigher,
            hasher: self.hasher,
            _entries: PhantomData,
        }
    }

    /// The hasher; see [`UniformHashBuilder`](crate::UniformHashBuilder) for
    /// keys that are already hashes.
    pub fn hasher<S2>(self, hasher: S2) -> CacheBuilder<K, V, W, S2> {
        CacheBuilder {
            capacity: self.capacity,
            shards: self.shards,
            hit_recording: self.hit_recording,
            hot_tier: self.hot_tier,
            on_insert: self.on_insert,
            on_removal: self.on_removal,
            retention: self.retention,
            side_words: self.side_words,
            weigher: self.weigher,
            hasher,
            _entries: PhantomData,
        }
    }

    /// Validates the options and builds the cache.
    pub fn build(self) -> Result<Cache<K, V, W, S>, BuildError>
    where
        K: Send + Sync + Eq + 'static,
        V: Send + Sync + 'static,
        W: Weigher<K, V>,
    {
        if self.capacity == 0 {
            return Err(BuildError::ZeroCapacity);
        }
        let shards = self.shards.unwrap_or_else(|| {
            if self.weigher.is_unit() {
                default_shards(self.capacity)
            } else {
                shards_with_floor(self.capacity, MIN_WEIGHTED_SHARD_CAPACITY)
            }
        });
        if !shards.is_power_of_two() {
            return Err(BuildError::ShardsNotPowerOfTwo { shards });
        }
        if self.hot_tier.entries > MAX_HOT_TIER_ENTRIES {
            return Err(BuildError::HotTierTooLarge {
                entries: self.hot_tier.entries,
                max: MAX_HOT_TIER_ENTRIES,
            });
        }
        if self.hot_tier.min_hit_share > 100 {
            return Err(BuildError::HotTierShareAbove100 {
                percent: self.hot_tier.min_hit_share,
            });
        }
        if (shards as u64) > self.capacity {
            return Err(BuildError::CapacityBelowShards {
                capacity: self.capacity,
                shards,
            });
        }
        Ok(Cache::from_parts(
            self.capacity,
            shards,
            self.hit_recording,
            self.hot_tier,
            (self.on_insert.is_some() || self.on_removal.is_some() || self.retention.is_some())
                .then(|| {
                    std::sync::Arc::new(ListenerSet {
                        on_insert: self.on_insert,
                        on_removal: self.on_removal,
                        retention: self.retention,
                    })
                }),
            self.side_words,
            self.weigher,
            self.hasher,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shards_are_powers_of_two_within_bounds() {
        for cap in [1, 100, 4095, 4096, 10_000, 100_000, u64::MAX] {
            let s = default_shards(cap);
            assert!(s.is_power_of_two(), "{cap} -> {s}");
            assert!(s as u64 <= cap.max(1));
            assert!(s == 1 || cap / s as u64 >= MIN_DEFAULT_SHARD_CAPACITY);
        }
    }
}
