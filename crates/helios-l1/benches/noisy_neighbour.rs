//! Criterion: the noisy-neighbour workload, scaled down, per system.
//!
//! 100 victim agents each read their own keys with Zipf(0.9) popularity
//! over 1,000 keys (insert on miss), round-robin in one thread; capacity
//! 10,000 (100 entries per agent); one scanner agent reads distinct keys,
//! one for every victim read, so it streams through 10× the capacity over
//! a 100,000-read run. Criterion times one round (every victim reads once,
//! the scanner reads once per victim) per system, so the cost of agent
//! awareness under a scan is measured next to the peers. Before timing,
//! each system is run alone and with the scanner, and the median victim's
//! hit-ratio drop is printed (`helios bench noisy-neighbour` is the full,
//! 850-agent version with percentiles).
//!
//! Systems: `helios_reserved` (an `AgentCache`; each victim reserves half
//! of its 100 entries), `helios_agents` (an `AgentCache` with default
//! configs: fair shares only), `helios` (the plain cache), `quick_cache`,
//! `moka`.
//!
//! `cargo bench -p helios-l1 --bench noisy_neighbour`

#![allow(missing_docs)] // a bench binary, not an API

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use helios_l1::{AgentCache, AgentConfig, AgentHandle};
use rand::prelude::*;
use rand_distr::Zipf;

const AGENTS: usize = 100;
const WORKING_SET: u64 = 1_000;
const ENTRIES_PER_AGENT: u64 = 100;
const CAPACITY: u64 = AGENTS as u64 * ENTRIES_PER_AGENT;
const READS: usize = 1_000;

/// A cache as the agents see it.
trait Agents {
    fn get(&self, agent: usize, key: u64) -> bool;
    fn insert(&self, agent: usize, key: u64);
}

struct Handles(Vec<AgentHandle<u64, u64>>);

impl Agents for Handles {
    fn get(&self, agent: usize, key: u64) -> bool {
        matches!(self.0[agent].get(&key), Ok(Some(_)))
    }
    fn insert(&self, agent: usize, key: u64) {
        // A refusal (over its share) is the point.
        let _ = self.0[agent].insert(key, key);
    }
}

impl Agents for helios_l1::Cache<u64, u64> {
    fn get(&self, _: usize, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, _: usize, key: u64) {
        let _ = helios_l1::Cache::insert(self, key, key);
    }
}

impl Agents for quick_cache::sync::Cache<u64, u64> {
    fn get(&self, _: usize, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, _: usize, key: u64) {
        quick_cache::sync::Cache::insert(self, key, key);
    }
}

impl Agents for moka::sync::Cache<u64, u64> {
    fn get(&self, _: usize, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&self, _: usize, key: u64) {
        moka::sync::Cache::insert(self, key, key);
    }
}

const SYSTEMS: [&str; 5] = [
    "helios_reserved",
    "helios_agents",
    "helios",
    "quick_cache",
    "moka",
];

fn make(name: &str) -> Box<dyn Agents> {
    let handles = |reserved: u64| {
        let cache: Arc<AgentCache<u64, u64>> = AgentCache::new(CAPACITY).expect("valid capacity");
        let mut handles: Vec<_> = (0..AGENTS)
            .map(|i| {
                cache
                    .register_agent(
                        &format!("victim-{i}"),
                        AgentConfig::new().reserved(reserved),
                    )
                    .expect("registers")
            })
            .collect();
        handles.push(
            cache
                .register_agent("scanner", AgentConfig::new())
                .expect("registers"),
        );
        Box::new(Handles(handles)) as Box<dyn Agents>
    };
    match name {
        "helios_reserved" => handles(ENTRIES_PER_AGENT / 2),
        "helios_agents" => handles(0),
        "helios" => Box::new(helios_l1::Cache::<u64, u64>::new(CAPACITY).expect("valid")),
        "quick_cache" => Box::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize)),
        _ => Box::new(moka::sync::Cache::<u64, u64>::new(CAPACITY)),
    }
}

fn streams() -> Vec<Vec<u64>> {
    let zipf = Zipf::new(WORKING_SET as f64, 0.9).expect("valid zipf");
    (0..AGENTS as u64)
        .map(|agent| {
            let mut rng = StdRng::seed_from_u64(agent);
            (0..READS)
                .map(|_| {
                    ((agent << 32) | zipf.sample(&mut rng) as u64)
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                })
                .collect()
        })
        .collect()
}

/// One round: every victim reads (inserting on a miss) its key of `round`,
/// and with `scan` the scanner reads one new key per victim read. Returns
/// each victim's hit.
fn round(
    cache: &dyn Agents,
    streams: &[Vec<u64>],
    round: usize,
    scan: Option<&mut u64>,
    hits: &mut [u64],
) {
    let mut scan = scan;
    for (agent, stream) in streams.iter().enumerate() {
        let key = stream[round % READS];
        if cache.get(agent, key) {
            hits[agent] += 1;
        } else {
            cache.insert(agent, key);
        }
        if let Some(next) = scan.as_deref_mut() {
            *next += 1;
            let key = (u64::MAX - *next).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            if !cache.get(AGENTS, key) {
                cache.insert(AGENTS, key);
            }
        }
    }
}

/// The median victim's hit ratio (over the second half of the run), alone
/// and with the scanner.
fn median_ratios(name: &str, streams: &[Vec<u64>]) -> (f64, f64) {
    let mut out = [0.0; 2];
    for (i, scanning) in [false, true].into_iter().enumerate() {
        let cache = make(name);
        let mut next = 0;
        let mut warm = vec![0; AGENTS];
        for r in 0..READS / 2 {
            round(
                &*cache,
                streams,
                r,
                scanning.then_some(&mut next),
                &mut warm,
            );
        }
        let mut hits = vec![0; AGENTS];
        for r in READS / 2..READS {
            round(
                &*cache,
                streams,
                r,
                scanning.then_some(&mut next),
                &mut hits,
            );
        }
        let mut ratios: Vec<f64> = hits
            .iter()
            .map(|&h| 100.0 * h as f64 / (READS / 2) as f64)
            .collect();
        ratios.sort_by(f64::total_cmp);
        out[i] = ratios[ratios.len() / 2];
    }
    (out[0], out[1])
}

fn noisy_neighbour(c: &mut Criterion) {
    let streams = streams();
    for name in SYSTEMS {
        let (alone, scanned) = median_ratios(name, &streams);
        eprintln!(
            "{name:<16} median victim hit ratio alone {alone:6.2}%, with the scanner {scanned:6.2}%, drop {:5.2} pp",
            alone - scanned
        );
    }
    let mut group = c.benchmark_group("noisy_neighbour_round");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for name in SYSTEMS {
        let cache = make(name);
        let mut next = 0;
        let mut hits = vec![0; AGENTS];
        for r in 0..READS {
            round(&*cache, &streams, r, Some(&mut next), &mut hits);
        }
        let mut r = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                r += 1;
                round(&*cache, &streams, r, Some(&mut next), &mut hits);
                black_box(&hits);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, noisy_neighbour);
criterion_main!(benches);
