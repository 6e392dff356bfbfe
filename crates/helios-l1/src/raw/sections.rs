//! Read sections for the hot tier: when may a retired hot table be freed,
//! if its readers may not pin anything?
//!
//! The main table's readers pin a crossbeam epoch on every lookup, which on
//! x86 is a locked `cmpxchg` on the thread's record (a fence in effect). The
//! hot tier promises hits with no atomic read-modify-write and no store to
//! memory another thread writes, so it uses epoch-announced read sections
//! with an *asymmetric fence* (as liburcu's membarrier flavour and folly's
//! hazard pointers do):
//!
//! - A domain has a global epoch `G` and one cache-padded *record* per
//!   reading thread, written only by that thread.
//! - Entering a section (at nesting depth 0) the reader loads `G` and stores
//!   it in its record (a plain store), then a *light fence*; leaving, it
//!   stores `OFFLINE` (a plain `Release` store). Nested sections (a `with`
//!   closure calling the cache) only count depth in a thread-local.
//! - A writer that unpublishes a table advances `G` to `e`, runs a *heavy
//!   fence*, and may free the table once every record is `OFFLINE` or `≥ e`.
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
//! closure runs).

use std::cell::Cell;

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

/// A reclamation domain: the global epoch and the records of its readers.
#[derive(Debug)]
pub(crate) struct Domain {
    epoch: AtomicU64,
    /// Every record ever handed out; free ones are reused.
    records: Mutex<Vec<Arc<Record>>>,
}

impl Domain {
    #[cfg(not(loom))]
    pub(crate) const fn new() -> Self {
        Self {
            epoch: AtomicU64::new(1),
            records: Mutex::new(Vec::new()),
        }
    }

    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        Self {
            epoch: AtomicU64::new(1),
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
        // Acquire pairs with the `fetch_add` in `retire_epoch`: a section
        // that announces `≥ e` sees the swap that preceded it.
        let epoch = self.epoch.load(Ordering::Acquire);
        record.announced.store(epoch, Ordering::Relaxed);
        light_fence();
    }

    /// Leaves the section entered with [`enter`](Self::enter).
    #[inline(always)]
    pub(crate) fn exit(&self, record: &Record) {
        // Release pairs with the Acquire in `is_safe`: the section's reads
        // happen before a free that sees `OFFLINE`.
        record.announced.store(OFFLINE, Ordering::Release);
    }

    /// Advances the epoch after the caller unpublished something (with a
    /// `SeqCst` swap); returns the epoch it may be freed at, or `None` if the
    /// heavy fence failed (then it must never be freed).
    pub(crate) fn retire_epoch(&self) -> Option<u64> {
        // SeqCst: after the unpublishing swap; Release part pairs with the
        // Acquire in `enter`.
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        heavy_fence().then_some(epoch)
    }

    /// Whether no section that could hold something retired at `epoch`
    /// remains.
    pub(crate) fn is_safe(&self, epoch: u64) -> bool {
        self.records.lock().iter().all(|r| {
            // Acquire pairs with the Release in `exit`.
            let announced = r.announced.load(Ordering::Acquire);
            announced == OFFLINE || announced >= epoch
        })
    }

    /// Number of records (the most threads that read at the same time).
    #[cfg(all(test, not(loom)))]
    pub(crate) fn records(&self) -> usize {
        self.records.lock().len()
    }
}

/// Whether readers may skip the hardware fence because writers run
/// `membarrier`. Decided once by [`init`], before any hot tier exists.
/// A `std` atomic rather than `crate::sync`'s: configuration, not protocol
/// (under loom the fences below ignore it).
static ASYMMETRIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Chooses the fence flavour; called before the first hot tier is built
/// (which happens before any thread can read from it).
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

/// The process-wide domain all hot tiers retire into, and each thread's
/// membership.
#[cfg(not(loom))]
mod global {
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
        static READER: Reader = Reader {
            record: DOMAIN.register(),
            depth: Cell::new(0),
            ticks: Cell::new(0),
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

    /// Leaves the section even if its closure panics.
    struct Exit<'a>(&'a Reader);

    impl Drop for Exit<'_> {
        #[inline(always)]
        fn drop(&mut self) {
            let depth = self.0.depth.get() - 1;
            self.0.depth.set(depth);
            if depth == 0 {
                DOMAIN.exit(&self.0.record);
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

    /// Runs `f` inside a read section of the global domain: what it loads
    /// from hot tables stays valid until it returns. `f` gets `None` if the
    /// thread is shutting down (its thread-locals are gone); it must then
    /// not use the hot tier.
    #[inline(always)]
    pub(crate) fn read<R>(f: impl FnOnce(Option<&Reader>) -> R) -> R {
        let mut f = Some(f);
        let run = |reader: &Reader| {
            let depth = reader.depth.get();
            if depth == 0 {
                DOMAIN.enter(&reader.record);
            }
            reader.depth.set(depth + 1);
            let _exit = Exit(reader);
            f.take().map(|f| f(Some(reader)))
        };
        match READER.try_with(run) {
            Ok(Some(r)) => r,
            // `run` did not take `f`: thread-locals are being destroyed.
            _ => match f.take() {
                Some(f) => f(None),
                None => unreachable!("a read section's closure ran but returned nothing"),
            },
        }
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

    pub(crate) fn read<R>(f: impl FnOnce(Option<&Reader>) -> R) -> R {
        f(None)
    }

    pub(crate) fn tick() -> u32 {
        1
    }
}

pub(crate) use global::{read, tick, Reader};

/// The domain all hot tiers retire into.
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
        let e = d.retire_epoch().unwrap();
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
        let e2 = d.retire_epoch().unwrap();
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
    fn nested_sections_leave_only_at_depth_zero() {
        init();
        let announced = |reader: Option<&Reader>| {
            reader
                .map(|r| r.record.announced.load(Ordering::SeqCst))
                .unwrap_or(0)
        };
        read(|outer| {
            let at_entry = announced(outer);
            assert_ne!(at_entry, OFFLINE);
            let e = domain().retire_epoch().unwrap();
            read(|inner| assert_eq!(announced(inner), at_entry, "no re-entry"));
            // Still inside the outer section after the inner one left.
            assert_eq!(announced(outer), at_entry);
            assert!(!domain().is_safe(e));
        });
        read(|reader| {
            let mut depth_zero = 0;
            // A fresh section announces the current epoch.
            if let Some(r) = reader {
                depth_zero = r.record.announced.load(Ordering::SeqCst);
            }
            assert!(depth_zero >= 2);
        });
    }
}
