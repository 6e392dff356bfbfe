//! Instructions per read through an `AgentHandle` against the plain cache:
//! 1,000,000 reads of 50,000 resident keys each, one thread. Meant for
//! callgrind (BENCHMARKS.md, "Throughput cost of agent awareness"):
//!
//! ```sh
//! cargo build --release -p helios-l1 --example agent_probe
//! valgrind --tool=callgrind --toggle-collect='agent_probe::plain_reads' target/release/examples/agent_probe
//! valgrind --tool=callgrind --toggle-collect='agent_probe::agent_reads' target/release/examples/agent_probe
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
    Ok(())
}
