//! A per-shard arena of `(key, value)` slots addressed by `u32` index.
//!
//! Entries live here rather than in one heap allocation each: a freed slot is
//! recycled by a later insert, so a cache in steady state inserts without
//! allocating. The index table (`table.rs`) and the policy (`crate::policy`)
//! refer to entries by index, which keeps their per-entry metadata at 4 bytes
//! per reference instead of 8.
//!
//! A slab may also keep one *side word* per slot (`Slab::sided`): a `u64`
//! stored beside the entry, in a parallel chunk, not inside it, so that
//! entries keep their width and a lookup that does not need the word never
//! touches its memory. Agent stores keep an entry's namespace there (see
//! `crate::agent`); plain caches have none and allocate nothing for it.
//!
//! Storage is a list of chunks whose sizes double (`BASE_SLOTS << c`), so the
//! arena grows without ever moving a slot: a reader holding a slot reference
//! keeps a valid address while writers grow the arena. Chunks are freed only
//! when the slab is dropped; a cache that once held many small entries keeps
//! that slot capacity (at most twice the peak entry count).
//!
//! # Slot life cycle (the invariant every `unsafe` block relies on)
//! A slot is *vacant* (uninitialised, on the free list or above `fresh`) or
//! *occupied* (initialised). `alloc` turns vacant into occupied and is called
//! only by the shard's single writer. `release` turns occupied into vacant and
//! is called only by the writer, when no reader can still reach the slot:
//! after the index was unlinked from the table and its grace period passed
//! (`crate::reclaim`), or by the owner at drop.

use std::mem::MaybeUninit;
use std::ptr;

use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, Ordering, UnsafeCell};

/// Slots in chunk 0; chunk `c` holds `BASE_SLOTS << c`. 32 keeps a tiny cache
/// tiny (one 32-slot chunk); 20 chunks cover every index up to `MAX_INDEX`.
const BASE_SHIFT: u32 = 5;
const BASE_SLOTS: usize = 1 << BASE_SHIFT;
const CHUNKS: usize = 20;

/// The largest index handed out. The table packs an index into 24 bits and
/// uses the two largest 24-bit values in its markers (`table.rs`).
pub(crate) const MAX_INDEX: u32 = (1 << 24) - 3;

type Slot<K, V> = UnsafeCell<MaybeUninit<(K, V)>>;

pub(crate) struct Slab<K, V> {
    /// `chunks[c]` is null or points to `BASE_SLOTS << c` slots; once set it
    /// never changes until drop (published with Release, read with Acquire).
    chunks: [AtomicPtr<Slot<K, V>>; CHUNKS],
    /// With `sided`: `sides[c]` is null or points to `BASE_SLOTS << c` side
    /// words, allocated and published with `chunks[c]` (before it), so a
    /// slot's side word exists whenever its entry does. A side word is
    /// written by `alloc` before its index is published in a table (whose
    /// Release store covers it, as it covers the entry) and not again while
    /// the slot is occupied; readers load it Relaxed. (Atomic words rather
    /// than `UnsafeCell`s: the same protocol, with no `unsafe` to read
    /// them.)
    sides: [AtomicPtr<AtomicU64>; CHUNKS],
    sided: bool,
    /// Vacant slots below `fresh`, pushed by `release` and popped by
    /// `alloc`. Touched only by the shard's single writer (the contract of
    /// those `unsafe` methods), so no lock: a mutex here cost two locked
    /// instructions per insert, ~3.7% of the 95%-read mix's time (`perf`).
    free: UnsafeCell<Vec<u32>>,
    /// Every index `>= fresh` is vacant and was never used. Written only by
    /// the shard's writer.
    fresh: AtomicU32,
    /// Allocations served by a recycled slot. Written only by the writer.
    reused: AtomicU64,
}

/// Slots retired together: one limbo entry, and one stamp (an atomic
/// read-modify-write on the domain's epoch, a line all writers share), per
/// this many unlinked slots.
pub(crate) const RETIRE_BATCH: usize = 64;

/// Indices of unlinked slots awaiting release.
pub(crate) type Batch = Box<[u32; RETIRE_BATCH]>;

// SAFETY: the slab hands out `&(K, V)` to many threads (needs `K, V: Sync`)
// and entries are dropped on whatever thread releases them (needs `Send`).
// `free` is an unsynchronised cell, touched only through `alloc`, `release`
// and `release_all`, whose contracts allow one caller at a time (the
// shard's writer, under its lock).
unsafe impl<K: Send + Sync, V: Send + Sync> Sync for Slab<K, V> {}
// SAFETY: as above; moving the slab moves ownership of its entries.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Slab<K, V> {}

/// Chunk number and offset of `index`.
#[inline(always)]
fn locate(index: u32) -> (usize, usize) {
    let biased = (index as usize >> BASE_SHIFT) + 1;
    let chunk = (usize::BITS - 1 - biased.leading_zeros()) as usize;
    let chunk_start = ((1usize << chunk) - 1) << BASE_SHIFT;
    (chunk, index as usize - chunk_start)
}

impl<K, V> Slab<K, V> {
    /// A slab; with `sided`, with a side word per slot.
    pub(crate) fn new(sided: bool) -> Self {
        Self {
            chunks: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            sides: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            sided,
            free: UnsafeCell::new(Vec::new()),
            fresh: AtomicU32::new(0),
            reused: AtomicU64::new(0),
        }
    }

    /// Stores `entry` in a vacant slot and returns its index, or hands the
    /// entry back when the index space is exhausted.
    ///
    /// # Safety
    /// Only the shard's single writer may call this (no concurrent `alloc`,
    /// `release` or `release_all`: all three use the free list).
    pub(crate) unsafe fn alloc(&self, entry: (K, V), side: u64) -> Result<u32, (K, V)> {
        // SAFETY: only the single writer touches `free` (caller's contract).
        let recycled = self.free.with_mut(|free| unsafe { (*free).pop() });
        let index = match recycled {
            Some(index) => {
                // Single writer: a load and a store, no read-modify-write.
                let reused = self.reused.load(Ordering::Relaxed);
                self.reused.store(reused + 1, Ordering::Relaxed);
                index
            }
            None => {
                let fresh = self.fresh.load(Ordering::Relaxed);
                if fresh > MAX_INDEX {
                    return Err(entry);
                }
                self.fresh.store(fresh + 1, Ordering::Relaxed);
                fresh
            }
        };
        let slot = self.slot_or_grow(index);
        // SAFETY: `index` came from the free list or above `fresh`, so the
        // slot is vacant: no reader can reach it (it is in no table) and no
        // other writer exists (caller's contract).
        slot.with_mut(|p| unsafe { (*p).write(entry) });
        if self.sided {
            self.set_side(index, side);
        }
        Ok(index)
    }

    /// Writes a newly allocated slot's side word, before its index is
    /// published (the table's Release store covers it). Out of line, so
    /// that `alloc` stays small where slots have none.
    #[inline(never)]
    fn set_side(&self, index: u32, side: u64) {
        self.side_word(index).store(side, Ordering::Relaxed);
    }

    /// The side word of an allocated slot. Only for a sided slab.
    #[inline(always)]
    fn side_word(&self, index: u32) -> &AtomicU64 {
        let (chunk, offset) = locate(index);
        // Acquire pairs with the Release store that published the side
        // chunk in `slot_or_grow` (before the entry chunk, whose pointer
        // the caller's slot was reached through).
        let base = self.sides[chunk].load(Ordering::Acquire);
        debug_assert!(!base.is_null(), "side word of a slot never allocated");
        // SAFETY: a slot that was ever allocated lies in a chunk whose side
        // chunk was allocated first (`slot_or_grow`), of the same length,
        // and `locate` returns an offset below it; side chunks are freed
        // only when the slab is dropped.
        unsafe { &*base.add(offset) }
    }

    /// The side word of the entry at `index`, 0 in a slab without them.
    ///
    /// # Safety
    /// As for [`with`](Self::with): the slot is occupied for the call.
    #[inline(always)]
    pub(crate) unsafe fn side(&self, index: u32) -> u64 {
        if !self.sided {
            return 0;
        }
        self.side_word(index).load(Ordering::Relaxed)
    }

    /// Whether slots have side words.
    pub(crate) fn is_sided(&self) -> bool {
        self.sided
    }

    fn slot_or_grow(&self, index: u32) -> &Slot<K, V> {
        let (chunk, offset) = locate(index);
        let mut base = self.chunks[chunk].load(Ordering::Acquire);
        if base.is_null() {
            if self.sided {
                let words: Box<[AtomicU64]> = (0..BASE_SLOTS << chunk)
                    .map(|_| AtomicU64::new(0))
                    .collect();
                let words = Box::into_raw(words).cast::<AtomicU64>();
                // Release pairs with the Acquire in `side_word`; stored before
                // the entry chunk, so whoever reaches a slot through
                // `chunks[chunk]` finds its side word too.
                self.sides[chunk].store(words, Ordering::Release);
            }
            let slots: Box<[Slot<K, V>]> = (0..BASE_SLOTS << chunk)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect();
            base = Box::into_raw(slots).cast::<Slot<K, V>>();
            // Release pairs with the Acquire loads in `slot_or_grow`/`get`.
            self.chunks[chunk].store(base, Ordering::Release);
        }
        // SAFETY: chunk `chunk` holds `BASE_SLOTS << chunk` slots and
        // `locate` returns an offset below that.
        unsafe { &*base.add(offset) }
    }

    /// Allocations from recycled slots, slots ever used, and slots vacant on
    /// the free list now.
    ///
    /// # Safety
    /// As for `alloc`: only the shard's single writer may call this (it
    /// reads the free list).
    pub(crate) unsafe fn stats(&self) -> (u64, u64, usize) {
        // SAFETY: only the single writer touches `free` (caller's contract).
        let free = self.free.with_mut(|free| unsafe { (*free).len() });
        (
            self.reused.load(Ordering::Relaxed),
            u64::from(self.fresh.load(Ordering::Relaxed)),
            free,
        )
    }

    /// Runs `f` on the entry at `index`.
    ///
    /// # Safety
    /// The slot must be occupied for the whole call: the caller either is the
    /// writer and the index is live, or loaded the index from a table inside
    /// a read section (so `release`, which waits for every section older
    /// than the slot's grace period, cannot run before the guard drops).
    #[inline(always)]
    pub(crate) unsafe fn with<R>(&self, index: u32, f: impl FnOnce(&(K, V)) -> R) -> R {
        let (chunk, offset) = locate(index);
        // Acquire pairs with the Release store that published the chunk.
        let base = self.chunks[chunk].load(Ordering::Acquire);
        // SAFETY: an occupied slot lies in an allocated chunk, at `offset`
        // below the chunk's length (see `locate`).
        let slot = unsafe { &*base.add(offset) };
        // SAFETY: occupied means initialised, and nobody writes an occupied
        // slot (caller's contract), so a shared reference is sound.
        slot.with(|p| f(unsafe { (*p).assume_init_ref() }))
    }

    /// Drops the entry at `index` and makes the slot reusable.
    ///
    /// # Safety
    /// The slot is occupied and no reader can reach it any more (unlinked and
    /// its grace period passed, or the caller has exclusive access to the
    /// shard), and the caller is the shard's single writer (no concurrent
    /// `alloc` or `release`) or has exclusive access.
    pub(crate) unsafe fn release(&self, index: u32) {
        let (chunk, offset) = locate(index);
        let base = self.chunks[chunk].load(Ordering::Acquire);
        // SAFETY: occupied slots lie in allocated chunks (see `with`).
        let slot = unsafe { &*base.add(offset) };
        // SAFETY: occupied (initialised) and unreachable by readers, so we
        // hold the only access; after this the slot is vacant.
        slot.with_mut(|p| unsafe { (*p).assume_init_drop() });
        // SAFETY: only the writer (or an exclusive owner) releases (the
        // caller's contract), and it alone touches `free`.
        self.free.with_mut(|free| unsafe { (*free).push(index) });
    }

    /// [`release`](Self::release) for each of `indices`.
    ///
    /// # Safety
    /// As for `release`, for every index.
    pub(crate) unsafe fn release_all(&self, indices: &[u32]) {
        for &index in indices {
            let (chunk, offset) = locate(index);
            let base = self.chunks[chunk].load(Ordering::Acquire);
            // SAFETY: occupied slots lie in allocated chunks (see `with`).
            let slot = unsafe { &*base.add(offset) };
            // SAFETY: the caller's contract, per index.
            slot.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
        // SAFETY: as in `release`.
        self.free
            .with_mut(|free| unsafe { (*free).extend_from_slice(indices) });
    }

    /// Slots allocated (occupied + vacant) across all chunks.
    pub(crate) fn slot_capacity(&self) -> usize {
        (0..CHUNKS)
            .filter(|&c| !self.chunks[c].load(Ordering::Acquire).is_null())
            .map(|c| BASE_SLOTS << c)
            .sum()
    }

    /// Heap bytes of the slots and side words.
    pub(crate) fn bytes(&self) -> usize {
        let side = if self.sided {
            std::mem::size_of::<u64>()
        } else {
            0
        };
        self.slot_capacity() * (std::mem::size_of::<(K, V)>() + side)
    }
}

impl<K, V> Drop for Slab<K, V> {
    /// Frees chunk memory. Entries are *not* dropped here: occupied slots are
    /// released by their owner (`RawMap::drop`) or from the writer's limbo
    /// (`RawMap::release_retiring` when the shard is dropped), so every
    /// occupied slot is vacant by the time the slab goes.
    fn drop(&mut self) {
        for (chunk, side) in self.sides.iter().enumerate() {
            let base = side.load(Ordering::Acquire);
            if !base.is_null() {
                let len = BASE_SLOTS << chunk;
                // SAFETY: `base` came from `Box::into_raw` of a boxed slice of
                // exactly `len` words in `slot_or_grow`, and is freed once.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) });
            }
        }
        for (chunk, slot) in self.chunks.iter().enumerate() {
            let base = slot.load(Ordering::Acquire);
            if !base.is_null() {
                let len = BASE_SLOTS << chunk;
                // SAFETY: `base` came from `Box::into_raw` of a boxed slice of
                // exactly `len` slots in `slot_or_grow`, and is freed once.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(base, len)) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn locate_covers_indices_without_gaps() {
        let mut expected = (0usize, 0usize);
        for index in 0..100_000u32 {
            assert_eq!(locate(index), expected, "index {index}");
            expected.1 += 1;
            if expected.1 == BASE_SLOTS << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
        assert!(locate(MAX_INDEX).0 < CHUNKS);
    }

    #[test]
    fn released_slots_are_reused_and_entries_dropped() {
        let counter = std::sync::Arc::new(());
        let slab = Slab::<u32, std::sync::Arc<()>>::new(false);
        // SAFETY: single-threaded test: this is the only writer and reader.
        unsafe {
            let a = slab.alloc((1, counter.clone()), 0).ok().unwrap();
            let b = slab.alloc((2, counter.clone()), 0).ok().unwrap();
            assert_eq!(std::sync::Arc::strong_count(&counter), 3);
            assert_eq!(slab.with(b, |e| e.0), 2);
            slab.release(a);
            assert_eq!(std::sync::Arc::strong_count(&counter), 2);
            let c = slab.alloc((3, counter.clone()), 0).ok().unwrap();
            assert_eq!(c, a, "a released slot is recycled before fresh ones");
            slab.release(b);
            slab.release(c);
        }
        assert_eq!(std::sync::Arc::strong_count(&counter), 1);
    }

    #[test]
    fn side_words_live_beside_their_entries_across_chunks() {
        let slab = Slab::<u64, u64>::new(true);
        let plain = Slab::<u64, u64>::new(false);
        // Enough slots for several chunks, each side word distinct.
        let n = (BASE_SLOTS << 4) as u64;
        // SAFETY: single-threaded test: this is the only writer and reader.
        unsafe {
            for i in 0..n {
                let index = slab.alloc((i, i), i ^ 0xdead_beef).ok().unwrap();
                assert_eq!(u64::from(index), i);
                plain.alloc((i, i), i).ok().unwrap();
            }
            for i in 0..n as u32 {
                assert_eq!(slab.side(i), u64::from(i) ^ 0xdead_beef);
                assert_eq!(slab.with(i, |e| e.0), u64::from(i));
                assert_eq!(plain.side(i), 0, "no side words, no memory");
            }
            // A recycled slot takes the new entry's side word.
            slab.release(3);
            assert_eq!(slab.alloc((99, 99), 7).ok(), Some(3));
            assert_eq!(slab.side(3), 7);
            for i in 0..n as u32 {
                slab.release(i);
                plain.release(i);
            }
        }
        assert_eq!(
            slab.bytes(),
            plain.bytes() * 3 / 2,
            "8 side bytes per 16-byte slot"
        );
    }
}
