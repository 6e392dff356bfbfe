//! `helios bench latency`: per-operation latency distributions and read
//! throughput of helios (hot tier on and off), quick_cache and moka, measured
//! in one process on the same pre-generated streams.
//!
//! Workload: per thread, two Zipf(0.99) streams (`--zipf` sets the exponent)
//! over 1,000,000 keys (same distribution, different seeds); capacity
//! 100,000. Each implementation is
//! warmed up by reading the first stream with insert on miss, then measured
//! on the second in two passes:
//! 1. *read pass*: `get` of every key of the stream (no inserts, so nothing
//!    moves between tiers); one call in `--sample` is timed. A timed call is
//!    a `hot_hit` if the key was in helios's hot tier when the pass began (for
//!    implementations without a hot tier: the same hottest keys), a
//!    `main_hit` for any other hit, a `miss` otherwise.
//! 2. *insert pass*: the stream again with insert on miss; every insert is
//!    timed (including the evictions it causes).
//!
//! Clock: the CPU's time-stamp counter, fenced by default so that a timed
//! call does not also pay for the cache misses of the untimed calls before
//! it (`crate::stopwatch` explains; `--unfenced` measures the old way). The
//! timer's own overhead (a start and a stop back to back) is measured and
//! reported next to the latencies, which include it: subtract it for the
//! operation alone.
//! `read_throughput` rows time whole passes of 100% reads with 2 threads,
//! without per-call timers, interleaving implementations over several rounds
//! (median), because this machine is shared and noisy.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Instant;

use hdrhistogram::Histogram;
use rand::prelude::*;
use rand_distr::Zipf;

use crate::stopwatch::Stopwatch;
use crate::CliError;

const KEYS: u64 = 1_000_000;
const CAPACITY: u64 = 100_000;

/// Arguments of `helios bench latency`.
#[derive(Debug, clap::Args)]
pub(crate) struct LatencyArgs {
    /// Thread counts to measure latencies at.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Operations per thread in each pass.
    #[arg(long, default_value_t = 2_000_000)]
    ops: usize,
    /// Time one read in this many (the others run untimed between them).
    #[arg(long, default_value_t = 4)]
    sample: usize,
    /// Zipf exponent of the key streams (larger: hits concentrate on fewer
    /// keys).
    #[arg(long, default_value_t = 0.99)]
    zipf: f64,
    /// Rounds of the read-throughput measurement (median reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Most entries in helios's hot tier.
    #[arg(long, default_value_t = helios_l1::DEFAULT_HOT_TIER_ENTRIES)]
    hot_entries: usize,
    /// Least share of hits (percent) the hot tier's entries must take for it
    /// to serve reads. 0 (the default here, unlike the library's 80) keeps
    /// the tier serving, so that its latency and throughput are measured
    /// whatever the workload; pass 80 to measure the default cache.
    #[arg(long, default_value_t = 0)]
    hot_min_hit_share: u8,
    /// Least milliseconds between two hot-tier refreshes.
    #[arg(long, default_value_t = helios_l1::DEFAULT_HOT_TIER_REFRESH.as_millis() as u64)]
    hot_refresh_ms: u64,
    /// Read the time-stamp counter without fences: a timed call then also
    /// pays for outstanding cache misses of the untimed calls before it.
    #[arg(long)]
    unfenced: bool,
    /// Print one JSON object per line instead of tables.
    #[arg(long)]
    json: bool,
}

/// Options of the helios caches under test.
#[derive(Clone, Copy, Debug)]
struct HotTier {
    entries: usize,
    refresh: std::time::Duration,
    min_hit_share: u8,
}

/// The operations whose latency is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    HotHit,
    MainHit,
    Miss,
    Insert,
}

const OPS: [Op; 4] = [Op::HotHit, Op::MainHit, Op::Miss, Op::Insert];

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::HotHit => "hot_hit",
            Op::MainHit => "main_hit",
            Op::Miss => "miss",
            Op::Insert => "insert",
        }
    }
}

/// A cache under test.
pub(crate) trait Subject: Send + Sync {
    fn get(&self, key: u64) -> bool;
    fn insert(&self, key: u64);
    /// Whether `key` is in a hot tier (helios only).
    fn is_hot(&self, _key: u64) -> bool {
        false
    }
    /// The hot tier's state (helios with a tier only).
    fn hot_tier(&self) -> Option<helios_l1::HotTierStats> {
        None
    }
}

impl Subject for helios_l1::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        helios_l1::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        let _ = helios_l1::Cache::insert(self, key, key);
    }
    fn is_hot(&self, key: u64) -> bool {
        helios_l1::Cache::is_hot(self, &key)
    }
    fn hot_tier(&self) -> Option<helios_l1::HotTierStats> {
        Some(self.hot_tier_stats()).filter(|s| s.capacity > 0)
    }
}

impl Subject for quick_cache::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        quick_cache::sync::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        quick_cache::sync::Cache::insert(self, key, key);
    }
}

impl Subject for moka::sync::Cache<u64, u64> {
    #[inline]
    fn get(&self, key: u64) -> bool {
        moka::sync::Cache::get(self, &key).is_some()
    }
    #[inline]
    fn insert(&self, key: u64) {
        moka::sync::Cache::insert(self, key, key);
    }
}

const IMPLS: [&str; 4] = ["helios", "helios_nohot", "quick_cache", "moka"];

fn make(name: &str, hot: HotTier) -> Result<Arc<dyn Subject>, CliError> {
    let usage = |e: helios_l1::BuildError| CliError::Input(e.to_string());
    Ok(match name {
        "helios" => Arc::new(
            helios_l1::Cache::<u64, u64>::builder()
                .capacity(CAPACITY)
                .hot_tier_entries(hot.entries)
                .hot_tier_refresh(hot.refresh)
                .hot_tier_min_hit_share(hot.min_hit_share)
                .build()
                .map_err(usage)?,
        ),
        "helios_nohot" => Arc::new(
            helios_l1::Cache::<u64, u64>::builder()
                .capacity(CAPACITY)
                .hot_tier_entries(0)
                .build()
                .map_err(usage)?,
        ),
        "quick_cache" => Arc::new(quick_cache::sync::Cache::<u64, u64>::new(CAPACITY as usize)),
        _ => Arc::new(moka::sync::Cache::<u64, u64>::new(CAPACITY)),
    })
}

/// A Zipf(`exponent`) key stream; ranks are scattered so hot keys are not
/// neighbouring integers.
fn stream(ops: usize, exponent: f64, seed: u64) -> Result<Vec<u64>, CliError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = Zipf::new(KEYS as f64, exponent)
        .map_err(|e| CliError::Input(format!("--zipf {exponent}: {e}")))?;
    let mut keys = crate::key_buffer(ops, "--ops")?;
    keys.extend(
        (0..ops).map(|_| (zipf.sample(&mut rng) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    Ok(keys)
}

fn histogram() -> Result<Histogram<u64>, CliError> {
    // 1 ns to 10 s, 3 significant digits.
    Histogram::new_with_bounds(1, 10_000_000_000, 3).map_err(|e| CliError::Failed(e.to_string()))
}

/// Latencies of the timer itself: a start and a stop back to back.
fn timer_overhead(watch: &Stopwatch) -> Result<Histogram<u64>, CliError> {
    let mut h = histogram()?;
    for _ in 0..1_000_000 {
        let start = watch.start();
        let end = watch.stop();
        h.saturating_record(watch.nanos(start, end));
    }
    Ok(h)
}

/// One thread's warm-up stream and measured stream.
type StreamPair = (Arc<Vec<u64>>, Arc<Vec<u64>>);

/// One thread's histograms, indexed like `OPS`.
type Histograms = Vec<Histogram<u64>>;

/// Warm-up, read pass and insert pass of one thread.
fn thread_passes(
    cache: &dyn Subject,
    (warm_up, keys): (&[u64], &[u64]),
    hot: &OnceLock<HashSet<u64>>,
    watch: &Stopwatch,
    sample: usize,
    barrier: &Barrier,
) -> Result<Histograms, CliError> {
    let mut hists: Histograms = OPS.iter().map(|_| histogram()).collect::<Result<_, _>>()?;
    for &key in warm_up {
        if !cache.get(key) {
            cache.insert(key);
        }
    }
    // Every thread finishes warming up, then `measure` publishes the hot set.
    barrier.wait();
    barrier.wait();
    let no_hot_keys = HashSet::new();
    let hot = hot.get().unwrap_or(&no_hot_keys);
    for (i, &key) in keys.iter().enumerate() {
        if i % sample != 0 {
            std::hint::black_box(cache.get(key));
            continue;
        }
        let start = watch.start();
        let hit = cache.get(key);
        let end = watch.stop();
        let op = match (hit, hot.contains(&key)) {
            (false, _) => Op::Miss,
            (true, true) => Op::HotHit,
            (true, false) => Op::MainHit,
        };
        hists[op as usize].saturating_record(watch.nanos(start, end));
    }
    barrier.wait();
    for &key in keys {
        if cache.get(key) {
            continue;
        }
        let start = watch.start();
        cache.insert(key);
        let end = watch.stop();
        hists[Op::Insert as usize].saturating_record(watch.nanos(start, end));
    }
    Ok(hists)
}

/// Runs the passes of `name` with one stream per thread; returns the merged
/// histograms and, for helios, the keys in its hot tier after warm-up.
fn measure(
    name: &str,
    streams: &[StreamPair],
    hot: Option<&HashSet<u64>>,
    watch: &Stopwatch,
    sample: usize,
    tier: HotTier,
) -> Result<(Histograms, HashSet<u64>), CliError> {
    let cache = make(name, tier)?;
    let barrier = Arc::new(Barrier::new(streams.len() + 1));
    let hot_set = Arc::new(OnceLock::<HashSet<u64>>::new());
    let handles: Vec<_> = streams
        .iter()
        .map(|(warm_up, keys)| {
            let (cache, warm_up, keys, barrier, hot_set, watch) = (
                Arc::clone(&cache),
                Arc::clone(warm_up),
                Arc::clone(keys),
                Arc::clone(&barrier),
                Arc::clone(&hot_set),
                watch.clone(),
            );
            std::thread::spawn(move || {
                thread_passes(
                    &*cache,
                    (&warm_up, &keys),
                    &hot_set,
                    &watch,
                    sample,
                    &barrier,
                )
            })
        })
        .collect();
    // Warm-up done: record the hot set, then release the read pass.
    barrier.wait();
    let mut snapshot: HashSet<u64> = match hot {
        Some(set) => set.clone(),
        None => streams
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .filter(|&k| cache.is_hot(k))
            .collect(),
    };
    snapshot.shrink_to_fit();
    let _ = hot_set.set(snapshot.clone());
    barrier.wait();
    barrier.wait();
    let mut merged: Histograms = OPS.iter().map(|_| histogram()).collect::<Result<_, _>>()?;
    for handle in handles {
        let hists = handle
            .join()
            .map_err(|_| CliError::Failed(format!("a {name} bench thread panicked")))??;
        for (m, h) in merged.iter_mut().zip(&hists) {
            m.add(h).map_err(|e| CliError::Failed(e.to_string()))?;
        }
    }
    Ok((merged, snapshot))
}

/// 100%-read throughput (ops/s) of each implementation with one stream per
/// thread, interleaved over `rounds` rounds; medians.
/// An implementation, its median read throughput, and its hot tier's state
/// after the rounds.
type Throughput = (&'static str, f64, Option<helios_l1::HotTierStats>);

/// Each implementation's [`Throughput`].
fn read_throughput(
    streams: &[Arc<Vec<u64>>],
    rounds: usize,
    tier: HotTier,
) -> Result<Vec<Throughput>, CliError> {
    let mut caches = Vec::new();
    for name in IMPLS {
        let cache = make(name, tier)?;
        run_reads(&cache, streams, true);
        caches.push((name, cache, Vec::new()));
    }
    for round in 0..rounds.max(1) {
        for i in 0..caches.len() {
            let (_, cache, results) = &mut caches[(i + round) % IMPLS.len()];
            results.push(run_reads(cache, streams, false));
        }
    }
    Ok(caches
        .into_iter()
        .map(|(name, cache, mut results)| {
            results.sort_by(f64::total_cmp);
            (name, results[results.len() / 2], cache.hot_tier())
        })
        .collect())
}

/// One pass of every stream in parallel; ops per second of the slowest.
fn run_reads(cache: &Arc<dyn Subject>, streams: &[Arc<Vec<u64>>], insert_on_miss: bool) -> f64 {
    let barrier = Arc::new(Barrier::new(streams.len() + 1));
    let handles: Vec<_> = streams
        .iter()
        .map(|keys| {
            let (cache, keys, barrier) =
                (Arc::clone(cache), Arc::clone(keys), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for &key in keys.iter() {
                    if !cache.get(key) && insert_on_miss {
                        cache.insert(key);
                    }
                }
                start.elapsed()
            })
        })
        .collect();
    barrier.wait();
    let slowest = handles
        .into_iter()
        .filter_map(|h| h.join().ok())
        .max()
        .unwrap_or_default();
    let ops: usize = streams.iter().map(|s| s.len()).sum();
    ops as f64 / slowest.as_secs_f64().max(1e-9)
}

pub(crate) fn run(args: &LatencyArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if args.sample == 0 || args.ops == 0 || args.rounds == 0 {
        return Err(CliError::Input(
            "--sample, --ops and --rounds must be at least 1".into(),
        ));
    }
    if let Some(&bad) = args.threads.iter().find(|&&t| t == 0 || t > 64) {
        return Err(CliError::Input(format!(
            "--threads: each count must be 1 to 64, got {bad}"
        )));
    }
    if !(args.zipf.is_finite() && args.zipf >= 0.0) {
        return Err(CliError::Input(format!(
            "--zipf must be a finite exponent of at least 0, got {}",
            args.zipf
        )));
    }
    if args.hot_min_hit_share > 100 {
        return Err(CliError::Input(format!(
            "--hot-min-hit-share is a percentage (0 to 100), got {}",
            args.hot_min_hit_share
        )));
    }
    let tier = HotTier {
        entries: args.hot_entries,
        refresh: std::time::Duration::from_millis(args.hot_refresh_ms),
        min_hit_share: args.hot_min_hit_share,
    };
    let watch = Stopwatch::new(!args.unfenced);
    let overhead = timer_overhead(&watch)?;
    let overhead_ns = overhead.value_at_quantile(0.5);
    if !args.json {
        writeln!(out,
            "timer overhead ({} start and stop back to back): p50 {} ns, p99 {} ns; included in every latency below",
            if watch.is_fenced() { "fenced" } else { "unfenced" },
            overhead_ns,
            overhead.value_at_quantile(0.99)
        )?;
        writeln!(out,
            "Zipf({}) over {KEYS} keys, capacity {CAPACITY}, {} ops per thread per pass, 1 read in {} timed",
            args.zipf, args.ops, args.sample
        )?;
        writeln!(
            out,
            "{:<13} {:>7} {:<9} {:>9} {:>7} {:>7} {:>7} {:>8}",
            "impl", "threads", "op", "samples", "p50 ns", "p95 ns", "p99 ns", "p99.9 ns"
        )?;
    }
    for &threads in &args.threads {
        let streams: Vec<StreamPair> = (0..threads as u64)
            .map(|t| {
                Ok((
                    Arc::new(stream(args.ops, args.zipf, 42 + t)?),
                    Arc::new(stream(args.ops, args.zipf, 1042 + t)?),
                ))
            })
            .collect::<Result<_, CliError>>()?;
        let mut hot: Option<HashSet<u64>> = None;
        for name in IMPLS {
            let (hists, snapshot) =
                measure(name, &streams, hot.as_ref(), &watch, args.sample, tier)?;
            if hot.is_none() {
                hot = Some(snapshot);
            }
            for (op, h) in OPS.iter().zip(&hists) {
                print_latency(
                    &mut out,
                    args.json,
                    name,
                    *op,
                    threads,
                    h,
                    overhead_ns,
                    watch.is_fenced(),
                )?;
            }
        }
    }
    let streams: Vec<Arc<Vec<u64>>> = (0..2)
        .map(|t| stream(args.ops, args.zipf, 42 + t as u64).map(Arc::new))
        .collect::<Result<_, _>>()?;
    let throughput = read_throughput(&streams, args.rounds, tier)?;
    for (name, ops_per_sec, hot_tier) in &throughput {
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "impl": name,
                    "op": "read_throughput",
                    "threads": 2,
                    "ops_per_sec": ops_per_sec.round(),
                })
            )?;
        } else {
            writeln!(out, "read throughput, 2 threads, 100% reads: {name:<13} {:>7.2} Mops/s (median of {} rounds)", ops_per_sec / 1e6, args.rounds)?;
            if let Some(s) = hot_tier {
                writeln!(
                    out,
                    "  its hot tier: {} of {} entries valid, {}% of hits, serving {}",
                    s.valid, s.capacity, s.hit_share_percent, s.serving
                )?;
            }
        }
    }
    if !args.json {
        let of = |n: &str| {
            throughput
                .iter()
                .find(|(name, _, _)| *name == n)
                .map(|t| t.1)
        };
        if let (Some(on), Some(off), Some(qc)) =
            (of("helios"), of("helios_nohot"), of("quick_cache"))
        {
            writeln!(out,
                "helios (hot tier on) / helios_nohot {:.2}x (target >= 1.3x); / quick_cache {:.2}x (target >= 2x)",
                on / off,
                on / qc
            )?;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn print_latency(
    out: &mut impl Write,
    json: bool,
    name: &str,
    op: Op,
    threads: usize,
    h: &Histogram<u64>,
    overhead_ns: u64,
    fenced: bool,
) -> std::io::Result<()> {
    if h.is_empty() {
        return Ok(());
    }
    let q = |p: f64| h.value_at_quantile(p);
    if json {
        writeln!(
            out,
            "{}",
            serde_json::json!({
                "impl": name,
                "op": op.name(),
                "threads": threads,
                "p50_ns": q(0.5),
                "p95_ns": q(0.95),
                "p99_ns": q(0.99),
                "p999_ns": q(0.999),
                "samples": h.len(),
                "timer_overhead_ns": overhead_ns,
                "timer_fenced": fenced,
            })
        )?;
    } else {
        writeln!(
            out,
            "{:<13} {:>7} {:<9} {:>9} {:>7} {:>7} {:>7} {:>8}",
            name,
            threads,
            op.name(),
            h.len(),
            q(0.5),
            q(0.95),
            q(0.99),
            q(0.999)
        )?;
    }
    Ok(())
}
