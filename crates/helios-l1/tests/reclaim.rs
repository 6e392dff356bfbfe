//! Deferred reclamation seen from the API: a value borrowed inside `with`
//! outlives its removal and any number of grace periods the writers run
//! meanwhile, and is dropped once the borrow ends and the shard writes again.
//! A reclaimer that freed too early would fail the first assertion (the
//! value's destructor would have run while the borrow was alive).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use helios_l1::Cache;

/// A value that records its destruction. The cache holds it in an `Arc`
/// (values must be `Clone`); `remove` hands back a clone of the `Arc`, so
/// the destructor runs when the cache frees its own copy.
struct Tracked {
    key: u64,
    dropped: Arc<AtomicBool>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// Inserts fresh keys into the one shard (each insert evicts or replaces,
/// so the writer retires slots and runs grace periods), pausing longer than
/// a grace-period interval between rounds.
fn churn(cache: &Cache<u64, Arc<Tracked>>, from: u64, rounds: u64) {
    let sink = Arc::new(AtomicBool::new(false));
    for round in 0..rounds {
        for k in 0..500 {
            let key = from + round * 500 + k;
            let value = Arc::new(Tracked {
                key,
                dropped: Arc::clone(&sink),
            });
            cache.insert(key, value).ok();
            cache.remove(&(key / 2));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_borrowed_value_outlives_its_removal_and_the_grace_periods_after_it() {
    let cache: Arc<Cache<u64, Arc<Tracked>>> =
        Arc::new(Cache::builder().capacity(256).shards(1).build().unwrap());
    let dropped = Arc::new(AtomicBool::new(false));
    cache
        .insert(
            1,
            Arc::new(Tracked {
                key: 1,
                dropped: Arc::clone(&dropped),
            }),
        )
        .ok();

    let (borrowing, borrowed) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let reader = {
        let (cache, dropped) = (Arc::clone(&cache), Arc::clone(&dropped));
        std::thread::spawn(move || {
            cache.with(&1, |value| {
                borrowing.send(()).unwrap();
                released.recv().unwrap();
                // The writer removed key 1 and ran many grace periods, but
                // this section began before the removal.
                assert!(
                    !dropped.load(Ordering::SeqCst),
                    "the value was dropped while borrowed"
                );
                value.key
            })
        })
    };
    borrowed.recv().unwrap();
    // The clone `remove` returns is dropped at once; the cache's own copy
    // is what the borrow holds.
    assert!(cache.remove(&1).is_some());
    churn(&cache, 1_000, 20);
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the value was dropped while borrowed"
    );
    release.send(()).unwrap();
    assert_eq!(reader.join().unwrap(), Some(1));

    // The borrow is over: later writes free it (within a few grace periods).
    let mut rounds = 0;
    while !dropped.load(Ordering::SeqCst) {
        rounds += 1;
        assert!(rounds < 10_000, "a removed value was never dropped");
        churn(&cache, 1_000_000 + rounds * 1_000, 1);
    }
    assert!(cache.get(&1).is_none());
}

/// What a thread-local's destructor saw when it used the cache.
type Seen = Arc<std::sync::Mutex<Vec<Option<u64>>>>;

/// Uses the cache from its destructor, which runs while the thread's
/// thread-locals are being destroyed.
struct UsesCacheOnExit {
    cache: Arc<Cache<u64, u64>>,
    seen: Seen,
}

impl Drop for UsesCacheOnExit {
    fn drop(&mut self) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.push(self.cache.get(&1));
        self.cache.insert(2, 20).ok();
        seen.push(self.cache.get(&2));
        seen.push(self.cache.remove(&2));
        seen.push(self.cache.with(&1, |v| *v));
    }
}

thread_local! {
    static ON_EXIT: std::cell::RefCell<Option<UsesCacheOnExit>> =
        const { std::cell::RefCell::new(None) };
}

/// Whether the reads below take the fallback path depends on the order in
/// which the platform destroys thread-locals (on Linux with glibc: reverse
/// order of registration, so they do; checked once by hand with a print in
/// `pin_fallback`). Either way they must work, and reclamation must go on.
#[test]
fn a_thread_can_use_the_cache_while_its_thread_locals_are_destroyed() {
    let cache = Arc::new(Cache::new(100).unwrap());
    cache.insert(1, 10).ok();
    let seen = Seen::default();
    let thread = {
        let (cache, seen) = (Arc::clone(&cache), Arc::clone(&seen));
        std::thread::spawn(move || {
            // Registered before the cache's own thread-locals, so destroyed
            // after them: its reads take the fallback path.
            ON_EXIT.with(|slot| {
                *slot.borrow_mut() = Some(UsesCacheOnExit {
                    cache: Arc::clone(&cache),
                    seen,
                })
            });
            assert_eq!(cache.get(&1), Some(10));
        })
    };
    thread.join().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, vec![Some(10), Some(20), Some(20), Some(10)]);
    // Writers still reclaim after such a section ended (a fallback count
    // left behind would hold every retirement back for good).
    let mut k = 10;
    let mut rounds = 0;
    loop {
        for _ in 0..1_000 {
            cache.insert(k, k).ok();
            k += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
        cache.insert(k, k).ok();
        cache.remove(&k);
        if cache.slot_stats().reused > 0 && cache.slot_stats().retired < 256 {
            break;
        }
        rounds += 1;
        assert!(
            rounds < 2_000,
            "reclamation stopped: {:?}",
            cache.slot_stats()
        );
    }
    cache.validate().unwrap();
}

#[test]
fn a_cache_that_only_grows_frees_its_outgrown_tables() {
    // One shard and no evictions: the writer retires nothing but the index
    // tables it outgrows, which together are about as large as the current
    // one. They must not wait for a slot retirement that never comes.
    let cache: Cache<u64, u64> = Cache::builder()
        .capacity(1_000_000)
        .shards(1)
        .build()
        .unwrap();
    for k in 0..100_000 {
        cache.insert(k, k).unwrap();
    }
    let mut next = 100_000;
    let mut rounds = 0;
    while cache.slot_stats().retired_tables > 0 {
        rounds += 1;
        assert!(rounds < 2_000, "outgrown tables were never freed");
        // A grace period can start; the next inserts look at limbo.
        std::thread::sleep(Duration::from_millis(1));
        for _ in 0..100 {
            cache.insert(next, next).unwrap();
            next += 1;
        }
    }
    let stats = cache.slot_stats();
    assert_eq!((stats.retired, stats.retired_tables), (0, 0));
    assert_eq!(cache.len() as u64, next);
}
