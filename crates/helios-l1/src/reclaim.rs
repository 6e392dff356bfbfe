//! Deferred reclamation: when may memory that readers could still see be
//! reused?
//!
//! Readers never lock, so a writer that unlinks a slot or a table cannot free
//! it at once: a reader may have loaded its index a moment earlier. Readers
//! therefore read inside a *section* ([`pin`]) of the process-wide domain in
//! `raw::sections`, and writers put what they unlink in a [`Limbo`], which
//! hands it back for freeing once no section that could hold it remains.
//!
//! Why not `crossbeam-epoch`, which the cache used until session 11: pinning
//! there executes a locked `cmpxchg` (a full fence) on every lookup, and
//! every 128th pin tries to advance a global epoch that all readers load.
//! Removing that pin from the read path (an unsound experiment, with no
//! writer running) raised 2-thread read throughput by 27–36% (BENCHMARKS.md,
//! "Reclamation"). The domain's sections cost two plain stores to the
//! thread's own cache line: the fence moves to the writers, which run one
//! `membarrier` per *grace period*. A grace period is shared by every
//! retirement stamped before it, and writers space them by what the last
//! one cost ([`GRACE_COST_FACTOR`]), so their cost is spread over many
//! evictions. What that costs in memory: a retired slot stays allocated
//! for up to about two intervals plus the time to the shard's next look at
//! its limbo (each full batch of 64 retirements, every 64 inserts, and the
//! end of every `remove` and `clear`, which run a due grace period outside
//! their own section so that a removal on an otherwise idle cache frees its
//! value at once), or until the shard is dropped. A value still waits for
//! a later write if a grace period ran within the last interval or a
//! reader is inside an older section when it is removed.

#[cfg(not(loom))]
use std::collections::VecDeque;
#[cfg(not(loom))]
use std::time::Duration;

pub(crate) use crate::raw::sections::{pin, Guard};

/// Grace periods that writers start are at least this many times as far
/// apart as the last one's heavy fence took: heavy fences then take at most
/// ~1% of the time of the thread running them, whatever `membarrier` costs
/// on the machine (~0.2 µs here when no other thread of the process is
/// running, so no interrupt is sent; ~8 µs in this virtual machine when one
/// is). Memory waiting in limbo grows with the interval (about `eviction
/// rate × interval` slots), so a fixed interval long enough for the costly
/// case would hold memory back for no reason in the cheap one.
#[cfg(not(loom))]
const GRACE_COST_FACTOR: u32 = 100;

/// Grace periods are at least this far apart even when the fence is
/// nearly free (no `membarrier`, or nothing else running): 20 µs bounds
/// them to 50,000 a second, each an atomic increment on a line all writers
/// share and a pass over the readers' records. A writer whose limbo holds
/// many slots (see [`Limbo::collect`]) waits only this long.
#[cfg(not(loom))]
const MIN_GRACE_INTERVAL: Duration = Duration::from_micros(20);

/// Grace periods are at most this far apart (while retirements wait for
/// one), however long the last fence took: one slow `membarrier` (a
/// descheduled CPU) must not hold memory back for long.
#[cfg(not(loom))]
const MAX_GRACE_INTERVAL: Duration = Duration::from_millis(1);

/// How many times the last heavy fence's cost a writer waits before it
/// starts the next grace period (see [`GRACE_COST_FACTOR`]). `urgent` (a
/// limbo holding much memory) waits only the minimum, but not while its
/// oldest item (after a free pass) is covered by a completed grace period:
/// then a reader inside an older section holds everything back, and fences
/// every 20 µs would burn CPU (~40% of a core at 8 µs each) without
/// freeing a byte.
#[cfg(not(loom))]
fn cost_factor(urgent: bool, oldest: u64, completed: u64) -> u32 {
    let held_by_a_reader = oldest <= completed;
    if urgent && !held_by_a_reader {
        0
    } else {
        GRACE_COST_FACTOR
    }
}

/// What one writer has unlinked and not yet freed, oldest first, each with
/// the epoch from which it may be freed (`Domain::stamp`).
#[derive(Debug)]
pub(crate) struct Limbo<T> {
    #[cfg(not(loom))]
    pending: VecDeque<(u64, T)>,
    /// Under loom nothing is freed while a model runs (the global domain is
    /// not modelled); the owner frees everything when dropped.
    #[cfg(loom)]
    pending: Vec<T>,
}

impl<T> Limbo<T> {
    pub(crate) fn new() -> Self {
        Self {
            pending: Default::default(),
        }
    }

    /// Queues `item`, which the caller has just unlinked: no reader that
    /// starts from now on can find it.
    #[cfg(not(loom))]
    pub(crate) fn retire(&mut self, item: T) {
        let epoch = crate::raw::sections::domain().stamp();
        self.pending.push_back((epoch, item));
    }

    #[cfg(loom)]
    pub(crate) fn retire(&mut self, item: T) {
        self.pending.push(item);
    }

    /// Hands `free` every item no reader can hold any more, oldest first,
    /// and starts a grace period if items still wait for one and none ran
    /// lately (see [`GRACE_COST_FACTOR`]; with `urgent`, when the caller
    /// holds much memory in limbo, only [`MIN_GRACE_INTERVAL`] applies).
    ///
    /// A caller that still holds references to retired items calls it
    /// inside a section (a [`Guard`]) covering them: that section holds them
    /// back. A caller holding none may call it outside any section
    /// (`Shard::remove` and `clear` do, so their own removals can go now).
    #[cfg(not(loom))]
    pub(crate) fn collect(&mut self, urgent: bool, mut free: impl FnMut(T)) {
        let domain = crate::raw::sections::domain();
        // Free first, so that what is left is what still waits: then an
        // oldest item covered by a completed grace period is really held
        // by a reader (see `cost_factor`). Nothing stamped above the
        // completed epoch can be free (`safe_below` is at most one above
        // it), so skip the pass over the readers' records (a lock all
        // writers share) until a grace period covers the oldest item.
        if self
            .pending
            .front()
            .is_some_and(|&(oldest, _)| oldest <= domain.completed())
        {
            self.free_safe(domain.safe_below(), &mut free);
        }
        let (Some(&(oldest, _)), Some(&(newest, _))) = (self.pending.front(), self.pending.back())
        else {
            return;
        };
        let completed = domain.completed();
        if newest > completed {
            let factor = cost_factor(urgent, oldest, completed);
            if domain.advance_if_due(MIN_GRACE_INTERVAL, MAX_GRACE_INTERVAL, factor) {
                self.free_safe(domain.safe_below(), &mut free);
            }
        }
    }

    /// Frees the items stamped below `safe_below`, oldest first.
    #[cfg(not(loom))]
    fn free_safe(&mut self, safe_below: u64, free: &mut impl FnMut(T)) {
        while let Some(&(epoch, _)) = self.pending.front() {
            if epoch >= safe_below {
                break;
            }
            if let Some((_, item)) = self.pending.pop_front() {
                free(item);
            }
        }
    }

    #[cfg(loom)]
    pub(crate) fn collect(&mut self, _urgent: bool, _free: impl FnMut(T)) {}

    /// The items waiting, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        #[cfg(not(loom))]
        return self.pending.iter().map(|(_, item)| item);
        #[cfg(loom)]
        return self.pending.iter();
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Hands `free` every item, whatever the readers: only for an owner with
    /// exclusive access to the structure (no reader can exist).
    pub(crate) fn free_all(&mut self, mut free: impl FnMut(T)) {
        #[cfg(not(loom))]
        for (_, item) in self.pending.drain(..) {
            free(item);
        }
        #[cfg(loom)]
        for item in self.pending.drain(..) {
            free(item);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn urgency_waits_the_minimum_only_while_a_grace_period_can_help() {
        // Oldest stamp 5 not yet covered by a completed grace period.
        assert_eq!(cost_factor(true, 5, 4), 0);
        assert_eq!(cost_factor(false, 5, 4), GRACE_COST_FACTOR);
        // Its grace period completed: a reader holds it, so no hurry.
        assert_eq!(cost_factor(true, 5, 5), GRACE_COST_FACTOR);
        assert_eq!(cost_factor(true, 5, 9), GRACE_COST_FACTOR);
    }
}
