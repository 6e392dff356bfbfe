//! Read sections: when may memory that lock-free readers could still hold
//! be freed, if those readers may not execute a fence?
//!
//! Every lookup, in the main tables and in the hot tier, reads inside a
//! section of one process-wide domain. A classic epoch pin (crossbeam's)
//! executes a locked `cmpxchg` per lookup, a full fence; the hot tier
//! promises hits with no atomic read-modify-write and no store to memory
//! another thread writes, and the main table's hits gained 27–36% of
//! throughput without the fence (BENCHMARKS.md, "Reclamation"). So sections
//! are epoch-announced with an *asymmetric fence* (as liburcu's membarrier
//! flavour and folly's hazard pointers do):
//!
//! - A domain has a global epoch `G` and one cache-padded *record* per
//!   reading thread, written only by that thread.
//! - Entering a section (at nesting depth 0) the reader loads `G` and stores
//!   it in its record (a plain store), then a *light fence*; leaving, it
//!   stores `OFFLINE` (a plain `Release` store). Nested sections (a `with`
//!   closure calling the cache) only count depth in a thread-local.
//! - A writer that unpublishes a table advances `G` to `e`, runs a *heavy
//!   fence*, and may free the table once every record is `OFFLINE` or `≥ e`.
//! - Writers that retire often (the main tables, on every eviction) share
//!   heavy fences instead: each retirement is *stamped* with `e = G + 1` by
//!   a read-modify-write on `G`, and is freed once some writer's *grace
//!   period* (advance `G`, heavy fence, publish it as completed) ran after
//!   the stamp and every record is `OFFLINE` or `≥ e`
//!   ([`Domain::stamp`], [`Domain::advance_if_due`], [`Domain::safe_below`];
//!   `crate::reclaim` keeps the per-writer limbo). The stamp being a
//!   read-modify-write puts the advance in its release sequence, so a
//!   section announcing `≥ e` synchronises with the stamp and sees the
//!   unlink, exactly as it would see a swap that the advance followed.
//!
//! With `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (Linux ≥ 4.14) the
//! heavy fence is that system call, which runs a full barrier on every CPU
//! running one of our threads, and the light fence is only a compiler fence:
//! a hit costs two plain stores to the thread's own cache line. Without it
//! (other systems, or a seccomp filter that refuses the call) the light fence
//! is `fence(SeqCst)` and the heavy one an ordinary fence.
//!
//! Why it is safe. Take a reader that could hold the old table `T`, i.e. it
//! loaded the table pointer before the writer's swap. (1) If its entry store
//! preceded the heavy fence, the fence made it visible, so the writer sees
//! an epoch `< e` until the reader leaves; leaving is a `Release` store the
//! writer's `Acquire` load synchronises with, so the reader's accesses to `T`
//! happen before the free. (2) If its entry store came after the heavy fence,
//! so did its pointer load (the light fence keeps the load after the store,
//! and the heavy fence orders it after the swap), so it loaded the new
//! table, a contradiction. A record `≥ e` was stored after loading `G ≥ e`
//! (`Acquire`, pairing with the `fetch_add`), so that section sees the new
//! table too.
//!
//! Unlike pure QSBR, an idle thread is `OFFLINE` and never holds reclamation
//! back; only a thread inside a section does (for as long as a `with`
//! closure runs). A thread whose thread-locals are already destroyed (a
//! cache used from another thread-local's destructor) has no record; it
//! enters a *fallback* section, a counted read-modify-write plus a real
//! fence, which holds back all reclamation while open.
//!
//! The loom models (`raw::loom_tests`) check the epoch, stamp and record
//! logic with both fences as `SeqCst` fences; the asymmetric half rests on
//! `membarrier`'s documented guarantee, as in liburcu.

use std::cell::Cell;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};

/// A record whose thread is outside any section.
const OFFLINE: u64 = u64::MAX;

/// One reading thread's announcement.
#[derive(Debug)]
pub(crate) struct Record {
    /// The epoch at which the owner entered its current section, or
    /// `OFFLINE`. Written only by the owning thread (and by the domain while
    /// no thread owns it).
    announced: CachePadded<AtomicU64>,
    /// Whether a thread owns this record.
    in_use: AtomicBool,
}

// Each reader's record owns its cache lines: entering and leaving a section
// writes only lines no other thread writes.
const _: () = assert!(std::mem::align_of::<CachePadded<AtomicU64>>() >= 64);
const _: () = assert!(std::mem::size_of::<Record>() >= 2 * 64);

/// When the last grace period began, and how long its heavy fence took.
#[derive(Debug, Clone, Copy)]
struct LastAdvance {
    at: Instant,
    fence: Duration,
}

/// A reclamation domain: the global epoch and the records of its readers.
#[derive(Debug)]
pub(crate) struct Domain {
    /// Advanced by grace periods ([`advance_if_due`](Self::advance_if_due)); also touched by writers'
    /// [`stamp`](Self::stamp)s. Modified only by read-modify-writes, so
    /// every value a reader loads continues the release sequence of every
    /// earlier stamp (see [`stamp`](Self::stamp)).
    epoch: AtomicU64,
    /// The highest epoch whose advance has run its heavy fence.
    completed: AtomicU64,
    /// Readers inside a section without a record (their thread's
    /// thread-locals are being destroyed); they fence for real.
    fallback: AtomicU64,
    /// Serialises advances and remembers when the last one ran and how
    /// long its heavy fence took, so that writers that want grace periods
    /// share them (see `advance_if_due`).
    last_advance: Mutex<Option<LastAdvance>>,
    /// Every record ever handed out; free ones are reused.
    records: Mutex<Vec<Arc<Record>>>,
}

impl Domain {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            epoch: AtomicU64::new(1),
            completed: AtomicU64::new(1),
            fallback: AtomicU64::new(0),
            last_advance: Mutex::new(None),
            records: Mutex::new(Vec::new()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(1),
            completed: AtomicU64::new(1),
            fallback: AtomicU64::new(0),
            last_advance: Mutex::new(None),
            records: Mutex::new(Vec::new()),
        }
    }

    /// A record for the calling thread (outside any section).
    pub(crate) fn register(&self) -> Arc<Record> {
        let mut records = self.records.lock();
        if let Some(free) = records.iter().find(|r| !r.in_use.load(Ordering::Relaxed)) {
            free.in_use.store(true, Ordering::Relaxed);
            return Arc::clone(free);
        }
        let fresh = Arc::new(Record {
            announced: CachePadded::new(AtomicU64::new(OFFLINE)),
            in_use: AtomicBool::new(true),
        });
        records.push(Arc::clone(&fresh));
        fresh
    }

    /// Returns `record` to the pool. Its owner is outside any section.
    #[cfg_attr(loom, allow(dead_code))] // loom models never end a thread's membership
    pub(crate) fn unregister(&self, record: &Record) {
        let _records = self.records.lock();
        record.in_use.store(false, Ordering::Relaxed);
    }

    /// Enters a section: from here until [`exit`](Self::exit), what the
    /// owner of `record` loads from this domain's structures stays alive.
    #[inline(always)]
    pub(crate) fn enter(&self, record: &Record) {
        // Acquire pairs with the advance that produced `epoch` (and, through
        // its release sequence, with every earlier stamp): a section that
        // announces `≥ e` sees every unlink stamped below `e`.
        let epoch = self.epoch.load(Ordering::Acquire);
        // Release (a plain store on x86): a checker that reads this record
        // after the owner left and re-entered still synchronises with the
        // earlier section's reads, not only when it reads `OFFLINE`.
        record.announced.store(epoch, Ordering::Release);
        light_fence();
    }

    /// Leaves the section entered with [`enter`](Self::enter).
    #[inline(always)]
    pub(crate) fn exit(&self, record: &Record) {
        // Release pairs with the Acquire in `safe_below`: the section's
        // reads happen before a free that sees `OFFLINE`.
        record.announced.store(OFFLINE, Ordering::Release);
    }

    /// Enters a section without a record (for a thread whose thread-locals
    /// are gone): a real read-modify-write and fence, so no heavy fence is
    /// needed to see it. Rare; every [`safe_below`](Self::safe_below) waits
    /// for all such sections.
    #[cfg_attr(loom, allow(dead_code))] // the global domain is not modelled
    pub(crate) fn enter_fallback(&self) {
        self.fallback.fetch_add(1, Ordering::SeqCst);
        crate::sync::fence(Ordering::SeqCst);
    }

    /// Leaves a section entered with [`enter_fallback`](Self::enter_fallback).
    #[cfg_attr(loom, allow(dead_code))] // the global domain is not modelled
    pub(crate) fn exit_fallback(&self) {
        // Release pairs with the Acquire in `safe_below`.
        self.fallback.fetch_sub(1, Ordering::Release);
    }

    /// Stamps what the caller just unpublished (with a `SeqCst` swap) and
    /// runs a grace period now; returns the epoch it may be freed at. If the
    /// heavy fence failed, the epoch completes only with a later grace
    /// period that succeeds.
    pub(crate) fn retire_epoch(&self) -> u64 {
        let epoch = self.stamp();
        let mut last = self.last_advance.lock();
        let at = Instant::now();
        let (_, fence) = self.advance_locked();
        *last = Some(LastAdvance { at, fence });
        epoch
    }

    /// Stamps a retirement: call after unlinking what is retired (from a
    /// structure whose readers read inside this domain's sections). Returns
    /// the epoch it may be freed at: once it is below
    /// [`safe_below`](Self::safe_below), which takes a grace period
    /// ([`advance_if_due`](Self::advance_if_due)) begun after this call.
    ///
    /// A read-modify-write, not a load: with `AcqRel` it heads a release
    /// sequence that every later advance (also a read-modify-write)
    /// continues, so a section that announces an epoch `>` the stamp
    /// synchronises with it and sees the unlink. Sections that announced
    /// less are waited for. Cheap enough for once per batch of retirements.
    pub(crate) fn stamp(&self) -> u64 {
        self.epoch.fetch_add(0, Ordering::AcqRel) + 1
    }

    /// Starts a grace period: advances the epoch and runs the heavy fence,
    /// unless another thread is doing so, or the last one began less than
    /// `cost_factor` times its own heavy fence's duration ago (that interval
    /// clamped to `min_interval..=max_interval`). Many writers' stamps share one heavy fence this
    /// way; the cost factor paces them by what they cost here (`membarrier`
    /// takes ~0.2 µs when no other thread of the process is running and
    /// ~8 µs on this virtual machine when one is, see `heavy_fence`).
    /// Returns whether it ran one.
    pub(crate) fn advance_if_due(
        &self,
        min_interval: Duration,
        max_interval: Duration,
        cost_factor: u32,
    ) -> bool {
        let Some(mut last) = self.last_advance.try_lock() else {
            return false;
        };
        let now = Instant::now();
        if let Some(last) = *last {
            let interval = (last.fence * cost_factor).clamp(min_interval, max_interval);
            if now.duration_since(last.at) < interval {
                return false;
            }
        }
        let (ran, fence) = self.advance_locked();
        *last = Some(LastAdvance { at: now, fence });
        ran
    }

    /// Advances the epoch and runs the heavy fence; the caller holds
    /// `last_advance`. Returns false if the fence failed (then `completed`
    /// stays put, and what was stamped since waits for a later grace period
    /// that succeeds; `membarrier` does not fail once registered, short of
    /// a kernel change), and how long the fence took.
    fn advance_locked(&self) -> (bool, Duration) {
        // SeqCst: after the unlinks the stamps cover; as a read-modify-write
        // it continues their release sequences, and its Release part pairs
        // with the Acquire in `enter`.
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let started = Instant::now();
        let fenced = heavy_fence();
        let fence = started.elapsed();
        if !fenced {
            return (false, fence);
        }
        // Release pairs with the Acquire in `safe_below`: a checker that sees
        // the epoch completed also sees every section announced before the
        // fence.
        self.completed.fetch_max(epoch, Ordering::Release);
        (true, fence)
    }

    /// The highest epoch whose grace period has run its heavy fence.
    #[cfg_attr(loom, allow(dead_code))] // the global domain is not modelled
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Whether no section that could hold something retired at `epoch`
    /// remains: the epoch's heavy fence has run and every reader is outside
    /// any section or entered one at `epoch` or later.
    #[cfg(test)]
    pub(crate) fn is_safe(&self, epoch: u64) -> bool {
        epoch < self.safe_below()
    }

    /// The smallest epoch not yet safe: everything stamped below it may be
    /// freed. One pass over the records, for callers with many retirements
    /// to check.
    pub(crate) fn safe_below(&self) -> u64 {
        // Acquire pairs with the Release in `advance_locked`.
        let mut floor = self.completed.load(Ordering::Acquire).saturating_add(1);
        // The fallback sections fence for real; pairs with their fence.
        crate::sync::fence(Ordering::SeqCst);
        if self.fallback.load(Ordering::Acquire) > 0 {
            return 0;
        }
        for r in self.records.lock().iter() {
            // Acquire pairs with the Release in `exit`.
            let announced = r.announced.load(Ordering::Acquire);
            if announced != OFFLINE {
                floor = floor.min(announced.saturating_add(1));
            }
        }
        floor
    }

    /// Number of records (the most threads that read at the same time).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn records(&self) -> usize {
        self.records.lock().len()
    }
}

/// Whether readers may skip the hardware fence because writers run
/// `membarrier`. Decided once by [`init`], which every thread runs before
/// its first section and before every heavy fence.
/// A `std` atomic rather than `crate::sync`'s: configuration, not protocol
/// (under loom the fences below ignore it).
static ASYMMETRIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses the fence flavour, once per process. Every thread calls it
/// before its first section (when its record is made) and before every
/// heavy fence, so all threads see the same, final choice: the flag is
/// written only inside the `Once`, which every caller has completed.
pub(crate) fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if membarrier::register() {
            ASYMMETRIC.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
}

/// Whether `membarrier` is in use (for reports).
pub(crate) fn asymmetric() -> bool {
    ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed)
}

#[inline(always)]
fn light_fence() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
        // Keeps the compiler from moving the section's loads above the
        // entry store; the CPU is ordered by the writer's membarrier.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        std::sync::atomic::fence(Ordering::SeqCst);
    }
}

/// Returns false if the fence could not be run.
fn heavy_fence() -> bool {
    #[cfg(loom)]
    {
        loom::sync::atomic::fence(Ordering::SeqCst);
        true
    }
    #[cfg(not(loom))]
    {
        init();
        if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
            membarrier::expedited()
        } else {
            std::sync::atomic::fence(Ordering::SeqCst);
            true
        }
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
mod membarrier {
    //! `membarrier(2)`; constants from `linux/membarrier.h`.
    const CMD_QUERY: libc::c_long = 0;
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    fn call(cmd: libc::c_long) -> libc::c_long {
        // SAFETY: membarrier takes (cmd, flags, cpu_id) integers and touches
        // no memory of ours; an unsupported command returns -1.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    }

    /// Registers the process for expedited private barriers.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & CMD_PRIVATE_EXPEDITED != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A full barrier on every CPU running a thread of this process.
    pub(super) fn expedited() -> bool {
        call(CMD_PRIVATE_EXPEDITED) == 0
    }
}

#[cfg(not(all(target_os = "linux", not(loom))))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }
    #[allow(dead_code)] // only reached when `register` succeeded
    pub(super) fn expedited() -> bool {
        false
    }
}

/// The process-wide domain the main tables and the hot tiers retire into,
/// and each thread's membership.
#[cfg(not(loom))]
mod global {
    use std::marker::PhantomData;

    use super::{Arc, Cell, Domain, Record};

    pub(super) static DOMAIN: Domain = Domain::new();

    /// The calling thread's record and its section nesting depth.
    pub(crate) struct Reader {
        pub(super) record: Arc<Record>,
        /// Nested sections (a `with` closure may call the cache).
        /// Thread-private.
        depth: Cell<u32>,
        /// Counts calls for sampling. Thread-private.
        ticks: Cell<u32>,
    }

    impl Drop for Reader {
        fn drop(&mut self) {
            DOMAIN.unregister(&self.record);
        }
    }

    thread_local! {
        static READER: Reader = {
            // Fixes the fence flavour before this thread's first section.
            super::init();
            Reader {
                record: DOMAIN.register(),
                depth: Cell::new(0),
                ticks: Cell::new(0),
            }
        };
    }

    impl Reader {
        /// Advances and returns this thread's call counter (thread-private).
        #[inline(always)]
        pub(crate) fn tick(&self) -> u32 {
            let t = self.ticks.get().wrapping_add(1);
            self.ticks.set(t);
            t
        }
    }

    /// A read section of the global domain, left when dropped: what the
    /// holder loads from structures retired into the domain stays allocated
    /// while it lives. Not `Send`: it belongs to the thread's record.
    pub(crate) struct Guard {
        /// The thread's reader, or null in a fallback section (the thread's
        /// thread-locals are gone).
        reader: *const Reader,
        _not_send: PhantomData<*const ()>,
    }

    impl Guard {
        /// The thread's reader (None in a fallback section, where the hot
        /// tier is not used).
        #[inline(always)]
        pub(crate) fn reader(&self) -> Option<&Reader> {
            // SAFETY: `reader` is null or came from `READER.try_with` on this
            // thread (the guard is not `Send`). A guard lives only inside one
            // call into the cache (none is handed to users), and a thread's
            // thread-local `READER` is destroyed only by the thread's own
            // exit, which cannot run in the middle of such a call, so the
            // reader outlives the guard.
            unsafe { self.reader.as_ref() }
        }
    }

    /// Enters a read section (at depth 0; nested sections only count).
    ///
    /// The guard must be dropped before the call into the cache that made
    /// it returns: never store it or hand it to a user. [`Guard::reader`]'s
    /// safety rests on that (the thread's record outlives every guard only
    /// because no guard outlives a call).
    #[inline(always)]
    pub(crate) fn pin() -> Guard {
        let entered = READER.try_with(|reader| {
            let depth = reader.depth.get();
            if depth == 0 {
                DOMAIN.enter(&reader.record);
            }
            reader.depth.set(depth + 1);
            reader as *const Reader
        });
        match entered {
            Ok(reader) => Guard {
                reader,
                _not_send: PhantomData,
            },
            Err(_) => pin_fallback(),
        }
    }

    #[cold]
    fn pin_fallback() -> Guard {
        DOMAIN.enter_fallback();
        Guard {
            reader: std::ptr::null(),
            _not_send: PhantomData,
        }
    }

    impl Drop for Guard {
        #[inline(always)]
        fn drop(&mut self) {
            match self.reader() {
                Some(reader) => {
                    let depth = reader.depth.get() - 1;
                    reader.depth.set(depth);
                    if depth == 0 {
                        DOMAIN.exit(&reader.record);
                    }
                }
                None => DOMAIN.exit_fallback(),
            }
        }
    }

    /// Advances this thread's call counter without entering a section (for
    /// callers that read nothing from the hot tier); 1 while the thread is
    /// shutting down.
    #[inline]
    pub(crate) fn tick() -> u32 {
        READER.try_with(Reader::tick).unwrap_or(1)
    }
}

/// Under loom the global domain is not modelled (statics outlive models):
/// the cache bypasses the hot tier, and the loom models drive [`Domain`]
/// directly.
#[cfg(loom)]
mod global {
    use super::Cell;

    pub(crate) struct Reader(Cell<u32>);

    impl Reader {
        pub(crate) fn tick(&self) -> u32 {
            self.0.get()
        }
    }

    /// Stand-in guard: under loom the main tables never free what they
    /// retire while a model runs (see `raw::Writer`).
    #[derive(Debug)]
    pub(crate) struct Guard(());

    impl Guard {
        pub(crate) fn reader(&self) -> Option<&Reader> {
            None
        }
    }

    pub(crate) fn pin() -> Guard {
        Guard(())
    }

    pub(crate) fn tick() -> u32 {
        1
    }
}

pub(crate) use global::{pin, tick, Guard, Reader};

/// The domain the main tables and all hot tiers retire into.
#[cfg(not(loom))]
pub(crate) fn domain() -> &'static Domain {
    &global::DOMAIN
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn retired_epoch_is_safe_once_no_older_section_remains() {
        init();
        let d = Domain::new();
        let a = d.register();
        let b = d.register();
        d.enter(&a);
        d.enter(&b);
        let e = d.retire_epoch();
        assert!(!d.is_safe(e), "both sections began before the retirement");
        d.exit(&a);
        assert!(!d.is_safe(e), "b still may hold the old table");
        d.exit(&b);
        assert!(d.is_safe(e), "idle readers hold nothing back");
        d.enter(&a);
        assert!(
            d.is_safe(e),
            "a section that began after it sees the new table"
        );
        let e2 = d.retire_epoch();
        assert!(!d.is_safe(e2));
        d.exit(&a);
        d.unregister(&b);
        let c = d.register();
        assert_eq!(d.records(), 2, "the free record was reused");
        assert!(d.is_safe(e2));
        d.unregister(&c);
        d.unregister(&a);
    }

    #[test]
    fn a_stamp_waits_for_a_grace_period_and_for_older_sections() {
        init();
        let d = Domain::new();
        let a = d.register();
        d.enter(&a);
        let e = d.stamp();
        assert!(!d.is_safe(e), "no grace period ran since the stamp");
        assert!(d.advance_if_due(Duration::ZERO, Duration::ZERO, 0));
        assert!(!d.is_safe(e), "a's section began before the stamp");
        d.exit(&a);
        assert!(d.is_safe(e), "idle readers hold nothing back");

        let e2 = d.stamp();
        assert!(
            !d.advance_if_due(Duration::from_secs(3600), Duration::from_secs(3600), 0),
            "one grace period ran just now"
        );
        assert!(
            !d.is_safe(e2),
            "throttled: still waiting for its grace period"
        );
        assert!(d.advance_if_due(Duration::ZERO, Duration::ZERO, 0));
        assert!(d.is_safe(e2));

        // A section entered after the grace period does not hold it back.
        d.enter(&a);
        assert!(d.is_safe(e2));
        d.exit(&a);

        // A fallback section (no record) holds back everything while open.
        d.enter_fallback();
        let e3 = d.stamp();
        assert!(d.advance_if_due(Duration::ZERO, Duration::ZERO, 0));
        assert!(!d.is_safe(e3) && !d.is_safe(e2));
        d.exit_fallback();
        assert!(d.is_safe(e3));
        d.unregister(&a);
    }

    #[test]
    fn nested_sections_leave_only_at_depth_zero() {
        init();
        let announced = |reader: Option<&Reader>| {
            reader
                .map(|r| r.record.announced.load(Ordering::SeqCst))
                .unwrap_or(0)
        };
        {
            let outer = pin();
            let at_entry = announced(outer.reader());
            assert_ne!(at_entry, OFFLINE);
            let e = domain().retire_epoch();
            {
                let inner = pin();
                assert_eq!(announced(inner.reader()), at_entry, "no re-entry");
            }
            // Still inside the outer section after the inner one left.
            assert_eq!(announced(outer.reader()), at_entry);
            assert!(!domain().is_safe(e));
        }
        {
            let fresh = pin();
            let mut depth_zero = 0;
            // A fresh section announces the current epoch.
            if let Some(r) = fresh.reader() {
                depth_zero = r.record.announced.load(Ordering::SeqCst);
            }
            assert!(depth_zero >= 2);
        }
    }
}
