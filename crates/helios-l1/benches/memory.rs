//! Metadata bytes per entry for u64 → u64 at 1,000,000 entries.
//!
//! A counting global allocator tracks live heap bytes; each cache (capacity
//! 1,000,000, so nothing is evicted) is filled with 1,000,000 entries, and
//! (live bytes after − before − 16 bytes of key and value per entry) /
//! resident entries is reported. Caches are built and dropped one at a time.
//!
//! Then the cost of registered agents: live bytes per agent over 10,000
//! registrations (names "agent-00000" …, default configs), the time the
//! 10,000 registrations took, the time one recount of the pool's claimants
//! takes over those agents, the time `terminate` takes to release an
//! agent's 10,000 private entries, and the time `suspend` takes to demote
//! an agent's entries in a 100,000-entry cache.
//!
//! `cargo bench -p helios-l1 --bench memory`

#![allow(missing_docs)] // a bench binary, not an API

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator; only adds bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ENTRIES: u64 = 1_000_000;

fn measure(name: &str, fill: impl FnOnce() -> (Box<dyn std::any::Any>, u64)) {
    // Let earlier caches' deferred frees run first (moka retires through
    // crossbeam-epoch; helios frees its limbo when a cache is dropped).
    for _ in 0..1000 {
        crossbeam_epoch::pin().flush();
    }
    let before = LIVE.load(Ordering::SeqCst);
    let (cache, entries) = fill();
    for _ in 0..1000 {
        crossbeam_epoch::pin().flush();
    }
    let after = LIVE.load(Ordering::SeqCst);
    let payload = entries as isize * 16;
    let per_entry = (after - before - payload) as f64 / entries as f64;
    println!(
        "{name:<12} {per_entry:>7.1} bytes of metadata per entry ({entries} entries, {:.1} MiB total)",
        (after - before) as f64 / (1 << 20) as f64
    );
    drop(cache);
}

fn main() {
    measure("helios", || {
        let c = helios_l1::Cache::<u64, u64>::new(ENTRIES).expect("valid capacity");
        for k in 0..ENTRIES {
            let _ = c.insert(k, k);
        }
        // Shards split the capacity evenly; hash imbalance makes a few
        // shards evict a handful of entries, so count what is resident.
        let n = c.len() as u64;
        (Box::new(c), n)
    });
    // An agent cache's entries are as wide as the plain cache's; each
    // carries its namespace and charged agent in a side word beside it (one
    // more word per slot).
    measure("helios_agents", || {
        let c = helios_l1::AgentCache::<u64, u64>::new(ENTRIES).expect("valid capacity");
        let agent = c
            .register_agent("filler", helios_l1::AgentConfig::new())
            .expect("registers");
        for k in 0..ENTRIES {
            let _ = agent.insert(k, k);
        }
        let n = c.cache().len() as u64;
        (Box::new((c, agent)), n)
    });
    measure("quick_cache", || {
        let c = quick_cache::sync::Cache::<u64, u64>::new(ENTRIES as usize);
        for k in 0..ENTRIES {
            c.insert(k, k);
        }
        let n = c.len() as u64;
        (Box::new(c), n)
    });
    measure("moka", || {
        let c = moka::sync::Cache::<u64, u64>::new(ENTRIES);
        for k in 0..ENTRIES {
            c.insert(k, k);
        }
        c.run_pending_tasks();
        let n = c.entry_count();
        (Box::new(c), n)
    });
    agents();
}

/// Bytes and registration time per agent.
fn agents() {
    const AGENTS: usize = 10_000;
    let cache = helios_l1::AgentCache::<u64, u64>::new(1000).expect("valid capacity");
    let names: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i:05}")).collect();
    let before = LIVE.load(Ordering::SeqCst);
    let start = std::time::Instant::now();
    let handles: Vec<_> = names
        .iter()
        .map(|name| {
            cache
                .register_agent(name, helios_l1::AgentConfig::new())
                .expect("unique names")
        })
        .collect();
    let took = start.elapsed();
    let after = LIVE.load(Ordering::SeqCst);
    // The handles vector is the caller's, not per-agent bookkeeping.
    let handles_vec = (handles.capacity() * std::mem::size_of_val(&handles[0])) as isize;
    let handle = std::mem::size_of_val(&handles[0]);
    println!(
        "agents       {:>7.1} bytes per registered agent, plus its {handle}-byte handle ({AGENTS} agents); registered in {:.1} ms",
        (after - before - handles_vec) as f64 / AGENTS as f64,
        took.as_secs_f64() * 1e3
    );

    // Fair shares split the pool among the agents that use the cache, which
    // are recounted after each lifecycle change and every 1,024 inserts of
    // an agent: time one recount over these 10,000 agents (a registration
    // makes the count stale; the next share computation recounts).
    let mut recounts: Vec<f64> = (0..21)
        .map(|i| {
            cache
                .register_agent(&format!("extra-{i}"), helios_l1::AgentConfig::new())
                .expect("unique names");
            let start = std::time::Instant::now();
            std::hint::black_box(handles[0].fair_share().expect("alive"));
            start.elapsed().as_secs_f64()
        })
        .collect();
    recounts.sort_by(f64::total_cmp);
    println!(
        "recount      {:.1} us over {} agents (median of {}): {:.1} ns per insert at one recount per 1,024",
        recounts[recounts.len() / 2] * 1e6,
        cache.agent_count(),
        recounts.len(),
        recounts[recounts.len() / 2] * 1e9 / 1024.0
    );
    drop(handles);

    // Termination releases the agent's private entries: time it per 10,000.
    let cache = helios_l1::AgentCache::<u64, u64>::new(100_000).expect("valid capacity");
    let agent = cache
        .register_agent("terminated", helios_l1::AgentConfig::new())
        .expect("registers");
    for k in 0..10_000 {
        let _ = agent.insert_private(k, k);
    }
    let start = std::time::Instant::now();
    let released = agent.terminate().expect("alive");
    println!(
        "terminate    {:.2} ms to release {released} private entries",
        start.elapsed().as_secs_f64() * 1e3
    );

    // Suspension demotes the agent's entries: one pass over the cache.
    let cache = helios_l1::AgentCache::<u64, u64>::new(100_000).expect("valid capacity");
    let sleeper = cache
        .register_agent("sleeper", helios_l1::AgentConfig::new())
        .expect("registers");
    let other = cache
        .register_agent("other", helios_l1::AgentConfig::new())
        .expect("registers");
    for k in 0..50_000 {
        let _ = sleeper.insert(k, k);
        let _ = other.insert(1_000_000 + k, k);
    }
    let entries = cache.cache().len();
    let start = std::time::Instant::now();
    sleeper.suspend().expect("alive");
    let took = start.elapsed().as_secs_f64();
    println!(
        "suspend      {:.2} ms over {entries} entries ({:.1} ns per entry)",
        took * 1e3,
        took * 1e9 / entries as f64
    );
}
