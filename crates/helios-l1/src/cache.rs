//! The public cache: hashing, shard selection and single-flight loading over
//! [`Shard`]s.

use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::equivalent::Equivalent;
use crate::error::{BuildError, Refused};
use crate::flight::{Flights, LeaderGuard, Outcome, Role};
use crate::hash::DefaultHashBuilder;
use crate::hot::{HotTier, HotTierConfig, HotTierStats, SAMPLE};
use crate::options::{cpus, CacheBuilder};
use crate::policy::SharedConfiguration;
use crate::raw::sections;
use crate::recording::{HitRecording, HitRecordingStats};
use crate::removal::Listeners;
use crate::shard::Shard;
use crate::weigher::{UnitWeigher, Weigher};

/// A concurrent, weight-bounded cache with lock-free hits.
///
/// See the [crate docs](crate) for the design and its guarantees.
pub struct Cache<K, V, W = UnitWeigher, S = DefaultHashBuilder> {
    shards: Box<[CachePadded<Shard<K, V>>]>,
    /// The hot tier in front of the shards; None when turned off.
    hot: Option<HotTier<K, V>>,
    flights: Box<[Flights<K, V>]>,
    /// `shards.len() - 1`; shards are picked by hash bits 32 and up.
    shard_mask: usize,
    capacity: u64,
    /// The side word of entries stored through the public API (0 unless
    /// the cache has side words; see `CacheBuilder::side_words`).
    public_side: u64,
    weigher: W,
    hasher: S,
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of `capacity` entries with default options.
    pub fn new(capacity: u64) -> Result<Self, BuildError> {
        Self::builder().capacity(capacity).build()
    }

    /// Options for a cache; see [`CacheBuilder`].
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::new()
    }
}

/// Most read-buffer stripes per shard (2 KiB each).
const MAX_READ_STRIPES: usize = 16;
/// A thread checks whether a hot-tier refresh is due (a clock read, ~25 ns)
/// once per this many of its writes. Refreshes run on writes only, like the
/// policy's own maintenance: a hit never does maintenance work (nor
/// allocates), so a read-only phase keeps the hot set it started with.
const REFRESH_CHECK_EVERY: u32 = 64;

impl<K, V, W, S> Cache<K, V, W, S>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    // The builder's validated options, one by one.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        capacity: u64,
        shards: usize,
        hit_recording: HitRecording,
        hot_tier: HotTierConfig,
        listener: Option<Listeners<K, V>>,
        side_words: Option<u64>,
        weigher: W,
        hasher: S,
    ) -> Self
    where
        W: Weigher<K, V>,
    {
        let unit_weights = weigher.is_unit();
        let per_shard = capacity / shards as u64;
        let remainder = capacity % shards as u64;
        // Two stripes per CPU: threads are assigned stripes round-robin, so
        // with as many threads as CPUs no two share a stripe. Capped so that
        // read buffers stay small on large machines (shards also grow with
        // the CPU count, which already spreads readers).
        let stripes = (cpus() * 2).min(MAX_READ_STRIPES);
        let hot_buckets = if hot_tier.entries > 0 {
            HotTier::<K, V>::buckets_per_shard(hot_tier, shards)
        } else {
            0
        };
        // Unit-weight caches choose their configuration by shadows in shard
        // 0 (`policy::configuration`).
        let configuration = unit_weights.then(|| Arc::new(SharedConfiguration::default()));
        Self {
            shards: (0..shards as u64)
                .map(|i| {
                    CachePadded::new(Shard::new(
                        per_shard + u64::from(i < remainder),
                        stripes,
                        hit_recording,
                        hot_buckets,
                        listener.clone(),
                        configuration
                            .as_ref()
                            .map(|shared| (Arc::clone(shared), i == 0)),
                        side_words.is_some(),
                    ))
                })
                .collect(),
            hot: (hot_tier.entries > 0).then(|| HotTier::new(hot_tier, capacity)),
            flights: (0..shards).map(|_| Flights::new()).collect(),
            shard_mask: shards - 1,
            capacity,
            public_side: side_words.unwrap_or(0),
            weigher,
            hasher,
        }
    }
}

impl<K, V, W, S> Cache<K, V, W, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<K, V>,
    S: BuildHasher,
{
    /// The hash of a lookup, with its class bit (`crate::equivalent`): a
    /// constant 0 for every lookup but an agent's private one, so a plain
    /// cache's hash is its hasher's.
    #[inline(always)]
    pub(crate) fn hash<Q: Hash + Equivalent<K> + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key) | Q::CLASS
    }

    #[inline(always)]
    fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.shard_mask
    }

    #[inline(always)]
    fn shard(&self, hash: u64) -> &Shard<K, V> {
        &self.shards[self.shard_index(hash)]
    }

    /// A clone of the value for `key`, if present. The lookup is lock-free
    /// and nothing allocates (beyond what `V::clone` does); recording the
    /// hit for the policy never waits for a lock (see
    /// [`CacheBuilder::reader_drains_per_write`]).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with(key, V::clone)
    }

    /// Runs `f` on the value of `key` without cloning it (no refcount bump
    /// for `Arc` values, no copy for plain ones) and returns what `f`
    /// returns, or `None` on a miss. Counts as an access, like
    /// [`get`](Self::get), and is as lock-free.
    ///
    /// `f` borrows the value inside a read section: a concurrent `insert` or
    /// `remove` of the key does not free it while `f` runs, it only defers
    /// the free. So keep `f` short; calling back into the cache from `f` is
    /// allowed.
    ///
    /// ```
    /// use helios_l1::Cache;
    /// let cache: Cache<u64, Vec<u8>> = Cache::new(100)?;
    /// cache.insert(1, vec![7; 4096]).ok();
    /// assert_eq!(cache.with(&1, |bytes| bytes.len()), Some(4096));
    /// assert_eq!(cache.with(&2, |bytes| bytes.len()), None);
    /// # Ok::<(), helios_l1::BuildError>(())
    /// ```
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.with_entry(key, |_, value| f(value))
    }

    /// Waits until every write in progress, and every listener call it
    /// makes, has finished: locks and releases each shard once.
    pub(crate) fn wait_for_writers(&self) {
        for shard in self.shards.iter() {
            shard.wait_for_writers();
        }
    }

    /// Runs `f` on `key`'s entry without counting an access (the policy
    /// does not hear of it; the hot tier is not consulted).
    pub(crate) fn peek<Q, R>(&self, key: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        self.shard(hash).peek(hash, key, f)
    }

    /// [`peek`](Self::peek), also showing `f` the entry's side word.
    pub(crate) fn peek_sided<Q, R>(&self, key: &Q, f: impl FnOnce(&K, u64, &V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        self.shard(hash).peek_sided(hash, key, f)
    }

    /// Like [`with`](Self::with), also showing `f` the stored key (which
    /// may differ from `key` in what equality ignores).
    #[inline]
    pub(crate) fn with_entry<Q, R>(&self, key: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        // Class-1 lookups (an agent's private keys) skip the hot tier, which
        // holds class-0 entries only (`ShardHot::new`'s `excluded`); the test
        // folds away for every other lookup type.
        let hot = self.hot.as_ref().filter(|_| Q::CLASS == 0);
        let Some(hot) = hot.filter(|hot| hot.may_contain(hash)) else {
            return self.shard(hash).get(hash, key, f);
        };
        // One section for both tiers.
        let guard = sections::pin();
        // Every SAMPLE-th call of a thread takes the main path, so the
        // policy keeps hearing of hot entries (see `crate::hot`). No reader:
        // the thread is shutting down and must not use the hot tier.
        if let Some(reader) = guard.reader().filter(|r| r.tick() % SAMPLE != 0) {
            if let Some((stored, value)) = hot.get(reader, hash, key) {
                return Some(f(stored, value));
            }
        }
        self.shard(hash).get_in(&guard, hash, key, f)
    }

    /// Like [`with_entry`](Self::with_entry), also showing `f` the entry's
    /// side word; the main table only (the hot tier keeps no side words).
    pub(crate) fn with_entry_sided<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&K, u64, &V) -> R,
    ) -> Option<R>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        self.shard(hash).get_sided(hash, key, f)
    }

    /// Whether `key` is served by the hot tier right now (a diagnostic for
    /// benchmarks and tests; does not count as an access).
    pub fn is_hot<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let Some(hot) = self.hot.as_ref().filter(|hot| hot.may_contain(hash)) else {
            return false;
        };
        let guard = sections::pin();
        guard
            .reader()
            .is_some_and(|r| hot.get(r, hash, key).is_some())
    }

    /// Rebuilds the hot tier now from the shards' most-hit entries; returns
    /// whether it did (not if the tier is off, another thread is
    /// refreshing, or retired tables still wait for readers). Writes trigger
    /// refreshes on their own, at most once per [`hot_tier_refresh`]
    /// period; call this in a long read-only phase to let the tier follow a
    /// shifting hot set.
    ///
    /// [`hot_tier_refresh`]: crate::CacheBuilder::hot_tier_refresh
    pub fn refresh_hot_tier(&self) -> bool {
        self.refresh_hot_tier_if(true)
    }

    fn refresh_hot_tier_if(&self, force: bool) -> bool {
        let Some(hot) = &self.hot else {
            return false;
        };
        hot.refresh(
            force,
            self.shards.len(),
            |i| self.shards[i].lock(),
            |k| self.hash(k),
        )
    }

    /// After a write: every `REFRESH_CHECK_EVERY`-th write of this thread
    /// checks whether a hot-tier refresh is due.
    #[inline]
    fn after_write(&self) {
        let Some(hot) = &self.hot else { return };
        // A thread-local counter only: a write reads nothing from the hot
        // tier, so it needs no read section.
        let tick = sections::tick();
        if tick % REFRESH_CHECK_EVERY == 0 && hot.due() {
            self.refresh_hot_tier_if(false);
        }
    }

    /// Whether `key` is present. Does not count as an access.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.shard(hash).contains(hash, key)
    }

    /// Inserts or replaces the value for `key`, evicting as needed.
    ///
    /// Refused (key and value handed back) if the entry weighs more than
    /// [`max_entry_weight`](Self::max_entry_weight); a previous value for the
    /// key is then removed, so a stale value is never served.
    pub fn insert(&self, key: K, value: V) -> Result<(), Refused<K, V>> {
        let hash = self.hash(&key);
        self.insert_hashed(hash, key, self.public_side, value)
    }

    /// [`insert`](Self::insert) of a key whose lookup hashes to `hash`
    /// (see [`hash`](Self::hash)), with side word `side`.
    pub(crate) fn insert_hashed(
        &self,
        hash: u64,
        key: K,
        side: u64,
        value: V,
    ) -> Result<(), Refused<K, V>> {
        let weight = self.weigher.weigh(&key, &value);
        let result = self.shard(hash).insert(hash, key, side, value, weight);
        self.after_write();
        result
    }

    /// Replaces the value of `key`, if it is cached, with `f` of the
    /// current one, atomically: no other write to the key comes between
    /// `f`'s read and the replacement (which counts as a replacement for
    /// the listeners and an access for the policy). Returns whether the
    /// value was replaced: not if the key is absent, `f` returns `None`, or
    /// the new value is too heavy for its shard (the old one then stays).
    /// `f` runs under the key's shard lock: keep it short and do not call
    /// into the cache from it.
    pub fn update<Q>(&self, key: &Q, f: impl FnOnce(&V) -> Option<V>) -> bool
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
    {
        self.update_entry(key, |k, side, v| Some((k.clone(), side, f(v)?)))
    }

    /// Like [`update`](Self::update), replacing the stored key and side
    /// word too: `f` is shown the entry's side word and returns a key equal
    /// to the stored one (`Eq`) and a side word of the same identity
    /// (`crate::equivalent::side_identity`) that may differ in what
    /// identity ignores, such as the agent charged for an agent store's
    /// shared entry.
    pub(crate) fn update_entry<Q>(
        &self,
        key: &Q,
        f: impl FnOnce(&K, u64, &V) -> Option<(K, u64, V)>,
    ) -> bool
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let weigher = &self.weigher;
        let updated = self.shard(hash).update(hash, key, |k, side, v| {
            let (new_key, new_side, value) = f(k, side, v)?;
            debug_assert!(new_key == *k, "update_entry must keep the key's identity");
            debug_assert_eq!(
                crate::equivalent::side_identity(new_side),
                crate::equivalent::side_identity(side),
                "update_entry must keep the side word's identity"
            );
            let weight = weigher.weigh(&new_key, &value);
            Some((new_key, new_side, value, weight))
        });
        self.after_write();
        updated
    }

    /// Removes `key`, returning its value.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_equivalent(key)
    }

    /// [`remove`](Self::remove) by any lookup form of the key.
    pub(crate) fn remove_equivalent<Q>(&self, key: &Q) -> Option<V>
    where
        Q: Hash + Equivalent<K> + ?Sized,
    {
        let hash = self.hash(key);
        let removed = self.shard(hash).remove(hash, key);
        self.after_write();
        removed
    }

    /// Returns the value for `key`, loading it with `load` on a miss.
    ///
    /// Concurrent misses on the same key run one loader; the others wait for
    /// its value. If the loader panics, the panic propagates to its caller and
    /// one of the waiters loads instead.
    pub fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V
    where
        K: Clone,
    {
        match self.try_get_or_insert_with(key, || Ok::<V, Infallible>(load())) {
            Ok(value) => value,
            Err(never) => match *never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with) for a fallible
    /// loader. An error reaches the caller and every waiter, and nothing is
    /// cached; the next call loads again.
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        self.load_through(key, load, |key, value| {
            // A refused (too heavy) value is still returned, just not
            // cached.
            let _ = self.insert(key, value);
        })
    }

    /// [`try_get_or_insert_with`](Self::try_get_or_insert_with), with the
    /// leader's loaded value stored by `store` (which may refuse it; the
    /// value still reaches the caller and every waiter).
    pub(crate) fn load_through<E>(
        &self,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
        store: impl FnOnce(K, V),
    ) -> Result<V, Arc<E>>
    where
        K: Clone,
        E: Send + Sync + 'static,
    {
        let hash = self.hash(&key);
        let flights = &self.flights[self.shard_index(hash)];
        loop {
            if let Some(value) = self.get(&key) {
                return Ok(value);
            }
            match flights.join(hash, &key) {
                Role::Follower(flight) => match flight.wait() {
                    Outcome::Loaded(value) => return Ok(value),
                    Outcome::Failed(error) => match error.downcast::<E>() {
                        Ok(error) => return Err(error),
                        // The leader's loader had another error type: its
                        // error says nothing about ours, so load ourselves.
                        Err(_) => continue,
                    },
                    Outcome::Abandoned => continue,
                },
                Role::Leader(flight) => {
                    let leader = LeaderGuard {
                        flights,
                        flight,
                        finished: false,
                    };
                    // A previous leader may have stored the value between our
                    // miss and our joining: it inserts before it unregisters.
                    if let Some(value) = self.shard(hash).get(hash, &key, |_, v| v.clone()) {
                        leader.finish(Outcome::Loaded(value.clone()));
                        return Ok(value);
                    }
                    return match load() {
                        Ok(value) => {
                            store(key, value.clone());
                            leader.finish(Outcome::Loaded(value.clone()));
                            Ok(value)
                        }
                        Err(error) => {
                            let error = Arc::new(error);
                            leader.finish(Outcome::Failed(error.clone()));
                            Err(error)
                        }
                    };
                }
            }
        }
    }
}

impl<K, V, W, S> Cache<K, V, W, S>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// Number of entries. Exact when no write is in progress.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total weight of the entries; never above [`capacity`](Self::capacity).
    pub fn weight(&self) -> u64 {
        self.shards.iter().map(|s| s.weight()).sum()
    }

    /// The capacity in weight units.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// The weigher.
    pub fn weigher(&self) -> &W {
        &self.weigher
    }

    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// The heaviest entry an insert accepts: the smallest shard's capacity
    /// (and at most `u32::MAX`). The capacity is split evenly across shards
    /// and each shard evicts only its own entries, so an entry can weigh at
    /// most one shard's share, not the whole capacity: with 8 shards, 1/8.
    /// The default shard count of a cache with a weigher keeps every shard
    /// at least 64 MiB (`CacheBuilder::shards` explains); a cache that
    /// must hold entries close to its whole capacity needs `shards(1)`.
    pub fn max_entry_weight(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.capacity())
            .min()
            .unwrap_or(0)
            .min(u64::from(u32::MAX))
    }

    /// Heap bytes the cache's structures hold: index tables, entry slots
    /// (including the keys and values stored inline) and policy metadata.
    /// Excludes memory that keys or values own elsewhere, and retired memory
    /// awaiting reclamation.
    pub fn heap_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.heap_bytes()).sum()
    }

    /// How entry slots were recycled: inserts that reused a freed slot
    /// versus slots ever taken fresh (each fresh slot is heap memory the
    /// slabs keep for reuse), and what waits for reclamation. Locks each
    /// shard in turn.
    pub fn slot_stats(&self) -> SlotStats {
        let mut stats = SlotStats::default();
        for shard in self.shards.iter() {
            let ((reused, fresh, free), (retired, retired_tables)) = shard.slot_stats();
            stats.reused += reused;
            stats.fresh += fresh;
            stats.free += free;
            stats.retired += retired;
            stats.retired_tables += retired_tables;
        }
        stats
    }

    /// How much of the hit stream the policy heard: hit records replayed
    /// and drains run by readers (see [`reader_drains_per_write`]). Locks
    /// each shard in turn.
    ///
    /// [`reader_drains_per_write`]: crate::CacheBuilder::reader_drains_per_write
    pub fn hit_recording_stats(&self) -> HitRecordingStats {
        let mut stats = HitRecordingStats::default();
        for shard in self.shards.iter() {
            let s = shard.hit_recording_stats();
            stats.replayed += s.replayed;
            stats.reader_drains += s.reader_drains;
        }
        stats
    }

    /// What the hot tier holds and how often it was rebuilt (all zero when
    /// it is off).
    pub fn hot_tier_stats(&self) -> HotTierStats {
        self.hot
            .as_ref()
            .map_or_else(HotTierStats::default, HotTier::stats)
    }

    /// Moves every entry for which `pred` holds to the front of the
    /// eviction order (its shard's least-recent probation end): they are
    /// the next entries the policy weighs against newcomers, and leave
    /// first unless their frequency beats the newcomers' (frequencies are
    /// unchanged; pair it with [`Retention::Expendable`](crate::Retention)
    /// to make them leave regardless). Returns how many
    /// entries moved. Cost: one pass over all entries, holding one shard's
    /// lock at a time ([`AgentHandle::suspend`](crate::AgentHandle::suspend)
    /// uses it; BENCHMARKS.md has the time per entry).
    pub fn demote_where(&self, pred: impl Fn(&K, &V) -> bool) -> usize {
        // In a cache with side words (an agent store) the public API sees
        // what its lookups see: entries whose side word has bit 63 set, the
        // shared ones (`crate::equivalent`), not the agents' private ones.
        let sided = self.public_side != 0;
        self.demote_where_sided(|k, side, v| (!sided || side >> 63 == 1) && pred(k, v))
    }

    /// [`demote_where`](Self::demote_where), also showing `pred` each
    /// entry's side word.
    pub(crate) fn demote_where_sided(&self, pred: impl Fn(&K, u64, &V) -> bool) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.demote_where(&pred))
            .sum()
    }

    /// Removes every entry.
    pub fn clear(&self) {
        for shard in self.shards.iter() {
            shard.clear();
        }
    }

    /// Recomputes every internal invariant from scratch (table and policy
    /// agree, weights add up, nothing exceeds a capacity). For tests and
    /// fuzzers; it locks each shard in turn.
    pub fn validate(&self) -> Result<(), String> {
        for (i, shard) in self.shards.iter().enumerate() {
            shard.validate().map_err(|e| format!("shard {i}: {e}"))?;
        }
        Ok(())
    }
}

/// Entry-slot recycling; see [`Cache::slot_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotStats {
    /// Inserts that reused a slot freed by an eviction, removal or
    /// replacement (no allocation).
    pub reused: u64,
    /// Slots ever used: the high-water mark of entries, roughly.
    pub fresh: u64,
    /// Freed slots waiting for reuse now (not counting `retired` ones).
    pub free: usize,
    /// Slots whose entries were removed, replaced or evicted but whose
    /// memory waits for a grace period (no reader may still hold them);
    /// each shard's writer frees them at a later write.
    pub retired: usize,
    /// Outgrown or cleared index tables waiting the same way.
    pub retired_tables: usize,
}

impl<K, V, W, S> fmt::Debug for Cache<K, V, W, S>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("len", &self.len())
            .field("weight", &self.weight())
            .field("capacity", &self.capacity)
            .field("shards", &self.shards.len())
            .finish()
    }
}
