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

/// Everything that ends the program with an error message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The trace could not be read or parsed (exit code 2).
    #[error(transparent)]
    Trace(#[from] trace::TraceError),
    /// Bad arguments or a failed step (exit code 1).
    #[error("{0}")]
    Usage(String),
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
                CliError::Trace(_) => ExitCode::from(2),
                CliError::Usage(_) => ExitCode::from(1),
            }
        }
    }
}
