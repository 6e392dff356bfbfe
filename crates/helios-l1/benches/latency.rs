//! Criterion: mean time of one hot-tier hit, main-table hit, miss and insert,
//! for helios (hot tier on and off), quick_cache and moka; single-threaded,
//! and (group `latency_2threads`) the hits and misses again while a second
//! thread runs the same operation over the same keys.
//!
//! Zipf(0.99) over 1,000,000 keys, capacity 100,000. Each cache is warmed
//! by reading a stream with insert on miss; the measured keys are then split
//! by what helios's caches hold: `hot` (in helios's hot tier), `main`
//! (resident in the helios cache under test, not hot), `miss` (absent from
//! every cache). Criterion reports means and their confidence intervals;
//! `helios bench latency` reports the per-call percentiles.
//!
//! `cargo bench -p helios-l1 --bench latency`

#![allow(missing_docs)] // a bench binary, not an API

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use rand::prelude::*;
use rand_distr::Zipf;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;

fn zipf_stream(ops: usize, seed: u64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, 0.99).expect("valid zipf");
    (0..ops)
        .map(|_| (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect()
}

/// Helios with a hot tier of `hot_entries` that serves whatever its hit
/// share (under the default 80% gate this workload's tier would not serve,
/// and this bench measures the tier).
fn helios(hot_entries: usize) -> helios_l1::Cache<u64, u64> {
    helios_l1::Cache::builder()
        .capacity(CAPACITY)
        .hot_tier_entries(hot_entries)
        .hot_tier_min_hit_share(0)
        .build()
        .expect("valid options")
}

/// Cycles through `keys` (a power-of-two prefix, so no division per call).
fn cycle(keys: &[u64]) -> impl FnMut() -> u64 + '_ {
    cycle_from(keys, 0)
}

/// [`cycle`], starting `start` keys in.
fn cycle_from(keys: &[u64], start: usize) -> impl FnMut() -> u64 + '_ {
    let n = keys.len().next_power_of_two() / 2;
    let keys = &keys[..n.max(1).min(keys.len())];
    let mask = keys.len() - 1;
    let mut i = start;
    move || {
        i += 1;
        keys[i & mask]
    }
}

/// Times `op` over `keys` on this thread while a second thread runs `op`
/// over the same keys (from the middle of the cycle) until the timing ends.
fn contended<R>(b: &mut Bencher, keys: &[u64], op: impl Fn(u64) -> R + Sync) {
    b.iter_custom(|iters| {
        let stop = AtomicBool::new(false);
        let started = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut next = cycle_from(keys, keys.len() / 2);
                started.store(true, Ordering::Release);
                while !stop.load(Ordering::Relaxed) {
                    black_box(op(black_box(next())));
                }
            });
            while !started.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
            let mut next = cycle(keys);
            let start = Instant::now();
            for _ in 0..iters {
                black_box(op(black_box(next())));
            }
            let took = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            took
        })
    });
}

fn latency(c: &mut Criterion) {
    let warm = zipf_stream(4_000_000, 7);
    let on = helios(helios_l1::DEFAULT_HOT_TIER_ENTRIES);
    let off = helios(0);
    let qc = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
    let moka = moka::sync::Cache::<u64, u64>::new(CAPACITY);
    for &k in &warm {
        if on.get(&k).is_none() {
            let _ = on.insert(k, k);
        }
        if off.get(&k).is_none() {
            let _ = off.insert(k, k);
        }
        if qc.get(&k).is_none() {
            qc.insert(k, k);
        }
        if moka.get(&k).is_none() {
            moka.insert(k, k);
        }
    }
    moka.run_pending_tasks();
    let mut distinct = warm.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let hot: Vec<u64> = distinct.iter().copied().filter(|k| on.is_hot(k)).collect();
    let main: Vec<u64> = distinct
        .iter()
        .copied()
        .filter(|k| !on.is_hot(k) && on.contains_key(k) && off.contains_key(k))
        .collect();
    let miss: Vec<u64> = (0..1 << 16)
        .map(|i: u64| (KEYS + 1 + i).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect();
    assert!(hot.len() >= 256, "the hot tier filled: {}", hot.len());
    assert!(main.len() >= 1024);

    let mut g = c.benchmark_group("latency");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    let mut next = cycle(&hot);
    g.bench_function("helios/hot_hit", |b| b.iter(|| on.get(&black_box(next()))));
    let mut next = cycle(&hot);
    g.bench_function("helios_nohot/hot_keys", |b| {
        b.iter(|| off.get(&black_box(next())))
    });
    let mut next = cycle(&hot);
    g.bench_function("quick_cache/hot_keys", |b| {
        b.iter(|| qc.get(&black_box(next())))
    });
    let mut next = cycle(&hot);
    g.bench_function("moka/hot_keys", |b| b.iter(|| moka.get(&black_box(next()))));
    let mut next = cycle(&main);
    g.bench_function("helios/main_hit", |b| b.iter(|| on.get(&black_box(next()))));
    let mut next = cycle(&main);
    g.bench_function("helios_nohot/main_hit", |b| {
        b.iter(|| off.get(&black_box(next())))
    });
    let mut next = cycle(&miss);
    g.bench_function("helios/miss", |b| b.iter(|| on.get(&black_box(next()))));
    let mut next = cycle(&miss);
    g.bench_function("quick_cache/miss", |b| {
        b.iter(|| qc.get(&black_box(next())))
    });
    let mut next = cycle(&miss);
    g.bench_function("moka/miss", |b| b.iter(|| moka.get(&black_box(next()))));
    g.finish();

    // The same reads with a second thread doing the same, before the
    // inserts below change what is resident.
    let mut g = c.benchmark_group("latency_2threads");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    g.bench_function("helios/hot_hit", |b| contended(b, &hot, |k| on.get(&k)));
    g.bench_function("helios_nohot/hot_keys", |b| {
        contended(b, &hot, |k| off.get(&k))
    });
    g.bench_function("quick_cache/hot_keys", |b| {
        contended(b, &hot, |k| qc.get(&k))
    });
    g.bench_function("moka/hot_keys", |b| contended(b, &hot, |k| moka.get(&k)));
    g.bench_function("helios/main_hit", |b| contended(b, &main, |k| on.get(&k)));
    g.bench_function("helios_nohot/main_hit", |b| {
        contended(b, &main, |k| off.get(&k))
    });
    g.bench_function("helios/miss", |b| contended(b, &miss, |k| on.get(&k)));
    g.bench_function("quick_cache/miss", |b| contended(b, &miss, |k| qc.get(&k)));
    g.bench_function("moka/miss", |b| contended(b, &miss, |k| moka.get(&k)));
    g.finish();

    let mut g = c.benchmark_group("latency");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    // Inserts of new keys into the full caches: each one evicts.
    let mut fresh = 2 * KEYS;
    g.bench_function("helios/insert", |b| {
        b.iter(|| {
            fresh += 1;
            on.insert(fresh, fresh)
        })
    });
    g.bench_function("helios_nohot/insert", |b| {
        b.iter(|| {
            fresh += 1;
            off.insert(fresh, fresh)
        })
    });
    g.bench_function("quick_cache/insert", |b| {
        b.iter(|| {
            fresh += 1;
            qc.insert(fresh, fresh)
        })
    });
    g.bench_function("moka/insert", |b| {
        b.iter(|| {
            fresh += 1;
            moka.insert(fresh, fresh)
        })
    });
    g.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
