//! The lock-free core: a per-shard map from keys to `(key, value)` slots that
//! readers search without locks, and one writer at a time mutates.
//!
//! All `unsafe` code and all atomics of the hit path live under `raw`; the
//! rest of the crate is safe code on top of [`RawMap`] and [`Writer`].
//!
//! # Read protocol
//! 1. Enter a read section ([`crate::reclaim::pin`]): load the domain's
//!    epoch and store it in the thread's own cache-padded record, which
//!    other threads only read; no fence when `membarrier` is available
//!    (`sections` explains why that is safe). Readers never help reclaim.
//! 2. Load the table pointer (Acquire; pairs with the Release that published
//!    that table in `rebuild`).
//! 3. Probe: load each slot (Acquire; pairs with the Release in
//!    `Table::set`), so an index that is seen has its slab entry and the
//!    entry's chunk visible. Stop at `EMPTY`, skip `TOMBSTONE`.
//! 4. Compare the key in the slab slot; on a match run the caller's closure on
//!    the value (usually a clone).
//! 5. Leave the section (a `Release` store to the same record).
//!
//! No step takes a lock, allocates, or writes memory another thread writes. A reader can observe a table or slot that a writer has just
//! replaced; it then returns the value as of a moment during its call, which
//! is the linearizability a concurrent map gives (a `get` that *starts* after
//! `remove` or `insert` returned sees the change).
//!
//! # Write protocol
//! Writers are serialised by the shard's lock, represented here by the
//! [`Writer`] token: every mutating method takes `&mut Writer`, and each map
//! has exactly one. A writer never frees memory a reader might hold: unlinked
//! slots (in batches of 64) and replaced tables go to the writer's limbo
//! ([`crate::reclaim::Limbo`]), stamped, and the writer frees them at a later
//! flush once a grace period has passed and no section older than the stamp
//! remains. Writers run inside sections too, which keeps a slot they
//! retired earlier in the same call alive while they still use it.

pub(crate) mod hot;
#[cfg(all(test, loom))]
mod loom_tests;
pub(crate) mod read_buffer;
pub(crate) mod sections;
mod slab;
mod table;

use crate::equivalent::Equivalent;

use crate::reclaim::{Guard, Limbo};
use crate::sync::{AtomicPtr, Ordering};

pub(crate) use read_buffer::ReadBuffer;
pub(crate) use slab::MAX_INDEX;
use slab::{Batch, Slab, RETIRE_BATCH};
use table::{tag, word, Table, EMPTY, INDEX_MASK, MIN_SLOTS, TOMBSTONE};

/// The reader-visible half of a shard.
pub(crate) struct RawMap<K, V> {
    /// Never null. Replaced only by the writer (`rebuild`, `clear`); the
    /// replaced table is retired, never written again.
    table: AtomicPtr<Table>,
    /// Entries; a slot unlinked from the table is released only when the
    /// writer's limbo says no reader can hold it.
    slab: Slab<K, V>,
}

/// Exclusive write access to one [`RawMap`], plus the writer's bookkeeping.
///
/// Created together with its map by [`RawMap::new`]; whoever holds it (the
/// shard's mutex) is the only writer. Methods taking a `Writer` must be given
/// the one created with the same map.
#[derive(Debug)]
pub(crate) struct Writer {
    /// Table slots holding a slab index.
    live: usize,
    /// Table slots holding `TOMBSTONE`.
    tombstones: usize,
    /// Unlinked slots not yet in limbo: `retiring[..n]`. Their entries stay
    /// alive (unreachable) until the batch is full, a `remove` or `clear`
    /// flushes it, or the shard is dropped.
    retiring: Batch,
    retiring_len: usize,
    /// Unlinked batches and tables waiting until no reader can hold them.
    limbo: Limbo<Retired>,
    /// Inserts since limbo was last looked at from `insert`.
    inserts_since_collect: u32,
    /// Emptied retirement batches, reused so that retiring does not
    /// allocate. The writer's alone: only it retires and frees.
    spare_batches: Vec<Batch>,
    /// Slots in limbo (the sum over its `Slots` items).
    limbo_slots: usize,
}

/// Inserts between two looks at a non-empty limbo from `insert` (a look is
/// a clock read and, when a grace period is due, a pass over the readers'
/// records): rare enough to cost nothing per insert, often enough that a
/// replaced table waits for at most this many inserts past its grace period.
const COLLECT_EVERY_INSERTS: u32 = 64;

/// Something unlinked from the map, freed when its grace period is over.
#[derive(Debug)]
enum Retired {
    /// Slab slots `batch[..len]`.
    Slots(Batch, usize),
    /// A replaced table, from `Box::into_raw`. A raw pointer rather than a
    /// `Box`, which would claim unique access while readers still read it.
    Table(TablePtr),
}

/// A replaced table's pointer, owned by the limbo it waits in.
#[derive(Debug)]
struct TablePtr(*mut Table);
// SAFETY: the pointee is a `Table` (which is `Send`) that only the limbo's
// owner, the shard's writer, frees; readers only read it.
unsafe impl Send for TablePtr {}

impl<K, V> RawMap<K, V>
where
    K: Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    /// A map; with `sided`, a side word beside each entry (`slab`).
    pub(crate) fn new(sided: bool) -> (Self, Writer) {
        let table = Box::into_raw(Box::new(Table::new(MIN_SLOTS)));
        let slab = Slab::new(sided);
        let map = Self {
            table: AtomicPtr::new(table),
            slab,
        };
        (
            map,
            Writer {
                live: 0,
                tombstones: 0,
                retiring: Box::new([0; RETIRE_BATCH]),
                retiring_len: 0,
                limbo: Limbo::new(),
                inserts_since_collect: 0,
                spare_batches: Vec::new(),
                limbo_slots: 0,
            },
        )
    }

    /// The current table.
    ///
    /// Acquire pairs with the Release store in `publish`. The reference may
    /// outlive the table's replacement but not its reclamation: callers are
    /// inside a read section (readers and the writer alike).
    #[inline(always)]
    fn table<'g>(&self, _guard: &'g Guard) -> &'g Table {
        // SAFETY: never null (see field invariant); a replaced table goes to
        // the writer's limbo, which frees it only after every section that
        // began before the replacement has ended, and `_guard` is such a
        // section, so the table outlives `'g`.
        unsafe { &*self.table.load(Ordering::Acquire) }
    }

    /// Looks `key` up and runs `f` on its index and value. Lock-free; see the
    /// module docs for the protocol.
    #[inline]
    pub(crate) fn get<Q, R>(
        &self,
        guard: &Guard,
        hash: u64,
        key: &Q,
        f: impl FnOnce(u32, &K, &V) -> R,
    ) -> Option<R>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let table = self.table(guard);
        let tag = tag(hash);
        let mut f = Some(f);
        for pos in table.probe(hash) {
            let word = table.get(pos);
            if word == EMPTY {
                return None;
            }
            // Markers have tag 0xff; checking the tag first keeps one branch
            // on the common path.
            if word >> 24 != tag || word == TOMBSTONE {
                continue;
            }
            let index = word & INDEX_MASK;
            // SAFETY: `index` was loaded from a table inside `guard`'s
            // section, so its slot stays occupied until the guard drops:
            // slots are released only from limbo, once a grace period begun
            // after their stamp (which follows their unlink) has completed
            // and every section that announced an older epoch has ended; a
            // section announcing a newer one cannot load the index.
            let found = unsafe {
                self.slab.with(index, |(k, v)| {
                    // SAFETY (the side word): as for the entry, above.
                    if key.equivalent(k) && key.side_matches(|| self.slab.side(index)) {
                        f.take().map(|f| f(index, k, v))
                    } else {
                        None
                    }
                })
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    /// Table position and slab index of `key`'s entry (writer only).
    #[inline(always)]
    pub(crate) fn find<Q>(
        &self,
        _w: &Writer,
        guard: &Guard,
        hash: u64,
        key: &Q,
    ) -> Option<(usize, u32)>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let table = self.table(guard);
        let tag = tag(hash);
        for pos in table.probe(hash) {
            let word = table.get(pos);
            if word == EMPTY {
                return None;
            }
            if word >> 24 != tag || word == TOMBSTONE {
                continue;
            }
            let index = word & INDEX_MASK;
            // SAFETY: the writer sees live indices only, and only the writer
            // releases slots, so the slot is occupied.
            let matches = unsafe { self.slab.with(index, |(k, _)| key.equivalent(k)) };
            // SAFETY: as above.
            if matches && key.side_matches(|| unsafe { self.slab.side(index) }) {
                return Some((pos, index));
            }
        }
        None
    }

    /// Runs `f` on the live entry at `index` (writer only).
    pub(crate) fn with_entry<R>(&self, _w: &Writer, index: u32, f: impl FnOnce(&(K, V)) -> R) -> R {
        // SAFETY: the writer passes live indices only (taken from the table
        // or the policy, which mirrors it) and no one else releases slots.
        unsafe { self.slab.with(index, f) }
    }

    /// The side word of the live entry at `index` (writer only; 0 without
    /// side words).
    pub(crate) fn side_of(&self, _w: &Writer, index: u32) -> u64 {
        // SAFETY: as in `with_entry`.
        unsafe { self.slab.side(index) }
    }

    /// The side word of the entry at `index`, found by a lookup inside a
    /// read section (0 without side words).
    ///
    /// # Safety
    /// `index` was loaded from a table inside the caller's live section
    /// (as the index `get` passes to its closure): its slot stays occupied.
    pub(crate) unsafe fn side_in_section(&self, index: u32) -> u64 {
        // SAFETY: the caller's contract.
        unsafe { self.slab.side(index) }
    }

    /// Whether entries have side words.
    pub(crate) fn is_sided(&self) -> bool {
        self.slab.is_sided()
    }

    /// Inserts an entry whose key is absent, returning its slab index; the
    /// entry comes back if the index space is exhausted. `hash_of` returns
    /// the hash of any live index, for rebuilding the table.
    pub(crate) fn insert(
        &self,
        w: &mut Writer,
        guard: &Guard,
        hash: u64,
        entry: (K, V),
        side: u64,
        hash_of: impl Fn(u32) -> u64,
    ) -> Result<u32, (K, V)> {
        if self.table(guard).overloaded(w.live + w.tombstones + 1) {
            self.rebuild(w, guard, Table::slots_for(w.live + 1), hash_of);
        }
        // SAFETY: `w` proves we are the only writer.
        let index = unsafe { self.slab.alloc(entry, side)? };
        let table = self.table(guard);
        // The key is absent, so the first free slot on its probe path is its
        // home; one exists because the table is below its maximum load.
        let pos = table
            .probe(hash)
            .find(|&pos| matches!(table.get(pos), EMPTY | TOMBSTONE));
        let Some(pos) = pos else {
            unreachable!("table below maximum load has a free slot");
        };
        if table.get(pos) == TOMBSTONE {
            w.tombstones -= 1;
        }
        table.set(pos, word(index, hash));
        w.live += 1;
        // A cache that only grows retires nothing but its outgrown tables
        // (which sum to about the current one), so limbo is also looked at
        // every so many inserts, not only when slots are retired.
        w.inserts_since_collect = w.inserts_since_collect.saturating_add(1);
        if w.inserts_since_collect >= COLLECT_EVERY_INSERTS && !w.limbo.is_empty() {
            w.inserts_since_collect = 0;
            self.collect(w);
        }
        Ok(index)
    }

    /// Replaces the entry at table position `pos` with `entry`; returns the
    /// new slab index. The old entry is retired.
    pub(crate) fn replace(
        &self,
        _w: &mut Writer,
        guard: &Guard,
        pos: usize,
        entry: (K, V),
        side: u64,
    ) -> Result<u32, (K, V)> {
        // SAFETY: `_w` proves we are the only writer.
        let index = unsafe { self.slab.alloc(entry, side)? };
        let table = self.table(guard);
        let old = table.get(pos);
        debug_assert!(old != EMPTY && old != TOMBSTONE);
        // Same key, so same hash and tag: keep the tag, swap the index.
        table.set(pos, (old & !INDEX_MASK) | index);
        self.retire_slot(_w, guard, old & INDEX_MASK);
        Ok(index)
    }

    /// Removes the entry at table position `pos` and retires it.
    pub(crate) fn remove_at(&self, w: &mut Writer, guard: &Guard, pos: usize) {
        let table = self.table(guard);
        let old = table.get(pos);
        debug_assert!(old != EMPTY && old != TOMBSTONE);
        table.set(pos, TOMBSTONE);
        w.live -= 1;
        w.tombstones += 1;
        self.retire_slot(w, guard, old & INDEX_MASK);
    }

    /// Removes the entry with slab index `index`, whose key hashes to `hash`.
    /// Returns false if no such entry is linked.
    pub(crate) fn remove_index(
        &self,
        w: &mut Writer,
        guard: &Guard,
        hash: u64,
        index: u32,
    ) -> bool {
        let table = self.table(guard);
        let target = word(index, hash);
        let pos = table
            .probe(hash)
            .map(|pos| (pos, table.get(pos)))
            .find(|&(_, v)| v == target || v == EMPTY);
        match pos {
            Some((pos, v)) if v == target => {
                self.remove_at(w, guard, pos);
                true
            }
            _ => false,
        }
    }

    /// Removes every entry.
    pub(crate) fn clear(&self, w: &mut Writer, guard: &Guard) {
        let old = self.table(guard);
        // Unlink first: every slot is stamped after the swap that made it
        // unreachable (stamping a batch while the old table still links it
        // would let a section that begins after the stamp find it). `old`
        // stays valid: our own section began before its stamp.
        self.publish(w, Table::new(MIN_SLOTS));
        for index in old.live() {
            self.retire_slot(w, guard, index);
        }
        self.flush_retired(w, guard);
        w.live = 0;
        w.tombstones = 0;
    }

    /// Builds a table of `slots` slots holding the live entries, publishes it
    /// and retires the old one. Drops all tombstones.
    fn rebuild(&self, w: &mut Writer, guard: &Guard, slots: usize, hash_of: impl Fn(u32) -> u64) {
        let old = self.table(guard);
        let new = Table::new(slots);
        for index in old.live() {
            let hash = hash_of(index);
            if let Some(pos) = new.probe(hash).find(|&pos| new.get(pos) == EMPTY) {
                new.set(pos, word(index, hash));
            }
        }
        self.publish(w, new);
        w.tombstones = 0;
    }

    /// Makes `table` current and retires the previous one.
    fn publish(&self, w: &mut Writer, table: Table) {
        let new = Box::into_raw(Box::new(table));
        // Release pairs with the Acquire in `table()`: a reader that loads
        // the new pointer sees the slots written before publication.
        let old = self.table.swap(new, Ordering::AcqRel);
        w.limbo.retire(Retired::Table(TablePtr(old)));
    }

    /// Queues an unlinked slot for release after a grace period, in batches.
    fn retire_slot(&self, w: &mut Writer, guard: &Guard, index: u32) {
        w.retiring[w.retiring_len] = index;
        w.retiring_len += 1;
        if w.retiring_len == RETIRE_BATCH {
            self.flush_retired(w, guard);
        }
    }

    /// Moves the queued slots to limbo (one stamp per batch) and frees what
    /// limbo says no reader can hold any more. `_guard` is the caller's
    /// section: it covers every retired entry the caller still references
    /// (anything retired since it began cannot be freed before it ends).
    pub(crate) fn flush_retired(&self, w: &mut Writer, _guard: &Guard) {
        if w.retiring_len > 0 {
            let spare = w.spare_batches.pop();
            let batch = std::mem::replace(
                &mut w.retiring,
                spare.unwrap_or_else(|| Box::new([0; RETIRE_BATCH])),
            );
            let len = std::mem::take(&mut w.retiring_len);
            w.limbo.retire(Retired::Slots(batch, len));
            w.limbo_slots += len;
        }
        self.collect(w);
    }

    /// Frees what limbo says no reader can hold any more. Called inside the
    /// writer's section (from `flush_retired` and `insert`) and by `Shard`
    /// after it (so the retirements of the call no longer wait for the
    /// writer itself; without a `Guard` the caller holds no reference into
    /// the table or slots, since every way to get one takes a guard). A
    /// grace period is
    /// urgent when limbo holds more than an eighth of the live entries'
    /// slots (plus a few batches): that bounds the slab's growth under
    /// churn to about that, however slow the heavy fence is, unless a
    /// reader inside an old section holds the slots back (then nothing can
    /// free them until it leaves, and grace periods keep their normal pace).
    pub(crate) fn collect(&self, w: &mut Writer) {
        let urgent = w.limbo_slots > w.live / 8 + 4 * RETIRE_BATCH;
        let Writer {
            limbo,
            spare_batches,
            limbo_slots,
            ..
        } = w;
        limbo.collect(urgent, |item| {
            *limbo_slots -= self.free(item, spare_batches)
        });
    }

    /// The slab's slot statistics: `(reused, ever used, free now)`.
    pub(crate) fn slot_stats(&self, _w: &Writer) -> (u64, u64, usize) {
        // SAFETY: `_w` proves we are the only writer.
        unsafe { self.slab.stats() }
    }

    /// What the writer has retired and not freed: `(slots, tables)`,
    /// counting slots still queued for their batch.
    pub(crate) fn retired(&self, w: &Writer) -> (usize, usize) {
        w.limbo
            .iter()
            .fold((w.retiring_len, 0), |(slots, tables), item| match item {
                Retired::Slots(_, len) => (slots + len, tables),
                Retired::Table(_) => (slots, tables + 1),
            })
    }

    /// Heap bytes of the current table and the slab's slots.
    pub(crate) fn bytes(&self, guard: &Guard) -> usize {
        self.table(guard).bytes() + self.slab.bytes()
    }

    /// Recomputes the writer's counters from the table and checks that every
    /// live entry is reachable from its hash. Returns the live indices.
    pub(crate) fn validate(
        &self,
        w: &Writer,
        guard: &Guard,
        hash_of: impl Fn(u32) -> u64,
    ) -> Result<Vec<u32>, String> {
        let table = self.table(guard);
        let live: Vec<u32> = table.live().collect();
        let tombstones = (0..table.len())
            .filter(|&p| table.get(p) == TOMBSTONE)
            .count();
        if live.len() != w.live || tombstones != w.tombstones {
            return Err(format!(
                "table counts live={} tombstones={} but writer has live={} tombstones={}",
                live.len(),
                tombstones,
                w.live,
                w.tombstones
            ));
        }
        let mut sorted = live.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|p| p[0] == p[1]) {
            return Err("a slab index is linked twice".into());
        }
        for &index in &live {
            let target = word(index, hash_of(index));
            let reachable = table
                .probe(hash_of(index))
                .map(|pos| table.get(pos))
                .take_while(|&v| v != EMPTY)
                .any(|v| v == target);
            if !reachable {
                return Err(format!(
                    "index {index} is not reachable from its hash, or its tag is wrong"
                ));
            }
        }
        Ok(live)
    }
}

impl<K, V> RawMap<K, V> {
    /// Frees one item from limbo (keeping its batch for reuse); returns the
    /// slots it released. Only the writer calls it, with an item limbo
    /// handed back (or with exclusive access to the map).
    fn free(&self, item: Retired, spare_batches: &mut Vec<Batch>) -> usize {
        match item {
            Retired::Slots(batch, len) => {
                // SAFETY: every index in the batch was unlinked from the
                // table before the batch was stamped, and limbo hands it back
                // only once every section that began before that has ended
                // (or the caller has `&mut` access: no reader exists); later
                // sections cannot find the slots. Each slot is retired once,
                // so it is still occupied.
                unsafe { self.slab.release_all(&batch[..len]) };
                spare_batches.push(batch);
                len
            }
            Retired::Table(old) => {
                // SAFETY: `old` came from `Box::into_raw` in `new`/`publish`,
                // was swapped out before it was stamped, and limbo hands it
                // back once, after every section that could have loaded it.
                drop(unsafe { Box::from_raw(old.0) });
                0
            }
        }
    }

    /// Releases the queued slots and everything in limbo at once (no reader
    /// exists: `&mut self`).
    pub(crate) fn release_retiring(&mut self, w: &mut Writer) {
        let len = std::mem::take(&mut w.retiring_len);
        // SAFETY: the slots were unlinked, and `&mut self` means no reader
        // can still hold one.
        unsafe { self.slab.release_all(&w.retiring[..len]) };
        let Writer {
            limbo,
            spare_batches,
            ..
        } = w;
        limbo.free_all(|item| {
            self.free(item, spare_batches);
        });
        w.limbo_slots = 0;
    }
}

impl<K, V> Drop for RawMap<K, V> {
    fn drop(&mut self) {
        let table = self.table.load(Ordering::Acquire);
        // SAFETY: `&mut self` means no reader or writer remains; the current
        // table came from `Box::into_raw` and is freed only here.
        let table = unsafe { Box::from_raw(table) };
        for index in table.live() {
            // SAFETY: live indices are occupied, and with `&mut self` no
            // reader can reach them. Retired slots are not in the table, so
            // each slot is released once.
            unsafe { self.slab.release(index) };
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::reclaim::pin;

    fn h(key: u64) -> u64 {
        key.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn clear_unlinks_the_table_before_it_stamps_the_slots() {
        let (mut map, mut w) = RawMap::<u64, u64>::new(false);
        {
            let guard = pin();
            for k in 0..200 {
                map.insert(&mut w, &guard, h(k), (k, k), 0, |i| h(u64::from(i)))
                    .ok();
            }
            // Inside our section nothing retired from now on can be freed,
            // so limbo shows the order of the stamps.
            let before = w.limbo.iter().count();
            map.clear(&mut w, &guard);
            let kinds: Vec<bool> = w
                .limbo
                .iter()
                .skip(before)
                .map(|item| matches!(item, Retired::Table(_)))
                .collect();
            // The cleared table first, then its 200 slots in 4 batches: a
            // batch stamped before the swap could be found, after its
            // stamp, by a section that begins before the swap.
            assert_eq!(kinds, [true, false, false, false, false]);
            assert_eq!(map.retired(&w).0, 200);
        }
        map.release_retiring(&mut w);
    }
}
