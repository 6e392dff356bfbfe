//! `helios bench noisy-neighbour`: how much one scanning agent hurts every
//! other agent's hit ratio, per cache.
//!
//! `--agents` agents (default 850) each read their own keys with a
//! Zipf(0.9) popularity over `--working-set` keys (default 1,000), inserting
//! on a miss, round-robin in one thread so every cache sees the same
//! interleaving. The capacity is 100 entries per agent. Each system runs the
//! workload twice, alone and with one more agent scanning 10 × the capacity
//! of distinct keys, its reads spread evenly through the run. Reported per
//! system: the drop of each victim's hit ratio (alone − with the scanner,
//! in percentage points over the measured half of the run), its median,
//! 90th percentile and worst, and the scanner's own hit ratio;
//! `--per-agent FILE.csv` also writes every victim's two hit ratios.
//!
//! Systems: `helios_reserved` (an `AgentCache` in which every victim
//! reserves half of its 100 entries; the scanner has the default config),
//! `helios_agents` (the same with default configs everywhere, so only fair
//! shares apply), `helios` (the plain cache: one global policy),
//! `quick_cache`, `moka`.

use std::io::Write;

use rand::prelude::*;
use rand_distr::Zipf;

use crate::latency::Subject;
use crate::CliError;

/// Arguments of `helios bench noisy-neighbour`.
#[derive(Debug, clap::Args)]
pub(crate) struct NoisyArgs {
    /// Victim agents.
    #[arg(long, default_value_t = 850)]
    agents: usize,
    /// Distinct keys each victim reads.
    #[arg(long, default_value_t = 1000)]
    working_set: u64,
    /// Reads per victim (the first half warms up, the second is measured).
    #[arg(long, default_value_t = 2000)]
    reads: usize,
    /// Print one JSON object per system instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write every victim agent's hit ratio, alone and with the
    /// scanner, to this CSV file: `system,agent,alone_pct,scanned_pct,drop_pp`.
    #[arg(long, value_name = "FILE.csv")]
    per_agent: Option<std::path::PathBuf>,
}

/// Cache entries per victim agent.
const ENTRIES_PER_AGENT: u64 = 100;
/// The scanner reads this many times the capacity in distinct keys.
const SCAN_FACTOR: u64 = 10;

/// A cache as the agents see it: agent `agent` reads and inserts `key`.
trait Agents {
    fn get(&self, agent: usize, key: u64) -> bool;
    fn insert(&self, agent: usize, key: u64);
}

/// A cache without agents: every agent shares it blindly.
struct Blind(Box<dyn Subject>);

impl Agents for Blind {
    fn get(&self, _agent: usize, key: u64) -> bool {
        self.0.get(key)
    }
    fn insert(&self, _agent: usize, key: u64) {
        self.0.insert(key);
    }
}

/// An `AgentCache` with one handle per agent (the last is the scanner).
struct Handles(Vec<helios_l1::AgentHandle<u64, u64>>);

impl Agents for Handles {
    fn get(&self, agent: usize, key: u64) -> bool {
        self.0[agent].get(&key).ok().flatten().is_some()
    }
    fn insert(&self, agent: usize, key: u64) {
        // Refusals (over its share) are the point; nothing to do with them.
        let _ = self.0[agent].insert(key, key);
    }
}

/// Entries each victim reserves in `helios_reserved`: half of its share,
/// so that the other half and the unreserved pool still adapt to demand.
const RESERVED_PER_AGENT: u64 = ENTRIES_PER_AGENT / 2;

fn make(name: &str, capacity: u64, agents: usize) -> Result<Box<dyn Agents>, CliError> {
    let usage = |e: &dyn std::fmt::Display| CliError::Input(e.to_string());
    if name == "helios_agents" || name == "helios_reserved" {
        let reserved = if name == "helios_reserved" {
            RESERVED_PER_AGENT
        } else {
            0
        };
        let cache = helios_l1::AgentCache::<u64, u64>::new(capacity).map_err(|e| usage(&e))?;
        let handles = (0..=agents)
            .map(|i| {
                // The last agent is the scanner: no reservation.
                let config =
                    helios_l1::AgentConfig::new().reserved(if i < agents { reserved } else { 0 });
                cache
                    .register_agent(&format!("agent-{i}"), config)
                    .map_err(|e| usage(&e))
            })
            .collect::<Result<_, _>>()?;
        return Ok(Box::new(Handles(handles)));
    }
    Ok(Box::new(Blind(make_blind(name, capacity)?)))
}

fn make_blind(name: &str, capacity: u64) -> Result<Box<dyn Subject>, CliError> {
    Ok(match name {
        "helios" => Box::new(
            helios_l1::Cache::<u64, u64>::new(capacity)
                .map_err(|e| CliError::Input(e.to_string()))?,
        ),
        "quick_cache" => Box::new(quick_cache::sync::Cache::<u64, u64>::new(capacity as usize)),
        _ => Box::new(moka::sync::Cache::<u64, u64>::new(capacity)),
    })
}

/// Hits per victim over the measured half, and the scanner's hit ratio.
fn run(cache: &dyn Agents, streams: &[Vec<u64>], scan: Option<u64>) -> (Vec<f64>, f64) {
    let reads = streams.first().map_or(0, Vec::len);
    let agents = streams.len();
    let mut hits = vec![0u64; agents];
    let (mut scan_next, mut scan_hits, mut scan_reads) = (0u64, 0u64, 0u64);
    let total_scan = scan.unwrap_or(0);
    let total_ops = (reads * agents) as u64;
    let mut done = 0u64;
    for round in 0..reads {
        for (agent, stream) in streams.iter().enumerate() {
            let key = stream[round];
            let hit = cache.get(agent, key);
            if !hit {
                cache.insert(agent, key);
            }
            if round >= reads / 2 && hit {
                hits[agent] += 1;
            }
            done += 1;
            // Spread the scan evenly over the victims' reads.
            while scan_next < total_scan && scan_next * total_ops < done * total_scan {
                // Scanner keys live above every victim's key space.
                let key = (u64::MAX - scan_next).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                if cache.get(agents, key) {
                    scan_hits += 1;
                } else {
                    cache.insert(agents, key);
                }
                scan_reads += 1;
                scan_next += 1;
            }
        }
    }
    let measured = (reads - reads / 2).max(1) as f64;
    let ratios = hits.iter().map(|&h| 100.0 * h as f64 / measured).collect();
    let scanner = if scan_reads == 0 {
        0.0
    } else {
        100.0 * scan_hits as f64 / scan_reads as f64
    };
    (ratios, scanner)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn run_bench(args: &NoisyArgs) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    if args.agents == 0 || args.working_set == 0 || args.reads < 2 {
        return Err(CliError::Input(
            "--agents and --working-set must be at least 1, --reads at least 2".into(),
        ));
    }
    // The scanner registers as one more agent.
    if args.agents >= helios_l1::MAX_AGENTS {
        return Err(CliError::Input(format!(
            "--agents: at most {} (the scanner is one more agent), got {}",
            helios_l1::MAX_AGENTS - 1,
            args.agents
        )));
    }
    let zipf =
        Zipf::new(args.working_set as f64, 0.9).map_err(|e| CliError::Input(e.to_string()))?;
    let mut streams: Vec<Vec<u64>> = Vec::new();
    streams
        .try_reserve_exact(args.agents)
        .map_err(|e| CliError::Input(format!("--agents {}: {e}", args.agents)))?;
    for agent in 0..args.agents as u64 {
        let mut rng = StdRng::seed_from_u64(agent);
        let mut stream = crate::key_buffer(args.reads, "--reads")?;
        stream.extend((0..args.reads).map(|_| {
            let rank = zipf.sample(&mut rng) as u64;
            ((agent << 32) | rank).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        }));
        streams.push(stream);
    }
    let capacity = args.agents as u64 * ENTRIES_PER_AGENT;
    if !args.json {
        writeln!(out,
            "{} agents, Zipf(0.9) over {} keys each, {} reads each, capacity {capacity}, scanner reads {} distinct keys",
            args.agents,
            args.working_set,
            args.reads,
            SCAN_FACTOR * capacity
        )?;
        writeln!(
            out,
            "{:<16} {:>12} {:>14} {:>12} {:>12} {:>12} {:>12}",
            "system",
            "median alone",
            "median scanned",
            "median drop",
            "p90 drop",
            "worst drop",
            "scanner hit"
        )?;
    }
    let mut per_agent = match &args.per_agent {
        Some(path) => {
            let file = std::fs::File::create(path).map_err(|e| csv_error(path, &e))?;
            let mut w = std::io::BufWriter::new(file);
            writeln!(w, "system,agent,alone_pct,scanned_pct,drop_pp")
                .map_err(|e| csv_error(path, &e))?;
            Some((path, w))
        }
        None => None,
    };
    for name in [
        "helios_reserved",
        "helios_agents",
        "helios",
        "quick_cache",
        "moka",
    ] {
        let (alone, _) = run(&*make(name, capacity, args.agents)?, &streams, None);
        let scan = Some(SCAN_FACTOR * capacity);
        let (scanned, scanner) = run(&*make(name, capacity, args.agents)?, &streams, scan);
        let mut drops: Vec<f64> = alone.iter().zip(&scanned).map(|(a, s)| a - s).collect();
        if let Some((path, w)) = &mut per_agent {
            for (agent, (a, s)) in alone.iter().zip(&scanned).enumerate() {
                writeln!(w, "{name},{agent},{a:.2},{s:.2},{:.2}", a - s)
                    .map_err(|e| csv_error(path, &e))?;
            }
        }
        drops.sort_by(f64::total_cmp);
        let mut alone_sorted = alone.clone();
        alone_sorted.sort_by(f64::total_cmp);
        let mut scanned_sorted = scanned.clone();
        scanned_sorted.sort_by(f64::total_cmp);
        let (median, p90, worst) = (
            percentile(&drops, 0.5),
            percentile(&drops, 0.9),
            drops.last().copied().unwrap_or(0.0),
        );
        if args.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "system": name,
                    "agents": args.agents,
                    "median_drop_pp": (median * 100.0).round() / 100.0,
                    "p90_drop_pp": (p90 * 100.0).round() / 100.0,
                    "worst_drop_pp": (worst * 100.0).round() / 100.0,
                    "scanner_hit_ratio": (scanner * 100.0).round() / 100.0,
                })
            )?;
        } else {
            writeln!(out,
                "{name:<16} {:>12.2} {:>14.2} {median:>12.2} {p90:>12.2} {worst:>12.2} {scanner:>12.2}",
                percentile(&alone_sorted, 0.5),
                percentile(&scanned_sorted, 0.5),
            )?;
        }
    }
    if let Some((path, mut w)) = per_agent {
        w.flush().map_err(|e| csv_error(path, &e))?;
    }
    Ok(())
}

fn csv_error(path: &std::path::Path, e: &std::io::Error) -> CliError {
    CliError::Failed(format!("--per-agent {}: {e}", path.display()))
}
