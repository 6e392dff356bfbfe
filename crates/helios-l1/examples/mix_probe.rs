//! Instructions per operation of the 95%-read mix (reads with insert on
//! miss, plus 5% inserts) over Zipf(0.99) on 1,000,000 keys, capacity
//! 100,000, one thread: helios against quick_cache. Meant for callgrind
//! (BENCHMARKS.md, "Throughput"):
//!
//! ```sh
//! cargo build --release -p helios-l1 --example mix_probe
//! valgrind --tool=callgrind --toggle-collect='mix_probe::helios_mix' target/release/examples/mix_probe
//! valgrind --tool=callgrind --toggle-collect='mix_probe::quick_cache_mix' target/release/examples/mix_probe
//! # helios with the hot tier off:
//! valgrind --tool=callgrind --toggle-collect='mix_probe::helios_mix' target/release/examples/mix_probe --no-hot-tier
//! ```

use rand::prelude::*;
use rand_distr::Zipf;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;
const OPS: usize = 1_000_000;

/// `(key, is_insert)` pairs: 5% inserts, the rest reads.
fn stream(seed: u64) -> Vec<(u64, bool)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, 0.99).expect("valid zipf");
    (0..OPS)
        .map(|_| {
            let key = (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (key, rng.random_range(0..100) < 5)
        })
        .collect()
}

/// The measured loop through helios (the warm-up pass is measured too,
/// so callgrind counts two passes; divide by 2,000,000 operations).
#[inline(never)]
fn helios_mix(cache: &helios_l1::Cache<u64, u64>, ops: &[(u64, bool)]) -> u64 {
    let mut hits = 0;
    for &(key, insert) in ops {
        if insert {
            let _ = cache.insert(key, key);
        } else if cache.get(&key).is_some() {
            hits += 1;
        } else {
            let _ = cache.insert(key, key);
        }
    }
    hits
}

/// The measured loop through quick_cache.
#[inline(never)]
fn quick_cache_mix(cache: &quick_cache::sync::Cache<u64, u64>, ops: &[(u64, bool)]) -> u64 {
    let mut hits = 0;
    for &(key, insert) in ops {
        if insert {
            cache.insert(key, key);
        } else if cache.get(&key).is_some() {
            hits += 1;
        } else {
            cache.insert(key, key);
        }
    }
    hits
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let warm = stream(1);
    let measured = stream(2);
    // The hot tier refreshes at most every 25 ms of wall time; under
    // callgrind (~50x slower) that would be ~50x more refreshes per
    // operation than in a real run, so refresh once after the warm-up
    // instead (a real run refreshes about 30 times per 2,000,000 ops).
    let hot_tier_entries = if std::env::args().any(|a| a == "--no-hot-tier") {
        0
    } else {
        helios_l1::DEFAULT_HOT_TIER_ENTRIES
    };
    let helios: helios_l1::Cache<u64, u64> = helios_l1::Cache::builder()
        .capacity(CAPACITY)
        .hot_tier_entries(hot_tier_entries)
        .hot_tier_refresh(std::time::Duration::from_secs(3600))
        .build()?;
    let qc = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize);
    helios_mix(&helios, &warm);
    quick_cache_mix(&qc, &warm);
    helios.refresh_hot_tier();
    // Wall time of the measured pass too (one thread, same process), for
    // a same-run ratio when instruction counts miss memory stalls.
    let started = std::time::Instant::now();
    let helios_hits = helios_mix(&helios, &measured);
    let helios_ns = started.elapsed().as_nanos() as f64 / OPS as f64;
    let started = std::time::Instant::now();
    let qc_hits = quick_cache_mix(&qc, &measured);
    let qc_ns = started.elapsed().as_nanos() as f64 / OPS as f64;
    println!(
        "hits: helios {helios_hits}, quick_cache {qc_hits}; ns per op: helios {helios_ns:.1}, quick_cache {qc_ns:.1} (helios/quick_cache throughput {:.2}x)",
        qc_ns / helios_ns
    );
    Ok(())
}
