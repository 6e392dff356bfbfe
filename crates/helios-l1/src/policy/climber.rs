//! Sizing the admission window from ghosts: would a step of the window, or
//! of the main space, have turned recent misses into hits?
//!
//! Recency-biased workloads want a large window (close to LRU), frequency-
//! biased ones and loops a small one (close to LFU). Caffeine sizes the
//! window by hill climbing: it tries a step, samples the hit rate over
//! 10 × capacity requests, and keeps or reverses the step. On short traces
//! that gets only a few steps, each judged on a noisy sample, and the shared
//! traces showed it (BENCHMARKS.md, "Window sizing").
//!
//! This climber instead estimates, for a step of `step` weight units in
//! either direction, what each move would gain and lose, from what the
//! policy saw during the last period:
//! - **Growing the window** keeps each candidate that lost its admission
//!   duel `step` longer in the window. *Gain*: misses on keys that lost a
//!   duel at most `step` window departures ago, counting every entry that
//!   left the window, admitted or not (the window ghosts, `ghost.rs`), and
//!   only for entries that fit in a window one step larger (a heavier one
//!   would pass straight through it again; see `record_miss`).
//!   *Loss*: the main space shrinks by `step`, losing the hits its
//!   `step` oldest entries would have taken: the hits on probation's
//!   *zone* (where main evicts from), the entries with less than `step`
//!   of weight before them in its LRU order, which the policy keeps track
//!   of as entries enter and leave (`Deque` in `mod.rs`).
//! - **Shrinking the window** keeps each main victim `step` longer. *Gain*:
//!   misses on keys evicted from main at most `step` main evictions ago
//!   (the main ghosts). *Loss*: the hits on the window's zone, its `step`
//!   oldest entries.
//!
//!   Until session 16 both losses were estimated as the queue's hits times
//!   `step / queue weight`, as if hits spread evenly over the queue. They
//!   do not: under recency most land near the queue's newest end (on
//!   `sprite` at 700 entries probation's zone took 826 hits where the even
//!   spread assumed 1,798), and in a loop near its oldest end (`loop` at
//!   750: 94,394 against 40,365). Counting the zone instead moved the
//!   window where the evidence really was: drifting popularity (`shift`,
//!   `phases`) +0.1 to +2.6 pp at 1,000–20,000 entries, `sprite` +0.2 to
//!   +0.5, the shared traces' mean gap to Bélády 3.72 → 3.70 pp
//!   (BENCHMARKS.md, "Zone hits").
//!
//!   A third source of gain for shrinking, for a main space that hardly
//!   evicts: when main evicted fewer than `step` entries in a full period,
//!   shrinking moves the window's oldest entries, which would otherwise be
//!   rejected like the others, into the room left over, where they stay
//!   while main stays that still. The rejected candidates' returns (the
//!   window ghosts' hits, which are also the gain of growing) count in
//!   proportion to that room over the candidates rejected, and only when
//!   growing does not pay: a window that can catch the returns cheaply is
//!   the recency answer. Only full periods use it (an early look would
//!   judge main "still" from a fraction of a period's evictions).
//!   Without it, a loop of keys of equal frequency froze the window: each
//!   candidate ties its victim and is rejected, main never evicts, so no
//!   main ghost ever returns, and on `loop` at 1,000 entries helios kept a
//!   10-entry window that 21 keys rotate through where a 1-entry window
//!   leaves 12: 97.73% against 98.6%, under 3 of 60 hash seeds (the others
//!   reached the small window on count-min noise). BENCHMARKS.md, "A
//!   seed-dependent blind spot of the climber".
//!
//! At the end of each period the climber grows the window if that pays
//! clear of noise (and pays at least as well as the main ghosts' shrink),
//! else shrinks it if that pays, else stays. The gains need a key to come
//! back soon after it left. A loop much longer than the cache does not:
//! there the window stays small and TinyLFU keeps a stable resident set,
//! while a hit-rate climber wanders whenever noise says a step helped.
//!
//! Constants, and why:
//! - `STEP_FRACTION` 6.25% of the capacity is Caffeine's initial step. A
//!   sweep over the shared traces (3% and 12.5%) moved the mean gap to
//!   Bélády by +0.01 and +0.14 pp (BENCHMARKS.md), so it stays.
//! - `PERIOD_FACTOR` 3: a period of 3 × the entries the sketch tracks. One
//!   period must span a loop's cycle, or probation's hits arrive in bursts
//!   and the loss estimate swings from 0 to several times its mean (a
//!   period of `step` misses made `loop` at 1,000 lose 26 pp). 1×, 2×, 3× and
//!   5× gave 4.52, 4.22, 4.12 and 4.16 pp mean gap (2 runs each).
//! - `EVIDENCE_SIGMAS` 3: a move's net gain must exceed 3 standard
//!   deviations of its counts, taken as Poisson (`3 × sqrt(gain + loss)`),
//!   so that a burst of returning keys in one period does not move the
//!   window (it grew `orm-night` at 4,300's window and cost 2.3 pp). Over
//!   the shared traces 0, 1, 2, 3, 4 and 6 sigmas gave 4.21, 4.19, 4.18,
//!   4.15, 4.14 and 4.21 pp mean gap (2–4 runs each): a flat optimum, of
//!   which 3 is the middle.
//!
//! # Early looks
//! A period is long so that bursts and loop cycles average out, which also
//! makes the window slow to follow evidence that is overwhelming from the
//! start: one step per period. On a synthetic recency trace (re-references
//! at geometric stack depths, 400,000 requests) the window was still
//! growing a step per period when the trace ended, and helios finished
//! 8 pp under LRU at 10,000 entries. So from `EARLY_LOOK_FROM` of the
//! period's entries on, every `EARLY_LOOK_EVERY`, the climber also looks
//! at the evidence so far, and moves at once when the move is clear at
//! `EARLY_LOOK_SIGMAS` *and* goes the way the last full period moved (if
//! it stayed, see "Untrended looks" below: an early move then sets the
//! trend); once the window has actually moved, a new period starts (for
//! the admission margin's scorekeeping too). Both conditions are for bursts: without the
//! trend condition (12 sigmas, six runs) bursts on `orm-night` moved its
//! window mid-period and cost 1.7 pp at 4,300 entries, and with it at 6
//! sigmas 2.2 pp (one run). As committed then (12 sigmas): the recency
//! trace +4.6 pp at 10,000; the shared traces unchanged (six runs each:
//! 3.77 pp mean gap both, 13–16 against 13–17 sizes trailing);
//! BENCHMARKS.md, "Early looks".
//!
//! Once the losses were counted on the queues' oldest steps (session 16),
//! the bar was swept again under fixed hash seeds 1–5: 12, 8, 6, 4 and 3
//! sigmas gave 3.701, 3.695, 3.693, 3.688 and 3.690 pp mean gap over the
//! shared traces and 10.76, 10.37, 10.20, 10.05 and 10.00 over the
//! synthetic ones (drifting popularity up to +3.1 pp at 4), no cell losing
//! more than 0.15 pp at the listed sizes (0.30 at the off-grid ones); `orm-night` at 4,300, whose bursts set the old bar,
//! gained 0.4 at 4. 4 keeps a margin above the period's bar for the many
//! looks; BENCHMARKS.md, "Zone hits".
//!
//! # Untrended looks
//! The trend condition left the window frozen whenever the last full
//! period stayed, and always in the first period: a cache's first period
//! ends while it is still filling (no evictions, so no ghosts and no
//! evidence), stays, and from then on no early look could move until a
//! full period cleared the 3-sigma bar on its own. On the synthetic
//! recency trace at 20,000 entries (four shards, periods of 24,576
//! requests per shard) the window then grew only after half the trace and
//! ended at 38%, and helios fell 4 pp under LRU, below its own figure at
//! 10,000 entries. So when there is no trend, an early look may move either
//! way, at `UNTRENDED_LOOK_SIGMAS` (6: no earlier period corroborates it),
//! and the move sets the trend that later looks continue. A look against
//! a running trend still waits for the period's end (allowing that too at
//! 6 sigmas cost `orm-night` at 4,300 entries 0.35 pp again). Under fixed
//! hash seeds: the synthetic traces 10.04 → 9.43 pp mean gap to Bélády
//! (recency at 10,000 and 20,000 entries +2.5 and +3.6, phases at 20,000
//! +3.4), the shared traces 3.658 → 3.640, the off-grid sizes 3.620 →
//! 3.597 (33 → 30 of 128 trailing), the weighted ones 4.573 → 4.489; no
//! cell lost more than 0.4 pp. Bars of 4 and 8 sigmas gave about the same
//! means (BENCHMARKS.md, "Untrended looks").
//!
//! # Counting from the fill
//! Until session 18 the first period began with the cache's first request,
//! so it was judged mostly on the fill. While main has room a main one
//! step smaller would evict nothing, yet hits on probation's zone (its
//! oldest entries, then the first keys to arrive and often the most
//! popular) counted as that smaller main's losses, and no candidate had
//! lost a duel to count as growth's gain. On the drifting-popularity trace
//! at 20,000 entries (four shards) the first period saw 341–404 zone hits
//! against 120–175 window-ghost returns and stayed, and the second, with
//! clean evidence, grew: each shard's first move came halfway through the
//! trace. So the policy starts the climber's first period once its weight
//! first comes within a step of the capacity (the step is the climber's
//! unit: a main one step smaller would be evicting by then), or once an
//! insert takes it over the capacity (entries heavier than a step may never
//! leave it within a step), and a `clear` starts the climber afresh at the
//! next fill. Under fixed hash seeds: the shared traces 3.640 → 3.628 pp
//! mean gap to Bélády (14 → 13 of 64 sizes trailing; `multi2` at 280
//! +0.94), the off-grid sizes 3.601 → 3.532 (31 → 28 of 128; `multi3` at
//! 525 +2.7), the synthetic traces 9.429 → 9.353 (`phases` at 20,000
//! +1.35), the weighted ones 4.489 → 4.518 (`w1` at 10 MB −0.26). Waiting
//! until the weight reaches the capacity itself gave 3.637 on the shared
//! traces; also forbidding untrended looks until the first full period
//! after the fill cost the recency trace 2.7–6.4 pp (BENCHMARKS.md,
//! "Counting from the fill").

use super::ghost::{Ghosts, MAX_STEP};

const STEP_FRACTION: f64 = 0.0625;
const PERIOD_FACTOR: u64 = 3;
const EVIDENCE_SIGMAS: f64 = 3.0;
/// First early look: after half the period's entries in requests (a sixth
/// of the period). Later looks: every quarter of its entries.
const EARLY_LOOK_FROM: u64 = 2;
const EARLY_LOOK_EVERY: u64 = 4;
/// The bar of an early look: above the period's 3, so that the ten or so
/// looks of a period rarely move on Poisson noise (one-sided, 4 sigmas is
/// about 3 in 100,000 per look). It was 12 until session 16, when counting
/// the losses on each queue's oldest step made the evidence sharper; see
/// the module docs.
const EARLY_LOOK_SIGMAS: f64 = 4.0;
/// The bar of an early look when no trend runs (the last full period
/// stayed, or none has ended since the climber was built or resized):
/// with no trend to corroborate it, higher than a trend's 4. See the
/// module docs ("Untrended looks").
const UNTRENDED_LOOK_SIGMAS: f64 = 6.0;

/// What the climber needs to know of the policy at the end of a period.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Resident entries.
    pub(crate) len: usize,
    /// Their total weight.
    pub(crate) weight: u64,
    /// The step, in weight units.
    pub(crate) step: u64,
}

impl Shape {
    /// The step in entries (its weight over the mean entry weight), capped
    /// at what the ghosts can answer for, and the share of the step that
    /// cap leaves (1.0 unless capped).
    fn step_entries(&self) -> (u64, f64) {
        let entries = if self.weight == 0 || self.len == 0 {
            u128::from(self.step)
        } else {
            u128::from(self.step) * self.len as u128 / u128::from(self.weight)
        }
        .max(1);
        let capped = entries.min(u128::from(MAX_STEP));
        (capped as u64, capped as f64 / entries as f64)
    }
}

/// Where a hit landed, for the loss estimates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HitIn {
    Window,
    Probation,
    Protected,
}

#[derive(Debug)]
pub(crate) struct WindowClimber {
    /// Candidates that lost their admission duel.
    window_ghosts: Ghosts,
    /// Entries evicted from the main space.
    main_ghosts: Ghosts,
    /// Misses that a window `step` larger would have hit.
    window_gain: u64,
    /// Misses that a main space `step` larger would have hit.
    main_gain: u64,
    /// Hits on the window's and probation's zones (their `step` oldest
    /// entries): what a step less of each would have lost.
    window_zone_hits: u64,
    probation_zone_hits: u64,
    /// Candidates that lost their duel, and entries evicted from main, in
    /// the current period (see `decide`: main's free room).
    rejections: u64,
    main_evictions: u64,
    /// Requests in the current period.
    requests: u64,
    /// Requests into the current period at which the next early look is
    /// due; 0 until the first look (due at `EARLY_LOOK_FROM`).
    next_look: u64,
    /// The direction of the last full period's decision: 1 (grew), -1
    /// (shrank) or 0 (stayed), or, when that was 0, of an early move made
    /// since (`restart_period`). Early looks only continue it once set.
    trend: i64,
    /// The step in entries (departures, which the ghosts' ages count):
    /// the step in weight units over the mean entry weight at the last
    /// look at the evidence (a period's end or an early look).
    step_entries: u64,
}

impl WindowClimber {
    /// A climber for a policy that tracks about `entries` entries. Until
    /// the first period ends (and the mean entry weight is known), a step
    /// is 6.25% of those entries.
    pub(crate) fn new(entries: usize) -> Self {
        let ghosts = Self::ghost_entries(entries);
        Self {
            step_entries: ((entries as f64 * STEP_FRACTION) as u64).clamp(1, MAX_STEP),
            window_ghosts: Ghosts::new(ghosts),
            main_ghosts: Ghosts::new(ghosts),
            window_gain: 0,
            main_gain: 0,
            window_zone_hits: 0,
            probation_zone_hits: 0,
            rejections: 0,
            main_evictions: 0,
            requests: 0,
            next_look: 0,
            trend: 0,
        }
    }

    /// Twice the departures a step spans, so collisions rarely overwrite a
    /// ghost young enough to count (`Ghosts` caps it).
    fn ghost_entries(entries: usize) -> usize {
        (entries as f64 * STEP_FRACTION * 2.0) as usize
    }

    /// The policy now tracks about `entries` entries (its sketch grew).
    pub(crate) fn resize(&mut self, entries: usize) {
        let step_entries = self.step_entries;
        *self = Self::new(entries);
        self.step_entries = step_entries;
    }

    /// The step in weight units for a policy of `capacity`.
    pub(crate) fn step(capacity: u64) -> u64 {
        ((STEP_FRACTION * capacity as f64) as u64).max(1)
    }

    /// A hit on an entry of `queue`; `in_zone` says whether the entry was
    /// within `step` of its queue's oldest end.
    pub(crate) fn record_hit(&mut self, queue: HitIn, in_zone: bool) {
        self.requests += 1;
        match queue {
            HitIn::Window => self.window_zone_hits += u64::from(in_zone),
            HitIn::Probation => self.probation_zone_hits += u64::from(in_zone),
            HitIn::Protected => {}
        }
    }

    /// A miss on the key with `hash`; `fits_grown_window` says whether its
    /// entry fits in a window one step larger (always, with unit weights).
    /// One that does not would pass straight through that window again, so
    /// its return is no gain of growing: on a weighted trace whose most
    /// popular objects are 200 KB, at 1 MB (a 10 KB window, 62.5 KB steps),
    /// their rejected returns counted thousands a period and, under 4 of 16
    /// hash seeds, grew the window to 80% of the cache: 14–17% hit ratio
    /// against 20% (BENCHMARKS.md, "Weighted traces").
    pub(crate) fn record_miss(&mut self, hash: u32, fits_grown_window: bool) {
        self.requests += 1;
        let step = self.step_entries;
        let window_return = u64::from(self.window_ghosts.take_within(hash, step));
        if fits_grown_window {
            self.window_gain += window_return;
        }
        self.main_gain += u64::from(self.main_ghosts.take_within(hash, step));
    }

    /// Heap bytes of the ghost tables.
    pub(crate) fn bytes(&self) -> usize {
        self.window_ghosts.bytes() + self.main_ghosts.bytes()
    }

    /// An entry left the window: a candidate moved to probation, or an
    /// entry evicted straight from the window. A window `step` larger would
    /// keep each entry `step` such departures longer, admitted or not.
    pub(crate) fn window_departed(&mut self) {
        self.window_ghosts.tick();
    }

    /// A candidate lost its admission duel and left (its departure from
    /// the window was already counted).
    pub(crate) fn candidate_left(&mut self, hash: u32) {
        self.rejections += 1;
        self.window_ghosts.record(hash);
    }

    /// An entry was evicted from the main space.
    pub(crate) fn victim_left(&mut self, hash: u32) {
        self.main_evictions += 1;
        self.main_ghosts.tick();
        self.main_ghosts.record(hash);
    }

    /// Whether a period of `3 × entries` requests is over.
    pub(crate) fn period_ended(&self, entries: usize) -> bool {
        self.requests >= PERIOD_FACTOR * entries as u64
    }

    /// At the end of a period (see [`period_ended`](Self::period_ended)),
    /// the weight to move into (positive) or out of (negative) the window;
    /// otherwise 0.
    pub(crate) fn adjustment(&mut self, entries: usize, policy: Shape) -> i64 {
        if !self.period_ended(entries) {
            return 0;
        }
        let amount = self.decide(policy, EVIDENCE_SIGMAS, true);
        self.trend = amount.signum();
        self.reset();
        amount
    }

    /// Whether an early look is due in a period sized for `entries`.
    pub(crate) fn early_look_due(&self, entries: usize) -> bool {
        let (from, _) = Self::look_points(entries);
        let due = if self.next_look == 0 {
            from
        } else {
            self.next_look
        };
        self.requests >= due
    }

    /// Requests before the first early look, and between looks.
    fn look_points(entries: usize) -> (u64, u64) {
        let entries = entries as u64;
        (
            (entries / EARLY_LOOK_FROM).max(1),
            (entries / EARLY_LOOK_EVERY).max(1),
        )
    }

    /// An early look (see the module docs): the weight to move if the
    /// evidence so far clears the early bar in the running trend's
    /// direction, or, with no trend, the untrended bar in either direction;
    /// else 0. The period goes on either way; the policy calls
    /// [`restart_period`](Self::restart_period) with the direction once
    /// the window has actually moved (it may be at its limit), which sets
    /// the trend if none ran.
    pub(crate) fn early_adjustment(&mut self, entries: usize, policy: Shape) -> i64 {
        // The next look is a quarter of the entries after this one, however
        // late this one came (and whatever the entries were before: a
        // weighted cache re-estimates them as it goes).
        let (_, every) = Self::look_points(entries);
        self.next_look = self.requests + every;
        if self.trend == 0 {
            // No trend to continue: a move either way, on evidence clear of
            // the higher bar (the move, once made, sets the trend).
            return self.decide(policy, UNTRENDED_LOOK_SIGMAS, false);
        }
        let amount = self.decide(policy, EARLY_LOOK_SIGMAS, false);
        if amount.signum() != self.trend {
            return 0;
        }
        amount
    }

    /// Starts a new period, after an early move in `direction` (1 grew, -1
    /// shrank), or when the cache first fills (0: the evidence so far is
    /// dropped, nothing else changes). A move made with no trend running
    /// sets it, so that later looks continue it until the period's end
    /// decides anew; a decision the window's limits refused sets nothing.
    pub(crate) fn restart_period(&mut self, direction: i64) {
        if self.trend == 0 {
            self.trend = direction.signum();
        }
        self.reset();
    }

    /// Clears the period's evidence.
    fn reset(&mut self) {
        self.window_gain = 0;
        self.main_gain = 0;
        self.window_zone_hits = 0;
        self.probation_zone_hits = 0;
        self.rejections = 0;
        self.main_evictions = 0;
        self.requests = 0;
        self.next_look = 0;
    }

    /// What a main space `step_entries` larger would have hit beyond its
    /// returning victims, when main evicted fewer than that many entries
    /// this period: the room left over would have taken rejected
    /// candidates without a duel. Their returns (the window ghosts' hits)
    /// count in proportion to that room over the candidates rejected, a
    /// lower bound on the share of distinct rejected keys it would hold.
    /// 0 whenever main evicts a step's worth per period (the common case).
    fn frozen_main_gain(&self, step_entries: u64) -> u64 {
        let room = step_entries.saturating_sub(self.main_evictions);
        if room == 0 || self.rejections == 0 {
            return 0;
        }
        let share = (room as f64 / self.rejections as f64).min(1.0);
        (self.window_gain as f64 * share) as u64
    }

    /// The move the evidence so far supports at a bar of `sigmas`; a
    /// `full_period` decision may also count a frozen main's room.
    fn decide(&mut self, policy: Shape, sigmas: f64, full_period: bool) -> i64 {
        // A step the ghosts cannot answer for (over `MAX_STEP` entries) is
        // asked about in part: scale its losses alike.
        let (step_entries, answered) = policy.step_entries();
        self.step_entries = step_entries;
        let net = |gain: u64, loss: f64| {
            let gain = gain as f64;
            gain - loss - sigmas * (gain + loss).sqrt()
        };
        let grow = net(self.window_gain, answered * self.probation_zone_hits as f64);
        let window_loss = answered * self.window_zone_hits as f64;
        let shrink = net(self.main_gain, window_loss);
        let step = i64::try_from(policy.step).unwrap_or(i64::MAX);
        if grow > 0.0 && grow >= shrink {
            step
        } else if shrink > 0.0
            // A frozen main's room, only when growing does not pay: the
            // same returns that a larger window would catch count for it.
            || (full_period
                && net(self.main_gain + self.frozen_main_gain(step_entries), window_loss) > 0.0)
        {
            -step
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRIES: usize = 1000;
    const STEP: u64 = 62;

    fn shape() -> Shape {
        Shape {
            len: ENTRIES,
            weight: ENTRIES as u64,
            step: STEP,
        }
    }

    /// Which queue the returning keys left.
    #[derive(Clone, Copy)]
    enum Left {
        Window,
        Main,
    }

    /// Test key `k`'s hash: ghost slot `k` (below 64) of the 128-slot
    /// tables, with its own tag.
    fn key(k: u32) -> u32 {
        ((0x100 + k) << 20) | k
    }

    /// Runs one period: `returning` keys leave `left` and come back after
    /// `age` more departures from it, and `hits` land in `queue`'s zone
    /// (its step of oldest entries: hits a step less of it would lose).
    fn period(
        c: &mut WindowClimber,
        left: Left,
        returning: u32,
        age: u32,
        hits: u64,
        queue: HitIn,
    ) -> i64 {
        assert_eq!(c.window_ghosts.bytes(), 128 * 4, "tests assume 128 slots");
        for k in 0..returning {
            match left {
                Left::Window => {
                    c.window_departed();
                    c.candidate_left(key(k));
                    (0..age).for_each(|_| c.window_departed());
                }
                Left::Main => {
                    c.victim_left(key(k));
                    main_churns(c, age);
                }
            }
            c.record_miss(key(k), true);
        }
        (0..hits).for_each(|_| c.record_hit(queue, true));
        protected_hits_until(c, 3 * ENTRIES as u64);
        c.adjustment(ENTRIES, shape())
    }

    /// Hits in protected (which no step moves) until `requests` in all.
    fn protected_hits_until(c: &mut WindowClimber, requests: u64) {
        (c.requests..requests).for_each(|_| c.record_hit(HitIn::Protected, false));
    }

    #[test]
    fn quick_returns_of_rejected_candidates_grow_the_window() {
        let mut c = WindowClimber::new(ENTRIES);
        let adj = period(&mut c, Left::Window, 50, 10, 6, HitIn::Probation);
        assert_eq!(adj, STEP as i64);
    }

    #[test]
    fn quick_returns_of_main_victims_shrink_the_window() {
        let mut c = WindowClimber::new(ENTRIES);
        let adj = period(&mut c, Left::Main, 50, 10, 12, HitIn::Window);
        assert_eq!(adj, -(STEP as i64));
    }

    #[test]
    fn only_hits_on_a_queues_oldest_step_count_as_its_loss() {
        // 50 quick returns against 40 hits: on probation's oldest step they
        // outweigh the gain (50 - 40 < 3 sigmas); anywhere else in
        // probation a step less of main would not have lost them. (Main
        // evicts a step's worth, so the returns are no frozen main's room.)
        let mut c = WindowClimber::new(ENTRIES);
        main_churns(&mut c, STEP as u32);
        assert_eq!(
            period(&mut c, Left::Window, 50, 10, 40, HitIn::Probation),
            0
        );
        let mut c = WindowClimber::new(ENTRIES);
        (0..40).for_each(|_| c.record_hit(HitIn::Probation, false));
        assert_eq!(
            period(&mut c, Left::Window, 50, 10, 0, HitIn::Probation),
            STEP as i64
        );
        // Likewise for the window's oldest step when shrinking.
        let mut c = WindowClimber::new(ENTRIES);
        assert_eq!(period(&mut c, Left::Main, 50, 10, 40, HitIn::Window), 0);
        let mut c = WindowClimber::new(ENTRIES);
        (0..40).for_each(|_| c.record_hit(HitIn::Window, false));
        assert_eq!(
            period(&mut c, Left::Main, 50, 10, 0, HitIn::Window),
            -(STEP as i64)
        );
    }

    #[test]
    fn returns_beyond_the_step_count_for_nothing() {
        for left in [Left::Window, Left::Main] {
            let mut c = WindowClimber::new(ENTRIES);
            assert_eq!(period(&mut c, left, 20, 100, 0, HitIn::Probation), 0);
            // The same keys, back within the step, do count.
            let mut c = WindowClimber::new(ENTRIES);
            assert_ne!(period(&mut c, left, 20, 30, 0, HitIn::Protected), 0);
        }
    }

    #[test]
    fn returns_too_heavy_for_a_grown_window_are_no_gain_of_growing() {
        let mut c = WindowClimber::new(ENTRIES);
        c.window_departed();
        c.candidate_left(key(1));
        c.record_miss(key(1), false);
        assert_eq!(c.window_gain, 0);
        c.window_departed();
        c.candidate_left(key(2));
        c.record_miss(key(2), true);
        assert_eq!(c.window_gain, 1);
    }

    #[test]
    fn admitted_candidates_age_the_window_ghosts_too() {
        let mut c = WindowClimber::new(ENTRIES);
        c.window_departed();
        c.candidate_left(key(1));
        // 100 candidates leave the window and win their duels: no ghosts,
        // but the rejected one is now 100 departures old.
        (0..100).for_each(|_| c.window_departed());
        c.record_miss(key(1), true);
        assert_eq!(c.window_gain, 0);
    }

    /// `n` main evictions of keys that never return: ghost slots 64..128,
    /// so they never overwrite the test keys' ghosts.
    fn main_churns(c: &mut WindowClimber, n: u32) {
        (0..n).for_each(|j| c.victim_left((0xe00 << 20) | (64 + j % 64)));
    }

    #[test]
    fn a_gain_smaller_than_the_hits_it_would_cost_does_not_move() {
        let mut c = WindowClimber::new(ENTRIES);
        // Main evicts a step's worth, as it does under most workloads.
        // (Without it main is frozen, and these returns, which growing does
        // not pay for, shrink the window: the next test.)
        main_churns(&mut c, STEP as u32);
        // 10 gained misses against 62 hits on probation's oldest step.
        let adj = period(&mut c, Left::Window, 10, 5, 62, HitIn::Probation);
        assert_eq!(adj, 0);
    }

    #[test]
    fn a_frozen_main_shrinks_the_window_when_growing_does_not_pay() {
        // A loop of keys of equal frequency: every candidate ties its
        // victim and is rejected, main never evicts, and the same keys
        // come back each cycle. Growing would cost more probation hits
        // than it catches; a larger main would keep them for free.
        let mut c = WindowClimber::new(ENTRIES);
        let adj = period(&mut c, Left::Window, 40, 20, 124, HitIn::Probation);
        assert_eq!(adj, -(STEP as i64));
        // The same evidence while main evicts a step's worth: no room is
        // left over, and nothing moves.
        let mut c = WindowClimber::new(ENTRIES);
        main_churns(&mut c, STEP as u32);
        let adj = period(&mut c, Left::Window, 40, 20, 124, HitIn::Probation);
        assert_eq!(adj, 0);
        // Returns a larger window catches cheaply still grow it.
        let mut c = WindowClimber::new(ENTRIES);
        let adj = period(&mut c, Left::Window, 40, 20, 6, HitIn::Probation);
        assert_eq!(adj, STEP as i64);
        // Hits on the window's oldest step, which a smaller window would
        // lose, outweigh the room's gain.
        let mut c = WindowClimber::new(ENTRIES);
        (0..248).for_each(|_| c.record_hit(HitIn::Window, true));
        let adj = period(&mut c, Left::Window, 40, 20, 124, HitIn::Probation);
        assert_eq!(adj, 0);
    }

    #[test]
    fn a_frozen_main_counts_returns_in_proportion_to_its_room() {
        let mut c = WindowClimber::new(ENTRIES);
        // 62 rejections, 57 main evictions: room for 5 of them, so 5 of
        // the 62 returns count, which is within noise (5 < 3 × √5).
        main_churns(&mut c, STEP as u32 - 5);
        let adj = period(&mut c, Left::Window, 62, 20, 124, HitIn::Probation);
        assert_eq!(c.rejections, 0, "the period reset its counts");
        assert_eq!(adj, 0);
        // No main evictions: all 62 count.
        let mut c = WindowClimber::new(ENTRIES);
        let adj = period(&mut c, Left::Window, 62, 20, 124, HitIn::Probation);
        assert_eq!(adj, -(STEP as i64));
    }

    #[test]
    fn early_looks_do_not_count_a_frozen_main() {
        // Evidence that clears even the early bar: 400 rejected candidates
        // back, main still, a step of 400 entries, growing far too costly.
        let mut c = WindowClimber::new(ENTRIES);
        let big = Shape {
            len: 10_000,
            weight: 10_000,
            step: 400,
        };
        c.window_gain = 400;
        c.rejections = 400;
        c.probation_zone_hits = 10_000;
        assert_eq!(c.decide(big, EARLY_LOOK_SIGMAS, false), 0);
        assert_eq!(c.decide(big, EARLY_LOOK_SIGMAS, true), -400);
    }

    #[test]
    fn a_gain_within_noise_does_not_move() {
        // 6 returning candidates against a loss of 1 hit: a net gain of 5,
        // below 3 sigmas (3 × sqrt(7) ≈ 7.9).
        let mut c = WindowClimber::new(ENTRIES);
        assert_eq!(period(&mut c, Left::Window, 6, 5, 1, HitIn::Probation), 0);
        // 20 of them are clear of it.
        let mut c = WindowClimber::new(ENTRIES);
        assert_eq!(
            period(&mut c, Left::Window, 20, 5, 1, HitIn::Probation),
            STEP as i64
        );
    }

    #[test]
    fn weighted_entries_count_the_step_in_mean_entries() {
        let heavy = Shape {
            len: 10,
            weight: 1000,
            step: 300,
        };
        assert_eq!(heavy.step_entries(), (3, 1.0));
        let empty = Shape {
            len: 0,
            weight: 0,
            ..heavy
        };
        assert_eq!(empty.step_entries(), (300, 1.0));
        // A step larger than the ghosts can answer for is capped, and its
        // losses are scaled by the share answered.
        let huge = Shape {
            step: 4 * MAX_STEP,
            ..shape()
        };
        assert_eq!(huge.step_entries(), (MAX_STEP, 0.25));
    }

    #[test]
    fn nothing_moves_before_the_period_ends() {
        let mut c = WindowClimber::new(ENTRIES);
        for k in 0..50 {
            c.window_departed();
            c.candidate_left(key(k));
            c.record_miss(key(k), true);
        }
        assert_eq!(c.adjustment(ENTRIES, shape()), 0);
        assert_eq!(c.window_gain, 50, "the period goes on");
    }

    /// 256 misses on rejected candidates back within 10 departures (64
    /// keys, four times each): a window gain of 256, clear of the early
    /// bar (4 × sqrt(256) = 64).
    fn strong_window_evidence(c: &mut WindowClimber) {
        for _ in 0..4 {
            for k in 0..64 {
                c.window_departed();
                c.candidate_left(key(k));
                (0..10).for_each(|_| c.window_departed());
                c.record_miss(key(k), true);
            }
        }
    }

    /// A climber whose last full period grew the window.
    fn grown_once() -> WindowClimber {
        let mut c = WindowClimber::new(ENTRIES);
        assert_eq!(
            period(&mut c, Left::Window, 50, 10, 6, HitIn::Probation),
            STEP as i64
        );
        c
    }

    /// Hits until the first early look is due (half the entries).
    fn until_first_look(c: &mut WindowClimber) {
        protected_hits_until(c, ENTRIES as u64 / 2);
        assert!(c.early_look_due(ENTRIES));
    }

    #[test]
    fn early_looks_continue_a_clear_trend_at_once() {
        let mut c = grown_once();
        strong_window_evidence(&mut c);
        assert!(!c.early_look_due(ENTRIES), "not before half the entries");
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), STEP as i64);
        // The policy restarts the period once the window has moved.
        assert_eq!(c.window_gain, 256);
        c.restart_period(STEP as i64);
        assert_eq!((c.requests, c.window_gain), (0, 0), "a new period");
        assert!(!c.early_look_due(ENTRIES));
    }

    /// 25 misses on rejected candidates back at once: clear of the early
    /// bar (4 × sqrt(25) = 20), not of the untrended one (30).
    fn moderate_window_evidence(c: &mut WindowClimber) {
        for k in 0..25 {
            c.window_departed();
            c.candidate_left(key(k));
            c.record_miss(key(k), true);
        }
    }

    /// 256 misses on main victims back within 10 main evictions: a main
    /// gain clear of every early bar.
    fn strong_main_evidence(c: &mut WindowClimber) {
        for _ in 0..4 {
            for k in 0..64 {
                c.victim_left(key(k));
                main_churns(c, 10);
                c.record_miss(key(k), true);
            }
        }
    }

    #[test]
    fn untrended_looks_move_either_way_on_evidence_clear_of_their_bar() {
        // No full period has moved yet: evidence clear of the early bar
        // but not of the untrended one waits.
        let mut c = WindowClimber::new(ENTRIES);
        moderate_window_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
        assert_eq!(c.window_gain, 25, "the period goes on");
        // Overwhelming evidence moves at the next look (a quarter later).
        strong_window_evidence(&mut c);
        assert!(c.early_look_due(ENTRIES));
        assert_eq!(c.early_adjustment(ENTRIES, shape()), STEP as i64);
        // A decision the window's limits refused sets no trend; the move,
        // once made, does.
        assert_eq!(c.trend, 0);
        c.restart_period(STEP as i64);
        assert_eq!(c.trend, 1);
        // The next look continues it on evidence at the early bar...
        moderate_window_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), STEP as i64);
        // ...and, like a full period's trend, it is never reversed early.
        c.restart_period(STEP as i64);
        strong_main_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
        // After a full period that stayed, a shrink can start early too.
        let mut c = WindowClimber::new(ENTRIES);
        protected_hits_until(&mut c, 3 * ENTRIES as u64);
        assert_eq!(c.adjustment(ENTRIES, shape()), 0);
        strong_main_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), -(STEP as i64));
    }

    #[test]
    fn early_looks_never_reverse_a_trend() {
        // The last full period grew the window: evidence for shrinking,
        // however strong, waits for the period's end.
        let mut c = grown_once();
        strong_main_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
        assert_eq!(c.main_gain, 256, "the period goes on");
        assert!(
            !c.early_look_due(ENTRIES),
            "the next look is a quarter later"
        );
        // A look that comes late is one look: the next is a quarter of the
        // entries after it.
        protected_hits_until(&mut c, ENTRIES as u64);
        assert!(c.early_look_due(ENTRIES));
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
        assert!(!c.early_look_due(ENTRIES), "one look, however late");
        protected_hits_until(&mut c, ENTRIES as u64 * 5 / 4);
        assert!(c.early_look_due(ENTRIES));
        // The last full period shrank the window: no early growth either.
        let mut c = WindowClimber::new(ENTRIES);
        assert_eq!(
            period(&mut c, Left::Main, 50, 10, 12, HitIn::Window),
            -(STEP as i64)
        );
        strong_window_evidence(&mut c);
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
    }

    #[test]
    fn early_looks_hold_evidence_that_only_clears_the_period_bar() {
        let mut c = grown_once();
        // 12 quick returns: clear of 3 sigmas (12 > 3 × sqrt(12) ≈ 10.4),
        // not of 4 (13.9).
        for k in 0..12 {
            c.window_departed();
            c.candidate_left(key(k));
            c.record_miss(key(k), true);
        }
        until_first_look(&mut c);
        assert_eq!(c.early_adjustment(ENTRIES, shape()), 0);
        protected_hits_until(&mut c, 3 * ENTRIES as u64);
        assert_eq!(c.adjustment(ENTRIES, shape()), STEP as i64);
    }
}
