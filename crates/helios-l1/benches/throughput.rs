//! Throughput of helios vs quick_cache vs moka, 2 threads, in one process.
//!
//! `helios` is the default cache (its hot tier serves only while its entries
//! take at least 80% of the hits), `helios_hot` serves from the tier whatever
//! its share, `helios_nohot` has no tier;
//! `helios_agents` is an `AgentCache` with 16 registered agents, each thread
//! reading through its own agent's handle. With many threads, each agent's
//! fair share is 1/THREADS of the cache, and in the 95% mixes an agent
//! whose stream brings in more than twice that has its inserts refused.
//!
//! Workloads: pre-generated Zipf(0.99) and Zipf(0.8) streams over 1,000,000
//! keys, capacity 100,000, at 100% reads (after a warm-up that fills the
//! cache) and at 95% reads (insert on miss; the other 5% are inserts).
//! Implementations run interleaved, round after round (the order rotates),
//! because this machine is shared and identical runs differ by up to 2×; we
//! report the median of the rounds and per-pair ratios of medians.
//!
//! Criterion is not used here because its sampling measures one function at
//! a time and cannot interleave peers within a round.
//!
//! `cargo bench -p helios-l1 --bench throughput` (env: `ROUNDS`, default 7;
//! `OPS`, operations per thread per round, default 2,000,000; `ONLY=helios`
//! (or several implementations' names, comma-separated; `helios_s8`,
//! `helios_s16`... name the default cache with that many shards,
//! `helios_wide` the default cache keyed by two words) and `THREADS=1` for callgrind runs;
//! `READS=95` or `READS=100` for one mix, `ZIPF=0.99` or `ZIPF=0.8` for one
//! skew). Instructions per operation of the measured rounds alone:
//! `valgrind --tool=callgrind --toggle-collect='throughput::timed_pass'`
//! (BENCHMARKS.md, "Instructions per operation").

#![allow(missing_docs)] // a bench binary, not an API

use std::sync::{Arc, Barrier};
use std::time::Instant;

use rand::prelude::*;
use rand_distr::Zipf;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;

/// The operations a bench thread performs.
trait Ops: Sync {
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
}

trait Bench: Send + Sync {
    /// What bench thread `thread` operates through for a whole run: the
    /// cache itself, or (`helios_agents`) that thread's agent handle, held
    /// as an agent holds its handle.
    fn ops(&self, thread: usize) -> &dyn Ops;
    /// A line about internal state worth printing after warm-up.
    fn describe(&self) -> Option<String> {
        None
    }
    /// A line about slab slots, printed after the rounds.
    fn slots(&self) -> Option<String> {
        None
    }
}

impl Ops for helios_l1::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        helios_l1::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        let _ = helios_l1::Cache::insert(self, key, key);
    }
}

impl Bench for helios_l1::Cache<u64, u64> {
    fn ops(&self, _thread: usize) -> &dyn Ops {
        self
    }
    fn describe(&self) -> Option<String> {
        let s = self.hot_tier_stats();
        (s.capacity > 0).then(|| {
            format!(
                "hot tier after warm-up: {} of {} entries valid, {}% of hits, serving {}, {} refreshes of {:.1} us on average, membarrier {}",
                s.valid,
                s.capacity,
                s.hit_share_percent,
                s.serving,
                s.refreshes,
                s.refresh_time.as_secs_f64() * 1e6 / s.refreshes.max(1) as f64,
                s.membarrier
            )
        })
    }
    fn slots(&self) -> Option<String> {
        let s = self.slot_stats();
        Some(format!(
            "slots ever used {} for {} entries ({:.1}% over), {} free now",
            s.fresh,
            self.len(),
            (s.fresh as f64 / self.len().max(1) as f64 - 1.0) * 100.0,
            s.free
        ))
    }
}

impl Ops for quick_cache::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        quick_cache::sync::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        quick_cache::sync::Cache::insert(self, key, key);
    }
}

impl Bench for quick_cache::sync::Cache<u64, u64> {
    fn ops(&self, _thread: usize) -> &dyn Ops {
        self
    }
}

impl Ops for moka::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        moka::sync::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        moka::sync::Cache::insert(self, key, key);
    }
}

impl Bench for moka::sync::Cache<u64, u64> {
    fn ops(&self, _thread: usize) -> &dyn Ops {
        self
    }
}

/// Agents registered in `helios_agents` (at least one per thread).
const AGENTS: usize = 16;

/// An `AgentCache` with 16 registered agents, of which each bench thread
/// uses one, holding its handle for the whole run: what agent awareness
/// costs on hits. The idle agents claim no part of the pool, so the
/// readers' inserts are admitted as the plain cache's are and both hold
/// the same entries after warm-up (before claimants were counted, each
/// reader was refused beyond 2/16 of the full cache, its resident set froze
/// and its hit ratio fell 4 to 10 pp below the plain cache's).
struct Agents {
    handles: Vec<helios_l1::AgentHandle<u64, u64>>,
    cache: Arc<helios_l1::AgentCache<u64, u64>>,
}

impl Ops for helios_l1::AgentHandle<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        matches!(helios_l1::AgentHandle::get(self, &key), Ok(Some(_)))
    }
    #[inline]
    fn insert(&self, key: u64) {
        let _ = helios_l1::AgentHandle::insert(self, key, key);
    }
}

impl Bench for Agents {
    fn ops(&self, thread: usize) -> &dyn Ops {
        &self.handles[thread % self.handles.len()]
    }
    fn describe(&self) -> Option<String> {
        let s = self.cache.cache().hot_tier_stats();
        Some(format!(
            "{} agents registered, {} entries resident after warm-up; hot tier {} of {} valid, {}% of hits, serving {}",
            self.handles.len(),
            self.cache.cache().len(),
            s.valid,
            s.capacity,
            s.hit_share_percent,
            s.serving,
        ))
    }
}

/// The plain cache keyed by two words, as wide as an agent's scoped key
/// (`helios_wide`, run only when named in `ONLY`): what separates
/// `helios_agents` from `helios` that is the key's width, not the agent
/// logic.
struct Wide(helios_l1::Cache<(u64, u64), u64>);

impl Ops for Wide {
    #[inline]
    fn get(&self, key: u64) -> bool {
        self.0.get(&(u64::MAX, key)).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        let _ = self.0.insert((u64::MAX, key), key);
    }
}

impl Bench for Wide {
    fn ops(&self, _thread: usize) -> &dyn Ops {
        self
    }
}

fn make(name: &str, threads: usize) -> Arc<dyn Bench> {
    match name {
        "helios_wide" => Arc::new(Wide(
            helios_l1::Cache::new(CAPACITY).expect("valid capacity"),
        )),
        "helios_agents" => {
            let cache = helios_l1::AgentCache::<u64, u64>::new(CAPACITY).expect("valid capacity");
            Arc::new(Agents {
                handles: (0..AGENTS.max(threads))
                    .map(|i| {
                        cache
                            .register_agent(&format!("agent-{i}"), helios_l1::AgentConfig::new())
                            .expect("unique names")
                    })
                    .collect(),
                cache,
            })
        }
        "helios" => Arc::new(helios_l1::Cache::<u64, u64>::new(CAPACITY).expect("valid capacity")),
        "helios_hot" => Arc::new(
            helios_l1::Cache::<u64, u64>::builder()
                .capacity(CAPACITY)
                .hot_tier_min_hit_share(0)
                .build()
                .expect("valid options"),
        ),
        "helios_nohot" => Arc::new(
            helios_l1::Cache::<u64, u64>::builder()
                .capacity(CAPACITY)
                .hot_tier_entries(0)
                .build()
                .expect("valid options"),
        ),
        // `helios_s8`, `helios_s16`, `helios_s32`: the default cache with
        // that many shards (run only when named in `ONLY`).
        name if name.starts_with("helios_s") => {
            let built = name["helios_s".len()..]
                .parse::<usize>()
                .map_err(|e| e.to_string())
                .and_then(|shards| {
                    helios_l1::Cache::<u64, u64>::builder()
                        .capacity(CAPACITY)
                        .shards(shards)
                        .build()
                        .map_err(|e| e.to_string())
                });
            match built {
                Ok(cache) => Arc::new(cache),
                Err(e) => {
                    eprintln!("{name:?} in ONLY: {e}");
                    std::process::exit(2)
                }
            }
        }
        "quick_cache" => Arc::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize)),
        "moka" => Arc::new(moka::sync::Cache::<u64, u64>::new(CAPACITY)),
        other => {
            eprintln!("unknown implementation {other:?} in ONLY");
            std::process::exit(2)
        }
    }
}

/// One operation of a pre-generated stream: a key, and whether it is a write.
fn stream(s: f64, ops: usize, write_percent: u32, seed: u64) -> Vec<(u64, bool)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, s).expect("valid zipf");
    (0..ops)
        .map(|_| {
            // Scatter ranks so that hot keys are not adjacent integers.
            let rank = zipf.sample(&mut rng) as u64;
            let key = rank.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            (key, rng.random_range(0..100) < write_percent)
        })
        .collect()
}

/// Runs `streams` (one per thread) against `cache`; returns ops per second.
/// A measured round (`timed`) runs its loop in a function of its own, so
/// that callgrind can count the measured rounds alone
/// (`--toggle-collect='throughput::timed_pass'`); the warm-up's copy of the
/// loop is inlined here (two identical functions were folded into one
/// symbol, one address for both names, in the release build).
fn run(
    cache: &Arc<dyn Bench>,
    streams: &[Arc<Vec<(u64, bool)>>],
    insert_on_miss: bool,
    timed: bool,
) -> f64 {
    let barrier = Arc::new(Barrier::new(streams.len() + 1));
    let handles: Vec<_> = streams
        .iter()
        .enumerate()
        .map(|(thread, ops)| {
            let (cache, ops, barrier) = (Arc::clone(cache), Arc::clone(ops), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let cache = cache.ops(thread);
                barrier.wait();
                let start = Instant::now();
                let hits = if timed {
                    timed_pass(cache, &ops, insert_on_miss)
                } else {
                    pass(cache, &ops, insert_on_miss)
                };
                std::hint::black_box(hits);
                start.elapsed()
            })
        })
        .collect();
    barrier.wait();
    let slowest = handles
        .into_iter()
        .map(|h| h.join().expect("bench thread"))
        .max()
        .unwrap_or_default();
    let ops: usize = streams.iter().map(|s| s.len()).sum();
    ops as f64 / slowest.as_secs_f64()
}

/// One thread's operations; returns its hits.
#[inline(always)]
fn pass(cache: &dyn Ops, ops: &[(u64, bool)], insert_on_miss: bool) -> u64 {
    let mut hits = 0u64;
    for &(key, write) in ops {
        if write {
            cache.insert(key);
        } else if cache.get(key) {
            hits += 1;
        } else if insert_on_miss {
            cache.insert(key);
        }
    }
    hits
}

/// A measured round's pass: a symbol of its own for callgrind.
#[inline(never)]
fn timed_pass(cache: &dyn Ops, ops: &[(u64, bool)], insert_on_miss: bool) -> u64 {
    pass(cache, ops, insert_on_miss)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds = env("ROUNDS", 7);
    let ops = env("OPS", 2_000_000);
    let threads = env("THREADS", 2);
    let only = std::env::var("ONLY").ok();
    let reads = std::env::var("READS").ok();
    let zipf = std::env::var("ZIPF").ok();
    let impls: Vec<&str> = match only.as_deref() {
        Some(names) => names.split(',').collect(),
        None => vec![
            "helios",
            "helios_hot",
            "helios_nohot",
            "helios_agents",
            "quick_cache",
            "moka",
        ],
    };
    println!("threads {threads}, {ops} ops per thread per round, {rounds} rounds, capacity {CAPACITY}, {KEYS} keys");
    for (s, write_percent) in [(0.99, 0u32), (0.8, 0), (0.99, 5), (0.8, 5)] {
        if reads
            .as_deref()
            .is_some_and(|r| r != (100 - write_percent).to_string())
        {
            continue;
        }
        if zipf.as_deref().is_some_and(|z| z != s.to_string()) {
            continue;
        }
        let streams: Vec<Arc<Vec<(u64, bool)>>> = (0..threads)
            .map(|t| Arc::new(stream(s, ops, write_percent, 42 + t as u64)))
            .collect();
        let caches: Vec<(&str, Arc<dyn Bench>)> =
            impls.iter().map(|&n| (n, make(n, threads))).collect();
        // Warm-up: fill each cache by reading the stream with insert on miss.
        for (name, cache) in &caches {
            run(cache, &streams, true, false);
            if let Some(line) = cache.describe() {
                println!("{name}: {line}");
            }
        }
        let mut results: Vec<Vec<f64>> = vec![Vec::new(); caches.len()];
        for round in 0..rounds {
            for i in 0..caches.len() {
                let i = (i + round) % caches.len();
                // 100% reads measure pure hits/misses: no insert on miss.
                results[i].push(run(&caches[i].1, &streams, write_percent > 0, true));
            }
        }
        let medians: Vec<f64> = results.into_iter().map(median).collect();
        let workload = format!("zipf({s}) {}% reads", 100 - write_percent);
        // What churn costs in slots: retired slots wait in the writers'
        // limbo for a grace period, so the slab holds more than the capacity.
        for (name, cache) in &caches {
            if let Some(line) = cache.slots() {
                println!("{workload:<22} {name:<12} {line}");
            }
        }
        for ((name, _), m) in caches.iter().zip(&medians) {
            println!("{workload:<22} {name:<12} {:>8.2} Mops/s (median)", m / 1e6);
        }
        let of = |name: &str| {
            caches
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| medians[i])
        };
        if let Some(helios) = of("helios") {
            let ratios: Vec<String> = caches
                .iter()
                .map(|(peer, _)| *peer)
                .filter(|peer| *peer != "helios")
                .filter_map(|peer| of(peer).map(|m| format!("helios/{peer} {:.2}x", helios / m)))
                .collect();
            println!("{workload:<22} {}", ratios.join("   "));
        }
    }
}
