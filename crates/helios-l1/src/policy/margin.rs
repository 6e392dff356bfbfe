//! The admission margin, chosen by what narrow duels turn out to cost.
//!
//! A duel is *narrow* when the candidate's sketch count exceeds the
//! victim's by exactly one. Caffeine's rule (margin 0) admits the
//! candidate; a margin of 1 keeps the victim. Which is right depends on
//! the workload:
//! - in a loop longer than the sketch's aging period, every key has the
//!   same count, the candidate's is just one fresher (it includes the
//!   access that brought the candidate in, while the victim's last ones
//!   may have been halved away), and admitting it churns the resident set
//!   away: `scan` at 100 hits 0% under margin 0, 4.75% under margin 1
//!   (Bélády: 4.80%);
//! - under independent requests with a heavy tail, a candidate seen twice
//!   is usually worth more than a victim seen once, and margin 1 cost up
//!   to 0.65 pp of hit ratio on synthetic Zipf traces.
//!
//! So each shard keeps score. It remembers, in two ghost tables, the keys
//! of its last narrow duels between two probation entries that the margin
//! (not the hash-flooding lottery) decided: the side the current margin
//! chose (kept victims under margin 1, admitted candidates under margin 0)
//! and the side it turned away (rejected candidates, displaced victims).
//! A probation hit on a chosen key counts for the current margin (once per
//! key: the ghost is forgotten); a miss on a key turned away counts
//! against it, since the other margin would have kept that key. At the end
//! of each climber period the margin flips when the evidence against it
//! exceeds the evidence for it by [`FLIP_SIGMAS`] standard deviations (the
//! counts taken as Poisson); the counts restart every period, the tables
//! on a flip. An early window move (`climber.rs`) ends a period too, after
//! as little as half the entries' worth of requests, so during a run of
//! early moves the margin sees little evidence per period and rarely
//! flips; such runs happen where recency rules, where loops (the margin's
//! reason to flip) are not.
//!
//! A victim that wins a streak of narrow duels in a row (under margin 1 it
//! stays at probation's LRU end, and the next candidate meets it again) is
//! scored once, for its first duel of the streak: it is one key in `chosen`
//! and can count for the margin once, so only one of the candidates it
//! turned away may count against. Until session 16 every candidate of the
//! streak was recorded, and in a loop each kept victim's one hit stood
//! against the returns of the ten or so candidates it had turned away:
//! margin 1 lost every vote, flipped back to 0, churned the resident set,
//! and flipped again the next period. `loop` at 1,000 entries fell to
//! 95.05% under 13 of 60 hash seeds (98.6% otherwise), and `loop` at 750
//! ranged 71.5–73.8%; with one record per streak every seed gives 98.6%
//! and 73.8–73.9% (Bélády 74.04%), and the shared traces' mean gap to
//! Bélády went 3.688 → 3.658 pp under seeds 1–5 (BENCHMARKS.md, "Zone
//! hits").
//!
//! The score is a heuristic, not an exact counterfactual, and this is its
//! known lean: the horizon is how long a ghost survives in its table
//! (about as many narrow duels as the table has slots), not how long the
//! other margin would have kept the key. What decides is the measured
//! outcome (BENCHMARKS.md, "Admission margin").
//!
//! Constants, and why (BENCHMARKS.md, "Admission margin"):
//! - start at margin 0, Caffeine's rule, so that a workload whose narrow
//!   duels do not matter behaves as in Caffeine; starting at 1 measured the
//!   same on the shared traces (3.74–3.80 against 3.75–3.81 pp mean gap to
//!   Bélády) but kept more of margin 1's cost in the noisy-neighbour bench;
//! - `FLIP_SIGMAS` 3, as the window climber's evidence rule; 2 measured the
//!   same (3.81 pp);
//! - tables of 1/64 of the tracked entries (at least 64 slots): 1/16 and
//!   1/32 measured the same, and at 1/64 the two tables add 0.125 bytes
//!   per entry, rounded up to powers of two, in shards above 4,096
//!   entries (the 64-slot floor is 512 bytes per shard); scoring only a
//!   sample of keys was worse (the short traces need every duel).

use super::ghost::{Ghosts, MAX_STEP};

/// Evidence needed to flip, in standard deviations of the counts.
const FLIP_SIGMAS: f64 = 3.0;

/// Each table has a slot per this many tracked entries.
const ENTRIES_PER_SLOT: usize = 64;
/// Smallest table.
const MIN_SLOTS: usize = 64;

#[derive(Debug)]
pub(crate) struct AdaptiveMargin {
    /// 0 or 1.
    margin: u8,
    /// Keys of narrow duels' chosen side (kept victims under margin 1,
    /// admitted candidates under margin 0).
    chosen: Ghosts,
    /// Keys of narrow duels' other side (rejected candidates under margin
    /// 1, displaced victims under margin 0).
    turned_away: Ghosts,
    /// This period's first probation hits on chosen keys.
    for_margin: u64,
    /// This period's misses on keys turned away.
    against_margin: u64,
    /// The kept key of the last scored duel: a streak of duels it keeps
    /// winning is scored once.
    last_kept: Option<u32>,
}

impl AdaptiveMargin {
    /// Scorekeeping for a policy tracking about `entries` entries, starting
    /// at `margin` (0 or 1).
    pub(crate) fn new(entries: usize, margin: u8) -> Self {
        let slots = (entries / ENTRIES_PER_SLOT).max(MIN_SLOTS);
        Self {
            margin: margin.min(1),
            chosen: Ghosts::new(slots),
            turned_away: Ghosts::new(slots),
            for_margin: 0,
            against_margin: 0,
            last_kept: None,
        }
    }

    /// The margin a candidate's count must exceed the victim's by.
    pub(crate) fn margin(&self) -> u8 {
        self.margin
    }

    /// Scores a narrow duel (the candidate's count one above the
    /// victim's): `kept` is the key the current margin chose, `lost` the
    /// other. The duels after the first of a streak that one key keeps
    /// winning are not scored (module docs).
    #[inline]
    pub(crate) fn narrow_duel(&mut self, kept: u32, lost: u32) {
        if self.last_kept == Some(kept) {
            return;
        }
        self.last_kept = Some(kept);
        self.chosen.tick();
        self.chosen.record(kept);
        self.turned_away.tick();
        self.turned_away.record(lost);
    }

    /// A hit on the probation entry with `hash`.
    pub(crate) fn probation_hit(&mut self, hash: u32) {
        self.end_streak(hash);
        if self.chosen.take_within(hash, MAX_STEP) {
            self.for_margin += 1;
        }
    }

    /// A miss on the key with `hash`.
    pub(crate) fn miss(&mut self, hash: u32) {
        self.end_streak(hash);
        if self.turned_away.take_within(hash, MAX_STEP) {
            self.against_margin += 1;
        }
    }

    /// A streak ends when its key is used (it leaves probation's LRU end)
    /// or comes back after an eviction: its next win is new evidence.
    fn end_streak(&mut self, hash: u32) {
        if self.last_kept == Some(hash) {
            self.last_kept = None;
        }
    }

    /// At the end of a climber period: flips the margin if the period's
    /// evidence is clearly against it; starts the next period's count.
    pub(crate) fn end_period(&mut self) {
        let (for_margin, against) = (self.for_margin as f64, self.against_margin as f64);
        self.for_margin = 0;
        self.against_margin = 0;
        if against - for_margin > FLIP_SIGMAS * (against + for_margin).sqrt() {
            self.margin = 1 - self.margin;
            // The tables' sides mean the opposite under the new margin.
            self.chosen.clear();
            self.turned_away.clear();
            self.last_kept = None;
        }
    }

    /// Heap bytes of the tables.
    pub(crate) fn bytes(&self) -> usize {
        self.chosen.bytes() + self.turned_away.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hashes with distinct slots and tags in a 64-slot table.
    fn key(k: u32) -> u32 {
        ((0x100 + k) << 20) | k
    }

    /// `n` narrow duels, keys `from..from + n` kept and `1000 + …` lost.
    fn narrow_duels(m: &mut AdaptiveMargin, from: u32, n: u32) {
        for k in from..from + n {
            m.narrow_duel(key(k), key(1000 + k));
        }
    }

    #[test]
    fn returning_rejects_flip_the_margin_and_kept_hits_hold_it() {
        let mut m = AdaptiveMargin::new(0, 1);
        narrow_duels(&mut m, 0, 40);
        // The turned-away keys come back, the kept ones are never used.
        (0..40).for_each(|k| m.miss(key(1000 + k)));
        m.end_period();
        assert_eq!(m.margin(), 0, "the evidence was against margin 1");

        // Now the kept side earns its place: the margin stays.
        narrow_duels(&mut m, 0, 40);
        (0..40).for_each(|k| m.probation_hit(key(k)));
        (0..10).for_each(|k| m.miss(key(1000 + k)));
        m.end_period();
        assert_eq!(m.margin(), 0);
    }

    #[test]
    fn thin_evidence_and_unknown_keys_change_nothing() {
        let mut m = AdaptiveMargin::new(0, 0);
        (0..40).for_each(|k| m.miss(key(1000 + k)));
        m.end_period();
        assert_eq!(m.margin(), 0, "misses on keys no duel turned away");
        narrow_duels(&mut m, 0, 4);
        (0..4).for_each(|k| m.miss(key(1000 + k)));
        m.end_period();
        assert_eq!(m.margin(), 0, "4 against 0 is under 3 sigmas");
    }

    #[test]
    fn a_victims_streak_is_scored_once() {
        // A loop under margin 1: one victim turns away ten candidates in a
        // row, all ten come back, and the victim is used once. One duel's
        // worth of evidence on each side: no flip.
        let mut m = AdaptiveMargin::new(0, 1);
        for round in 0..4 {
            let victim = key(round);
            for k in 0..10 {
                m.narrow_duel(victim, key(1000 + 10 * round + k));
            }
        }
        (0..40).for_each(|k| m.miss(key(1000 + k)));
        (0..4).for_each(|round| m.probation_hit(key(round)));
        m.end_period();
        assert_eq!(m.margin(), 1, "4 for against 4, not against 40");
        // A victim that wins again after another duel starts a new streak.
        m.narrow_duel(key(10), key(2000));
        m.narrow_duel(key(11), key(2001));
        m.narrow_duel(key(10), key(2002));
        (2000..2003).for_each(|k| m.miss(key(k)));
        assert_eq!(m.against_margin, 3);
    }

    #[test]
    fn a_streak_ends_when_its_key_is_used_or_the_margin_flips() {
        let mut m = AdaptiveMargin::new(0, 1);
        // Used between two wins: the second win is scored.
        m.narrow_duel(key(1), key(2001));
        m.probation_hit(key(1));
        m.narrow_duel(key(1), key(2002));
        m.miss(key(2002));
        assert_eq!(m.against_margin, 1);
        // A flip clears the tables and the streak: the same key's next win
        // is scored under the new margin.
        let mut m = AdaptiveMargin::new(0, 1);
        m.narrow_duel(key(3), key(2003));
        m.against_margin = 40;
        m.end_period();
        assert_eq!(m.margin(), 0);
        m.narrow_duel(key(3), key(2004));
        m.miss(key(2004));
        assert_eq!(m.against_margin, 1);
    }

    #[test]
    fn each_key_counts_once() {
        let mut m = AdaptiveMargin::new(0, 1);
        narrow_duels(&mut m, 0, 1);
        for _ in 0..50 {
            m.miss(key(1000));
        }
        m.end_period();
        assert_eq!(m.margin(), 1, "one return is one piece of evidence");
    }
}
