//! Deferred reclamation: when may memory that readers could still see be reused?
//!
//! Readers never lock, so a writer that unlinks a slot or a table cannot free
//! it at once: a reader may have loaded its index a moment earlier. Readers
//! *pin* an epoch for the duration of one lookup; writers *retire* memory with
//! a closure that runs once every thread pinned at retirement has unpinned.
//!
//! We use `crossbeam-epoch` for this rather than a hand-written scheme: pinning
//! writes only the calling thread's own participant record (no shared cache
//! line), it never allocates once a thread is registered, and it is widely
//! used and model-checked upstream. Under `--cfg loom` the collector is
//! replaced by one that never reclaims while a model runs (retired closures
//! are leaked), because loom cannot model crossbeam's internals; the loom
//! models check *our* publication protocol, crossbeam's own tests check its.

#[cfg(not(loom))]
mod imp {
    /// Proof that the current thread is pinned.
    pub(crate) use crossbeam_epoch::Guard;

    /// Pins the current thread until the guard is dropped.
    #[inline]
    pub(crate) fn pin() -> Guard {
        crossbeam_epoch::pin()
    }

    /// Runs `f` after every thread pinned now has unpinned.
    ///
    /// Closures of up to three words are stored inline in crossbeam's
    /// per-thread bag, so retiring does not allocate per call.
    #[inline]
    pub(crate) fn retire(guard: &Guard, f: impl FnOnce() + Send + 'static) {
        guard.defer(f);
    }

    /// Hands this thread's retirements to the global queue, where any
    /// thread's collection can run them (otherwise they wait until 64 of them
    /// fill the thread's bag). Allocates one queue node.
    pub(crate) fn publish(guard: &Guard) {
        guard.flush();
    }
}

#[cfg(loom)]
mod imp {
    /// Stand-in guard under loom: nothing is ever reclaimed during a model.
    #[derive(Debug)]
    pub(crate) struct Guard(());

    pub(crate) fn pin() -> Guard {
        Guard(())
    }

    pub(crate) fn retire(_guard: &Guard, f: impl FnOnce() + Send + 'static) {
        // Leaking is the only always-safe choice without a collector.
        std::mem::forget(f);
    }

    pub(crate) fn publish(_guard: &Guard) {}
}

pub(crate) use imp::{pin, publish, retire, Guard};
