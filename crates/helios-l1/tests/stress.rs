//! Multi-threaded stress: 8 threads, 1,000,000 mixed operations, values that
//! name their key (so a torn or foreign read is detected), and a full
//! invariant check at the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use helios_l1::Cache;

const THREADS: u64 = 8;
const OPS_PER_THREAD: u64 = 125_000;
const KEYS: u64 = 4096;

/// A value that proves which key it was written for: (key, writer, seq).
type Value = Arc<(u64, u64, u64)>;

#[test]
fn eight_threads_one_million_mixed_ops() {
    let cache: Arc<Cache<u64, Value, _>> = Arc::new(
        Cache::builder()
            .capacity(20_000)
            .shards(4)
            .weigher(|k: &u64, _: &Value| k % 9 + 1)
            .build()
            .unwrap(),
    );
    let hits = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let cache = Arc::clone(&cache);
            let hits = Arc::clone(&hits);
            std::thread::spawn(move || {
                let mut x = 0x2545_f491_4f6c_dd1d ^ (t + 1);
                for seq in 0..OPS_PER_THREAD {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Skewed keys: half the traffic on 1/16 of the keys.
                    let key = if x & 1 == 0 {
                        (x >> 8) % (KEYS / 16)
                    } else {
                        (x >> 8) % KEYS
                    };
                    match (x >> 40) % 100 {
                        0..=59 => {
                            if let Some(v) = cache.get(&key) {
                                assert_eq!(v.0, key, "value written for another key");
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        60..=69 => {
                            // Borrowed read: the value must stay intact
                            // while a concurrent writer replaces or removes it.
                            if let Some(owner) = cache.with(&key, |v| v.0) {
                                assert_eq!(owner, key, "borrowed a value of another key");
                                hits.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        70..=89 => cache.insert(key, Arc::new((key, t, seq))).unwrap(),
                        90..=96 => {
                            if let Some(v) = cache.remove(&key) {
                                assert_eq!(v.0, key);
                            }
                        }
                        97..=98 => {
                            let v = cache.get_or_insert_with(key, || Arc::new((key, t, seq)));
                            assert_eq!(v.0, key);
                        }
                        // Now and then a whole shard set is cleared under
                        // the readers (tables swapped, every slot retired).
                        _ if seq % 64 == 0 => cache.clear(),
                        _ => assert!(cache.weight() <= cache.capacity()),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    cache.validate().unwrap();
    assert!(cache.weight() <= cache.capacity());
    assert!(
        hits.load(Ordering::Relaxed) > 0,
        "the workload produced hits"
    );
    // Every resident value belongs to its key.
    for key in 0..KEYS {
        if let Some(v) = cache.get(&key) {
            assert_eq!(v.0, key);
        }
    }
}

#[test]
fn readers_never_see_a_removed_value_after_remove_returns() {
    // One writer alternates insert/remove of one key and publishes the round
    // it finished; readers that start after a remove must not see that
    // round's value.
    let cache: Arc<Cache<u64, u64>> =
        Arc::new(Cache::builder().capacity(64).shards(1).build().unwrap());
    let removed_round = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let removed_round = Arc::clone(&removed_round);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    let done = removed_round.load(Ordering::Acquire);
                    if let Some(v) = cache.get(&7) {
                        assert!(
                            v > done,
                            "saw value of round {v} after its removal (round {done} done)"
                        );
                    }
                    let done = removed_round.load(Ordering::Acquire);
                    if let Some(v) = cache.with(&7, |v| *v) {
                        assert!(v > done, "borrowed round {v} after its removal");
                    }
                }
            })
        })
        .collect();
    for round in 1..=20_000u64 {
        cache.insert(7, round).unwrap();
        cache.remove(&7);
        removed_round.store(round, Ordering::Release);
    }
    for r in readers {
        r.join().unwrap();
    }
    cache.validate().unwrap();
}
