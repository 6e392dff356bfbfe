//! `helios`: trace replay, benchmarks and (later) the 850-agent simulation.

mod latency;
mod noisy;
mod plot;
mod policies;
mod replay;
mod stopwatch;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Helios L1 command-line tools.
///
/// Exit codes: 0 on success, 2 for an invalid argument or trace, 1 when a
/// step fails while running (a replay thread, writing the output or the
/// plot).
#[derive(Debug, Parser)]
#[command(name = "helios", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a cache trace and print hit ratios per policy and size.
    Replay(replay::ReplayArgs),
    /// Benchmarks that compare helios with its peers in one process.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Per-operation latency percentiles (hot hit, main hit, miss, insert)
    /// and read throughput: helios with the hot tier on and off, quick_cache,
    /// moka.
    Latency(latency::LatencyArgs),
    /// Every agent's hit ratio with and without one agent scanning 10x the
    /// capacity: helios, quick_cache, moka.
    #[command(name = "noisy-neighbour")]
    NoisyNeighbour(noisy::NoisyArgs),
}

/// Everything that ends the program with an error message. Exit codes:
/// 2 when the input is invalid (an argument, which clap also reports with
/// 2, or the trace), 1 when a step fails while running.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The trace could not be read or parsed (exit code 2).
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    /// An argument is invalid (exit code 2).
    #[error("{0}")]
    Input(String),
    /// A step failed while running (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// Writing the results failed, for example on a full disk (exit code
    /// 1). `println!` would panic instead.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// An empty vector with room for `len` keys, or an error naming `what`
/// if the memory cannot be had: a huge `--ops` or `--agents` is an error
/// message, not a capacity-overflow panic or an abort.
pub(crate) fn key_buffer(len: usize, what: &str) -> Result<Vec<u64>, CliError> {
    let mut keys = Vec::new();
    keys.try_reserve_exact(len)
        .map_err(|e| CliError::Input(format!("{what}: cannot allocate {len} keys: {e}")))?;
    Ok(keys)
}

/// A reader that closes our stdout early (`helios replay ... | head`) ends
/// the program quietly, as it ends other Unix tools. Rust ignores SIGPIPE,
/// so without this every `println!` after the reader left would panic.
fn end_quietly_when_stdout_closes() {
    #[cfg(unix)]
    // SAFETY: runs first in `main`, before any other thread exists, so
    // nothing installs a handler concurrently; `SIG_DFL` is a valid
    // disposition for SIGPIPE and no Rust code relied on it being ignored
    // yet. `tests/cli.rs` (`a_closed_stdout_ends_the_program_quietly`)
    // fails without it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Replay(args) => replay::run(args),
        Command::Bench(BenchCommand::Latency(args)) => latency::run(args),
        Command::Bench(BenchCommand::NoisyNeighbour(args)) => noisy::run_bench(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("helios: {e}");
            match e {
                CliError::Trace(_) | CliError::Input(_) => ExitCode::from(2),
                CliError::Failed(_) | CliError::Output(_) => ExitCode::from(1),
            }
        }
    }
}
