//! The per-shard index: an open-addressing table of slab indices.
//!
//! Each slot is one `AtomicU32` holding a slab index, `EMPTY` or `TOMBSTONE`.
//! Linear probing from the low 32 bits of the key's hash; a lookup stops at
//! the first `EMPTY`. Removal writes `TOMBSTONE` so that probe chains through
//! the removed slot stay intact; inserts reuse tombstones, and the writer
//! rebuilds the table (same size or doubled) when live entries plus
//! tombstones pass `MAX_LOAD`.
//!
//! Keys are not stored here. Each slot word packs an 8-bit *tag* (bits
//! 24..32 of the key's hash) above a 24-bit slab index, so a probe compares
//! keys in the slab only when the tag matches (1 in 256 for a foreign key),
//! and tag and index change together in one atomic store. Without tags a
//! miss at our load factor touched ~8 slab slots, each a likely cache miss,
//! which made miss-heavy workloads 3× slower than quick_cache; a separate tag
//! array cost hits an extra cache miss. The price is a limit of 2^24 - 3
//! entries per shard (`MAX_INDEX`).
//!
//! A table is never written after it has been replaced (the writer builds the
//! new one privately, publishes it, then retires the old one), so a reader
//! that still holds the old table sees a consistent, if slightly stale, index.

use crate::sync::{AtomicU32, Ordering};

/// Slot words that hold no entry. Their low 24 bits are above `MAX_INDEX`.
pub(crate) const EMPTY: u32 = u32::MAX;
pub(crate) const TOMBSTONE: u32 = u32::MAX - 1;
/// Low 24 bits of a slot word: the slab index.
pub(crate) const INDEX_MASK: u32 = (1 << 24) - 1;

/// The slot word for slab `index` of a key with `hash`.
#[inline(always)]
pub(crate) fn word(index: u32, hash: u64) -> u32 {
    (tag(hash) << 24) | index
}

/// The tag of a hash, in the low byte: bits 24..32 (the table index uses
/// the low bits).
#[inline(always)]
pub(crate) fn tag(hash: u64) -> u32 {
    (hash >> 24) as u32 & 0xff
}

/// Rebuild when `(live + tombstones) / slots` exceeds 3/4. At 3/4 an
/// unsuccessful linear probe averages 8.5 slots (Knuth); growing doubles the
/// table, so live load after a grow is 3/8.
const MAX_LOAD_NUM: usize = 3;
const MAX_LOAD_DEN: usize = 4;
pub(crate) const MIN_SLOTS: usize = 16;

pub(crate) struct Table {
    mask: usize,
    /// `EMPTY`, `TOMBSTONE` or `word(index, hash)`.
    slots: Box<[AtomicU32]>,
}

impl Table {
    /// A table of `slots` slots (a power of two, at least `MIN_SLOTS`).
    pub(crate) fn new(slots: usize) -> Self {
        debug_assert!(slots.is_power_of_two() && slots >= MIN_SLOTS);
        Self {
            mask: slots - 1,
            slots: (0..slots).map(|_| AtomicU32::new(EMPTY)).collect(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.mask + 1
    }

    /// Whether holding `used` occupied slots (live + tombstones) would pass
    /// the maximum load.
    pub(crate) fn overloaded(&self, used: usize) -> bool {
        used * MAX_LOAD_DEN > self.len() * MAX_LOAD_NUM
    }

    /// The slot count for a rebuilt table holding `live` entries.
    pub(crate) fn slots_for(live: usize) -> usize {
        // Aim for at most half full after the rebuild so that a rebuild is
        // followed by at least `len/4` inserts before the next one.
        (live * 2).max(MIN_SLOTS).next_power_of_two()
    }

    /// Probe sequence for `hash`: every slot position, starting at the home.
    #[inline(always)]
    pub(crate) fn probe(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let home = hash as u32 as usize & self.mask;
        (0..=self.mask).map(move |step| (home + step) & self.mask)
    }

    /// Reads a slot. Acquire pairs with the Release in `set`, so a reader that
    /// sees an index also sees the slab entry written before it was published.
    #[inline(always)]
    pub(crate) fn get(&self, pos: usize) -> u32 {
        self.slots[pos].load(Ordering::Acquire)
    }

    /// Writes a slot word. Only the shard's writer calls this. Release pairs
    /// with the Acquire in `get`.
    #[inline]
    pub(crate) fn set(&self, pos: usize, word: u32) {
        self.slots[pos].store(word, Ordering::Release);
    }

    /// The slab index of every live slot.
    pub(crate) fn live(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len())
            .map(|pos| self.slots[pos].load(Ordering::Relaxed))
            .filter(|&v| v != EMPTY && v != TOMBSTONE)
            .map(|v| v & INDEX_MASK)
    }

    /// Heap bytes of this table, for memory accounting.
    pub(crate) fn bytes(&self) -> usize {
        self.len() * std::mem::size_of::<AtomicU32>()
    }
}
