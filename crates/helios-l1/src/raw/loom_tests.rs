//! Loom models of the lock-free read protocol: every interleaving of one
//! writer and one reader (or of two producers and the drainer) is explored.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p helios-l1 --lib --release loom_`
//! (see `.ci/run`). Reclamation is not modelled (see `crate::reclaim`).

use loom::sync::Arc;
use loom::thread;

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
        let (map, mut writer) = RawMap::<u64, (u64, u64)>::new();
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                let first = map.get(&guard, h(1), &1, |_, v| *v);
                let second = map.get(&guard, h(1), &1, |_, v| *v);
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
        map.insert(&mut writer, &guard, h(1), (1, (10, 10)), |_| h(1))
            .ok();
        let (pos, _) = map.find(&writer, &guard, h(1), &1).expect("just inserted");
        map.replace(&mut writer, &guard, pos, (1, (20, 20))).ok();
        reader.join().expect("reader");
    });
}

#[test]
fn loom_reader_sees_removal_only_as_absence() {
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, u64>::new();
        let guard = pin();
        map.insert(&mut writer, &guard, h(1), (1, 11), |_| h(1))
            .ok();
        map.insert(&mut writer, &guard, h(2), (2, 22), |_| h(2))
            .ok();
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                let one = map.get(&guard, h(1), &1, |_, v| *v);
                assert!(one.is_none() || one == Some(11));
                // Key 2 is never removed: a tombstone must not hide it.
                assert_eq!(map.get(&guard, h(2), &2, |_, v| *v), Some(22));
            })
        };
        let (pos, _) = map.find(&writer, &guard, h(1), &1).expect("present");
        map.remove_at(&mut writer, &guard, pos);
        reader.join().expect("reader");
        assert_eq!(map.get(&guard, h(1), &1, |_, v| *v), None);
    });
}

#[test]
fn loom_rebuild_keeps_every_key_visible() {
    loom::model(|| {
        let (map, mut writer) = RawMap::<u64, u64>::new();
        let guard = pin();
        // 12 entries fill a 16-slot table to its maximum load; the 13th
        // insert rebuilds it while the reader probes.
        for k in 0..12 {
            map.insert(&mut writer, &guard, h(k), (k, k), |i| h(u64::from(i)))
                .ok();
        }
        let map = Arc::new(map);
        let reader = {
            let map = Arc::clone(&map);
            thread::spawn(move || {
                let guard = pin();
                assert_eq!(map.get(&guard, h(3), &3, |_, v| *v), Some(3));
            })
        };
        // Slab indices equal the keys here (fresh slots in order).
        map.insert(&mut writer, &guard, h(12), (12, 12), |i| h(u64::from(i)))
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
