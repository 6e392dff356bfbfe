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
}

impl HillClimber {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            hits: 0,
            misses: 0,
            previous_hit_rate: 0.0,
            // Caffeine starts by shrinking the window.
            step: -STEP_PERCENT * capacity as f64,
            adjustment: 0,
        }
    }

    pub(crate) fn record_hit(&mut self) {
        self.hits += 1;
    }

    pub(crate) fn record_miss(&mut self) {
        self.misses += 1;
    }

    /// At the end of a sample, sets `adjustment` to the next step.
    pub(crate) fn determine(&mut self, sample_size: u64, capacity: u64) {
        let requests = self.hits + self.misses;
        if requests < sample_size {
            return;
        }
        let hit_rate = self.hits as f64 / requests as f64;
        let change = hit_rate - self.previous_hit_rate;
        let amount = if change >= 0.0 { self.step } else { -self.step };
        self.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * capacity as f64 * amount.signum()
        } else {
            STEP_DECAY * amount
        };
        self.previous_hit_rate = hit_rate;
        self.adjustment = amount as i64;
        self.hits = 0;
        self.misses = 0;
    }
}
