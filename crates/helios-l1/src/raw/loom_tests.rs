//! Loom models of the lock-free read protocol: every interleaving of one
//! writer and one reader (or of two producers and the drainer) is explored.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p helios-l1 --lib --release loom_`
//! (see `.ci/run`). The main table's limbo frees nothing under loom (see
//! `crate::reclaim`), but the domain it stamps and checks against is
//! modelled, and so are the hot tier's read sections and retirement.

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

use super::hot::{HotPtr, HotTable};
use super::sections::Domain;

use super::read_buffer::{decode, encode, ReadBuffer};
use super::RawMap;
use crate::reclaim::pin;

/// Distinct, spread-out hashes for small integer keys.
fn h(key: u64) -> u64 {
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 7
}

#[test]
fn loom_reader_sees_nothing_or_a_whole_published_value() {
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, (u64, u64)>::new(false);
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                let first = map.get(&guard, h(1), &1, |_, _, v| *v);
                let second = map.get(&guard, h(1), &1, |_, _, v| *v);
                // Values are written whole: both halves agree.
                for v in [first, second].into_iter().flatten() {
                    assert!(
                        v == (10, 10) || v == (20, 20),
                        "torn or foreign value {v:?}"
                    );
                }
                // Never back in time: once the new value is seen, the old is gone.
                if first == Some((20, 20)) {
                    assert_eq!(second, Some((20, 20)));
                }
                if first.is_some() {
                    assert!(second.is_some(), "a published key vanished");
                }
            })
        };
        let guard = pin();
        map.insert(&mut writer, &guard, h(1), (1, (10, 10)), 0, |_| h(1))
            .ok();
        let (pos, _) = map.find(&writer, &guard, h(1), &1).expect("just inserted");
        map.replace(&mut writer, &guard, pos, (1, (20, 20)), 0).ok();
        reader.join().expect("reader");
    });
}

/// A side word is published with its entry: a reader that finds the entry
/// reads the side word it was stored with, never the slot's initial 0,
/// also after a replacement moves the key to a new slot; and a lookup that
/// checks side words (`SidedKey`) finds it only under its own.
#[test]
fn loom_a_found_entry_shows_the_side_word_it_was_stored_with() {
    use crate::equivalent::SidedKey;
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, u64>::new(true);
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                // SAFETY: `index` is the one this lookup found inside
                // `guard`'s open section.
                let found = map.get(&guard, h(1), &1, |index, _, v| {
                    (*v, unsafe { map.side_in_section(index) })
                });
                if let Some(found) = found {
                    assert!(found == (10, 5) || found == (20, 6), "{found:?}");
                }
                let other = SidedKey {
                    key: &1,
                    side: 7,
                    sided: true,
                };
                assert!(map.get(&guard, h(1), &other, |_, _, v| *v).is_none());
            })
        };
        let guard = pin();
        map.insert(&mut writer, &guard, h(1), (1, 10), 5, |_| h(1))
            .ok();
        let mine = SidedKey {
            key: &1,
            side: 5,
            sided: true,
        };
        let (pos, _) = map
            .find(&writer, &guard, h(1), &mine)
            .expect("just inserted");
        map.replace(&mut writer, &guard, pos, (1, 20), 6).ok();
        reader.join().expect("reader");
    });
}

#[test]
fn loom_reader_sees_removal_only_as_absence() {
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, u64>::new(false);
        let guard = pin();
        map.insert(&mut writer, &guard, h(1), (1, 11), 0, |_| h(1))
            .ok();
        map.insert(&mut writer, &guard, h(2), (2, 22), 0, |_| h(2))
            .ok();
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                let one = map.get(&guard, h(1), &1, |_, _, v| *v);
                assert!(one.is_none() || one == Some(11));
                // Key 2 is never removed: a tombstone must not hide it.
                assert_eq!(map.get(&guard, h(2), &2, |_, _, v| *v), Some(22));
            })
        };
        let (pos, _) = map.find(&writer, &guard, h(1), &1).expect("present");
        map.remove_at(&mut writer, &guard, pos);
        reader.join().expect("reader");
        assert_eq!(map.get(&guard, h(1), &1, |_, _, v| *v), None);
    });
}

#[test]
fn loom_rebuild_keeps_every_key_visible() {
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, u64>::new(false);
        let guard = pin();
        // 12 entries fill a 16-slot table to its maximum load; the 13th
        // insert rebuilds it while the reader probes.
        for k in 0..12 {
            map.insert(&mut writer, &guard, h(k), (k, k), 0, |i| h(u64::from(i)))
                .ok();
        }
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                assert_eq!(map.get(&guard, h(3), &3, |_, _, v| *v), Some(3));
            })
        };
        // Slab indices equal the keys here (fresh slots in order).
        map.insert(&mut writer, &guard, h(12), (12, 12), 0, |i| h(u64::from(i)))
            .ok();
        reader.join().expect("reader");
        map.validate(&writer, &guard, |i| h(u64::from(i)))
            .expect("valid");
    });
}

#[test]
fn loom_read_buffer_never_invents_or_duplicates_records() {
    loom::model(|| {
        let buffer = Arc::new(ReadBuffer::new(1));
        let producers: Vec<_> = (0..2u32)
            .map(|t| {
                let buffer = Arc::clone(&buffer);
                thread::spawn(move || {
                    buffer.record(encode(t, 100 + t));
                })
            })
            .collect();
        let mut seen = Vec::new();
        buffer.drain(|r| seen.push(decode(r)));
        for p in producers {
            p.join().expect("producer");
        }
        buffer.drain(|r| seen.push(decode(r)));
        seen.sort_unstable();
        let before = seen.len();
        seen.dedup();
        assert_eq!(before, seen.len(), "a record was drained twice");
        for (index, hash) in seen {
            assert_eq!(hash, 100 + index, "a record was invented or torn");
        }
    });
}

/// A published hot table holding `key → value`, and the slot position.
fn hot_table(key: u64, value: u64) -> (std::sync::Arc<HotTable<u64, u64>>, u32) {
    let mut builder = HotTable::builder(1);
    let pos = builder.push(h(key), key, value).expect("room for one");
    (std::sync::Arc::new(builder.finish()), pos)
}

/// The shard's hot-tier state in the model below (what `ShardHot` keeps).
struct ModelShard {
    /// The main table's value for key 1 (0: removed).
    main: u64,
    table: std::sync::Arc<HotTable<u64, u64>>,
    /// Key 1's slot in `table`, if it is there.
    pos: Option<u32>,
    /// Key 1's slot in the table being built, if copied there.
    next_pos: Option<u32>,
    /// Whether key 1 changed since it was copied into the table being built.
    next_invalid: Option<u32>,
}

/// A writer removes a hot key while a refresher copies it (under the shard
/// lock), then publishes (under the lock again), as `HotTier::refresh`
/// does; a reader that starts after the removal returned must miss,
/// whichever table it finds.
#[test]
fn loom_hot_invalidation_races_with_promotion() {
    loom::model(|| {
        let domain = Arc::new(Domain::new());
        let (first, first_pos) = hot_table(1, 10);
        let ptr = Arc::new(HotPtr::new(std::sync::Arc::clone(&first)));
        let shard = Arc::new(loom::sync::Mutex::new(ModelShard {
            main: 10,
            table: first,
            pos: Some(first_pos),
            next_pos: None,
            next_invalid: None,
        }));
        let removed = Arc::new(AtomicBool::new(false));
        let reader_record = domain.register();

        let writer = {
            let (shard, removed) = (Arc::clone(&shard), Arc::clone(&removed));
            thread::spawn(move || {
                let mut s = shard.lock().expect("lock");
                s.main = 0;
                // `ShardHot::invalidate`.
                if let Some(pos) = s.pos.take() {
                    s.table.invalidate(pos);
                }
                if let Some(pos) = s.next_pos.take() {
                    s.next_invalid = Some(pos);
                }
                drop(s);
                removed.store(true, Ordering::Release);
            })
        };
        let refresher = {
            let (shard, ptr, domain) = (Arc::clone(&shard), Arc::clone(&ptr), Arc::clone(&domain));
            thread::spawn(move || {
                // Phase 2: copy under the lock.
                let mut s = shard.lock().expect("lock");
                let (table, pos) = if s.main == 0 {
                    (std::sync::Arc::new(HotTable::empty()), None)
                } else {
                    let (t, p) = hot_table(1, s.main);
                    (t, Some(p))
                };
                s.next_pos = pos;
                drop(s);
                // Phase 3: publish under the lock again.
                let mut s = shard.lock().expect("lock");
                if let Some(pos) = s.next_invalid.take() {
                    table.invalidate(pos);
                }
                s.table = std::sync::Arc::clone(&table);
                s.pos = s.next_pos.take();
                // SAFETY: every reader of `ptr` in this model reads inside
                // sections of `domain`.
                unsafe { ptr.publish_in(table, &domain) };
                drop(s);
            })
        };
        let started_after_removal = removed.load(Ordering::Acquire);
        domain.enter(&reader_record);
        // SAFETY: inside a section of `domain`, the reference dies before exit.
        let seen = unsafe { ptr.load_unchecked() }.get(h(1), &1).copied();
        domain.exit(&reader_record);
        assert!(seen.is_none() || seen == Some(10), "foreign value {seen:?}");
        if started_after_removal {
            assert_eq!(seen, None, "a removed value was served");
        }
        writer.join().expect("writer");
        refresher.join().expect("refresher");
    });
}

/// A retired hot table is reclaimed only after every read section that could
/// hold it has ended; the model records the "free" instead of freeing, so a
/// premature one fails an assertion rather than reading freed memory.
#[test]
fn loom_hot_table_outlives_the_sections_that_hold_it() {
    loom::model(|| {
        let domain = Arc::new(Domain::new());
        let (first, _) = hot_table(1, 10);
        let first_addr = std::sync::Arc::as_ptr(&first) as usize;
        let ptr = Arc::new(HotPtr::new(first));
        let freed = Arc::new(AtomicBool::new(false));
        let record = domain.register();

        let reader = {
            let (ptr, domain, freed) = (Arc::clone(&ptr), Arc::clone(&domain), Arc::clone(&freed));
            thread::spawn(move || {
                domain.enter(&record);
                // SAFETY: inside a section of `domain`.
                let table = unsafe { ptr.load_unchecked() };
                let value = table.get(h(1), &1).copied();
                if std::ptr::eq(table, first_addr as *const HotTable<u64, u64>) {
                    assert_eq!(value, Some(10));
                    assert!(!freed.load(Ordering::SeqCst), "freed while in use");
                } else {
                    assert_eq!(value, Some(20));
                }
                domain.exit(&record);
            })
        };
        let (second, _) = hot_table(1, 20);
        // SAFETY: every reader of `ptr` reads inside sections of `domain`.
        unsafe { ptr.publish_in(second, &domain) };
        if ptr.reclaim(&domain) == 0 {
            freed.store(true, Ordering::SeqCst);
        }
        reader.join().expect("reader");
    });
}

/// The main tables' amortised grace periods: a writer unlinks a slot and
/// stamps the retirement; a grace period that another writer starts (any
/// time after, or before, the stamp) lets the writer free it only once no
/// section that could hold it remains. The slot is a loom cell, read by the
/// reader and overwritten by the "free": loom reports the pair if the free
/// does not happen after the read, and the reader checks the value too.
#[test]
fn loom_stamped_slot_outlives_the_sections_that_hold_it() {
    loom::model(|| {
        let domain = Arc::new(Domain::new());
        // 1 while the "table" links the slot, 0 once unlinked.
        let linked = Arc::new(loom::sync::atomic::AtomicU64::new(1));
        let slot = Arc::new(loom::cell::UnsafeCell::new(10u64));
        let record = domain.register();

        let reader = {
            let (domain, linked, slot) =
                (Arc::clone(&domain), Arc::clone(&linked), Arc::clone(&slot));
            thread::spawn(move || {
                domain.enter(&record);
                if linked.load(Ordering::Acquire) == 1 {
                    // SAFETY (of the model): the slot was linked when
                    // loaded inside the section, so it is not freed yet.
                    let value = slot.with(|p| unsafe { *p });
                    assert_eq!(value, 10, "read a freed slot");
                }
                domain.exit(&record);
            })
        };
        let advancer = {
            let domain = Arc::clone(&domain);
            thread::spawn(move || {
                domain.advance_if_due(Duration::ZERO, Duration::ZERO, 0);
            })
        };
        linked.store(0, Ordering::Release);
        let epoch = domain.stamp();
        if domain.is_safe(epoch) {
            // The "free": no reader may still read the slot.
            slot.with_mut(|p| unsafe { *p = 0 });
        }
        reader.join().expect("reader");
        advancer.join().expect("advancer");
        // Once every thread is out of its section and a grace period ran
        // after the stamp, the slot can go.
        domain.advance_if_due(Duration::ZERO, Duration::ZERO, 0);
        assert!(domain.is_safe(epoch), "an idle domain holds nothing back");
    });
}
