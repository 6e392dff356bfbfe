//! Which configuration a cache's policies run: the adaptive window (the
//! climber's, `climber.rs`) or a *large window*, 99% of the capacity, which
//! makes the policy an LRU with a small frequency-filtered main space. One
//! shard, the *leader*, replays a hash-sampled part of its requests through
//! two small shadow policies, one of each configuration, and publishes the
//! one that has been hitting more; every shard of the cache follows it (set
//! dueling, as CPU caches choose between insertion policies).
//!
//! # Why
//! The climber moves the window one step at a time, on the evidence of
//! ghosts that return within a step. Where popularity keeps moving (a
//! working set that drifts, phases that replace each other) recency wins
//! and the gain of a large window comes all at once, not step by step: the
//! climber never sees it. On synthetic drift traces helios trailed LRU by up
//! to 5.5 pp (`shift` at 20,000 entries); with the shadows the mean gap to
//! Bélády there falls from 9.35 to 8.77 pp (up to +3.1 pp a cell, 10.9–12.0
//! pp summed over 20 cells under three seeds), and the shared traces gain a
//! little too (3.623 against 3.628 pp, 12 of 64 sizes trailing against 13;
//! at 0.7× and 1.5× their sizes 26 of 128 against 29). BENCHMARKS.md,
//! "Configurations chosen by shadows", has every variant measured.
//!
//! # How
//! - **Sampling.** A request is replayed in the shadows if its 32-bit hash,
//!   times an odd constant, falls below `rate × 2^32`, with
//!   `rate = min(1, SHADOW_ENTRIES / capacity)`; the shadows hold
//!   `capacity × rate` entries (at least 2; `capacity` capped at the
//!   entries a shard keeps). Sampling by key (SHARDS, Waldspurger et al.,
//!   FAST 2015) keeps each sampled key's requests together, so a
//!   scaled-down shadow sees the reuse pattern of the whole. The shadows
//!   see what the leader's policy sees: hits the hot tier serves reach it
//!   one in 64, and under contention some recorded hits are dropped (see
//!   `crate::recording`), as for the policy itself.
//! - **Evidence.** Only requests that exactly one shadow hit count (paired
//!   comparison: requests both hit or both missed say nothing). Each count
//!   decays by `DECAY` per period (the shadows' capacity rounded up to a
//!   power of two, at least 512, in sampled requests).
//! - **Decision.** Large window when the large shadow's lead exceeds
//!   `Z_LARGE` standard deviations of the paired counts (`sqrt` of their
//!   sum, the spread of a fair coin over them); back to the adaptive window
//!   when the adaptive shadow leads by `Z_ADAPTIVE`. No decision during the
//!   first `WARM_PERIODS` periods nor on fewer than `MIN_EVIDENCE` paired
//!   requests: while the cache first fills and turns over, LRU leads
//!   because TinyLFU's sketch has not learned yet.
//! - **Transition.** Switching to the large window moves main's entries to
//!   the window's oldest end (protected's newer than probation's), 1,000
//!   per eviction, so the window fills from what main held and the entries
//!   most recently brought in stay the newest. Without that, eviction
//!   refilled the grown window only as main's victims lost admission duels,
//!   and the transition cost more than the better configuration won (10,000
//!   hits in 50,000 requests on a recency trace). Back, the window takes the
//!   adaptive shadow's share and its overflow becomes probation candidates,
//!   at most 1,000 per eviction; the climber and the admission margin start
//!   afresh, as after `clear`.
//! - **Cost.** Followers pay one atomic load per eviction. The leader
//!   replays `rate` of its requests twice more: in a shard of at most
//!   `SHADOW_ENTRIES` entries every request, so a small cache's leader shard
//!   does about three times the policy work (in the throughput bench's
//!   6,250-entry shards, 16%). About 100 KB per cache.
//!
//! Only unit-weight caches have a leader: a weighted shadow would need the
//! entry count the capacity holds, which is not known when it is built.

use std::collections::HashMap;

use super::{Policy, Victim};
use crate::retention::Retention;
use crate::sync::{AtomicU64, Ordering};

/// Entries the leader's shadows hold at most, each. Measured on the
/// synthetic drift traces (seed 1, summed gain over 20 cells), with a
/// 3-period warm-up: full-size shadows +16.25 pp, 1,024 entries +16.37,
/// 256 entries +9.24; with the final warm-up, 512 entries +10.6 against
/// +11.6 for 1,024 (and 2.2% more instructions on `mix_probe` instead of
/// 3.2%). Two shadows of 1,024 entries take about 100 KB per cache.
const SHADOW_ENTRIES: u64 = 1024;
/// The large configuration's window share of the capacity. A 95% window
/// gave less on `zigzag` than 99% (the fixed-window table in BENCHMARKS.md);
/// what is left, 1%, is main, which keeps a frequency-filtered few.
const LARGE_WINDOW: f64 = 0.99;
/// Protected share of main in the large configuration (Caffeine's 80%).
const LARGE_PROTECTED: f64 = 0.80;
/// Standard deviations of lead that switch to the large window: a
/// conventional bar, not tuned. (An early prototype, whose transition still
/// emptied main by eviction, lost less on a subset of the shared traces
/// with 5 or 8 than with 3: −1.8 and −2.0 pp summed against −3.7; that
/// comparison was not repeated with the final transition and warm-up.)
const Z_LARGE: f64 = 3.0;
/// ... and back to the adaptive window: lower, since the adaptive
/// configuration is the default and a lead for it needs less proof.
const Z_ADAPTIVE: f64 = 2.0;
/// Decay of the paired counts per period: a horizon of about 33 periods.
/// At 0.5 the decision followed `zigzag`'s sweeps a period late, switching
/// on every sweep (−5 to −7 pp at 200–1,000 entries); on a subset of the
/// shared traces (the early prototype) 0.9 lost −6.7 pp summed against −3.7
/// for 0.97; 0.99 was not better (−2.2 against −1.8 at 5σ).
const DECAY: f64 = 0.97;
/// Periods without a decision at the start, and the least paired evidence
/// for one. TinyLFU needs its sketch to have learned before its lead means
/// anything: during the first turnovers of a cache LRU leads, and a switch
/// then costs the frequency-chosen main space. 10 periods is one aging
/// period of the shadow's sketch (10 × its capacity in increments). With
/// 3, the noisy-neighbour bench switched to the large window four periods
/// into the scan and the agents' median drop went from 0.2–0.5 to 1.4–2.9
/// pp; with 10 it is back to 0.2–0.4, and the drift traces keep +11.6 pp
/// summed (+16.5 with 3; they are short: 20 leader periods at 20,000
/// entries). Without any warm-up a lead during the fill switched `multi1`
/// @ 650 after two periods (−3.2 pp).
const WARM_PERIODS: u32 = 10;
const MIN_EVIDENCE: f64 = 300.0;
/// Requests per period at least (the shadows' capacity otherwise).
const MIN_PERIOD: u64 = 512;

/// The configuration chosen for a cache, published by the leader shard
/// and read by every shard at its evictions (one atomic load each; a
/// shard acting a few evictions late is harmless). One word, so that a
/// reader never mixes two publications: bits 0–19 the window's share and
/// 20–39 protected's, in millionths; bit 40 the large configuration; bits
/// 41–63 a generation that advances with every publication.
#[derive(Debug, Default)]
pub(crate) struct SharedConfiguration {
    word: AtomicU64,
}

/// A configuration: the large window (its limits follow from the
/// capacity, `large_limits`), or the adaptive window at the adaptive
/// shadow's shares of the capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Configuration {
    Large,
    Adaptive {
        window_share: f64,
        protected_share: f64,
    },
}

const SHARE_BITS: u32 = 20;
const SHARE_MASK: u64 = (1 << SHARE_BITS) - 1;
const LARGE_BIT: u64 = 1 << (2 * SHARE_BITS);
const GENERATION_SHIFT: u32 = 2 * SHARE_BITS + 1;

impl SharedConfiguration {
    pub(crate) fn publish(&self, configuration: Configuration) {
        // Millionths fit in 20 bits (2^20 > 10^6).
        let ppm = |share: f64| (share.clamp(0.0, 1.0) * 1e6) as u64;
        let word = self.word.load(Ordering::Relaxed);
        let generation = (word >> GENERATION_SHIFT).wrapping_add(1);
        let shares = match configuration {
            Configuration::Large => LARGE_BIT,
            Configuration::Adaptive {
                window_share,
                protected_share,
            } => (ppm(protected_share) << SHARE_BITS) | ppm(window_share),
        };
        let next = (generation << GENERATION_SHIFT) | shares;
        // Only the leader publishes (under its shard's lock): no lost update.
        self.word.store(next, Ordering::Relaxed);
    }

    /// The configuration to follow, if it changed since `seen` (the word
    /// last applied, which it then becomes).
    #[inline]
    pub(crate) fn changed(&self, seen: &mut u64) -> Option<Configuration> {
        let word = self.word.load(Ordering::Relaxed);
        if word == *seen {
            return None;
        }
        *seen = word;
        Some(if word & LARGE_BIT != 0 {
            Configuration::Large
        } else {
            Configuration::Adaptive {
                window_share: (word & SHARE_MASK) as f64 / 1e6,
                protected_share: ((word >> SHARE_BITS) & SHARE_MASK) as f64 / 1e6,
            }
        })
    }
}

/// A policy over its own index space, keyed by the 32-bit hash (two
/// sampled keys with one hash are one key to it: at 1,024 entries, rare
/// enough not to matter).
#[derive(Debug)]
struct Shadow {
    policy: Policy,
    slots: HashMap<u32, u32, foldhash::fast::FixedState>,
    free: Vec<u32>,
    next: u32,
    victims: Vec<Victim>,
}

impl Shadow {
    fn new(capacity: u64, large: bool) -> Self {
        let mut policy = Policy::new(capacity);
        if large {
            let (window, protected) = large_limits(capacity);
            policy.window_max = window;
            policy.protected_max = protected;
            policy.pinned_window = true;
        }
        Self {
            policy,
            slots: HashMap::default(),
            free: Vec::new(),
            next: 0,
            victims: Vec::new(),
        }
    }

    /// Replays one request; returns whether it hit.
    fn request(&mut self, hash: u32, weight: u32) -> bool {
        if let Some(&index) = self.slots.get(&hash) {
            self.policy.access(index, hash);
            return true;
        }
        if u64::from(weight) > self.policy.capacity {
            return false;
        }
        let index = self.free.pop().unwrap_or_else(|| {
            self.next += 1;
            self.next - 1
        });
        self.slots.insert(hash, index);
        self.policy.insert(index, hash, weight);
        if self.policy.weight() > self.policy.capacity {
            self.policy.evict(&mut self.victims, |_| Retention::Normal);
            for victim in self.victims.drain(..) {
                self.slots.remove(&victim.hash);
                self.free.push(victim.index);
            }
        }
        false
    }

    /// The adaptive configuration as this shadow's climber has it now.
    fn adaptive_configuration(&self) -> Configuration {
        let capacity = self.policy.capacity as f64;
        Configuration::Adaptive {
            window_share: self.policy.window_max as f64 / capacity,
            protected_share: self.policy.protected_max as f64 / capacity,
        }
    }
}

/// The large configuration's window and protected limits for `capacity`.
pub(crate) fn large_limits(capacity: u64) -> (u64, u64) {
    let window = ((capacity as f64 * LARGE_WINDOW) as u64).min(capacity.saturating_sub(1));
    let protected = ((capacity - window) as f64 * LARGE_PROTECTED) as u64;
    (window, protected)
}

/// The leader shard's two shadows and the evidence between them.
#[derive(Debug)]
pub(crate) struct Shadows {
    adaptive: Shadow,
    large: Shadow,
    /// A hash is sampled if `hash × SAMPLE_MULTIPLIER < threshold` (as u64).
    threshold: u64,
    /// Decayed counts of requests only one of the two shadows hit.
    only_adaptive: f64,
    only_large: f64,
    requests: u64,
    period: u64,
    periods: u32,
    /// The configuration last published.
    large_chosen: bool,
}

/// Odd: multiplying by it permutes the 32-bit hashes, so the sampled
/// ones are a uniform `rate` of them, unrelated to the bits that pick the
/// shard, the table slot and the sketch block.
const SAMPLE_MULTIPLIER: u32 = 0x9E37_79B1;

impl Shadows {
    /// Shadows for a shard of `capacity` entries (unit weights).
    pub(crate) fn new(capacity: u64) -> Self {
        // A shard keeps at most `MAX_SHARD_ENTRIES` entries, whatever its
        // capacity (`u64::MAX` as "unbounded"): model what it holds.
        let capacity = capacity.min(super::MAX_SHARD_ENTRIES);
        let rate = (SHADOW_ENTRIES as f64 / capacity.max(1) as f64).min(1.0);
        let entries = ((capacity as f64 * rate).round() as u64).max(2);
        Self {
            adaptive: Shadow::new(entries, false),
            large: Shadow::new(entries, true),
            threshold: (rate * 4_294_967_296.0) as u64,
            only_adaptive: 0.0,
            only_large: 0.0,
            requests: 0,
            period: entries.next_power_of_two().max(MIN_PERIOD),
            periods: 0,
            large_chosen: false,
        }
    }

    /// Whether a request for `hash` is replayed in the shadows.
    #[inline]
    pub(crate) fn samples(&self, hash: u32) -> bool {
        u64::from(hash.wrapping_mul(SAMPLE_MULTIPLIER)) < self.threshold
    }

    /// Replays a sampled request in both shadows; at a period's end,
    /// returns a configuration to publish if the evidence calls for a
    /// change.
    pub(crate) fn request(&mut self, hash: u32, weight: u32) -> Option<Configuration> {
        let adaptive_hit = self.adaptive.request(hash, weight);
        let large_hit = self.large.request(hash, weight);
        match (adaptive_hit, large_hit) {
            (true, false) => self.only_adaptive += 1.0,
            (false, true) => self.only_large += 1.0,
            _ => {}
        }
        self.requests += 1;
        if self.requests < self.period {
            return None;
        }
        self.requests = 0;
        self.periods = self.periods.saturating_add(1);
        let (adaptive, large) = (self.only_adaptive, self.only_large);
        self.only_adaptive *= DECAY;
        self.only_large *= DECAY;
        let sigma = (adaptive + large).sqrt();
        if self.periods <= WARM_PERIODS || adaptive + large < MIN_EVIDENCE {
            return None;
        }
        if !self.large_chosen && large - adaptive > Z_LARGE * sigma {
            self.large_chosen = true;
            return Some(Configuration::Large);
        }
        if self.large_chosen && adaptive - large > Z_ADAPTIVE * sigma {
            self.large_chosen = false;
            return Some(self.adaptive.adaptive_configuration());
        }
        None
    }

    /// Heap bytes (approximate: the key maps count their entries).
    pub(crate) fn bytes(&self) -> usize {
        let map = |s: &Shadow| s.slots.capacity() * 16 + s.free.capacity() * 4;
        self.adaptive.policy.bytes()
            + self.large.policy.bytes()
            + map(&self.adaptive)
            + map(&self.large)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// xorshift64*: deterministic requests for the tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// A 32-bit key hash (the policy's keys are hashes).
    fn hash(key: u64) -> u32 {
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32
    }

    /// Replays `requests` and returns the configurations published, with
    /// the request at which each was.
    fn decisions(shadows: &mut Shadows, requests: impl Iterator<Item = u64>) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        for (i, key) in requests.enumerate() {
            let h = hash(key);
            if shadows.samples(h) {
                if let Some(c) = shadows.request(h, 1) {
                    out.push((i, c == Configuration::Large));
                }
            }
        }
        out
    }

    /// A working set that drifts: each request picks one of the 3,000 keys
    /// after a base that advances by one every 20 requests. Recency wins
    /// (the keys just brought in are the ones used next), and the large
    /// window is chosen.
    #[test]
    fn a_drifting_working_set_chooses_the_large_window() {
        let mut shadows = Shadows::new(2_000);
        let mut rng = Rng(7);
        let stream = (0..400_000u64).map(|i| i / 20 + rng.next() % 3_000);
        let chosen = decisions(&mut shadows, stream);
        assert_eq!(chosen.first().map(|c| c.1), Some(true), "{chosen:?}");
    }

    /// A fixed popular set under repeated one-time scans: frequency wins
    /// (LRU lets every scan flush the popular keys), and the adaptive
    /// window stays.
    #[test]
    fn popular_keys_under_scans_keep_the_adaptive_window() {
        let mut shadows = Shadows::new(2_000);
        let mut rng = Rng(11);
        let mut scanned = 1_000_000u64;
        let stream = (0..400_000u64).map(|i| {
            if (i / 5_000) % 2 == 1 {
                // A scan of keys never seen again.
                scanned += 1;
                scanned
            } else {
                // 1,500 popular keys, skewed towards the first.
                let r = rng.next() % 1_500;
                r * r / 1_500
            }
        });
        let chosen = decisions(&mut shadows, stream);
        assert!(chosen.iter().all(|c| !c.1), "{chosen:?}");
        assert!(
            shadows.only_adaptive > 2.0 * shadows.only_large,
            "the adaptive shadow leads: {} against {}",
            shadows.only_adaptive,
            shadows.only_large
        );
    }

    /// Large caches sample: their shadows hold `SHADOW_ENTRIES` entries
    /// and see about that share of the keys.
    #[test]
    fn shadows_of_a_large_shard_are_sampled() {
        let shadows = Shadows::new(100 * SHADOW_ENTRIES);
        assert_eq!(shadows.adaptive.policy.capacity, SHADOW_ENTRIES);
        let sampled = (0..1_000_000u64)
            .filter(|&k| shadows.samples(hash(k)))
            .count();
        assert!((9_000..11_000).contains(&sampled), "{sampled} of 1,000,000");
        // A small one replays every request.
        assert!((0..1_000u64).all(|k| Shadows::new(500).samples(hash(k))));
    }

    /// A follower applies each published configuration at its next
    /// eviction: the large window (main's entries moved into it, nothing
    /// evicted for it), then the adaptive shares, the policy valid at each
    /// step.
    #[test]
    fn a_follower_takes_each_published_configuration() {
        let shared = Arc::new(SharedConfiguration::default());
        let mut policy = Policy::with_configuration(1_000, Arc::clone(&shared), false);
        let mut victims = Vec::new();
        for i in 0..1_000u32 {
            policy.insert(i, hash(u64::from(i)), 1);
            policy.evict(&mut victims, |_| Retention::Normal);
        }
        assert_eq!(policy.len(), 1_000);
        shared.publish(Configuration::Large);
        policy.insert(1_000, hash(1_000), 1);
        policy.evict(&mut victims, |_| Retention::Normal);
        policy.validate().unwrap();
        assert_eq!(policy.window_max, 990);
        assert!(policy.pinned_window);
        assert_eq!(victims.len(), 1, "one entry over: one victim");
        assert_eq!(policy.len(), 1_000);
        shared.publish(Configuration::Adaptive {
            window_share: 0.2,
            protected_share: 0.64,
        });
        policy.insert(1_001, hash(1_001), 1);
        policy.evict(&mut victims, |_| Retention::Normal);
        policy.validate().unwrap();
        assert_eq!((policy.window_max, policy.protected_max), (200, 640));
        assert!(!policy.pinned_window);
        assert_eq!(policy.len(), 1_000);
    }
}
