//! Metadata bytes per entry for u64 → u64 at 1,000,000 entries.
//!
//! A counting global allocator tracks live heap bytes; each cache (capacity
//! 1,000,000, so nothing is evicted) is filled with 1,000,000 entries, and
//! (live bytes after − before − 16 bytes of key and value per entry) /
//! resident entries is reported. Caches are built and dropped one at a time.
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
    // Let earlier caches' deferred frees run first.
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
}
