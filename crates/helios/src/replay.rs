//! `helios replay`: hit ratios of a trace at several sizes, per policy.

use std::io::Write;
use std::path::PathBuf;

use crate::policies::{Counts, Policy};
use crate::trace::{self, Format};

/// Arguments of `helios replay`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReplayArgs {
    /// The trace file (gzip, xz or plain).
    #[arg(long)]
    trace: PathBuf,
    /// Record layout of the trace.
    #[arg(long)]
    format: Format,
    /// Cache sizes: entries, or bytes for weighted formats (`adapt_size`).
    #[arg(long, value_delimiter = ',', required = true)]
    sizes: Vec<u64>,
    /// Also replay through moka and quick_cache.
    #[arg(long)]
    compare: bool,
    /// Also replay through helios with exact hit recording (`helios_exact`),
    /// to measure what the lossy read buffers cost in hit ratio.
    #[arg(long)]
    exact_recording: bool,
    /// Also replay through helios with its hot tier off (`helios_nohot`), to
    /// measure what the tier costs in hit ratio.
    #[arg(long)]
    no_hot_tier: bool,
    /// Also replay through helios's `AgentCache` with 1 agent
    /// (`helios_1agent`) and with 16 agents sharing the keys
    /// (`helios_16agents`), to measure what agent awareness costs.
    #[arg(long)]
    agents: bool,
    /// Seed the hash functions of every helios row with this number, so
    /// that those rows repeat from run to run (exactly without the hot
    /// tier; with it, to within a few hits, as its refreshes run on a
    /// timer) and two helios rows of one run hash alike (the agent rows
    /// but for bit 31, which an agent store keeps for its namespaces'
    /// class, so they differ from the plain row as another seed would
    /// by a little). By default each cache is
    /// seeded at random, as in production, and single cells vary between
    /// runs by up to a few points. moka and quick_cache stay randomly
    /// seeded.
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object per policy and size instead of a table.
    #[arg(long)]
    json: bool,
    /// Draw hit ratio against size to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// One cell of the result table.
pub(crate) struct Row {
    pub(crate) policy: Policy,
    pub(crate) size: u64,
    pub(crate) counts: Counts,
}

pub(crate) fn run(args: &ReplayArgs) -> Result<(), crate::CliError> {
    if let Some(&zero) = args.sizes.iter().find(|&&s| s == 0) {
        return Err(crate::CliError::Input(format!(
            "--sizes: a cache size must be at least 1, got {zero}"
        )));
    }
    // A plot path that cannot be written fails now, not after the replays.
    let plot = args
        .plot
        .as_deref()
        .map(crate::plot::PlotFile::create)
        .transpose()?;
    let trace = trace::load(&args.trace, args.format)?;
    let mut policies = vec![Policy::Helios, Policy::Opt, Policy::Lru];
    if args.exact_recording {
        policies.insert(1, Policy::HeliosExact);
    }
    if args.no_hot_tier {
        policies.insert(1, Policy::HeliosNoHot);
    }
    if args.agents {
        policies.insert(1, Policy::HeliosOneAgent);
        policies.insert(2, Policy::HeliosSixteenAgents);
    }
    if args.compare {
        policies.extend([Policy::Moka, Policy::QuickCache]);
    }
    let jobs: Vec<(Policy, u64)> = args
        .sizes
        .iter()
        .flat_map(|&size| policies.iter().map(move |&p| (p, size)))
        .collect();
    let rows = run_jobs(&trace, &jobs, args.seed)?;

    let mut out = std::io::stdout().lock();
    if args.json {
        for row in &rows {
            writeln!(
                out,
                "{}",
                serde_json::json!({
                    "trace": trace.name,
                    "policy": row.policy.name(),
                    "size": row.size,
                    "hits": row.counts.hits,
                    "misses": row.counts.misses,
                    "hit_ratio": (row.counts.hit_ratio() * 100.0).round() / 100.0,
                })
            )?;
        }
    } else {
        print_table(&mut out, &trace, &policies, &args.sizes, &rows)?;
    }
    out.flush()?;
    if let Some(plot) = plot {
        plot.draw(&trace.name, &policies, &rows)?;
    }
    Ok(())
}

/// Runs the replays on all CPUs; results come back in job order.
fn run_jobs(
    trace: &trace::Trace,
    jobs: &[(Policy, u64)],
    seed: Option<u64>,
) -> Result<Vec<Row>, crate::CliError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<Counts, String>>> = (0..jobs.len()).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<Result<Counts, String>>>> =
        results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&(policy, size)) = jobs.get(i) else {
                    break;
                };
                // Each replay on a thread of its own, so that no thread-local
                // state of the cache carries over from the jobs a worker ran
                // before. On the workers' own threads, rows that see the same
                // requests (plain helios and one agent) differed by up to
                // 1.3 pp at a few sizes; on fresh threads they were observed
                // to agree. Which state it was is not pinned down
                // (BENCHMARKS.md, "Counting from the fill").
                let result = std::thread::scope(|one| {
                    match std::thread::Builder::new()
                        .spawn_scoped(one, || policy.replay(trace, size, seed))
                    {
                        Ok(replay) => replay.join().unwrap_or_else(|panic| {
                            let why = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            Err(format!("the replay panicked: {why}"))
                        }),
                        Err(e) => Err(format!("could not start a replay thread: {e}")),
                    }
                });
                if let Ok(mut slot) = slots[i].lock() {
                    **slot = Some(result);
                }
            });
        }
    });
    drop(slots);
    jobs.iter()
        .zip(results)
        .map(|(&(policy, size), result)| match result {
            Some(Ok(counts)) => Ok(Row {
                policy,
                size,
                counts,
            }),
            Some(Err(e)) => Err(crate::CliError::Failed(format!(
                "{} at size {size}: {e}",
                policy.name()
            ))),
            None => Err(crate::CliError::Failed(format!(
                "{} at size {size}: replay did not finish",
                policy.name()
            ))),
        })
        .collect()
}

fn print_table(
    out: &mut impl Write,
    trace: &trace::Trace,
    policies: &[Policy],
    sizes: &[u64],
    rows: &[Row],
) -> std::io::Result<()> {
    writeln!(
        out,
        "trace {} ({} accesses, {} distinct objects){}",
        trace.name,
        trace.keys.len(),
        trace.distinct(),
        if trace.weights.is_some() {
            ", sizes in bytes"
        } else {
            ""
        }
    )?;
    write!(out, "{:>12}", "size")?;
    for p in policies {
        write!(out, " {:>12}", p.name())?;
    }
    writeln!(out)?;
    for &size in sizes {
        write!(out, "{size:>12}")?;
        for &p in policies {
            let cell = rows.iter().find(|r| r.policy == p && r.size == size);
            match cell {
                Some(r) => write!(out, " {:>11.2}%", r.counts.hit_ratio())?,
                None => write!(out, " {:>12}", "-")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}
