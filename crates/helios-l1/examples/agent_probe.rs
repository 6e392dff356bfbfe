//! Instructions per read through an `AgentHandle` against the plain cache:
//! 1,000,000 reads of 50,000 resident keys each, one thread. Meant for
//! callgrind (BENCHMARKS.md, "Throughput cost of agent awareness"):
//!
//! ```sh
//! cargo build --release -p helios-l1 --example agent_probe
//! valgrind --tool=callgrind --toggle-collect='agent_probe::plain_reads' target/release/examples/agent_probe
//! valgrind --tool=callgrind --toggle-collect='agent_probe::agent_reads' target/release/examples/agent_probe
//! # wall-clock medians of interleaved rounds instead:
//! target/release/examples/agent_probe --time
//! ```

const KEYS: u64 = 50_000;
const READS: u64 = 1_000_000;

/// The measured loop through the plain cache.
#[inline(never)]
fn plain_reads(cache: &helios_l1::Cache<u64, u64>) -> u64 {
    (0..READS)
        .map(|i| u64::from(cache.get(&(i % KEYS)).is_some()))
        .sum()
}

/// The measured loop through an agent's handle.
#[inline(never)]
fn agent_reads(agent: &helios_l1::AgentHandle<u64, u64>) -> u64 {
    (0..READS)
        .map(|i| u64::from(matches!(agent.get(&(i % KEYS)), Ok(Some(_)))))
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let plain: helios_l1::Cache<u64, u64> = helios_l1::Cache::new(100_000)?;
    let agents = helios_l1::AgentCache::<u64, u64>::new(100_000)?;
    let agent = agents.register_agent("probe", helios_l1::AgentConfig::new())?;
    for k in 0..KEYS {
        let _ = plain.insert(k, k);
        let _ = agent.insert(k, k)?;
    }
    println!(
        "hits: plain {}, agent {}",
        plain_reads(&plain),
        agent_reads(&agent)
    );
    if std::env::args().any(|a| a == "--time") {
        time_rounds(&plain, &agent);
    }
    Ok(())
}

/// Wall-clock ns per read, plain and agent loops interleaved for 15
/// rounds on one thread; prints the medians and their ratio.
fn time_rounds(plain: &helios_l1::Cache<u64, u64>, agent: &helios_l1::AgentHandle<u64, u64>) {
    let time = |f: &dyn Fn() -> u64| {
        let start = std::time::Instant::now();
        std::hint::black_box(f());
        start.elapsed().as_nanos() as f64 / READS as f64
    };
    let (mut p, mut a) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        p.push(time(&|| plain_reads(plain)));
        a.push(time(&|| agent_reads(agent)));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, a) = (median(&mut p), median(&mut a));
    println!(
        "ns per read (median of 15 interleaved rounds): plain {p:.1}, agent {a:.1}; plain/agent throughput ratio {:.3}",
        p / a
    );
}
