//! API-level behaviour: building, refusing, hashing choices, borrowing keys.

use std::sync::Arc;

use helios_l1::{BuildError, Cache, RefusalReason, UniformHashBuilder};

#[test]
fn bad_options_are_errors_not_panics() {
    assert_eq!(
        Cache::<u64, u64>::new(0).unwrap_err(),
        BuildError::ZeroCapacity
    );
    let err = Cache::<u64, u64>::builder()
        .capacity(100)
        .shards(3)
        .build()
        .unwrap_err();
    assert_eq!(err, BuildError::ShardsNotPowerOfTwo { shards: 3 });
    assert_eq!(err.to_string(), "shard count must be a power of two, got 3");
    let err = Cache::<u64, u64>::builder()
        .capacity(4)
        .shards(8)
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::CapacityBelowShards { .. }));
    assert!(
        Cache::<u64, u64>::builder().build().is_err(),
        "no capacity set"
    );
}

#[test]
fn an_entry_heavier_than_a_shard_is_refused_and_handed_back() {
    let cache = Cache::builder()
        .capacity(100)
        .shards(4)
        .weigher(|_: &u32, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    assert_eq!(cache.max_entry_weight(), 25);
    cache.insert(1, vec![0; 10]).unwrap();
    let refused = cache.insert(1, vec![7; 26]).unwrap_err();
    assert_eq!(refused.key, 1);
    assert_eq!(refused.value, vec![7; 26]);
    assert_eq!(
        refused.reason,
        RefusalReason::TooHeavy {
            weight: 26,
            max: 25
        }
    );
    assert!(refused.to_string().contains("weighs 26"));
    assert_eq!(cache.get(&1), None, "the replaced value is not served");
    assert_eq!(cache.weight(), 0);
    cache.validate().unwrap();
}

#[test]
fn weight_never_exceeds_capacity_under_churn() {
    let cache = Cache::builder()
        .capacity(1000)
        .weigher(|k: &u64, _: &u64| k % 17 + 1)
        .build()
        .unwrap();
    for i in 0..50_000u64 {
        cache.insert(i % 3000, i).unwrap();
        assert!(cache.weight() <= 1000);
        if i % 7 == 0 {
            cache.remove(&(i / 2 % 3000));
        }
    }
    cache.validate().unwrap();
}

#[test]
fn borrowed_keys_and_contains() {
    let cache: Cache<String, u32> = Cache::new(10).unwrap();
    cache.insert("a".to_string(), 1).unwrap();
    assert!(cache.contains_key("a"));
    assert_eq!(cache.get("a"), Some(1));
    assert_eq!(cache.remove("a"), Some(1));
    assert!(!cache.contains_key("a"));
    assert!(cache.is_empty());
}

#[test]
fn content_ids_skip_rehashing() {
    let cache = Cache::builder()
        .capacity(1000)
        .hasher(UniformHashBuilder)
        .build()
        .unwrap();
    for i in 0..500u32 {
        let id = *blake3_like(i).as_bytes();
        cache.insert(id, i).unwrap();
    }
    for i in 0..500u32 {
        assert_eq!(cache.get(blake3_like(i).as_bytes()), Some(i));
    }
    cache.validate().unwrap();
}

/// A stand-in for a BLAKE3 digest: 32 well-mixed bytes.
struct Digest([u8; 32]);
impl Digest {
    fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}
fn blake3_like(i: u32) -> Digest {
    let mut out = [0u8; 32];
    let mut x = u64::from(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    for chunk in out.chunks_mut(8) {
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    Digest(out)
}

#[test]
fn values_are_dropped_exactly_once() {
    use std::sync::Arc;
    let token = Arc::new(());
    {
        let cache = Cache::new(100).unwrap();
        for i in 0..1000u32 {
            cache.insert(i, Arc::clone(&token)).unwrap();
            if i % 3 == 0 {
                cache.remove(&(i / 2));
            }
        }
        cache.clear();
        for i in 0..50u32 {
            cache.insert(i, Arc::clone(&token)).unwrap();
        }
    }
    // Dropping the cache frees what its writers retired and had not freed.
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "an entry leaked or was dropped twice"
    );
}

#[test]
fn borrowed_reads_do_not_clone() {
    let cache: Cache<u64, Arc<Vec<u8>>> = Cache::new(16).unwrap();
    cache.insert(1, Arc::new(vec![1, 2, 3])).unwrap();
    // Only the cache holds the Arc while `with` runs: no refcount bump.
    assert_eq!(
        cache.with(&1, |v| (Arc::strong_count(v), v.len())),
        Some((1, 3))
    );
    assert_eq!(cache.with(&2, |v| v.len()), None);
    // `with` may call back into the cache.
    assert_eq!(
        cache.with(&1, |_| cache.insert(2, Arc::new(vec![])).is_ok()),
        Some(true)
    );
    assert_eq!(cache.with(&2, |v| v.len()), Some(0));
}

#[test]
fn exact_hit_recording_drains_full_buffers_on_the_hit_path() {
    // 1000 hits on key 1 with no write in between overflow the read buffer,
    // so exact recording drains it under the shard lock from the hit path
    // (including from inside `with`); that must neither deadlock nor break
    // the policy, and the hot key survives a scan of one-hit wonders.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .exact_hit_recording(true)
        .build()
        .unwrap();
    cache.insert(1, 1).unwrap();
    for _ in 0..1000 {
        assert_eq!(cache.with(&1, |v| *v), Some(1));
    }
    for k in 1000..1400 {
        cache.insert(k, k).unwrap();
    }
    assert_eq!(cache.get(&1), Some(1));
    cache.validate().unwrap();
}

/// A one-shard cache without a hot tier (so every hit goes through the
/// read buffer) holding key 1, and a function that reads it `n` times.
fn recording_cache(
    configure: impl FnOnce(helios_l1::CacheBuilder<u64, u64>) -> helios_l1::CacheBuilder<u64, u64>,
) -> Cache<u64, u64> {
    let cache = configure(Cache::builder().capacity(100).shards(1).hot_tier_entries(0))
        .build()
        .unwrap();
    cache.insert(1, 1).unwrap();
    cache
}

fn hit(cache: &Cache<u64, u64>, n: usize) {
    for _ in 0..n {
        assert_eq!(cache.get(&1), Some(1));
    }
}

#[test]
fn readers_drain_full_buffers_a_bounded_number_of_times_between_writes() {
    const HITS: usize = 20_000; // far more than a stripe holds
                                // Without reader drains, a write replays one stripe's worth: its size.
    let lossy = recording_cache(|b| b.reader_drains_per_write(0));
    hit(&lossy, HITS);
    lossy.insert(2, 2).unwrap();
    let stripe = lossy.hit_recording_stats().replayed;
    assert_eq!(lossy.hit_recording_stats().reader_drains, 0);
    assert!(stripe > 0 && stripe < HITS as u64, "{stripe}");

    // By default readers drain DEFAULT times, then drop until a write.
    let drains = u64::from(helios_l1::DEFAULT_READER_DRAINS_PER_WRITE);
    let cache = recording_cache(|b| b);
    hit(&cache, HITS);
    let stats = cache.hit_recording_stats();
    assert_eq!(stats.reader_drains, drains);
    assert_eq!(stats.replayed, drains * stripe);
    hit(&cache, HITS);
    assert_eq!(
        cache.hit_recording_stats(),
        stats,
        "no write, no more drains"
    );
    cache.insert(2, 2).unwrap();
    assert_eq!(cache.hit_recording_stats().replayed, (drains + 1) * stripe);
    hit(&cache, HITS);
    assert_eq!(
        cache.hit_recording_stats().reader_drains,
        2 * drains,
        "a write grants the drains again"
    );
    cache.validate().unwrap();

    // Exact recording drops nothing.
    let exact = recording_cache(|b| b.exact_hit_recording(true));
    hit(&exact, HITS);
    exact.insert(2, 2).unwrap();
    assert_eq!(exact.hit_recording_stats().replayed, HITS as u64);
}

#[test]
fn a_reader_drain_inside_a_borrowed_read_neither_deadlocks_nor_loses_the_value() {
    // The drain runs before the caller's closure, under a lock it releases
    // first, so the closure may write to the same shard.
    // A write every 1,000 reads lets the stripe fill in between, so some
    // reads drain it right before their closure writes.
    let cache = recording_cache(|b| b);
    for i in 0..20_000u64 {
        assert_eq!(
            cache.with(&1, |v| {
                if i % 1_000 == 999 {
                    cache.insert(1_000 + i % 50, i).unwrap();
                }
                *v
            }),
            Some(1)
        );
    }
    cache.validate().unwrap();
    assert!(cache.hit_recording_stats().reader_drains > 0);
}

#[test]
fn the_removal_listener_hears_every_departure_with_its_cause() {
    use helios_l1::RemovalCause;
    use std::sync::{Arc, Mutex};
    let heard: Arc<Mutex<Vec<(u64, u64, RemovalCause)>>> = Arc::default();
    let sink = Arc::clone(&heard);
    let cache: Cache<u64, u64, _> = Cache::builder()
        .capacity(10)
        .shards(1)
        .weigher(|_: &u64, v: &u64| *v)
        .removal_listener(move |k: &u64, v: &u64, cause| sink.lock().unwrap().push((*k, *v, cause)))
        .build()
        .unwrap();
    let take = || std::mem::take(&mut *heard.lock().unwrap());
    cache.insert(1, 4).unwrap();
    cache.insert(1, 5).unwrap();
    assert_eq!(take(), vec![(1, 4, RemovalCause::Replaced)]);
    assert_eq!(cache.remove(&1), Some(5));
    assert_eq!(take(), vec![(1, 5, RemovalCause::Removed)]);
    cache.insert(2, 3).unwrap();
    assert!(cache.insert(2, 99).is_err(), "too heavy");
    assert_eq!(take(), vec![(2, 3, RemovalCause::Replaced)]);
    for k in 10..20 {
        cache.insert(k, 3).unwrap();
    }
    let evicted = take();
    assert!(!evicted.is_empty());
    assert!(evicted.iter().all(|&(_, _, c)| c == RemovalCause::Evicted));
    let resident = cache.len();
    cache.clear();
    let cleared = take();
    assert_eq!(cleared.len(), resident);
    assert!(cleared.iter().all(|&(_, _, c)| c == RemovalCause::Cleared));
}

#[test]
fn inserted_minus_removed_weight_always_equals_the_cache_weight() {
    // The accounting per-agent charges will rely on: every weight that
    // enters is reported when it leaves.
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let departed = Arc::new(AtomicU64::new(0));
    let sink = Arc::clone(&departed);
    let cache: Cache<u64, u64, _> = Cache::builder()
        .capacity(500)
        .shards(4)
        .weigher(|_: &u64, v: &u64| *v % 7 + 1)
        .removal_listener(move |_: &u64, v: &u64, _| {
            sink.fetch_add(*v % 7 + 1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let mut entered = 0u64;
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = x % 300;
        match x % 10 {
            0 => {
                cache.remove(&key);
            }
            1..=5 => {
                if cache.insert(key, x).is_ok() {
                    entered += x % 7 + 1;
                }
            }
            _ => {
                cache.get(&key);
            }
        }
        assert_eq!(
            entered - departed.load(Ordering::Relaxed),
            cache.weight(),
            "weight reported in and out disagrees with the cache"
        );
    }
    cache.validate().unwrap();
}

#[test]
fn pinned_entries_survive_and_expendable_ones_go_first() {
    use helios_l1::Retention;
    // Keys below 100 are pinned, keys 1000..1100 expendable.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(1_000)
        .shards(2)
        .retention(|k: &u64, _: &u64| match *k {
            0..=99 => Retention::Pinned,
            1_000..=1_099 => Retention::Expendable,
            _ => Retention::Normal,
        })
        .build()
        .unwrap();
    for k in 0..100 {
        cache.insert(k, k).unwrap();
    }
    for k in 10_000..100_000 {
        cache.insert(k, k).unwrap();
        // The scan is read again, so plain TinyLFU would admit it.
        cache.get(&k);
        cache.get(&k);
        assert!(cache.weight() <= 1_000);
    }
    assert!(
        (0..100).all(|k| cache.contains_key(&k)),
        "a pinned entry left"
    );
    cache.validate().unwrap();
}

#[test]
fn update_replaces_atomically_and_reports_what_it_did() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let replaced = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&replaced);
    let cache: Cache<u64, Vec<u8>, _> = Cache::builder()
        .capacity(1_000)
        .shards(1)
        .weigher(|_: &u64, v: &Vec<u8>| v.len() as u64)
        .removal_listener(move |_, _, cause| {
            if cause == helios_l1::RemovalCause::Replaced {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    assert!(!cache.update(&1, |v| Some(v.clone())), "absent key");
    cache.insert(1, vec![1; 10]).unwrap();
    assert!(cache.update(&1, |v| Some([v.as_slice(), &[2; 5]].concat())));
    assert_eq!(cache.get(&1).map(|v| v.len()), Some(15));
    assert_eq!(cache.weight(), 15, "the new weight is charged");
    assert!(!cache.update(&1, |_| None), "declined");
    assert!(!cache.update(&1, |_| Some(vec![0; 5_000])), "too heavy");
    assert_eq!(cache.get(&1).map(|v| v.len()), Some(15), "old value kept");
    assert_eq!(replaced.load(Ordering::Relaxed), 1);

    // Concurrent increments through update never lose one.
    let counter: Arc<Cache<u64, u64>> = Arc::new(Cache::new(100).unwrap());
    counter.insert(0, 0).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            let counter = Arc::clone(&counter);
            s.spawn(move || {
                for _ in 0..10_000 {
                    assert!(counter.update(&0, |v| Some(v + 1)));
                }
            });
        }
    });
    assert_eq!(counter.get(&0), Some(40_000));
    cache.validate().unwrap();
}

#[test]
fn demoted_entries_are_the_next_victims() {
    let cache: Cache<u64, u64> = Cache::builder().capacity(1_000).shards(1).build().unwrap();
    for k in 0..1_000 {
        cache.insert(k, k).unwrap();
    }
    assert_eq!(cache.demote_where(|k, _| k % 10 == 0), 100);
    // Newcomers read three times out-count the old entries (read never) by
    // more than any admission margin, so each evicts the entry at the
    // front of the order: the demoted ones, after the old window's few
    // entries, which leave as the first candidates.
    for k in 5_000..5_100 {
        cache.insert(k, k).unwrap();
        for _ in 0..3 {
            cache.get(&k);
        }
    }
    let demoted_left = (0..1_000)
        .step_by(10)
        .filter(|k| cache.contains_key(k))
        .count();
    let others_left = (0..1_000)
        .filter(|k| k % 10 != 0 && cache.contains_key(k))
        .count();
    assert!(
        demoted_left <= 30,
        "{demoted_left} of 100 demoted entries left"
    );
    assert!(
        others_left >= 880,
        "{} others were evicted",
        900 - others_left
    );
    cache.validate().unwrap();
}

#[test]
fn weighted_caches_keep_shards_large_enough_for_large_entries() {
    // A 1 MB byte-weighted cache: with the unit-weight default (8 shards
    // of 125 KB on 2+ CPUs) a 600 KB entry would be refused.
    let bytes: Cache<u64, Vec<u8>, _> = Cache::builder()
        .capacity(1_000_000)
        .weigher(|_: &u64, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    assert_eq!(bytes.shards(), 1);
    assert!(bytes.insert(1, vec![0; 600_000]).is_ok());
    assert_eq!(bytes.get(&1).map(|v| v.len()), Some(600_000));
    // Large byte-weighted caches are still sharded, 64 MiB per shard at
    // least; unit weights keep their own default.
    let large: Cache<u64, Vec<u8>, _> = Cache::builder()
        .capacity(1 << 30)
        .weigher(|_: &u64, v: &Vec<u8>| v.len() as u64)
        .build()
        .unwrap();
    assert!(large.shards() > 1 && large.max_entry_weight() >= 64 << 20);
    let entries: Cache<u64, u64> = Cache::builder().capacity(1 << 20).build().unwrap();
    assert_eq!(entries.shards(), helios_l1::default_shards(1 << 20));
    // An agent cache with unit weights keeps the unit default too.
    let agents = helios_l1::AgentCache::<u64, u64>::new(1 << 20).unwrap();
    assert_eq!(agents.cache().shards(), helios_l1::default_shards(1 << 20));
}

/// Inserts keys `0..n`, catching the panics of the cache's callbacks, and
/// checks after each insert that the shard is consistent and within its
/// capacity; returns how many inserts panicked.
fn insert_through_panics(cache: &Cache<u64, u64>, n: u64) -> usize {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut panics = 0;
    for k in 0..n {
        if catch_unwind(AssertUnwindSafe(|| {
            let _ = cache.insert(k, k);
        }))
        .is_err()
        {
            panics += 1;
        }
        cache.validate().unwrap();
        assert!(cache.weight() <= cache.capacity());
    }
    panics
}

/// A removal listener that panics during an eviction: the panic reaches the
/// inserting caller, and the shard is left consistent (every victim gone
/// from the table as from the policy, counts published, the weight within
/// the capacity). Before, the victims after the panicking one stayed
/// readable in the table but left the policy, and were never evicted.
#[test]
fn a_panicking_listener_leaves_the_shard_consistent() {
    use helios_l1::RemovalCause;
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .shards(1)
        .removal_listener(|k: &u64, _: &u64, cause| {
            if cause == RemovalCause::Evicted && k % 7 == 0 {
                panic!("listener refuses key {k}");
            }
        })
        .insert_listener(|k: &u64, _: &u64| {
            if k % 101 == 0 {
                panic!("insert listener refuses key {k}");
            }
        })
        .build()
        .unwrap();
    let panics = insert_through_panics(&cache, 2_000);
    assert!(panics > 0, "some listener calls panicked");
    assert_eq!(cache.len() as u64, cache.weight());
}

/// The same for a retention judge that panics: the eviction finishes,
/// judging the rest `Normal`, and the panic reaches the caller.
#[test]
fn a_panicking_retention_judge_leaves_the_shard_consistent() {
    use helios_l1::Retention;
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(100)
        .shards(1)
        .retention(|k: &u64, _: &u64| {
            if k % 5 == 0 {
                panic!("judge refuses key {k}");
            }
            Retention::Normal
        })
        .build()
        .unwrap();
    let panics = insert_through_panics(&cache, 2_000);
    assert!(panics > 0, "some judgements panicked");
}

/// The default shard count keeps every shard within the entries it can
/// index, for capacities up to what 4,096 shards hold.
#[test]
fn default_shards_leave_no_shard_more_entries_than_it_can_index() {
    use helios_l1::{default_shards, MAX_ENTRIES_PER_SHARD};
    for capacity in [
        1_000u64,
        100_000_000,
        1_000_000_000,
        10_000_000_000,
        60_000_000_000,
    ] {
        let shards = default_shards(capacity) as u64;
        assert!(shards.is_power_of_two());
        assert!(
            capacity / shards < MAX_ENTRIES_PER_SHARD,
            "{capacity} in {shards} shards"
        );
    }
    // "Unbounded" keeps the CPU-based count rather than thousands of shards.
    assert!(default_shards(u64::MAX) <= 4_096);
}
