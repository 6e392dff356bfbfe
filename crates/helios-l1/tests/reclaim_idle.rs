//! A removed value is dropped by the removal itself when a grace period is
//! due and no reader holds it, with no later write to its shard. (Its own
//! test binary: the reclamation domain is per process, and another test's
//! long read section would rightly hold the value back.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use helios_l1::Cache;

struct Tracked(Arc<AtomicBool>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn a_removal_on_an_idle_cache_drops_the_value_without_further_writes() {
    let cache: Cache<u64, Arc<Tracked>> = Cache::builder().capacity(100).shards(1).build().unwrap();
    for round in 0..3 {
        let dropped = Arc::new(AtomicBool::new(false));
        cache
            .insert(round, Arc::new(Tracked(Arc::clone(&dropped))))
            .unwrap();
        assert!(cache.get(&round).is_some());
        // Longer than the longest spacing between grace periods (1 ms).
        std::thread::sleep(Duration::from_millis(5));
        // The clone `remove` returns is dropped at once; the cache's copy
        // is the one that must go.
        assert!(cache.remove(&round).is_some());
        assert!(
            dropped.load(Ordering::SeqCst),
            "round {round}: the removed value waits for a write that never comes"
        );
        assert_eq!(cache.slot_stats().retired, 0);
    }
}
