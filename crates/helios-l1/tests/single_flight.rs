//! `get_or_insert_with`: one loader per key, errors shared, panics survived.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use helios_l1::Cache;

fn cache() -> Arc<Cache<u64, String>> {
    Arc::new(Cache::new(1000).unwrap())
}

#[test]
fn sixteen_concurrent_misses_run_the_loader_once() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (cache, loads, barrier) = (cache.clone(), loads.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.get_or_insert_with(42, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    // Keep the flight open long enough for all to join.
                    std::thread::sleep(Duration::from_millis(100));
                    "loaded".to_string()
                })
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), "loaded");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.get(&42).as_deref(), Some("loaded"));
}

#[test]
fn a_loader_error_reaches_every_waiter_and_caches_nothing() {
    let cache = cache();
    let loads = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, loads, barrier) = (cache.clone(), loads.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                cache.try_get_or_insert_with(1, || {
                    loads.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    Err::<String, _>("store unavailable")
                })
            })
        })
        .collect();
    for t in threads {
        assert_eq!(*t.join().unwrap().unwrap_err(), "store unavailable");
    }
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "waiters shared the leader's error"
    );
    assert_eq!(cache.get(&1), None);
    // The next call loads again.
    let v = cache.try_get_or_insert_with(1, || Ok::<_, &str>("ok".to_string()));
    assert_eq!(v.unwrap(), "ok");
}

#[test]
fn a_panicking_loader_does_not_wedge_the_waiters() {
    let cache = cache();
    let started = Arc::new(Barrier::new(2));
    let leader = {
        let (cache, started) = (cache.clone(), started.clone());
        std::thread::spawn(move || {
            cache.get_or_insert_with(5, || {
                started.wait();
                std::thread::sleep(Duration::from_millis(100));
                panic!("loader failed");
            })
        })
    };
    started.wait();
    // This caller joins the panicking flight, then loads itself.
    let v = cache.get_or_insert_with(5, || "second".to_string());
    assert_eq!(v, "second");
    assert!(
        leader.join().is_err(),
        "the panic reached the leader's caller"
    );
    assert_eq!(cache.get(&5).as_deref(), Some("second"));
    cache.validate().unwrap();
}

#[test]
fn a_hit_does_not_call_the_loader() {
    let cache = cache();
    cache.insert(3, "present".into()).unwrap();
    let v = cache.get_or_insert_with(3, || unreachable!("loader called on a hit"));
    assert_eq!(v, "present");
}
