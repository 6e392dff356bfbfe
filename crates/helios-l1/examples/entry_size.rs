//! Read throughput of the plain cache against the size of its entries:
//! `u64` keys with 8-, 16- and 24-byte values (16-, 24- and 32-byte
//! entries), 2 threads reading Zipf streams over 1,000,000 keys, capacity
//! 100,000, medians of 5 runs each. It separates what an `AgentCache`'s
//! larger entries cost from what its per-read work costs (BENCHMARKS.md,
//! "Throughput cost of agent awareness"):
//!
//! ```sh
//! cargo run --release -p helios-l1 --example entry_size
//! ```

use std::sync::Arc;
use std::time::Instant;

use rand::prelude::*;
use rand_distr::Zipf;

const KEYS: f64 = 1_000_000.0;
const CAPACITY: u64 = 100_000;
const OPS: usize = 2_000_000;
const THREADS: u64 = 2;
const RUNS: usize = 5;

fn stream(exponent: f64, seed: u64) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS, exponent).expect("valid zipf");
    (0..OPS)
        .map(|_| (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect()
}

/// Warms a cache of values made by `value`, then returns the 2-thread read
/// rate in millions of operations per second.
fn reads_per_second<V: Clone + Send + Sync + 'static>(value: fn(u64) -> V, exponent: f64) -> f64 {
    let cache: Arc<helios_l1::Cache<u64, V>> =
        Arc::new(helios_l1::Cache::new(CAPACITY).expect("valid capacity"));
    for k in stream(exponent, 9) {
        if cache.get(&k).is_none() {
            let _ = cache.insert(k, value(k));
        }
    }
    let streams: Vec<Arc<Vec<u64>>> = (0..THREADS)
        .map(|t| Arc::new(stream(exponent, t)))
        .collect();
    let start = Instant::now();
    let threads: Vec<_> = streams
        .iter()
        .map(|keys| {
            let (cache, keys) = (Arc::clone(&cache), Arc::clone(keys));
            std::thread::spawn(move || {
                keys.iter()
                    .filter(|k| cache.with(k, |_| ()).is_some())
                    .count()
            })
        })
        .collect();
    for thread in threads {
        std::hint::black_box(thread.join().expect("reader thread"));
    }
    (OPS as u64 * THREADS) as f64 / start.elapsed().as_secs_f64() / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    for exponent in [0.99, 0.8] {
        let mut rates = [vec![], vec![], vec![]];
        // Interleaved, so that the machine's noise hits all three alike.
        for _ in 0..RUNS {
            rates[0].push(reads_per_second(|k| k, exponent));
            rates[1].push(reads_per_second(|k| [k; 2], exponent));
            rates[2].push(reads_per_second(|k| [k; 3], exponent));
        }
        let [a, b, c] = rates.map(median);
        println!(
            "zipf {exponent}: 16-byte entries {a:.1}, 24-byte {b:.1}, 32-byte {c:.1} Mops/s (medians of {RUNS})"
        );
    }
}
