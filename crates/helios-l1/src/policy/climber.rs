//! Hill climbing on the admission window's size (Caffeine's adaptive
//! W-TinyLFU; Einziger et al., "Adaptive Software Cache Management",
//! Middleware 2018).
//!
//! Recency-biased workloads want a large window (close to LRU), frequency-
//! biased ones a small window (close to LFU). Every `sample_size` requests
//! the climber compares the sample's hit rate with the previous one: if it
//! improved it keeps stepping in the same direction, otherwise it turns
//! around. Steps decay by 2% per sample and restart at 6.25% of the capacity
//! when the hit rate jumps by 5 points (a workload change). These constants
//! are Caffeine's, tuned there on a large trace collection; we have not
//! retuned them on our shared traces so as not to overfit to them.
//!
//! Two departures from Caffeine, both about the start of a run:
//! - Requests before the cache is first full are not sampled, and the first
//!   full sample only sets the baseline. A cold cache's hit rate always rises,
//!   so Caffeine's climber reads warm-up as "the last step helped" and keeps
//!   going in whatever direction it started, which on short traces is the
//!   whole run.
//! - The first step grows the window. It starts at 1% of the capacity, so a
//!   first step that shrinks it (Caffeine's) can barely move and wastes a
//!   sample; growing it is the move that can be measured and undone.
//!
//! Over the shared traces these cut the mean gap to Bélády (BENCHMARKS.md).

const RESTART_THRESHOLD: f64 = 0.05;
const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;

#[derive(Debug)]
pub(crate) struct HillClimber {
    hits: u64,
    misses: u64,
    previous_hit_rate: f64,
    step: f64,
    /// Weight still to move into (positive) or out of (negative) the window.
    pub(crate) adjustment: i64,
    /// Whether the cache has been full: requests before that are warm-up
    /// and not sampled.
    warm: bool,
    /// Whether `previous_hit_rate` holds a measured sample.
    has_baseline: bool,
}

impl HillClimber {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            hits: 0,
            misses: 0,
            previous_hit_rate: 0.0,
            step: STEP_PERCENT * capacity as f64,
            adjustment: 0,
            warm: false,
            has_baseline: false,
        }
    }

    /// The cache is full (it just evicted): sampling starts.
    pub(crate) fn mark_warm(&mut self) {
        self.warm = true;
    }

    pub(crate) fn record_hit(&mut self) {
        self.hits += u64::from(self.warm);
    }

    pub(crate) fn record_miss(&mut self) {
        self.misses += u64::from(self.warm);
    }

    /// At the end of a sample, sets `adjustment` to the next step.
    pub(crate) fn determine(&mut self, sample_size: u64, capacity: u64) {
        let requests = self.hits + self.misses;
        if requests < sample_size {
            return;
        }
        let hit_rate = self.hits as f64 / requests as f64;
        self.hits = 0;
        self.misses = 0;
        if !self.has_baseline {
            self.has_baseline = true;
            self.previous_hit_rate = hit_rate;
            return;
        }
        let change = hit_rate - self.previous_hit_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * capacity as f64 * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_hit_rate = hit_rate;
        self.adjustment = amount as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(c: &mut HillClimber, hits: u64, misses: u64) {
        (0..hits).for_each(|_| c.record_hit());
        (0..misses).for_each(|_| c.record_miss());
        c.determine(hits + misses, 1000);
    }

    #[test]
    fn warm_up_is_not_sampled_and_the_first_sample_is_a_baseline() {
        let mut c = HillClimber::new(1000);
        sample(&mut c, 0, 100); // cold: ignored
        assert_eq!((c.hits, c.misses, c.adjustment), (0, 0, 0));
        c.mark_warm();
        sample(&mut c, 50, 50); // baseline only
        assert_eq!(c.adjustment, 0);
        sample(&mut c, 50, 50); // unchanged: first step grows the window
        assert_eq!(c.adjustment, 62);
    }

    #[test]
    fn turns_around_when_the_hit_rate_falls() {
        let mut c = HillClimber::new(1000);
        c.mark_warm();
        sample(&mut c, 50, 50);
        sample(&mut c, 51, 49);
        assert!(c.adjustment > 0);
        sample(&mut c, 49, 51);
        assert!(c.adjustment < 0, "a worse sample reverses the step");
    }
}
