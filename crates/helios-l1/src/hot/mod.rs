//! The hot tier: the most-hit entries, readable with no store to memory.
//!
//! Under skew a few entries take most hits (under Zipf(0.99) over a million
//! keys, the top 1,024 take about half). A main-table hit on them still writes
//! shared memory: the read-buffer record, and policy work when a full buffer
//! is replayed. The hot tier, in
//! the spirit of FrozenHot (Qiu et al., EuroSys 2023), copies those entries
//! into a small immutable table ([`crate::raw::hot`]) that readers probe
//! inside a read section ([`crate::raw::sections`]): a hot hit does no atomic
//! read-modify-write and no store to memory another thread writes. It stores
//! only to the calling thread's own record (two plain stores, entering and
//! leaving the section) and thread-locals; with `membarrier` available (Linux)
//! it runs no fence either.
//!
//! # How entries get in and out
//! - **Choice.** Every shard keeps a [`HeavyHitters`] summary of the hits its
//!   policy drains from the read buffer (the same records that feed the
//!   frequency sketch, which cannot rank the hottest keys because it
//!   saturates). A *refresh* ranks the tracked entries of all shards and
//!   copies the top ones (at most `entries`, at most 1/16 of the capacity by
//!   weight, and hit at least `MIN_SCORE` times) into a new table.
//! - **Refresh.** At most once per `period`, triggered from a cache call
//!   (there is no background thread): the caller locks every shard, builds
//!   and publishes the table, and retires the old one. A refresh is skipped
//!   while two retired tables still wait for readers (see below).
//! - **Gate.** The refresh also estimates the share of all hits the chosen
//!   entries take, and publishes them only while it is at least
//!   `min_hit_share` (80% by default; serving stops 3 points below). Below
//!   that, the branch between the tier and the main table is too often
//!   mispredicted for hot hits to pay for it; the tier then publishes an
//!   empty table (an empty filter: every read predictably takes the main
//!   path) and keeps ranking entries; while the share stays more than
//!   `THIN_BELOW_MIN` points short, from one hit in
//!   [`THIN`](heavy_hitters::THIN) (an even sample, which keeps the shares).
//! - **Sampling.** One hot hit in `SAMPLE` goes to the main table instead, so
//!   the policy keeps hearing of hot entries (their recency and frequency
//!   stay current, so they are not evicted for looking cold) and the
//!   summary keeps ranking them. Their counts are kept in sampled units
//!   (divided by `SAMPLE` when they join the tier, multiplied back when they
//!   leave it) and scaled back up by `SAMPLE` when ranked.
//! - **Invalidation.** A write that removes, replaces or evicts an entry
//!   clears its hot slot under the shard lock before returning
//!   ([`ShardHot::invalidate`]), so a read that starts afterwards misses the
//!   hot tier. The next refresh copies the new value if it is still hot.
//!
//! # Memory
//! The table holds clones of its entries' keys and values (for `Arc` or
//! `Bytes` values, a refcount); a replaced value stays alive, never
//! returned, until its table is reclaimed. A thread inside a long `with`
//! closure holds reclamation back; refreshes then pause after `MAX_RETIRED`
//! retired tables, which bounds the garbage.

mod heavy_hitters;

use crate::equivalent::Equivalent;
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(crate) use heavy_hitters::{HeavyHitters, Hitter};

use crate::raw::hot::{HotPtr, HotTable};
use crate::raw::sections::Reader;
use crate::sync::{Arc, AtomicU64, AtomicUsize, Mutex, Ordering};

/// One hot hit in `SAMPLE` is served by the main table, so the policy and
/// the summary still see about 1/64 of a hot entry's hits (a top entry is hit
/// thousands of times per refresh, so that is plenty), at a cost of 1/64 of
/// the main-table work the tier saves.
pub(crate) const SAMPLE: u32 = 64;
/// Fewest (scaled) hits since the last halving for an entry to be promoted:
/// an entry hit less often gains nothing from the tier but costs a clone.
const MIN_SCORE: u64 = 4;
/// Refreshes pause while this many retired tables wait for readers. A
/// reader preempted inside its section (threads outnumbering cores) holds
/// tables back for a time slice; four tables ride that out while bounding
/// the garbage (4 × 82 KiB for the default u64 -> u64 tier).
const MAX_RETIRED: usize = 4;
/// Heavy-hitter buckets per hot entry, over all shards: more candidates than
/// slots, so that entries near the cut are tracked despite collisions.
const BUCKETS_PER_ENTRY: usize = 4;
/// The tier holds at most this fraction (1/N) of the capacity by weight.
const WEIGHT_FRACTION: u64 = 16;
/// Percentage points a serving tier's hit share may fall below the minimum
/// before it stops serving, so that a share near the threshold does not
/// flip the tier at every refresh (the estimate moves by a point or two
/// between refreshes of a steady workload).
const SHARE_HYSTERESIS: u64 = 3;
/// Percentage points below the minimum hit share under which a shut gate
/// thins the heavy-hitter summaries to one hit in `heavy_hitters::THIN`:
/// recording every replayed hit cost the 95%-read mix ~32 instructions per
/// operation while the gate stayed shut (BENCHMARKS.md, "Thinned summaries").
/// Thinning keeps shares and ranks (an even sample) but makes the summary
/// follow a change THIN times more slowly, so it stops this far short of
/// the threshold: a skew on its way up is recorded in full before the gate
/// decides on it.
const THIN_BELOW_MIN: u64 = 10;
/// Membership-filter bits per hot entry: with one hash function, a key that
/// is not hot passes the filter with probability ≈ 1/16, and the filter of
/// the default tier is 2 KiB (L1-resident).
const FILTER_BITS_PER_ENTRY: usize = 16;

/// Hot-tier options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HotTierConfig {
    /// Most entries; 0 turns the tier off.
    pub(crate) entries: usize,
    /// Least time between two refreshes.
    pub(crate) period: Duration,
    /// Least share of hits, in percent, the chosen entries must take for
    /// the tier to serve reads (see `HotTier::refresh`); 0: always.
    pub(crate) min_hit_share: u8,
}

/// What the hot tier is doing; see [`Cache::hot_tier_stats`](crate::Cache::hot_tier_stats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HotTierStats {
    /// Most entries the tier may hold (0: the tier is off).
    pub capacity: usize,
    /// Entries in the current table (including invalidated ones).
    pub entries: usize,
    /// Entries of the current table still valid.
    pub valid: usize,
    /// Tables published so far.
    pub refreshes: u64,
    /// Total time refreshes held every shard lock (writers wait meanwhile;
    /// readers never do); divide by `refreshes` for one.
    pub refresh_time: std::time::Duration,
    /// Refreshes skipped because retired tables still wait for a reader.
    pub skipped_refreshes: u64,
    /// Retired tables not yet freed.
    pub retired_tables: usize,
    /// Heap bytes of the current table.
    pub table_bytes: usize,
    /// Whether hot hits skip the hardware fence because refreshes run
    /// `membarrier(2)` (Linux); otherwise each hit runs one `fence(SeqCst)`.
    pub membarrier: bool,
    /// Share of recent hits, in percent, that went to the entries the last
    /// refresh chose (estimated from the heavy-hitter summaries).
    pub hit_share_percent: u8,
    /// Whether the tier serves reads: false while `hit_share_percent` stays
    /// below [`hot_tier_min_hit_share`](crate::CacheBuilder::hot_tier_min_hit_share),
    /// when the tier would cost reads more than it saves; its table is then
    /// empty and a read pays one filter load.
    pub serving: bool,
    /// Whether the shards' heavy-hitter summaries record only one replayed
    /// hit in 8: set while `hit_share_percent` stays more than 10 points
    /// below the minimum, where recording every hit cost more than the
    /// ranking needs (an even sample keeps the shares).
    pub summaries_thinned: bool,
}

/// An entry a refresh may promote.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    shard: usize,
    index: u32,
    hash: u32,
    weight: u32,
    score: u64,
}

/// A shard, locked by a refresh.
pub(crate) trait LockedShard<K, V> {
    /// Replays the shard's buffered hits, then hands every tracked entry
    /// still resident, with its weight, to `f`.
    fn hitters(&mut self, f: &mut dyn FnMut(Hitter, u32));
    /// Runs `f` on the entry at slab `index` if it is resident with policy
    /// hash `hash`.
    fn entry<R>(&self, index: u32, hash: u32, f: impl FnOnce(&K, &V) -> R) -> Option<R>;
    /// Mutable access to the shard's hot-tier bookkeeping.
    fn hot(&mut self) -> &mut ShardHot<K, V>;
}

/// A shard's part of the hot tier; lives under the shard lock.
pub(crate) struct ShardHot<K, V> {
    /// The published table (None until the first refresh).
    table: Option<Arc<HotTable<K, V>>>,
    /// Slab index → (slot position in `table`, policy hash), for the
    /// entries it holds: the *members*, whose hits the summary hears of only
    /// through sampling (their counts are in sampled hits).
    slots: SlotMap,
    /// The same for the table a refresh is building (see `HotTier::refresh`).
    next_slots: SlotMap,
    /// Positions in the table being built whose entries changed since they
    /// were copied; cleared before it is published.
    next_invalid: Vec<u32>,
    hitters: HeavyHitters,
}

type SlotMap = HashMap<u32, (u32, u32), foldhash::fast::FixedState>;

impl<K, V> ShardHot<K, V> {
    /// A shard's part of the tier. Entries whose hash has any of
    /// `excluded`'s bits (the class bit in an agent store: its private
    /// entries, which only class-1 lookups read, and those skip the tier;
    /// `crate::equivalent`) are never recorded, so never promoted, and do
    /// not dilute the share of hits the gate judges.
    pub(crate) fn new(buckets: usize, excluded: u32) -> Self {
        Self {
            table: None,
            slots: HashMap::default(),
            next_slots: HashMap::default(),
            next_invalid: Vec::new(),
            hitters: HeavyHitters::new(buckets, excluded),
        }
    }

    /// Counts a hit the policy accepted.
    #[inline]
    pub(crate) fn record(&mut self, index: u32, hash: u32) {
        self.hitters.record(index, hash);
    }

    /// The entry at slab `index` is leaving or changing: readers that start
    /// from now on must not find it in the hot tier, nor in the table a
    /// refresh is building.
    #[inline]
    pub(crate) fn invalidate(&mut self, index: u32) {
        if !self.slots.is_empty() {
            if let Some((pos, hash)) = self.slots.remove(&index) {
                if let Some(table) = &self.table {
                    table.invalidate(pos);
                }
                // No longer sampled: back to counting every hit.
                self.hitters.rescale(index, hash, SAMPLE, 1);
            }
        }
        if !self.next_slots.is_empty() {
            if let Some((pos, _)) = self.next_slots.remove(&index) {
                self.next_invalid.push(pos);
            }
        }
    }

    /// Every entry of this shard is leaving (`clear`).
    pub(crate) fn invalidate_all(&mut self) {
        if let Some(table) = &self.table {
            for (_, (pos, _)) in self.slots.drain() {
                table.invalidate(pos);
            }
        }
        self.slots.clear();
        self.next_invalid
            .extend(self.next_slots.drain().map(|(_, (pos, _))| pos));
        self.hitters.clear();
    }

    pub(crate) fn hitters(&mut self) -> &mut HeavyHitters {
        &mut self.hitters
    }

    pub(crate) fn bytes(&self) -> usize {
        self.hitters.bytes() + self.slots.capacity() * 12
    }
}

/// State only the refresher touches.
struct Refresh<K, V> {
    /// The published table (the pointer owns another count).
    current: Arc<HotTable<K, V>>,
    /// Reused across refreshes.
    candidates: Vec<Candidate>,
    /// When the next refresh is due; `None` when the period is too long to
    /// add to the clock (`Duration::MAX`): then only forced refreshes run.
    next: Option<Instant>,
    /// Whether the published table holds the chosen entries (else it is
    /// empty: the hit share was too small).
    serving: bool,
    /// Whether the summaries record one hit in `THIN` (`THIN_BELOW_MIN`).
    thinned: bool,
}

/// The hot tier of one cache.
pub(crate) struct HotTier<K, V> {
    ptr: HotPtr<K, V>,
    /// A one-hash Bloom filter of the published table's keys, owned by the
    /// tier (never freed while the cache lives), so a lookup checks it
    /// *before* entering a read section: most calls for keys that are not
    /// hot skip the section and the probe entirely. A hint only: it may be
    /// stale during a refresh, which costs a main-table hit, never a wrong
    /// value (the table, checked inside the section, decides).
    filter: Box<[AtomicU64]>,
    filter_mask: u64,
    config: HotTierConfig,
    weight_budget: u64,
    refresh: Mutex<Refresh<K, V>>,
    /// Nanoseconds after `start` before which no refresh is due. Read by
    /// every trigger check, written once per refresh.
    due_at: AtomicU64,
    start: Instant,
    refreshes: AtomicU64,
    refresh_nanos: AtomicU64,
    skipped: AtomicU64,
    entries: AtomicUsize,
    table_bytes: AtomicUsize,
    /// `HotTierStats::hit_share_percent` of the last refresh.
    hit_share: AtomicUsize,
}

impl<K, V> HotTier<K, V> {
    pub(crate) fn new(config: HotTierConfig, capacity: u64) -> Self {
        crate::raw::sections::init();
        let empty = Arc::new(HotTable::empty());
        let start = Instant::now();
        let bits = (config.entries * FILTER_BITS_PER_ENTRY)
            .max(64)
            .next_power_of_two();
        // The first refresh is due at once, unless the period says "only
        // when forced" (too long to add to the clock, as `refresh` treats it).
        let endless = start.checked_add(config.period).is_none();
        Self {
            ptr: HotPtr::new(Arc::clone(&empty)),
            filter: (0..bits / 64).map(|_| AtomicU64::new(0)).collect(),
            filter_mask: bits as u64 - 1,
            config,
            weight_budget: capacity / WEIGHT_FRACTION,
            refresh: Mutex::new(Refresh {
                current: empty,
                candidates: Vec::new(),
                next: (!endless).then_some(start),
                serving: false,
                thinned: false,
            }),
            due_at: AtomicU64::new(if endless { u64::MAX } else { 0 }),
            start,
            refreshes: AtomicU64::new(0),
            refresh_nanos: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            entries: AtomicUsize::new(0),
            table_bytes: AtomicUsize::new(0),
            hit_share: AtomicUsize::new(0),
        }
    }

    /// Heavy-hitter buckets each of `shards` shards should keep.
    pub(crate) fn buckets_per_shard(config: HotTierConfig, shards: usize) -> usize {
        (config.entries * BUCKETS_PER_ENTRY).div_ceil(shards.max(1))
    }

    /// The filter bit of `hash`: bits the table's probe and the shard choice
    /// do not start from.
    #[inline(always)]
    fn filter_bit(&self, hash: u64) -> (usize, u64) {
        let bit = hash.rotate_left(23) & self.filter_mask;
        ((bit >> 6) as usize, 1 << (bit & 63))
    }

    /// Whether `hash` may be in the hot tier (one load, no section).
    #[inline(always)]
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        let (word, mask) = self.filter_bit(hash);
        // Relaxed: a hint; the table read inside a section decides.
        self.filter[word].load(Ordering::Relaxed) & mask != 0
    }

    /// The stored key and value of `key` if it is in the hot tier and
    /// valid. No stores.
    #[inline(always)]
    pub(crate) fn get<'r, Q>(
        &'r self,
        reader: &'r Reader,
        hash: u64,
        key: &Q,
    ) -> Option<(&'r K, &'r V)>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.ptr.load(reader).get_entry(hash, key)
    }

    /// Whether a refresh is due (one clock read).
    pub(crate) fn due(&self) -> bool {
        let now = self.start.elapsed().as_nanos() as u64;
        now >= self.due_at.load(Ordering::Relaxed)
    }

    /// Rebuilds the table from the shards' heavy hitters and publishes it.
    /// `lock(i)` locks shard `i` of `shards`. Returns false if another
    /// refresh runs, none is due (unless `force`), or retired tables still
    /// wait for readers.
    ///
    /// Three phases, so that writers wait on all shards only for the last,
    /// short one (`HotTierStats::refresh_time` measures it):
    /// 1. Shard by shard: replay buffered hits, collect the tracked entries.
    ///    Then rank them (no lock).
    /// 2. Shard by shard: copy the chosen entries into the new table and note
    ///    their positions in `next_slots`. A write to one of them from now on
    ///    records the position in `next_invalid` (`ShardHot::invalidate`).
    /// 3. All shards at once: clear the positions in `next_invalid`, make
    ///    `next_slots` current and publish. A reader can then find only
    ///    entries unchanged since they were copied.
    pub(crate) fn refresh<L: LockedShard<K, V>>(
        &self,
        force: bool,
        shards: usize,
        lock: impl Fn(usize) -> L,
        hash: impl Fn(&K) -> u64,
    ) -> bool
    where
        K: Eq + Clone,
        V: Clone,
    {
        let Some(mut state) = self.refresh.try_lock() else {
            return false;
        };
        let now = Instant::now();
        if state.next.is_none_or(|next| now < next) && !force {
            return false;
        }
        #[cfg(not(loom))]
        let retired = self.ptr.reclaim(crate::raw::sections::domain());
        #[cfg(loom)]
        let retired = 0;
        if retired >= MAX_RETIRED {
            // Retry at the next trigger, not a period later: the sections
            // holding the tables back are usually short.
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        // A period too long to add to the clock (`Duration::MAX`, say)
        // means "only when forced": the next refresh is never due.
        state.next = now.checked_add(self.config.period);
        let due = state
            .next
            .and_then(|next| u64::try_from((next - self.start).as_nanos()).ok())
            .unwrap_or(u64::MAX);
        self.due_at.store(due, Ordering::Relaxed);

        // Phase 1: candidates.
        let Refresh {
            current,
            candidates,
            serving,
            thinned,
            ..
        } = &mut *state;
        candidates.clear();
        // All hits the summaries stand for, members' scaled like their counts.
        let mut total_hits = 0u64;
        for shard in 0..shards {
            let mut locked = lock(shard);
            let mut found = Vec::new();
            locked.hitters(&mut |hitter, weight| found.push((hitter, weight)));
            let hot = locked.hot();
            // A thinned summary's counts and total are in thinned hits:
            // scaled back, as members' sampled counts are, so that scores
            // estimate hits (`MIN_SCORE`) whatever the recording rate.
            let thin = if hot.hitters.is_thinned() {
                heavy_hitters::THIN
            } else {
                1
            };
            total_hits += hot.hitters.total() * thin;
            for (hitter, weight) in found {
                // Members' hits reach the summary only through sampling.
                let scale = if hot.slots.contains_key(&hitter.index) {
                    total_hits += u64::from(hitter.count) * u64::from(SAMPLE - 1) * thin;
                    u64::from(SAMPLE) * thin
                } else {
                    thin
                };
                candidates.push(Candidate {
                    shard,
                    index: hitter.index,
                    hash: hitter.hash,
                    weight,
                    score: u64::from(hitter.count) * scale,
                });
            }
        }
        // Only the best `entries` (and some the weight budget may skip over)
        // need ordering.
        let keep = (self.config.entries * 2).min(candidates.len());
        if keep < candidates.len() {
            candidates.select_nth_unstable_by_key(keep, |c| std::cmp::Reverse(c.score));
            candidates.truncate(keep);
        }
        candidates.sort_unstable_by_key(|c| std::cmp::Reverse(c.score));
        let mut weight = 0u64;
        let mut chosen = 0;
        candidates.retain(|c| {
            let fits = chosen < self.config.entries
                && c.score >= MIN_SCORE
                && weight + u64::from(c.weight) <= self.weight_budget;
            if fits {
                weight += u64::from(c.weight);
                chosen += 1;
            }
            fits
        });
        candidates.sort_unstable_by_key(|c| c.shard);
        // The gate: serve only while the chosen entries take enough of the
        // hits. A read first asks the tier's filter, and when about as many
        // reads pass it as not, that branch is mispredicted often enough to
        // cost more than hot hits save (BENCHMARKS.md, "Why throughput does
        // not rise by 1.3×"). A table of no entries makes the filter empty,
        // so every read predictably takes the main path.
        let covered: u64 = candidates.iter().map(|c| c.score).sum();
        let share = (covered * 100)
            .checked_div(total_hits)
            .unwrap_or(0)
            .min(100);
        let min = u64::from(self.config.min_hit_share);
        *serving = min == 0 || share >= min || (*serving && share + SHARE_HYSTERESIS >= min);
        if !*serving {
            candidates.clear();
        }
        let thin = !*serving && share + THIN_BELOW_MIN < min;
        *thinned = thin;

        // Phase 2: copies, shard by shard.
        let mut builder = HotTable::builder(self.config.entries);
        let mut next = candidates.iter().peekable();
        for shard in 0..shards {
            let mut locked = lock(shard);
            let hot = locked.hot();
            hot.hitters.thin(thin);
            hot.next_slots.clear();
            hot.next_invalid.clear();
            while let Some(c) = next.next_if(|c| c.shard == shard) {
                let copy = locked.entry(c.index, c.hash, |k, v| (hash(k), k.clone(), v.clone()));
                let Some((h, key, value)) = copy else {
                    continue; // evicted or replaced since phase 1
                };
                if let Some(pos) = builder.push(h, key, value) {
                    locked.hot().next_slots.insert(c.index, (pos, c.hash));
                }
            }
            // Entries joining the tier are sampled from phase 3 on, and
            // entries leaving it are not: convert their counts, so that a
            // count always means hits at the entry's sampling rate (else a
            // new member's full-rate count, scaled by SAMPLE, would make it
            // and the tier's hit share look far larger than they are).
            let hot = locked.hot();
            for (&index, &(_, hash)) in &hot.next_slots {
                if !hot.slots.contains_key(&index) {
                    hot.hitters.rescale(index, hash, 1, SAMPLE);
                }
            }
            for (&index, &(_, hash)) in &hot.slots {
                if !hot.next_slots.contains_key(&index) {
                    hot.hitters.rescale(index, hash, SAMPLE, 1);
                }
            }
        }
        let table = Arc::new(builder.finish());

        // Phase 3: publish under every shard lock.
        let mut all: Vec<L> = (0..shards).map(&lock).collect();
        let started = Instant::now();
        for locked in all.iter_mut() {
            let hot = locked.hot();
            for pos in hot.next_invalid.drain(..) {
                table.invalidate(pos);
            }
            std::mem::swap(&mut hot.slots, &mut hot.next_slots);
            hot.next_slots.clear();
            hot.table = Some(Arc::clone(&table));
        }
        self.ptr.publish(Arc::clone(&table));
        let held = started.elapsed();
        drop(all);
        *current = Arc::clone(&table);

        // The filter is a hint (see its field): updated after publication.
        let mut filter = vec![0u64; self.filter.len()];
        for hash in table.hashes() {
            let (word, mask) = self.filter_bit(hash);
            filter[word] |= mask;
        }
        for (word, bits) in self.filter.iter().zip(filter) {
            word.store(bits, Ordering::Relaxed);
        }
        self.entries.store(table.len(), Ordering::Relaxed);
        self.table_bytes.store(table.bytes(), Ordering::Relaxed);
        self.hit_share.store(share as usize, Ordering::Relaxed);
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        self.refresh_nanos
            .fetch_add(held.as_nanos() as u64, Ordering::Relaxed);
        true
    }

    pub(crate) fn stats(&self) -> HotTierStats {
        let (valid, serving, summaries_thinned) = {
            let state = self.refresh.lock();
            (state.current.valid(), state.serving, state.thinned)
        };
        HotTierStats {
            capacity: self.config.entries,
            entries: self.entries.load(Ordering::Relaxed),
            valid,
            refreshes: self.refreshes.load(Ordering::Relaxed),
            refresh_time: std::time::Duration::from_nanos(
                self.refresh_nanos.load(Ordering::Relaxed),
            ),
            skipped_refreshes: self.skipped.load(Ordering::Relaxed),
            retired_tables: self.ptr.retired(),
            table_bytes: self.table_bytes.load(Ordering::Relaxed),
            membarrier: crate::raw::sections::asymmetric(),
            hit_share_percent: self.hit_share.load(Ordering::Relaxed).min(100) as u8,
            serving,
            summaries_thinned,
        }
    }
}
