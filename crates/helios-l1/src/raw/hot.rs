//! The hot tier's tables and how they are published and reclaimed.
//!
//! A [`HotTable`] is built once, published, and never changed afterwards
//! except that slots can be *invalidated* (a flag cleared, never set again).
//! Readers probe it inside a read section ([`super::sections`]): a hit loads
//! the table pointer, the slot's hash, key and valid flag, and runs the
//! caller's closure on the value. None of that stores to memory; the section
//! itself stores only to the thread's own record.
//!
//! # Protocol
//! - Publication: the refresher builds a table, then swaps it into
//!   [`HotPtr`] (`SeqCst`, see `sections`) while holding every shard lock, and
//!   retires the old one at a new epoch. Tables are freed only once no read
//!   section that began before that epoch remains.
//! - Invalidation: a writer that removes or replaces a key in the main table
//!   clears the hot slot's flag (`Release`) before its call returns, under the
//!   shard lock, so the table it sees is the current one (publication holds
//!   all shard locks). A reader loads the flag (`Acquire`) before touching the
//!   value, so a read that starts after the writer returned falls through to
//!   the main table. A table published later is built from the main table
//!   under the shard locks, so it never carries the old value.
//! - Values in invalidated slots stay alive (owned by the table) until the
//!   table is reclaimed; they are never returned.

use crate::equivalent::Equivalent;

use super::sections::{Domain, Reader};
use crate::sync::{Arc, AtomicBool, AtomicPtr, Mutex, Ordering};

/// One slot. `entry` and `hash` are immutable after building.
#[derive(Debug)]
struct HotSlot<K, V> {
    hash: u64,
    /// Cleared when the entry leaves or changes in the main table; never set
    /// again. Read-mostly: written once per invalidation, so slots are packed
    /// rather than padded (padding would quadruple the footprint readers
    /// walk, and an invalidation is as rare as a write to a hot key).
    valid: AtomicBool,
    entry: Option<(K, V)>,
}

/// Slots per bucket: one `u64` of 8-bit tags.
const BUCKET: usize = 8;
/// Every byte of a word set to 1, and to 0x80.
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The tags of one bucket's slots, byte `i` for slot `i`: `0` for an empty
/// slot, else [`tag`] of the entry's hash (high bit set). Scanned all at
/// once with word arithmetic (as SwissTable's portable group does), so a
/// lookup's branches depend on whether the key is there, not on how far it
/// sits from its home slot.
#[derive(Debug, Clone, Copy, Default)]
struct Tags(u64);

impl Tags {
    /// Bit `8 i + 7` set where slot `i`'s tag may be `tag` (a byte after a
    /// true match can show up falsely; callers compare keys anyway), and
    /// whether any slot is empty (exact).
    #[inline(always)]
    fn scan(self, tag: u8) -> (u64, bool) {
        let diff = self.0 ^ (u64::from(tag) * LOW_BITS);
        let matches = diff.wrapping_sub(LOW_BITS) & !diff & HIGH_BITS;
        (matches, !self.0 & HIGH_BITS != 0)
    }

    fn set(&mut self, slot: usize, tag: u8) {
        self.0 |= u64::from(tag) << (slot * 8);
    }

    fn first_empty(self) -> Option<usize> {
        (0..BUCKET).find(|i| (self.0 >> (i * 8)) & 0xff == 0)
    }
}

/// A hash's tag: its top 7 bits (which the bucket choice, the shards and
/// the hot tier's filter do not use) with the high bit set, so never 0.
#[inline(always)]
fn tag(hash: u64) -> u8 {
    (hash >> 57) as u8 | 0x80
}

/// An immutable bucketed hash table of hot entries: a key lives in its
/// home bucket of [`BUCKET`] slots, or (only when that is full) in the
/// first later bucket with room. At most half the slots are used, so a
/// bucket overflows rarely (a home bucket receives 4 entries on average;
/// more than 8 about 2% of the time) and every probe ends at a bucket with
/// an empty slot.
///
/// Why buckets of tags rather than linear probing over the slots: a probe
/// sequence of varying length costs a branch misprediction on about a third
/// of hot-tier lookups (callgrind's branch simulation, `hot_tier_probe`),
/// several nanoseconds each, which was most of what a hot hit saves. A
/// tag scan takes one word and the same branches for every key; a false
/// tag match (1 in 128 per occupied slot) costs one extra key comparison.
#[derive(Debug)]
pub(crate) struct HotTable<K, V> {
    /// `slots.len() / BUCKET` buckets of tags; slot `b * BUCKET + i` is
    /// tagged by byte `i` of `tags[b]`.
    tags: Box<[Tags]>,
    slots: Box<[HotSlot<K, V>]>,
    bucket_mask: usize,
    len: usize,
}

// A slot of a u64 -> u64 cache (the benchmarked shape) fits in 40 bytes, so
// the default 1,024-entry tier (2,048 slots and 2 KiB of tags) stays within
// 82 KiB of L2.
#[cfg(not(loom))] // loom's atomics are larger
const _: () = assert!(std::mem::size_of::<HotSlot<u64, u64>>() <= 40);

impl<K, V> HotTable<K, V> {
    /// A table with no entries (every lookup misses at the first slot).
    pub(crate) fn empty() -> Self {
        Self::builder(0).finish()
    }

    /// A builder for a table of up to `entries` entries.
    pub(crate) fn builder(entries: usize) -> HotTableBuilder<K, V> {
        let buckets = (entries * 2).div_ceil(BUCKET).max(1).next_power_of_two();
        HotTableBuilder {
            table: HotTable {
                tags: vec![Tags::default(); buckets].into_boxed_slice(),
                slots: (0..buckets * BUCKET)
                    .map(|_| HotSlot {
                        hash: 0,
                        valid: AtomicBool::new(false),
                        entry: None,
                    })
                    .collect(),
                bucket_mask: buckets - 1,
                len: 0,
            },
            max: entries,
        }
    }

    /// Home bucket: bits the main table, the shard choice and [`tag`] do
    /// not use first (they use the low bits and bits 32 and up).
    #[inline(always)]
    fn home(&self, hash: u64) -> usize {
        (hash >> 12) as usize & self.bucket_mask
    }

    /// Position of `key`'s slot, valid or not.
    #[inline(always)]
    fn position<Q>(&self, hash: u64, key: &Q) -> Option<usize>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let tag = tag(hash);
        let mut bucket = self.home(hash);
        loop {
            let (mut matches, has_empty) = self.tags[bucket].scan(tag);
            while matches != 0 {
                let pos = bucket * BUCKET + matches.trailing_zeros() as usize / 8;
                if let Some((k, _)) = &self.slots[pos].entry {
                    if key.equivalent(k) {
                        return Some(pos);
                    }
                }
                matches &= matches - 1;
            }
            // An entry goes past its home bucket only if that is full.
            if has_empty {
                return None;
            }
            bucket = (bucket + 1) & self.bucket_mask;
        }
    }

    /// The value of `key` if it is here and still valid. Loads only.
    #[inline(always)]
    #[cfg(any(test, loom))]
    pub(crate) fn get<Q>(&self, hash: u64, key: &Q) -> Option<&V>
    where
        Q: Equivalent<K> + ?Sized,
    {
        self.get_entry(hash, key).map(|(_, v)| v)
    }

    /// Like [`get`](Self::get), with the stored key.
    #[inline(always)]
    pub(crate) fn get_entry<Q>(&self, hash: u64, key: &Q) -> Option<(&K, &V)>
    where
        Q: Equivalent<K> + ?Sized,
    {
        let slot = &self.slots[self.position(hash, key)?];
        // Acquire pairs with nothing stronger than the table's publication
        // (values are immutable); it orders the flag before the value reads
        // so a cleared flag is never overtaken.
        if !slot.valid.load(Ordering::Acquire) {
            return None;
        }
        slot.entry.as_ref().map(|(k, v)| (k, v))
    }

    /// Clears the slot at `pos` (from [`HotTableBuilder::push`]); readers
    /// that start afterwards miss it.
    pub(crate) fn invalidate(&self, pos: u32) {
        if let Some(slot) = self.slots.get(pos as usize) {
            // Release pairs with the Acquire in `get`.
            slot.valid.store(false, Ordering::Release);
        }
    }

    /// The hashes of the table's entries.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots
            .iter()
            .filter(|s| s.entry.is_some())
            .map(|s| s.hash)
    }

    /// Entries the table was built with (valid or not).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Entries still valid.
    pub(crate) fn valid(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.valid.load(Ordering::Relaxed))
            .count()
    }

    /// Heap bytes of the slots (keys and values inline).
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<HotSlot<K, V>>()
            + self.tags.len() * std::mem::size_of::<Tags>()
    }
}

/// Fills a [`HotTable`] before it is published.
pub(crate) struct HotTableBuilder<K, V> {
    table: HotTable<K, V>,
    max: usize,
}

impl<K, V> HotTableBuilder<K, V> {
    /// Adds an entry whose key is not yet in the table; returns its slot
    /// position (for invalidation), or `None` when the table is full.
    pub(crate) fn push(&mut self, hash: u64, key: K, value: V) -> Option<u32> {
        if self.table.len >= self.max {
            return None;
        }
        let tag = tag(hash);
        let mut bucket = self.table.home(hash);
        // At most half full, so some bucket has room and this ends.
        let pos = loop {
            let tags = &mut self.table.tags[bucket];
            if let Some(i) = tags.first_empty() {
                tags.set(i, tag);
                break bucket * BUCKET + i;
            }
            bucket = (bucket + 1) & self.table.bucket_mask;
        };
        let slot = &mut self.table.slots[pos];
        slot.hash = hash;
        slot.valid = AtomicBool::new(true);
        slot.entry = Some((key, value));
        self.table.len += 1;
        u32::try_from(pos).ok()
    }

    pub(crate) fn finish(self) -> HotTable<K, V> {
        self.table
    }
}

/// A table unpublished, and the epoch from which it may be freed.
type Retired<K, V> = (Arc<HotTable<K, V>>, u64);

/// The published hot table plus the retired ones awaiting reclamation.
pub(crate) struct HotPtr<K, V> {
    /// From `Arc::into_raw`; this pointer owns one strong count. Never null.
    current: AtomicPtr<HotTable<K, V>>,
    /// Unpublished tables and the epoch from which they are unreachable.
    retired: Mutex<Vec<Retired<K, V>>>,
}

impl<K, V> HotPtr<K, V> {
    pub(crate) fn new(table: Arc<HotTable<K, V>>) -> Self {
        Self {
            current: AtomicPtr::new(Arc::into_raw(table).cast_mut()),
            retired: Mutex::new(Vec::new()),
        }
    }

    /// The current table, for a reader inside a read section of the global
    /// domain (which `reader` proves).
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) fn load<'r>(&'r self, _reader: &'r Reader) -> &'r HotTable<K, V> {
        // SAFETY: a `&Reader` is only handed out borrowed from a `Guard`
        // (`Guard::reader`), so a read section of the global domain is open
        // for all of `'r`, and tables of a `HotPtr` are retired only
        // into that domain (`publish`), so the table outlives `'r`.
        unsafe { self.load_unchecked() }
    }

    /// Under loom the global domain is bypassed (see `sections`); readers go
    /// through [`load_unchecked`](Self::load_unchecked) in the models.
    #[cfg(loom)]
    pub(crate) fn load<'r>(&'r self, _reader: &'r Reader) -> &'r HotTable<K, V> {
        unreachable!("loom builds never hand out a Reader")
    }

    /// The current table.
    ///
    /// # Safety
    /// The caller is inside a read section of the domain this pointer's
    /// tables are retired into, and drops the reference before it leaves it.
    /// again.
    #[inline(always)]
    pub(crate) unsafe fn load_unchecked(&self) -> &HotTable<K, V> {
        // SeqCst: see `sections`'s module docs (after the section's entry; pairs
        // the epoch; pairs with the swap in `publish_in`).
        let table = self.current.load(Ordering::SeqCst);
        // SAFETY: never null; the caller's read section keeps it from being
        // freed (it is retired only after a full grace period).
        unsafe { &*table }
    }

    /// Publishes `table` and retires the previous one into the global domain.
    #[cfg(not(loom))]
    pub(crate) fn publish(&self, table: Arc<HotTable<K, V>>) {
        // SAFETY: readers of this pointer go through `load`, whose `Reader`
        // belongs to the global domain.
        unsafe { self.publish_in(table, super::sections::domain()) }
    }

    #[cfg(loom)]
    pub(crate) fn publish(&self, _table: Arc<HotTable<K, V>>) {}

    /// Publishes `table` and retires the previous one into `domain`.
    ///
    /// # Safety
    /// Every reader of this pointer reads inside read sections of `domain`.
    pub(crate) unsafe fn publish_in(&self, table: Arc<HotTable<K, V>>, domain: &Domain) {
        let new = Arc::into_raw(table).cast_mut();
        // SeqCst: before the epoch advance below (see `sections`).
        let old = self.current.swap(new, Ordering::SeqCst);
        let epoch = domain.retire_epoch();
        // SAFETY: `old` came from `Arc::into_raw` and this pointer owned its
        // count, which moves into the retired list.
        let old = unsafe { Arc::from_raw(old) };
        self.retired.lock().push((old, epoch));
    }

    /// Drops retired tables no reader can reach; returns how many remain.
    pub(crate) fn reclaim(&self, domain: &Domain) -> usize {
        let mut retired = self.retired.lock();
        if !retired.is_empty() {
            // One pass over the readers' records for all of them.
            let safe_below = domain.safe_below();
            retired.retain(|&(_, epoch)| epoch >= safe_below);
        }
        retired.len()
    }

    /// Tables retired but not yet reclaimed.
    pub(crate) fn retired(&self) -> usize {
        self.retired.lock().len()
    }
}

impl<K, V> Drop for HotPtr<K, V> {
    fn drop(&mut self) {
        let table = self.current.load(Ordering::Acquire);
        // SAFETY: `&mut self`: no reader remains (they borrow the cache);
        // the pointer owns this count, released exactly once here.
        drop(unsafe { Arc::from_raw(table) });
    }
}

// SAFETY: the pointer is an `Arc<HotTable>` shared by readers on any thread,
// so it needs what `Arc<HotTable<K, V>>` needs to be Send and Sync.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for HotPtr<K, V> {}
// SAFETY: as above.
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for HotPtr<K, V> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn table(entries: &[(u64, u64)]) -> (HotTable<u64, u64>, Vec<u32>) {
        let mut b = HotTable::builder(entries.len());
        let pos = entries
            .iter()
            .map(|&(k, v)| b.push(k.wrapping_mul(0x9e37_79b9_7f4a_7c15), k, v))
            .collect::<Option<Vec<_>>>()
            .unwrap_or_default();
        (b.finish(), pos)
    }

    fn h(k: u64) -> u64 {
        k.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn finds_valid_entries_and_misses_invalidated_or_absent_ones() {
        let entries: Vec<(u64, u64)> = (0..100).map(|k| (k, k * 10)).collect();
        let (t, pos) = table(&entries);
        assert_eq!(pos.len(), 100);
        assert_eq!(t.len(), 100);
        for k in 0..100 {
            assert_eq!(t.get(h(k), &k), Some(&(k * 10)));
        }
        assert_eq!(t.get(h(500), &500), None);
        t.invalidate(pos[7]);
        assert_eq!(t.get(h(7), &7), None);
        assert!(
            t.position(h(7), &7).is_some(),
            "the slot stays, only invalid"
        );
        assert_eq!(t.valid(), 99);
        assert_eq!(HotTable::<u64, u64>::empty().get(h(1), &1), None);
    }

    #[test]
    fn keys_sharing_a_home_bucket_and_a_tag_overflow_and_stay_findable() {
        // Every hash has the same home bucket and the same tag: the first
        // bucket fills, the rest overflow into later buckets, and each
        // lookup must pass over tag matches of other keys.
        let same = |k: u64| (0x7fu64 << 57) | (3 << 12) | (k << 20);
        let mut b = HotTable::builder(64);
        let pos: Vec<u32> = (0..64u64)
            .map(|k| b.push(same(k), k, k + 1000))
            .collect::<Option<_>>()
            .unwrap_or_default();
        let t = b.finish();
        assert_eq!(pos.len(), 64);
        for k in 0..64u64 {
            assert_eq!(t.get(same(k), &k), Some(&(k + 1000)), "key {k}");
        }
        assert_eq!(t.get(same(64), &64), None, "absent, same bucket and tag");
        t.invalidate(pos[40]);
        assert_eq!(t.get(same(40), &40), None);
        assert_eq!(t.get(same(41), &41), Some(&1041));
    }

    #[test]
    fn tag_scan_finds_every_slot_and_reports_empty_ones_exactly() {
        let mut tags = Tags::default();
        assert_eq!(tags.scan(0x85), (0, true));
        for i in 0..BUCKET {
            tags.set(i, 0x80 | i as u8);
        }
        assert_eq!(tags.first_empty(), None);
        for i in 0..BUCKET {
            let (matches, has_empty) = tags.scan(0x80 | i as u8);
            assert!(!has_empty);
            assert_eq!(matches.trailing_zeros() as usize / 8, i);
        }
        assert_eq!(tags.scan(0xff).0, 0, "no slot carries 0xff");
    }

    #[test]
    fn builder_refuses_more_than_its_size() {
        let mut b = HotTable::builder(2);
        assert!(b.push(h(1), 1u64, 1u64).is_some());
        assert!(b.push(h(2), 2, 2).is_some());
        assert!(b.push(h(3), 3, 3).is_none());
    }

    #[test]
    fn retired_tables_wait_for_every_reader() {
        super::super::sections::init();
        let domain = Domain::new();
        let reader = domain.register();
        domain.enter(&reader);
        let ptr = HotPtr::new(Arc::new(HotTable::<u64, u64>::empty()));
        let (t, _) = table(&[(1, 10)]);
        // SAFETY: nothing reads `ptr` concurrently.
        let first = unsafe { ptr.load_unchecked() } as *const HotTable<u64, u64>;
        // SAFETY: the only reader of `ptr` is this thread, in `domain`.
        unsafe { ptr.publish_in(Arc::new(t), &domain) };
        assert_eq!(ptr.reclaim(&domain), 1, "the reader's section is open");
        assert_eq!(ptr.retired(), 1);
        domain.exit(&reader);
        assert_eq!(ptr.reclaim(&domain), 0, "freed once the section ended");
        // SAFETY: as above.
        assert!(!std::ptr::eq(unsafe { ptr.load_unchecked() }, first));
        domain.unregister(&reader);
    }
}
