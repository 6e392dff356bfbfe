//! One thread reads a Zipf(0.99) stream of 1,000,000 keys from a warm cache
//! of capacity 100,000, with the hot tier on (`HOT=1024`, default) or off
//! (`HOT=0`); the tier serves whatever its hit share unless `MIN_SHARE`
//! (percent) says otherwise (`MIN_SHARE=80` is the library default, under
//! which this workload's tier does not serve). Meant for callgrind, which counts instructions and simulated
//! cache misses of the read loop alone (BENCHMARKS.md, "Hot tier"):
//!
//! ```sh
//! cargo build --release -p helios-l1 --example hot_tier_probe
//! HOT=0 valgrind --tool=callgrind --cache-sim=yes \
//!   --toggle-collect='hot_tier_probe::read_all' target/release/examples/hot_tier_probe
//! ```

use rand::prelude::*;
use rand_distr::Zipf;

/// The measured loop: one `get` per key.
#[inline(never)]
fn read_all(cache: &helios_l1::Cache<u64, u64>, keys: &[u64]) -> u64 {
    keys.iter().map(|k| u64::from(cache.get(k).is_some())).sum()
}

fn main() {
    let hot: usize = std::env::var("HOT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(helios_l1::DEFAULT_HOT_TIER_ENTRIES);
    let min_share: u8 = std::env::var("MIN_SHARE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cache: helios_l1::Cache<u64, u64> = match helios_l1::Cache::builder()
        .capacity(100_000)
        .hot_tier_entries(hot)
        .hot_tier_min_hit_share(min_share)
        .build()
    {
        Ok(cache) => cache,
        Err(e) => {
            eprintln!("hot_tier_probe: {e}");
            std::process::exit(1);
        }
    };
    let mut rng = StdRng::seed_from_u64(1);
    let Ok(zipf) = Zipf::new(1e6, 0.99) else {
        unreachable!("valid Zipf parameters")
    };
    let mut stream = |n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect()
    };
    let warm_up = stream(2_000_000);
    let reads = stream(1_000_000);
    for &k in &warm_up {
        if cache.get(&k).is_none() {
            let _ = cache.insert(k, k);
        }
    }
    // Rank the warm-up's hits into the tier now (retries only if another
    // thread refreshes; there is none).
    while hot > 0 && !cache.refresh_hot_tier() {}
    println!("{:?}", cache.hot_tier_stats());
    println!("hits: {} of {}", read_all(&cache, &reads), reads.len());
}
