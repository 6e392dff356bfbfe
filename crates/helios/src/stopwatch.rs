//! Timing of single operations for `helios bench latency`.
//!
//! The clock is the CPU's time-stamp counter, read through `quanta` (a few
//! nanoseconds per read; quanta falls back to the OS monotonic clock where
//! the counter is unusable). A bare `rdtsc` is not ordered with the
//! instructions around it: the CPU may read the counter while loads of the
//! *previous* operations are still waiting on memory, and the timed
//! operation then also pays for their cache misses. Fenced timing (the
//! default) puts `lfence` around the reads, as Intel's guide to timing
//! code with the TSC recommends: the start waits until every earlier
//! instruction has completed, the timed operation cannot start before the
//! start is read, and the end waits until it has completed. `--unfenced`
//! keeps the bare reads, whose figures include that spill-over.

use quanta::Clock;

/// Reads start and end timestamps around one operation.
#[derive(Clone)]
pub(crate) struct Stopwatch {
    clock: Clock,
    fenced: bool,
}

impl Stopwatch {
    pub(crate) fn new(fenced: bool) -> Self {
        Self {
            clock: Clock::new(),
            fenced,
        }
    }

    /// Whether the reads are fenced.
    pub(crate) fn is_fenced(&self) -> bool {
        self.fenced
    }

    /// A timestamp taken once every earlier instruction has completed, and
    /// before any later one starts (when fenced).
    #[inline(always)]
    pub(crate) fn start(&self) -> u64 {
        if self.fenced {
            load_fence();
            let t = self.clock.raw();
            load_fence();
            t
        } else {
            self.clock.raw()
        }
    }

    /// A timestamp taken once every earlier instruction has completed (when
    /// fenced).
    #[inline(always)]
    pub(crate) fn stop(&self) -> u64 {
        if self.fenced {
            load_fence();
        }
        self.clock.raw()
    }

    /// Nanoseconds between two timestamps of this stopwatch, at least 1 (the
    /// histograms start at 1 ns).
    pub(crate) fn nanos(&self, start: u64, end: u64) -> u64 {
        self.clock.delta_as_nanos(start, end).max(1)
    }
}

/// `lfence`: on x86-64 no later instruction starts until every earlier one
/// has completed locally, which orders `rdtsc` with the code it times.
/// Elsewhere a no-op (the timings then include some spill-over, as
/// unfenced ones do).
#[inline(always)]
fn load_fence() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `lfence` requires SSE2, which is part of the x86-64 baseline
    // (every x86-64 CPU has it); it reads and writes no memory. The unit
    // test below executes it.
    unsafe {
        std::arch::x86_64::_mm_lfence()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fenced_and_unfenced_timestamps_measure_elapsed_time() {
        for fenced in [true, false] {
            let watch = Stopwatch::new(fenced);
            assert_eq!(watch.is_fenced(), fenced);
            let start = watch.start();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let end = watch.stop();
            // A sleep of 2 ms lasts at least 2 ms; no upper bound (a slow
            // machine may oversleep).
            assert!(watch.nanos(start, end) >= 2_000_000, "fenced: {fenced}");
            // Back to back, the difference is never below the 1 ns floor.
            let (a, b) = (watch.start(), watch.stop());
            assert!(watch.nanos(a, b) >= 1);
        }
    }
}
