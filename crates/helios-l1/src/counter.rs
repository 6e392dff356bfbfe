//! Statistics counters that many threads bump without sharing a cache line.
//!
//! One `fetch_add` on a single atomic from every thread makes that line
//! bounce between cores on every event. A [`StripedCounter`] gives each
//! thread (by the same round-robin stripe number as the read buffers) its own
//! cache-padded cell; reading sums the cells, so a read is exact only when no
//! increment is in flight, which is all statistics need.

use crossbeam_utils::CachePadded;

use crate::raw::read_buffer::thread_stripe;
use crate::sync::{AtomicU64, Ordering};

/// Cells per counter: enough for one per thread on small machines; threads
/// beyond that share cells (still correct, just contended).
const STRIPES: usize = 16;

/// A counter striped across cache-padded cells.
pub(crate) struct StripedCounter {
    cells: Box<[CachePadded<AtomicU64>]>,
}

// A cell owns whole cache lines, so two threads' cells never share one.
const _: () = assert!(std::mem::align_of::<CachePadded<AtomicU64>>() >= 64);

impl StripedCounter {
    pub(crate) fn new() -> Self {
        Self {
            cells: (0..STRIPES)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Adds `n` to this thread's cell.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        // Relaxed: a statistic; no other memory is published through it.
        self.cells[thread_stripe() % STRIPES].fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of all cells.
    pub(crate) fn sum(&self) -> u64 {
        self.cells
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }
}

impl std::fmt::Debug for StripedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.sum())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn sums_increments_from_many_threads() {
        let c = std::sync::Arc::new(StripedCounter::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let c = std::sync::Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        c.add(1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.sum(), 80_000);
    }
}
