//! One shard: the lock-free map, its read buffer, and the policy behind the
//! shard's write lock.
//!
//! Reads go straight to [`RawMap::get`] and leave a record in the read
//! buffer; a reader whose stripe is full may replay the buffer under a
//! try-lock (`crate::recording` says when). Every write takes the lock,
//! first replays buffered reads into the policy, then changes the map and
//! the policy together, so that the set of entries in the table and in the
//! policy is the same whenever the lock is free (checked by
//! [`Shard::validate`]).

use crate::equivalent::{Equivalent, SidedKey, CLASS_BIT};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{RefusalReason, Refused};
use crate::hot::{Hitter, LockedShard, ShardHot};
use crate::policy::{Policy, SharedConfiguration, Victim};
use crate::raw::{read_buffer, RawMap, ReadBuffer, Writer};
use crate::reclaim::{pin, Guard};
use crate::recording::{HitRecording, HitRecordingStats};
use crate::removal::{ListenerSet, Listeners, RemovalCause};
use crate::retention::Retention;
use crate::sync::{Arc, AtomicU32, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

use crossbeam_utils::CachePadded;

/// How many records ahead a replay hints the policy lines a record will
/// touch (its node and sketch block; its list neighbours half as far).
/// Measured on the one-thread 95%-read mix (`examples/mix_probe`, helios's
/// ns per operation, median of 8 alternating processes of one binary):
/// no hints 72.9, 4 ahead 72.4, 8 ahead 68.8, 16 ahead 68.4, 32 ahead
/// 70.3. 8 keeps nearly all of the gain with the fewest lines in flight.
const REPLAY_AHEAD: usize = 8;

pub(crate) struct Shard<K, V> {
    /// Read by every hit (the table and slab pointers): read-mostly.
    map: RawMap<K, V>,
    reads: ReadBuffer,
    capacity: u64,
    /// What a hit does when its read-buffer stripe is full.
    hit_recording: HitRecording,
    /// Told about every entry that arrives or leaves, under the lock.
    listener: Option<Listeners<K, V>>,
    /// Written by every write (the lock word, the counters): on cache lines
    /// of their own, so that writers locking the shard do not invalidate the
    /// line readers load the table pointer from.
    write_side: CachePadded<WriteSide<K, V>>,
}

// Readers' fields and writers' fields never share a cache line.
const _: () = assert!(std::mem::align_of::<CachePadded<WriteSide<u64, u64>>>() >= 64);

struct WriteSide<K, V> {
    state: Mutex<State<K, V>>,
    /// Mirrors of `state.policy`'s length and weight, stored after every
    /// write so `len()`/`weight()` need no lock. Relaxed: they are
    /// statistics, exact whenever no write is in progress.
    len: AtomicUsize,
    weight: AtomicU64,
    /// Drains a reader that finds its read-buffer stripe full may still run
    /// before the next write (which resets it to
    /// `HitRecording::reader_drains_per_write`). Written under the lock;
    /// readers load it only when their stripe is full.
    reader_drains_left: AtomicU32,
}

struct State<K, V> {
    writer: Writer,
    policy: Policy,
    /// Reused buffer for the victims of one write (no allocation per write).
    victims: Vec<Victim>,
    /// Hot-tier bookkeeping (None when the tier is off). Every index that
    /// leaves the table or the policy goes through `ShardHot::invalidate`.
    hot: Option<ShardHot<K, V>>,
    /// Hit records replayed into the policy, and drains run by readers.
    recording: HitRecordingStats,
}

impl<K, V> Shard<K, V>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// `hot_buckets`: heavy-hitter buckets for the hot tier, 0 if it is off.
    pub(crate) fn new(
        capacity: u64,
        read_stripes: usize,
        hit_recording: HitRecording,
        hot_buckets: usize,
        listener: Option<Listeners<K, V>>,
        configuration: Option<(Arc<SharedConfiguration>, bool)>,
        sided: bool,
    ) -> Self {
        let (map, writer) = RawMap::new(sided);
        Self {
            map,
            reads: ReadBuffer::new(read_stripes),
            write_side: CachePadded::new(WriteSide {
                state: Mutex::new(State {
                    writer,
                    policy: match configuration {
                        Some((shared, leader)) => {
                            Policy::with_configuration(capacity, shared, leader)
                        }
                        None => Policy::new(capacity),
                    },
                    victims: Vec::new(),
                    // With side words, class-1 entries (an agent's private
                    // keys) stay out of the hot tier, which only class-0
                    // lookups read (`Cache::with_entry`).
                    hot: (hot_buckets > 0).then(|| {
                        ShardHot::new(hot_buckets, if sided { CLASS_BIT as u32 } else { 0 })
                    }),
                    recording: HitRecordingStats::default(),
                }),
                len: AtomicUsize::new(0),
                weight: AtomicU64::new(0),
                reader_drains_left: AtomicU32::new(hit_recording.reader_drains_per_write),
            }),
            capacity,
            hit_recording,
            listener,
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.write_side.len.load(Ordering::Relaxed)
    }

    pub(crate) fn weight(&self) -> u64 {
        self.write_side.weight.load(Ordering::Relaxed)
    }

    /// Runs `f` on the stored key and value of `key`, recording the hit.
    /// The lookup is lock-free; recording the hit never waits for a lock
    /// (see `drain_if_unlocked`), except with exact recording.
    #[inline]
    pub(crate) fn get<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.get_in(&pin(), hash, key, f)
    }

    /// [`get`](Self::get) inside the caller's read section.
    #[inline]
    pub(crate) fn get_in<Q, R>(
        &self,
        guard: &Guard,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&K, &V) -> R,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.lookup_in(guard, hash, key, |_, stored, value| f(stored, value))
    }

    /// [`get`](Self::get), also showing `f` the entry's side word.
    pub(crate) fn get_sided<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&K, u64, &V) -> R,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.lookup_in(&pin(), hash, key, |index, stored, value| {
            // SAFETY: `index` is the one the lookup found inside this
            // section, which is still open.
            f(stored, unsafe { self.map.side_in_section(index) }, value)
        })
    }

    /// A lookup that records its hit; `f` gets the entry's slab index.
    #[inline(always)]
    fn lookup_in<Q, R>(
        &self,
        guard: &Guard,
        hash: u64,
        key: &Q,
        f: impl FnOnce(u32, &K, &V) -> R,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.map.get(guard, hash, key, |index, stored, value| {
            let record = read_buffer::encode(index, hash as u32);
            if !self.reads.record(record) {
                if self.hit_recording.exact {
                    self.record_exactly(record);
                } else if self.write_side.reader_drains_left.load(Ordering::Relaxed) > 0 {
                    self.drain_if_unlocked(record);
                }
            }
            f(index, stored, value)
        })
    }

    /// Whether `key` is present, without counting as an access.
    pub(crate) fn contains<Q>(&self, hash: u64, key: &Q) -> bool
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.peek(hash, key, |_, _| ()).is_some()
    }

    /// Runs `f` on `key`'s entry without counting an access.
    pub(crate) fn peek<Q, R>(&self, hash: u64, key: &Q, f: impl FnOnce(&K, &V) -> R) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let guard = pin();
        self.map.get(&guard, hash, key, |_, k, v| f(k, v))
    }

    /// [`peek`](Self::peek), also showing `f` the entry's side word.
    pub(crate) fn peek_sided<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&K, u64, &V) -> R,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let guard = pin();
        self.map.get(&guard, hash, key, |index, k, v| {
            // SAFETY: `index` was found inside `guard`'s open section.
            f(k, unsafe { self.map.side_in_section(index) }, v)
        })
    }

    /// Drains the read buffer under the lock until `record` fits (only for
    /// exact recording; no lock is held by the caller).
    #[cold]
    fn record_exactly(&self, record: u64) {
        loop {
            let mut state = self.write_side.state.lock();
            Self::drain_reads(&self.reads, &mut state);
            state.recording.reader_drains += 1;
            drop(state);
            if self.reads.record(record) {
                return;
            }
        }
    }

    /// A full stripe's reader drains the buffer if the shard lock is free
    /// and the shard has reader drains left since its last write (see
    /// `crate::recording`), then records `record`; otherwise the record is
    /// dropped. Never waits. No lock is held by the caller.
    #[cold]
    fn drain_if_unlocked(&self, record: u64) {
        let Some(mut state) = self.write_side.state.try_lock() else {
            return;
        };
        // Under the lock: only lock holders write it.
        let left = self.write_side.reader_drains_left.load(Ordering::Relaxed);
        if left == 0 {
            return;
        }
        self.write_side
            .reader_drains_left
            .store(left - 1, Ordering::Relaxed);
        Self::drain_reads(&self.reads, &mut state);
        state.recording.reader_drains += 1;
        drop(state);
        // Another thread sharing the stripe may have refilled it: dropped.
        let _ = self.reads.record(record);
    }

    /// Locks the shard and replays its buffered hits, as every write does
    /// first, so that the policy has seen them before it changes; readers
    /// may drain again until the next write.
    fn lock_for_write(&self) -> MutexGuard<'_, State<K, V>> {
        let mut state = self.write_side.state.lock();
        Self::drain_reads(&self.reads, &mut state);
        self.write_side.reader_drains_left.store(
            self.hit_recording.reader_drains_per_write,
            Ordering::Relaxed,
        );
        state
    }

    /// Waits until no write holds the shard's lock: every listener call
    /// that began before this one has returned, and its effects are
    /// visible to the caller (the lock's release and acquire order them).
    pub(crate) fn wait_for_writers(&self) {
        drop(self.write_side.state.lock());
    }

    /// Hit records replayed and reader drains so far (locks the shard).
    pub(crate) fn hit_recording_stats(&self) -> HitRecordingStats {
        self.write_side.state.lock().recording
    }

    /// Whether an entry of `weight` can never fit in this shard.
    fn too_heavy(&self, weight: u64) -> bool {
        weight > self.capacity || weight > u64::from(u32::MAX)
    }

    /// Replays buffered hits into the policy (and the hot tier's summary).
    fn drain_reads(reads: &ReadBuffer, state: &mut State<K, V>) {
        // Replays in order, hinting each record's policy node and sketch
        // block `REPLAY_AHEAD` records ahead and its list neighbours half
        // as far (see `crate::prefetch`); the hints only read, so the
        // replay is exactly what a plain drain would do.
        reads.drain_ahead::<REPLAY_AHEAD, _>(
            state,
            |state, record| {
                let (index, hash) = read_buffer::decode(record);
                state.policy.prefetch_access(index, hash);
            },
            |state, record| {
                let (index, _) = read_buffer::decode(record);
                state.policy.prefetch_neighbours(index);
            },
            |state, record| {
                state.recording.replayed += 1;
                let (index, hash) = read_buffer::decode(record);
                if state.policy.access(index, hash) {
                    if let Some(hot) = state.hot.as_mut() {
                        hot.record(index, hash);
                    }
                }
            },
        );
    }

    /// Inserts or replaces `key`, then evicts until the shard fits.
    pub(crate) fn insert(
        &self,
        hash: u64,
        key: K,
        side: u64,
        value: V,
        weight: u64,
    ) -> Result<(), Refused<K, V>> {
        let mut state = self.lock_for_write();
        // After the lock: a writer queued on it must not hold back
        // reclamation. Dropped before the lock (declared after it).
        let guard = pin();
        let State {
            writer,
            policy,
            victims,
            hot,
            ..
        } = &mut *state;
        // With side words, the entry replaced is the one of the same key
        // and side identity (an agent's private key, not another's).
        let identity = SidedKey {
            key: &key,
            side,
            sided: self.map.is_sided(),
        };
        let existing = self.map.find(writer, &guard, hash, &identity);

        if self.too_heavy(weight) {
            if let Some((pos, index)) = existing {
                self.notify(
                    writer,
                    index,
                    policy.weight_of(index),
                    RemovalCause::Replaced,
                );
                invalidate(hot, index);
                self.map.remove_at(writer, &guard, pos);
                policy.remove(index);
                self.publish_counts(policy);
            }
            let max = self.capacity.min(u64::from(u32::MAX));
            return Err(Refused {
                key,
                value,
                reason: RefusalReason::TooHeavy { weight, max },
            });
        }
        // Fits in u32: checked above.
        let weight32 = weight as u32;

        let stored = match existing {
            Some(found) => self
                .replace_found(
                    writer,
                    policy,
                    hot,
                    &guard,
                    found,
                    (key, value),
                    side,
                    weight32,
                )
                .map_err(|entry| (entry, existing)),
            None => self
                .map
                .insert(writer, &guard, hash, (key, value), side, |i| {
                    u64::from(policy.hash_of(i))
                })
                .inspect(|&index| policy.insert(index, hash as u32, weight32))
                .map_err(|entry| (entry, None)),
        };
        let index = match stored {
            Ok(index) => index,
            Err(((key, value), existing)) => {
                self.out_of_indices(writer, policy, victims, hot, &guard, existing);
                return Err(Refused {
                    key,
                    value,
                    reason: RefusalReason::IndexSpaceExhausted,
                });
            }
        };
        self.stored(writer, policy, victims, hot, &guard, index);
        Ok(())
    }

    /// An insert found no free entry index: the shard's slots that wait
    /// for readers used up what its live entries leave (`MAX_INDEX`; the
    /// policy keeps the live entries well below it). Out of line: it should
    /// never run.
    #[cold]
    #[inline(never)]
    fn out_of_indices(
        &self,
        writer: &mut Writer,
        policy: &mut Policy,
        victims: &mut Vec<Victim>,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
        existing: Option<(usize, u32)>,
    ) {
        let panicked = match existing {
            // The listener has heard that the old entry leaves (see
            // `replace_found`): make it so, so that no stale value is
            // served.
            Some((pos, old)) => {
                invalidate(hot, old);
                self.map.remove_at(writer, guard, pos);
                policy.remove(old);
                None
            }
            // Evict one entry by count, so that later inserts find an index
            // once its slot is reclaimed.
            None if policy.evict_one(victims) => self.remove_victims(writer, victims, hot, guard),
            None => None,
        };
        self.publish_counts(policy);
        if let Some(payload) = panicked {
            std::panic::resume_unwind(payload);
        }
    }

    /// Replaces the entry `found` (table position, slab index) with
    /// `entry` weighing `weight`; returns the new slab index.
    // The caller has the shard state split into its parts already.
    #[allow(clippy::too_many_arguments)]
    fn replace_found(
        &self,
        writer: &mut Writer,
        policy: &mut Policy,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
        (pos, old): (usize, u32),
        entry: (K, V),
        side: u64,
        weight: u32,
    ) -> Result<u32, (K, V)> {
        // Told before the replacement: afterwards the old slot is no longer
        // live. (If the replacement then fails for lack of slot indices,
        // the caller removes the old entry, so the departure happens.)
        self.notify(writer, old, policy.weight_of(old), RemovalCause::Replaced);
        invalidate(hot, old);
        self.map
            .replace(writer, guard, pos, entry, side)
            .inspect(|&new| policy.replace(old, new, weight))
    }

    /// After an entry was stored at `index`: tells the listener, evicts
    /// until the shard fits, publishes the counts.
    ///
    /// A listener that panics does not leave the shard half-updated: the
    /// panic is caught, the eviction finishes (every victim leaves the
    /// table as it left the policy), the counts are published, and then the
    /// panic resumes on the caller's thread.
    fn stored(
        &self,
        writer: &mut Writer,
        policy: &mut Policy,
        victims: &mut Vec<Victim>,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
        index: u32,
    ) {
        let Some(listeners) = &self.listener else {
            // No listener, no panic to contain: the plain cache's path.
            policy.evict(victims, |_| Retention::Normal);
            self.remove_victims(writer, victims, hot, guard);
            self.publish_counts(policy);
            return;
        };
        self.stored_with_listeners(listeners, writer, policy, victims, hot, guard, index);
    }

    /// [`stored`](Self::stored) for a shard with listeners.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn stored_with_listeners(
        &self,
        listeners: &ListenerSet<K, V>,
        writer: &mut Writer,
        policy: &mut Policy,
        victims: &mut Vec<Victim>,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
        index: u32,
    ) {
        let mut panicked = listeners.on_insert.as_ref().and_then(|on_insert| {
            let weight = u64::from(policy.weight_of(index));
            let side = self.map.side_of(writer, index);
            catch_unwind(AssertUnwindSafe(|| {
                self.map
                    .with_entry(writer, index, |(k, v)| on_insert(k, side, v, weight))
            }))
            .err()
        });
        match &listeners.retention {
            // A judge that panics judges `Normal` for the rest of this
            // eviction, which then finishes; the panic resumes below.
            Some(retention) => policy.evict(victims, |index| {
                if panicked.is_some() {
                    return Retention::Normal;
                }
                let side = self.map.side_of(writer, index);
                catch_unwind(AssertUnwindSafe(|| {
                    self.map
                        .with_entry(writer, index, |(k, v)| retention(k, side, v))
                }))
                .unwrap_or_else(|payload| {
                    panicked = Some(payload);
                    Retention::Normal
                })
            }),
            None => policy.evict(victims, |_| Retention::Normal),
        }
        let evicting = self.remove_victims(writer, victims, hot, guard);
        self.publish_counts(policy);
        if let Some(payload) = panicked.or(evicting) {
            std::panic::resume_unwind(payload);
        }
    }

    /// Replaces the entry of `key`, if present, by what `f` makes of the
    /// current one (shown its side word too: a key and side word of the
    /// same identity as the stored ones, a value and its weight),
    /// atomically: no write to the key can come between `f`'s read and the
    /// replacement. Returns whether it replaced; `f` returning None, or a
    /// weight too heavy for the shard, leaves the entry as it was.
    pub(crate) fn update<Q>(
        &self,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&K, u64, &V) -> Option<(K, u64, V, u64)>,
    ) -> bool
    where
        Q: Equivalent<K> + ?Sized,
    {
        let mut state = self.lock_for_write();
        // After the lock: a writer queued on it must not hold back
        // reclamation. Dropped before the lock (declared after it).
        let guard = pin();
        let State {
            writer,
            policy,
            victims,
            hot,
            ..
        } = &mut *state;
        let Some(found) = self.map.find(writer, &guard, hash, key) else {
            return false;
        };
        let side = self.map.side_of(writer, found.1);
        let Some((key, side, value, weight)) =
            self.map.with_entry(writer, found.1, |(k, v)| f(k, side, v))
        else {
            return false;
        };
        if self.too_heavy(weight) {
            return false;
        }
        // Fits in u32: checked above.
        match self.replace_found(
            writer,
            policy,
            hot,
            &guard,
            found,
            (key, value),
            side,
            weight as u32,
        ) {
            Ok(new) => {
                self.stored(writer, policy, victims, hot, &guard, new);
                true
            }
            // No index for the new value: the old entry leaves, as the
            // listener was told (see `out_of_indices`).
            Err(_) => {
                self.out_of_indices(writer, policy, victims, hot, &guard, Some(found));
                false
            }
        }
    }

    /// Tells the listener of each victim (already out of the policy) and
    /// unlinks it. Every victim is unlinked even if the listener panics;
    /// the first panic's payload is returned for the caller to resume once
    /// the shard is consistent.
    #[inline(always)]
    fn remove_victims(
        &self,
        writer: &mut Writer,
        victims: &mut Vec<Victim>,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
    ) -> Option<Box<dyn std::any::Any + Send>> {
        let listening = self
            .listener
            .as_ref()
            .is_some_and(|l| l.on_removal.is_some());
        if !listening {
            for victim in victims.drain(..) {
                self.unlink_victim(writer, victim, hot, guard);
            }
            return None;
        }
        let mut panicked = None;
        for victim in victims.drain(..) {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| {
                self.notify(writer, victim.index, victim.weight, RemovalCause::Evicted)
            })) {
                panicked.get_or_insert(payload);
            }
            self.unlink_victim(writer, victim, hot, guard);
        }
        panicked
    }

    /// Takes a victim (already out of the policy) out of the hot tier and
    /// the table.
    #[inline(always)]
    fn unlink_victim(
        &self,
        writer: &mut Writer,
        victim: Victim,
        hot: &mut Option<ShardHot<K, V>>,
        guard: &Guard,
    ) {
        invalidate(hot, victim.index);
        let unlinked = self
            .map
            .remove_index(writer, guard, u64::from(victim.hash), victim.index);
        debug_assert!(unlinked, "policy victim {victim:?} was not in the table");
    }

    /// Tells the listener, if any, that the entry at `index` leaves.
    #[inline]
    fn notify(&self, writer: &Writer, index: u32, weight: u32, cause: RemovalCause) {
        if let Some(on_removal) = self.listener.as_ref().and_then(|l| l.on_removal.as_ref()) {
            let weight = u64::from(weight);
            let side = self.map.side_of(writer, index);
            self.map.with_entry(writer, index, |(k, v)| {
                on_removal(k, side, v, cause, weight)
            });
        }
    }

    fn publish_counts(&self, policy: &Policy) {
        self.write_side.len.store(policy.len(), Ordering::Relaxed);
        self.write_side
            .weight
            .store(policy.weight(), Ordering::Relaxed);
    }

    /// Removes `key`, returning a clone of its value.
    pub(crate) fn remove<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        Q: Equivalent<K> + ?Sized,
        V: Clone,
    {
        let mut state = self.lock_for_write();
        // After the lock: a writer queued on it must not hold back
        // reclamation. Dropped before the lock (declared after it).
        let guard = pin();
        let State {
            writer,
            policy,
            hot,
            ..
        } = &mut *state;
        let (pos, index) = self.map.find(writer, &guard, hash, key)?;
        self.notify(
            writer,
            index,
            policy.weight_of(index),
            RemovalCause::Removed,
        );
        invalidate(hot, index);
        let value = self.map.with_entry(writer, index, |(_, v)| v.clone());
        self.map.remove_at(writer, &guard, pos);
        // An explicit removal goes to limbo now rather than with the
        // next full batch.
        self.map.flush_retired(writer, &guard);
        policy.remove(index);
        self.publish_counts(policy);
        drop(guard);
        // Outside our section, the removal waits only for other readers: if
        // a grace period is due it runs now, and the value is dropped here
        // unless a reader still holds it (then at a later write).
        self.map.collect(&mut state.writer);
        Some(value)
    }

    /// Moves every entry for which `pred` holds to the front of the
    /// eviction order; returns how many. Holds the lock for one pass over
    /// the shard's entries.
    pub(crate) fn demote_where(&self, pred: &dyn Fn(&K, u64, &V) -> bool) -> usize {
        let mut state = self.lock_for_write();
        let State { writer, policy, .. } = &mut *state;
        let mut indices = Vec::with_capacity(policy.len());
        policy.resident_indices(&mut indices);
        let mut demoted = 0;
        // Each demotion goes to the front, so walk from the most valuable
        // (protected, most recent) to the least: the least valuable ends up
        // first in line.
        for index in indices.into_iter().rev() {
            let side = self.map.side_of(writer, index);
            if self
                .map
                .with_entry(writer, index, |(k, v)| pred(k, side, v))
            {
                policy.demote(index);
                demoted += 1;
            }
        }
        demoted
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock_for_write();
        // After the lock: a writer queued on it must not hold back
        // reclamation. Dropped before the lock (declared after it).
        let guard = pin();
        let State {
            writer,
            policy,
            hot,
            ..
        } = &mut *state;
        if let Some(hot) = hot {
            hot.invalidate_all();
        }
        if self
            .listener
            .as_ref()
            .is_some_and(|l| l.on_removal.is_some())
        {
            let mut indices = Vec::with_capacity(policy.len());
            policy.resident_indices(&mut indices);
            for index in indices {
                self.notify(
                    writer,
                    index,
                    policy.weight_of(index),
                    RemovalCause::Cleared,
                );
            }
        }
        self.map.clear(writer, &guard);
        policy.clear();
        self.publish_counts(policy);
        drop(guard);
        // As in `remove`: outside our section the cleared entries wait only
        // for other readers.
        self.map.collect(&mut state.writer);
    }

    /// Heap bytes of this shard's table, slab slots and policy metadata.
    pub(crate) fn heap_bytes(&self) -> usize {
        let state = self.write_side.state.lock();
        let guard = pin();
        self.map.bytes(&guard)
            + state.policy.bytes()
            + state.hot.as_ref().map_or(0, ShardHot::bytes)
    }

    /// Slab slot statistics: `(reused, ever used, free now)`, and what the
    /// writer retired and has not freed yet: `(slots, tables)`.
    pub(crate) fn slot_stats(&self) -> ((u64, u64, usize), (usize, usize)) {
        let state = self.write_side.state.lock();
        (
            self.map.slot_stats(&state.writer),
            self.map.retired(&state.writer),
        )
    }

    /// Locks the shard for a hot-tier refresh.
    pub(crate) fn lock(&self) -> Locked<'_, K, V> {
        Locked {
            shard: self,
            state: self.write_side.state.lock(),
        }
    }

    /// Checks that table, policy and counters agree and the weight fits.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let state = self.write_side.state.lock();
        let guard = pin();
        let policy = &state.policy;
        let live = self
            .map
            .validate(&state.writer, &guard, |i| u64::from(policy.hash_of(i)))?;
        policy.validate()?;
        if live.len() != policy.len() {
            return Err(format!(
                "table holds {} entries, policy {}",
                live.len(),
                policy.len()
            ));
        }
        let weight: u64 = live.iter().map(|&i| u64::from(policy.weight_of(i))).sum();
        if weight != policy.weight() {
            return Err(format!(
                "entries weigh {weight}, policy says {}",
                policy.weight()
            ));
        }
        if weight > self.capacity || policy.capacity() != self.capacity {
            return Err(format!(
                "weight {weight} exceeds capacity {}",
                self.capacity
            ));
        }
        if self.len() != live.len() || self.weight() != weight {
            return Err("published len/weight are stale".into());
        }
        Ok(())
    }
}

impl<K, V> Drop for Shard<K, V> {
    fn drop(&mut self) {
        let state = self.write_side.state.get_mut();
        self.map.release_retiring(&mut state.writer);
    }
}

#[inline]
fn invalidate<K, V>(hot: &mut Option<ShardHot<K, V>>, index: u32) {
    if let Some(hot) = hot {
        hot.invalidate(index);
    }
}

/// A shard locked by a hot-tier refresh.
pub(crate) struct Locked<'a, K, V> {
    shard: &'a Shard<K, V>,
    state: MutexGuard<'a, State<K, V>>,
}

impl<K, V> LockedShard<K, V> for Locked<'_, K, V>
where
    K: Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    fn hitters(&mut self, f: &mut dyn FnMut(Hitter, u32)) {
        Shard::drain_reads(&self.shard.reads, &mut self.state);
        let State { policy, hot, .. } = &mut *self.state;
        let Some(hot) = hot else { return };
        for hitter in hot.hitters().hitters() {
            if policy.is_resident(hitter.index) && policy.hash_of(hitter.index) == hitter.hash {
                f(hitter, policy.weight_of(hitter.index));
            }
        }
    }

    fn entry<R>(&self, index: u32, hash: u32, f: impl FnOnce(&K, &V) -> R) -> Option<R> {
        let policy = &self.state.policy;
        if !policy.is_resident(index) || policy.hash_of(index) != hash {
            return None;
        }
        Some(
            self.shard
                .map
                .with_entry(&self.state.writer, index, |(k, v)| f(k, v)),
        )
    }

    fn hot(&mut self) -> &mut ShardHot<K, V> {
        self.state.hot.get_or_insert_with(|| ShardHot::new(0, 0))
    }
}
