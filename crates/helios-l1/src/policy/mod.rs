//! The eviction and admission policy of one shard: adaptive W-TinyLFU.
//!
//! New entries enter a small LRU *window*. Entries leaving the window are
//! *candidates* for the main space, a segmented LRU (*probation* and
//! *protected*, 80% of main). When the shard is over capacity, a candidate is
//! admitted only if the frequency sketch says it is more popular than the
//! probation victim it would displace (by more than an adaptive margin,
//! `margin.rs`); otherwise the candidate goes. A hit in
//! probation promotes to protected, and protected overflow is demoted back.
//! The window's share adapts to what recent misses say a larger window or a
//! larger main space would have hit (`climber.rs`, with `ghost.rs`). Where
//! popularity keeps moving, a large window pays all at once rather than step
//! by step; shadows in one shard compare the two configurations and every
//! shard follows the one that leads (`configuration.rs`).
//!
//! # Why W-TinyLFU and not S3-FIFO
//! Both are scan resistant. S3-FIFO's main queue is FIFO with reinsertion: on
//! a loop longer than the cache (`loop`, `zigzag`, `scan` traces) every entry
//! is evicted before it is reused and the hit ratio falls to LRU's (near 0),
//! while TinyLFU's admission keeps a stable resident set and approaches
//! Bélády there. With its adaptive window W-TinyLFU also follows recency-biased
//! traces (`sprite`, `multi*`) where a fixed 1% window (moka) loses.
//! BENCHMARKS.md has the per-trace numbers.
//!
//! This is a port of Caffeine's `BoundedLocalCache` eviction (Ben Manes,
//! Apache-2.0), including its handling of weighted entries, except where
//! measurement said otherwise:
//! - the window is sized from ghosts, not by hill climbing on sampled hit
//!   rates (`climber.rs`);
//! - a heavy candidate must outweigh, in frequency, all the victims that
//!   make room for it, as in moka (`displaced_frequency`);
//! - with weighted entries, the sketch ages for the entries that fit
//!   (`retrack`), and an entry much heavier than the resident ones skips
//!   the window (`HEAVY_ENTRY_FACTOR`);
//! - the hash-flooding lottery (a warm candidate admitted at random, 1 in
//!   128) opens only once the same victim has won a streak of duels unused
//!   (`RANDOM_ADMISSION_STREAK`);
//! - where narrow duels show that admitting a candidate seen once more
//!   than its victim churns the resident set (loops longer than the
//!   sketch's aging period), a candidate must out-count the victim by
//!   more than one (`margin.rs`).
//!
//! Everything here is safe code over slab indices; the caller holds the
//! shard lock.

mod climber;
mod configuration;
mod ghost;
mod margin;
mod sketch;
mod weights;

use crate::retention::Retention;
use climber::{HitIn, Shape, WindowClimber};
pub(crate) use configuration::SharedConfiguration;
use configuration::{Configuration, Shadows};
use margin::AdaptiveMargin;
use sketch::FrequencySketch;
use weights::Weights;

/// "No node": also the largest value a link can hold (30 bits).
const NIL: u32 = (1 << 30) - 1;
const LINK_MASK: u32 = NIL;

/// Which queue a node is in, stored in the top two bits of its `prev` link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Queue {
    Free = 0,
    Window = 1,
    Probation = 2,
    Protected = 3,
}

/// Most entries a shard keeps, whatever they weigh: the slab's index space
/// (`MAX_ENTRIES_PER_SHARD`, 2^24 − 2) less 2^20 indices for slots that
/// wait for readers before they can be reused.
pub(crate) const MAX_SHARD_ENTRIES: u64 = crate::MAX_ENTRIES_PER_SHARD - (1 << 20);

/// Caffeine's main share of the capacity at start (the window gets 1%).
const PERCENT_MAIN: f64 = 0.99;
/// Caffeine's protected share of the main space.
const PERCENT_MAIN_PROTECTED: f64 = 0.80;
/// The admission margin a shard starts with: Caffeine's rule (a candidate
/// is admitted when its count exceeds the victim's). Each shard then moves
/// between 0 and 1 on the evidence of its narrow duels (`margin.rs`).
const INITIAL_ADMISSION_MARGIN: u8 = 0;
/// A candidate at least this frequent may be admitted at random against a
/// more frequent victim, 1 time in 128, so that an attacker cannot pin the
/// victim by inflating its count (Caffeine's hash-flooding defence).
const ADMIT_HASHDOS_THRESHOLD: u8 = 6;
/// That lottery opens only once the same victim has won this many duels in
/// a row without being used. The defence is against a victim whose count an
/// attacker inflates; such a victim is never used, so it stays at
/// probation's LRU end and wins duel after duel, and after this many the
/// lottery starts as in Caffeine. In a loop longer than the cache, the
/// entry at probation's LRU end is the one the loop uses next: it wins only
/// a few duels before a hit promotes it, and random admissions there only
/// churned the resident set (`loop` at 750: 68.8% → 73.3%, against 74.0%
/// for moka and Bélády). Shared traces, 4 runs each: streaks of 16 and 64
/// gave 4.01 and 4.01 pp mean gap to Bélády against 4.06 with no streak;
/// 64 also lifted `loop` and `scan` at 1,000 past their best peers.
/// Not applied when the candidate outweighs the victim (it displaces
/// several, whose summed count it must beat): there the lottery is how a
/// heavy, popular candidate gets in at all, and gating it cost 0.3 pp on
/// the synthetic weighted traces (BENCHMARKS.md).
const RANDOM_ADMISSION_STREAK: u32 = 64;
/// Most victims a heavy candidate is weighed against. The walk usually
/// stops far sooner, once the victims' summed frequency reaches the
/// candidate's (at most 15); this bounds it when victims have frequency 0.
const MAX_DISPLACED: u32 = 64;
/// Most entries moved between queues in one window resize (Caffeine).
const QUEUE_TRANSFER_THRESHOLD: usize = 1000;
/// Entries the sketch is first sized for (capped by the capacity). Growing
/// the sketch later forgets all counts, which cost up to 16 pp of hit ratio
/// on short traces when this was 1024 (`ps`, `gli` at sizes above 1024), so
/// start large: 2^16 entries is 256 KiB of counters per shard at most.
const INITIAL_SKETCH_ENTRIES: usize = 1 << 16;
/// Inserts between two re-estimates of the entries that fit (`retrack`):
/// often enough to follow the mean weight, rarely enough to cost nothing
/// (one division per 64 inserts).
const RETRACK_INTERVAL: u32 = 64;
/// A new entry heavier than this many times the mean resident entry skips
/// the window: it goes to the window's LRU end and must win its admission
/// duel at once, as Caffeine does only for entries heavier than the whole
/// window. The window admits without asking the sketch; a heavy one-off
/// there pushes out many small recent entries, each of which might have
/// been reused, and a window holds few heavy entries anyway. moka, which
/// has no window, led helios by up to 2 pp on a byte-weighted Zipf trace
/// (w1) where eight shards (windows 1/8 the size, so more entries were
/// "heavier than the window") beat one shard by 1–2 pp. Over the three
/// synthetic weighted traces (BENCHMARKS.md, "Weighted traces") factors
/// of 1 and 2 gave 4.87 and 4.99 pp mean gap to opt (two runs each)
/// against 5.21 without the rule; 2 gave 5.07 over three more runs: w1
/// +0.5 to +2.5 pp, w2 within ±0.3, w3 (whose popular objects are the
/// largest, the rule's worst case) −0.6 at 10 MB and −1 to −2 at 1 MB. 2
/// is kept: with a factor of 1, weights that barely vary (100 ± 5) would
/// send half of all new entries past the window for no reason.
const HEAVY_ENTRY_FACTOR: u32 = 2;
/// Fewest entries a weighted cache's climber periods are sized for (a
/// period is 3 × this many requests). A weighted cache whose entries are
/// large holds few of them; periods of 3 × so few requests gave the
/// climber too few ghost hits to judge by, and it cost up to 1.3 pp at
/// 1 MB on the synthetic weighted traces, where sizing periods for the
/// table's capacity (65,536 entries) left the window unadapted at larger
/// sizes. Floors of 4,096 and 16,384 entries measured 5.34–5.50 and
/// 5.30–5.38 pp mean gap to opt over those traces (5.80 before; BENCHMARKS.md,
/// "Weighted traces"). Unit-weight caches never reach it: their table is
/// sized for the capacity, which is also the entries they track.
const MIN_PERIOD_ENTRIES: usize = 1 << 14;

/// Per-entry policy metadata: 12 bytes (weights, when they vary, are kept
/// apart: `weights.rs`).
#[derive(Clone, Copy, Debug)]
struct Node {
    /// Previous (towards LRU) node in its queue, with the queue in bits 30-31.
    prev_and_queue: u32,
    /// Next (towards MRU) node in its queue, with [`ZONE_BIT`].
    next_and_zone: u32,
    /// Low 32 bits of the key's hash: table position, sketch key and ghost
    /// key.
    hash: u32,
}

// The per-entry metadata budget (BENCHMARKS.md, bytes per entry) counts on it.
const _: () = assert!(std::mem::size_of::<Node>() == 12);

/// Bit 31 of `Node::next_and_zone`: the node lies in its queue's zone (see
/// [`Deque`]). Links take bits 0-29.
const ZONE_BIT: u32 = 1 << 31;

const FREE_NODE: Node = Node {
    prev_and_queue: NIL,
    next_and_zone: NIL,
    hash: 0,
};

impl Node {
    fn queue(&self) -> Queue {
        match self.prev_and_queue >> 30 {
            1 => Queue::Window,
            2 => Queue::Probation,
            3 => Queue::Protected,
            _ => Queue::Free,
        }
    }
    fn prev(&self) -> u32 {
        self.prev_and_queue & LINK_MASK
    }
    fn next(&self) -> u32 {
        self.next_and_zone & LINK_MASK
    }
    /// Sets the next link, keeping the zone bit.
    fn set_next(&mut self, next: u32) {
        self.next_and_zone = (self.next_and_zone & ZONE_BIT) | next;
    }
    fn in_zone(&self) -> bool {
        self.next_and_zone & ZONE_BIT != 0
    }
    fn set_zone(&mut self, in_zone: bool) {
        self.next_and_zone = self.next() | if in_zone { ZONE_BIT } else { 0 };
    }
    fn set(&mut self, queue: Queue, prev: u32) {
        self.prev_and_queue = ((queue as u32) << 30) | prev;
    }
}

/// A doubly linked queue through `Node`s; `head` is least recent.
///
/// The window and probation also keep their *zone*: the nodes within one
/// climber step of the head, that is every node whose predecessors in the
/// queue weigh less than the step together. They are the entries a queue
/// one step smaller would not hold, so hits on them are what that step is
/// worth (`WindowClimber`). Invariant, for those two queues: the zone is
/// the nodes from `head` through `zone_end` (none if `zone_end` is NIL),
/// exactly those carry [`ZONE_BIT`], `zone_weight` is their weight, and
/// either the zone is the whole queue or `zone_weight` reaches the step
/// while the weight before `zone_end` stays below it. Every other queue's
/// zone is empty. `Policy::validate` checks all of it.
#[derive(Clone, Copy, Debug)]
struct Deque {
    head: u32,
    tail: u32,
    weight: u64,
    len: usize,
    zone_end: u32,
    zone_weight: u64,
}

const EMPTY_DEQUE: Deque = Deque {
    head: NIL,
    tail: NIL,
    weight: 0,
    len: 0,
    zone_end: NIL,
    zone_weight: 0,
};

/// Whether `queue` keeps a zone: the two whose step-sized ends the climber
/// weighs (protected is never resized by the step directly).
fn zoned(queue: Queue) -> bool {
    matches!(queue, Queue::Window | Queue::Probation)
}

/// Which side of an admission duel an evicted entry was on: a candidate
/// that came from the window, or a victim from the main space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Candidate,
    Victim,
}

/// An entry evicted by the policy: its slab index, hash and weight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Victim {
    pub(crate) index: u32,
    pub(crate) hash: u32,
    pub(crate) weight: u32,
}

#[derive(Debug)]
pub(crate) struct Policy {
    /// Indexed by slab index; `Queue::Free` for indices not in the policy.
    nodes: Vec<Node>,
    /// Entries' weights, stored only once one is not 1.
    weights: Weights,
    /// Indexed by `Queue as usize`; entry 0 is unused.
    queues: [Deque; 4],
    capacity: u64,
    window_max: u64,
    protected_max: u64,
    sketch: FrequencySketch,
    climber: WindowClimber,
    margin: AdaptiveMargin,
    /// xorshift state for the hash-flooding defence.
    rng: u64,
    /// The victim of the last duel a candidate lost, and how many duels in
    /// a row it has won since it was last used (`RANDOM_ADMISSION_STREAK`).
    duel_victim: u32,
    duel_streak: u32,
    /// The climber's step in weight units (fixed by the capacity): the
    /// weight of the window's and probation's zones (`Deque`).
    step: u64,
    len: usize,
    /// New entries, counted to re-estimate the entries that fit every
    /// `RETRACK_INTERVAL` of them (`retrack`).
    inserts: u32,
    /// Whether the weight has come within a step of the capacity since the
    /// policy was created or cleared: the climber decides only from then on
    /// (see `climb`).
    filled: bool,
    /// [`MAX_SHARD_ENTRIES`] (smaller in tests).
    max_entries: usize,
    /// The window is held at the large configuration's share and the
    /// climber is idle (`configuration.rs`).
    pinned_window: bool,
    /// The configuration this cache's shards follow, and the generation of
    /// it last applied; `None` for weighted caches and for shadows.
    configuration: Option<std::sync::Arc<SharedConfiguration>>,
    configuration_seen: u64,
    /// Main's entries still to move to the window after a switch to the
    /// large configuration (moved `QUEUE_TRANSFER_THRESHOLD` per eviction).
    moving_to_window: bool,
    /// The leader shard's shadows, which choose the configuration.
    shadows: Option<Box<Shadows>>,
}

impl Policy {
    pub(crate) fn new(capacity: u64) -> Self {
        let main = (capacity as f64 * PERCENT_MAIN) as u64;
        let window_max = capacity - main;
        let sketch = FrequencySketch::new(INITIAL_SKETCH_ENTRIES.min(capacity as usize));
        Self {
            nodes: Vec::new(),
            weights: Weights::default(),
            queues: [EMPTY_DEQUE; 4],
            capacity,
            window_max,
            protected_max: (main as f64 * PERCENT_MAIN_PROTECTED) as u64,
            climber: WindowClimber::new(sketch.capacity()),
            margin: AdaptiveMargin::new(sketch.capacity(), INITIAL_ADMISSION_MARGIN),
            sketch,
            rng: 0x9e37_79b9_7f4a_7c15 ^ capacity,
            duel_victim: NIL,
            duel_streak: 0,
            step: WindowClimber::step(capacity),
            len: 0,
            inserts: 0,
            filled: false,
            max_entries: usize::try_from(MAX_SHARD_ENTRIES).unwrap_or(usize::MAX),
            pinned_window: false,
            configuration: None,
            configuration_seen: 0,
            moving_to_window: false,
            shadows: None,
        }
    }

    /// A policy that follows `configuration` (see `configuration.rs`) and,
    /// as the cache's `leader` shard, keeps the shadows that choose it.
    pub(crate) fn with_configuration(
        capacity: u64,
        configuration: std::sync::Arc<SharedConfiguration>,
        leader: bool,
    ) -> Self {
        let mut policy = Self::new(capacity);
        policy.configuration = Some(configuration);
        if leader {
            policy.shadows = Some(Box::new(Shadows::new(capacity)));
        }
        policy
    }

    /// Replays a request in the leader's shadows, if sampled, and publishes
    /// the configuration they choose.
    #[inline]
    fn shadow(&mut self, hash: u32, weight: u32) {
        let Some(shadows) = self.shadows.as_deref_mut() else {
            return;
        };
        if !shadows.samples(hash) {
            return;
        }
        if let Some(chosen) = shadows.request(hash, weight) {
            if let Some(configuration) = &self.configuration {
                configuration.publish(chosen);
            }
        }
    }

    /// Applies the cache's configuration if it changed since this policy
    /// last looked (one atomic load).
    #[inline]
    fn follow_configuration(&mut self) {
        let Some(shared) = &self.configuration else {
            return;
        };
        if let Some(chosen) = shared.changed(&mut self.configuration_seen) {
            self.apply_configuration(chosen);
        }
    }

    /// Takes `chosen`'s window and protected shares (see `configuration.rs`,
    /// "Transition").
    fn apply_configuration(&mut self, chosen: Configuration) {
        let capacity = self.capacity;
        let large = chosen == Configuration::Large;
        let (window, protected) = match chosen {
            Configuration::Large => configuration::large_limits(capacity),
            Configuration::Adaptive {
                window_share,
                protected_share,
            } => (
                ((capacity as f64 * window_share) as u64).min(capacity.saturating_sub(1)),
                (capacity as f64 * protected_share) as u64,
            ),
        };
        // Main's entries become the window's oldest (see
        // `move_main_to_window`), a bounded number per eviction.
        self.moving_to_window = large && !self.pinned_window;
        self.window_max = window.max(1);
        self.protected_max = protected;
        self.pinned_window = large;
        if !large {
            // Back to adaptive: the climber and the margin start afresh;
            // what they counted was about the other configuration.
            self.climber.resize(self.sketch.capacity());
            self.margin = AdaptiveMargin::new(self.sketch.capacity(), self.margin.margin());
            self.filled = false;
        }
    }

    /// Moves up to `QUEUE_TRANSFER_THRESHOLD` of main's entries to the
    /// window's oldest end: protected's newest first, then probation's, so
    /// that once all have moved each queue keeps its own order, protected's
    /// entries newer than probation's, and every entry already in the
    /// window newer than both.
    fn move_main_to_window(&mut self) {
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            let tail = match self.queues[Queue::Protected as usize].tail {
                NIL => self.queues[Queue::Probation as usize].tail,
                tail => tail,
            };
            if tail == NIL {
                self.moving_to_window = false;
                return;
            }
            self.unlink(tail);
            self.push_head(Queue::Window, tail);
        }
    }

    /// Total weight of resident entries.
    pub(crate) fn weight(&self) -> u64 {
        self.queues[1].weight + self.queues[2].weight + self.queues[3].weight
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Hash of a resident entry.
    pub(crate) fn hash_of(&self, index: u32) -> u32 {
        self.nodes[index as usize].hash
    }

    /// Weight of a resident entry.
    pub(crate) fn weight_of(&self, index: u32) -> u32 {
        self.weights.get(index)
    }

    /// Hints the lines [`access`](Self::access) of `index` will touch first:
    /// its node and its sketch block.
    #[inline]
    pub(crate) fn prefetch_access(&self, index: u32, hash: u32) {
        if let Some(node) = self.nodes.get(index as usize) {
            crate::prefetch::prefetch(node);
        }
        self.sketch.prefetch(hash);
    }

    /// Hints the nodes `access` of `index` will relink: its list neighbours
    /// (read from its node, which an earlier [`prefetch_access`](Self::prefetch_access) brought in).
    #[inline]
    pub(crate) fn prefetch_neighbours(&self, index: u32) {
        let Some(node) = self.nodes.get(index as usize) else {
            return;
        };
        for link in [node.prev(), node.next()] {
            if let Some(neighbour) = self.nodes.get(link as usize) {
                crate::prefetch::prefetch(neighbour);
            }
        }
    }

    pub(crate) fn is_resident(&self, index: u32) -> bool {
        self.nodes
            .get(index as usize)
            .is_some_and(|n| n.queue() != Queue::Free)
    }

    // ---- deque primitives -------------------------------------------------

    #[inline(always)]
    fn push_tail(&mut self, queue: Queue, index: u32) {
        let tail = self.queues[queue as usize].tail;
        let weight = u64::from(self.weights.get(index));
        let node = &mut self.nodes[index as usize];
        node.set(queue, tail);
        node.next_and_zone = NIL;
        if tail == NIL {
            self.queues[queue as usize].head = index;
        } else {
            self.nodes[tail as usize].set_next(index);
        }
        let q = &mut self.queues[queue as usize];
        q.tail = index;
        q.weight += weight;
        q.len += 1;
        // A zone lighter than the step is the whole queue (the invariant),
        // so the new tail's predecessors weigh less than the step.
        if zoned(queue) && q.zone_weight < self.step {
            q.zone_weight += weight;
            q.zone_end = index;
            self.nodes[index as usize].set_zone(true);
        }
    }

    fn push_head(&mut self, queue: Queue, index: u32) {
        let head = self.queues[queue as usize].head;
        let weight = u64::from(self.weights.get(index));
        let node = &mut self.nodes[index as usize];
        node.set(queue, NIL);
        node.next_and_zone = head;
        if head == NIL {
            self.queues[queue as usize].tail = index;
        } else {
            let prev_queue = self.nodes[head as usize].queue();
            self.nodes[head as usize].set(prev_queue, index);
        }
        let q = &mut self.queues[queue as usize];
        q.head = index;
        q.weight += weight;
        q.len += 1;
        if zoned(queue) {
            // The new head always lies in the zone; the zone's last nodes
            // may now have a step's weight before them, and leave it.
            self.nodes[index as usize].set_zone(true);
            let q = &mut self.queues[queue as usize];
            q.zone_weight += weight;
            if q.zone_end == NIL {
                q.zone_end = index;
            }
            loop {
                let q = &mut self.queues[queue as usize];
                let end = q.zone_end;
                let end_weight = u64::from(self.weights.get(end));
                if end == index || q.zone_weight - end_weight < self.step {
                    break;
                }
                q.zone_weight -= end_weight;
                q.zone_end = self.nodes[end as usize].prev();
                self.nodes[end as usize].set_zone(false);
            }
        }
    }

    #[inline(always)]
    fn unlink(&mut self, index: u32) -> Queue {
        let node = self.nodes[index as usize];
        let queue = node.queue();
        let (prev, next) = (node.prev(), node.next());
        if prev == NIL {
            self.queues[queue as usize].head = next;
        } else {
            self.nodes[prev as usize].set_next(next);
        }
        if next == NIL {
            self.queues[queue as usize].tail = prev;
        } else {
            let q = self.nodes[next as usize].queue();
            self.nodes[next as usize].set(q, prev);
        }
        let weight = u64::from(self.weights.get(index));
        let q = &mut self.queues[queue as usize];
        q.weight -= weight;
        q.len -= 1;
        self.nodes[index as usize].set(Queue::Free, NIL);
        if node.in_zone() {
            // Nodes after it now have less before them: the zone may take
            // in the next ones. (Removing a node beyond the zone changes
            // nothing before it.)
            debug_assert!(q.zone_weight >= weight, "zone lighter than a member");
            self.nodes[index as usize].set_zone(false);
            q.zone_weight -= weight;
            if q.zone_end == index {
                q.zone_end = prev;
            }
            // A zone that is the whole queue has nothing to take in.
            if q.zone_weight < self.step && q.zone_end != q.tail {
                self.fill_zone(queue);
            }
        }
        queue
    }

    /// Extends `queue`'s zone over the nodes after it while the zone weighs
    /// less than the step.
    #[inline(never)]
    fn fill_zone(&mut self, queue: Queue) {
        let q = self.queues[queue as usize];
        let (mut end, mut zone_weight) = (q.zone_end, q.zone_weight);
        let mut node = if end == NIL {
            q.head
        } else {
            self.nodes[end as usize].next()
        };
        while node != NIL && zone_weight < self.step {
            zone_weight += u64::from(self.weights.get(node));
            self.nodes[node as usize].set_zone(true);
            end = node;
            node = self.nodes[node as usize].next();
        }
        let q = &mut self.queues[queue as usize];
        q.zone_end = end;
        q.zone_weight = zone_weight;
    }

    #[inline(always)]
    fn move_to_tail(&mut self, index: u32, queue: Queue) {
        self.unlink(index);
        self.push_tail(queue, index);
    }

    fn next(&self, index: u32) -> u32 {
        self.nodes[index as usize].next()
    }

    fn prev(&self, index: u32) -> u32 {
        self.nodes[index as usize].prev()
    }

    // ---- events -------------------------------------------------------------

    /// A new entry (a miss that is now filled).
    pub(crate) fn insert(&mut self, index: u32, hash: u32, weight: u32) {
        let i = index as usize;
        if i >= self.nodes.len() {
            self.nodes.resize(i + 1, FREE_NODE);
        }
        self.nodes[i] = Node { hash, ..FREE_NODE };
        self.weights.set(index, weight, self.nodes.len());
        self.len += 1;
        // A full unit-weight shard holds one entry over its capacity from
        // this insert to the eviction that follows: not a reason to grow a
        // sketch sized for exactly that capacity.
        if self.len > self.sketch.capacity() + 1 {
            // Lazily size the sketch to the entry count (Caffeine sizes it to
            // `mappingCount` for weighted caches); resizing forgets counts,
            // and the ghosts, sized alike, are rebuilt with it. Sized for
            // the next power of two, so that its table stays full width
            // until the next growth, but no more entries than a unit-weight
            // shard can hold.
            let entries = self
                .len
                .next_power_of_two()
                .min(usize::try_from(self.capacity).unwrap_or(usize::MAX))
                .max(self.len);
            self.sketch = FrequencySketch::new(entries);
            self.climber.resize(self.sketch.capacity());
            self.margin = AdaptiveMargin::new(self.sketch.capacity(), self.margin.margin());
            self.inserts = 0;
        }
        self.sketch.increment(hash);
        // Whether the entry fits a window one step larger.
        let fits_grown_window = u64::from(weight) <= self.window_max.saturating_add(self.step);
        self.climber.record_miss(hash, fits_grown_window);
        self.margin.miss(hash);
        // Caffeine: an entry too heavy for the window goes to the window's
        // LRU end, so it is a candidate at once. (Not also when it is heavier
        // than the protected space, as this port first had it: once the
        // window had taken all of protected, every new entry skipped the
        // window, and `orm-night` at 865 fell from 67% to 12%.) Helios also
        // sends an entry much heavier than the resident ones there (see
        // `HEAVY_ENTRY_FACTOR`).
        if u64::from(weight) > self.window_max || self.is_heavy(weight) {
            self.push_head(Queue::Window, index);
        } else {
            self.push_tail(Queue::Window, index);
        }
        if self.inserts % RETRACK_INTERVAL == 0 {
            self.retrack();
        }
        self.inserts = self.inserts.wrapping_add(1);
        if self.shadows.is_some() {
            self.shadow(hash, weight);
        }
    }

    /// Whether a new entry of `weight` (counted in `len` but not yet in a
    /// queue) weighs more than `HEAVY_ENTRY_FACTOR` times the mean
    /// resident entry. Never with unit weights.
    fn is_heavy(&self, weight: u32) -> bool {
        // Weight 1 is never heavy enough to matter (only against residents
        // that mostly weigh 0), and skipping it keeps unit-weight inserts
        // at one comparison. Below 2^32 × 2^30 (links are 30 bits): no
        // overflow in a u64.
        let resident = self.len.saturating_sub(1) as u64;
        weight > 1
            && resident > 0
            && u64::from(weight) * resident
                > u64::from(HEAVY_ENTRY_FACTOR).saturating_mul(self.weight())
    }

    /// A hit reported through the read buffer. Stale reports (the slot was
    /// freed or reused by another key since) are ignored.
    /// Returns whether the report was current (and counted).
    pub(crate) fn access(&mut self, index: u32, hash: u32) -> bool {
        if !self.is_resident(index) || self.nodes[index as usize].hash != hash {
            return false;
        }
        self.sketch.increment(hash);
        if index == self.duel_victim {
            // Used: its winning streak ends.
            self.duel_streak = 0;
        }
        let node = self.nodes[index as usize];
        let queue = match node.queue() {
            Queue::Window => HitIn::Window,
            Queue::Probation => {
                self.margin.probation_hit(hash);
                HitIn::Probation
            }
            _ => HitIn::Protected,
        };
        self.climber.record_hit(queue, node.in_zone());
        self.reorder(index);
        if self.shadows.is_some() {
            self.shadow(hash, self.weights.get(index));
        }
        true
    }

    fn reorder(&mut self, index: u32) {
        match self.nodes[index as usize].queue() {
            Queue::Window => self.move_to_tail(index, Queue::Window),
            Queue::Probation => {
                if u64::from(self.weights.get(index)) > self.protected_max {
                    self.move_to_tail(index, Queue::Probation);
                } else {
                    self.move_to_tail(index, Queue::Protected);
                }
            }
            Queue::Protected => self.move_to_tail(index, Queue::Protected),
            Queue::Free => {}
        }
    }

    /// The entry at `old` was replaced by a new value stored at `new` with
    /// `weight`. It keeps its queue position and counts as an access.
    pub(crate) fn replace(&mut self, old: u32, new: u32, weight: u32) {
        if !self.is_resident(old) {
            return;
        }
        let n = new as usize;
        if n >= self.nodes.len() {
            self.nodes.resize(n + 1, FREE_NODE);
        }
        let hash = self.nodes[old as usize].hash;
        let queue = self.unlink(old);
        self.nodes[n] = Node { hash, ..FREE_NODE };
        self.weights.set(new, weight, self.nodes.len());
        self.push_tail(queue, new);
        self.sketch.increment(hash);
        if self.shadows.is_some() {
            self.shadow(hash, weight);
        }
    }

    /// The entry was removed by the user. Returns its weight.
    pub(crate) fn remove(&mut self, index: u32) -> Option<u32> {
        if !self.is_resident(index) {
            return None;
        }
        self.unlink(index);
        self.len -= 1;
        Some(self.weights.get(index))
    }

    /// Moves the entry to probation's LRU end, where the next eviction
    /// looks first. Its frequency is unchanged.
    pub(crate) fn demote(&mut self, index: u32) {
        if self.is_resident(index) {
            self.unlink(index);
            self.push_head(Queue::Probation, index);
        }
    }

    /// Appends the slab index of every resident entry to `out`: window,
    /// probation, then protected, each from least to most recent.
    pub(crate) fn resident_indices(&self, out: &mut Vec<u32>) {
        for queue in [Queue::Window, Queue::Probation, Queue::Protected] {
            let mut node = self.queues[queue as usize].head;
            while node != NIL {
                out.push(node);
                node = self.next(node);
            }
        }
    }

    /// Forgets every entry (the sketch keeps its history).
    pub(crate) fn clear(&mut self) {
        self.nodes.clear();
        self.weights = Weights::default();
        self.queues = [EMPTY_DEQUE; 4];
        self.len = 0;
        // The cache fills anew: the climber starts afresh once it has (its
        // ghosts, trend and evidence were about the entries just dropped;
        // the window keeps its size and the sketch its counts).
        self.filled = false;
        self.climber.resize(self.sketch.capacity());
    }

    // ---- eviction -----------------------------------------------------------

    /// Evicts until the weight fits the capacity, appending each victim
    /// (already unlinked) to `out`, then adapts the window. `retention`
    /// judges an entry by slab index (see [`Retention`]); for a cache
    /// without hints it is `|_| Retention::Normal` and compiles away.
    pub(crate) fn evict(
        &mut self,
        out: &mut Vec<Victim>,
        mut retention: impl FnMut(u32) -> Retention,
    ) {
        self.follow_configuration();
        if self.moving_to_window {
            self.move_main_to_window();
        }
        // Over the capacity: full, whatever the entries weigh (see `climb`;
        // asked only until the policy first fills).
        let full = !self.filled && self.weight() > self.capacity;
        let candidates = self.evict_from_window();
        // Each queue's victims may pass over at most the queue's length of
        // pinned entries, and each candidate is spared at most once, so
        // twice the entry count reaches every unpinned entry; it also
        // bounds the work when all are pinned.
        let mut spares = 2 * self.len;
        self.evict_from_main(candidates, out, &mut retention, &mut spares);
        if self.weight() > self.capacity {
            // Only pinned entries were left: the capacity bound wins.
            self.evict_from_main(0, out, &mut retention, &mut 0);
        }
        if self.len > self.max_entries {
            // Entries that weigh 0, or millions of tiny ones, would exhaust
            // the shard's entry indices without ever filling its weight:
            // past [`MAX_SHARD_ENTRIES`] the least valuable go by count
            // (pinned or not; the bound protects the shard itself).
            while self.len > self.max_entries && self.evict_one(out) {}
        }
        self.climb(full);
    }

    fn evict_node(&mut self, index: u32, out: &mut Vec<Victim>) {
        self.unlink(index);
        self.len -= 1;
        out.push(Victim {
            index,
            hash: self.nodes[index as usize].hash,
            weight: self.weights.get(index),
        });
    }

    /// Evicts the entry at `index`, judged `verdict`, unless it is pinned
    /// and may still be spared this round: then it moves to the
    /// most-recent end of its queue instead, out of the way of the next
    /// victims. Returns whether it was spared.
    fn evict_or_spare(
        &mut self,
        index: u32,
        verdict: Retention,
        out: &mut Vec<Victim>,
        spares: &mut usize,
        side: Side,
    ) -> bool {
        if *spares > 0 && verdict == Retention::Pinned {
            *spares -= 1;
            let queue = self.nodes[index as usize].queue();
            self.move_to_tail(index, queue);
            true
        } else {
            self.evict_from(index, side, out);
            false
        }
    }

    /// Evicts the entry at `index`, remembering it as a ghost of `side`.
    /// (A pinned candidate that was spared sits in probation like a main
    /// entry; if a later victim pointer evicts it, it is a main ghost,
    /// which is what it has become.)
    fn evict_from(&mut self, index: u32, side: Side, out: &mut Vec<Victim>) {
        let node = self.nodes[index as usize];
        match side {
            Side::Candidate => {
                if node.queue() == Queue::Window {
                    // Evicted straight from the window (main was empty).
                    self.climber.window_departed();
                }
                self.climber.candidate_left(node.hash);
            }
            Side::Victim => self.climber.victim_left(node.hash),
        }
        self.evict_node(index, out);
    }

    /// Evicts one entry whatever the weights: main's least recent
    /// (probation's, then protected's), else the window's oldest. For a
    /// shard that ran out of entry indices rather than weight (entries that
    /// weigh 0, or millions of tiny ones); see `Shard::insert`. Returns
    /// false if the policy is empty.
    pub(crate) fn evict_one(&mut self, out: &mut Vec<Victim>) -> bool {
        for (queue, side) in [
            (Queue::Probation, Side::Victim),
            (Queue::Protected, Side::Victim),
            (Queue::Window, Side::Candidate),
        ] {
            let head = self.queues[queue as usize].head;
            if head != NIL {
                self.evict_from(head, side, out);
                return true;
            }
        }
        false
    }

    /// Moves window overflow to probation's MRU end; returns how many moved.
    fn evict_from_window(&mut self) -> i64 {
        let mut candidates = 0;
        let mut node = self.queues[Queue::Window as usize].head;
        // Normally one entry; after the window shrank by far (the switch
        // back from the large configuration) at most a transfer's worth per
        // eviction, so that no write moves the whole shard.
        while self.queues[Queue::Window as usize].weight > self.window_max
            && node != NIL
            && candidates < QUEUE_TRANSFER_THRESHOLD as i64
        {
            let next = self.next(node);
            if self.weights.get(node) != 0 {
                self.move_to_tail(node, Queue::Probation);
                self.climber.window_departed();
                candidates += 1;
            }
            node = next;
        }
        candidates
    }

    /// Caffeine's `evictFromMain`: duel candidates (probation MRU end, then
    /// window LRU end) against victims (probation, then protected, then
    /// window LRU ends) until the weight fits. With retention hints, a
    /// pinned victim is passed over before any duel, a pinned candidate
    /// that loses stays, and an expendable entry loses to any other. Each
    /// entry is judged once per visit, so an answer that changes meanwhile
    /// (another shard moved its owner's charge) cannot mix two verdicts.
    ///
    /// Every pointer moves past a node before that node is evicted or
    /// spared, so `victim` and `candidate` always name linked nodes or NIL.
    /// A spared victim moves behind the others in its queue, so `victim`
    /// would meet it again: `passes` (the queue's length when `victim`
    /// entered it) bounds how many it may pass over before moving on to the
    /// next queue, where unpinned victims may be.
    fn evict_from_main(
        &mut self,
        mut candidates: i64,
        out: &mut Vec<Victim>,
        retention: &mut impl FnMut(u32) -> Retention,
        spares: &mut usize,
    ) {
        let mut victim_queue = Queue::Probation;
        let mut victim = self.queues[Queue::Probation as usize].head;
        let mut passes = self.queues[Queue::Probation as usize].len;
        let mut candidate = self.queues[Queue::Probation as usize].tail;
        while self.weight() > self.capacity {
            if candidates == 0 {
                candidate = self.queues[Queue::Window as usize].head;
            }
            if candidate == NIL && victim == NIL {
                victim_queue = match victim_queue {
                    Queue::Probation => Queue::Protected,
                    Queue::Protected => Queue::Window,
                    _ => break,
                };
                victim = self.queues[victim_queue as usize].head;
                passes = self.queues[victim_queue as usize].len;
                continue;
            }
            if victim == NIL {
                let evict = candidate;
                candidate = self.prev(candidate);
                candidates -= 1;
                let verdict = retention(evict);
                self.evict_or_spare(evict, verdict, out, spares, Side::Candidate);
                continue;
            }
            // Judged once per visit: as the victim, and below as the duel's.
            let victim_retention = retention(victim);
            // No duel: no candidate, the candidate is the victim, or a pinned
            // victim is passed over (the candidate meets the next victim).
            let pass_pinned = victim_retention == Retention::Pinned && *spares > 0;
            if candidate == NIL || candidate == victim || pass_pinned {
                let evict = victim;
                victim = self.next(victim);
                let side = if candidate == evict {
                    candidates -= 1;
                    candidate = NIL;
                    Side::Candidate
                } else {
                    Side::Victim
                };
                if self.evict_or_spare(evict, victim_retention, out, spares, side) {
                    passes = passes.saturating_sub(1);
                    if passes == 0 {
                        victim = NIL;
                    }
                }
                continue;
            }
            if u64::from(self.weights.get(candidate)) > self.capacity {
                // It can never fit, pinned or not.
                let evict = candidate;
                candidate = self.prev(candidate);
                candidates -= 1;
                self.evict_from(evict, Side::Candidate, out);
                continue;
            }
            candidates -= 1;
            let candidate_retention = retention(candidate);
            let admit = match (candidate_retention, victim_retention) {
                // Exactly one is expendable: it goes.
                (Retention::Expendable, v) if v != Retention::Expendable => false,
                (c, Retention::Expendable) if c != Retention::Expendable => true,
                _ => self.admit(candidate, victim),
            };
            if admit {
                // Evicted, not spared: a pinned victim was passed over above
                // unless no spares are left.
                let evict = victim;
                victim = self.next(victim);
                self.evict_or_spare(evict, victim_retention, out, spares, Side::Victim);
                candidate = self.prev(candidate);
            } else {
                let evict = candidate;
                candidate = self.prev(candidate);
                self.evict_or_spare(evict, candidate_retention, out, spares, Side::Candidate);
            }
        }
    }

    fn admit(&mut self, candidate: u32, victim: u32) -> bool {
        let candidate_freq = self.sketch.frequency(self.nodes[candidate as usize].hash);
        let victim_freq = self.displaced_frequency(candidate, victim, candidate_freq);
        let by_margin = candidate_freq > victim_freq.saturating_add(self.margin.margin());
        let admitted = by_margin
            || (candidate_freq >= ADMIT_HASHDOS_THRESHOLD
                && self.lottery_open(candidate, victim)
                && {
                    // Caffeine's hash-flooding defence: a warm candidate
                    // that lost is admitted 1 time in 128, once the lottery
                    // is open.
                    self.rng ^= self.rng << 13;
                    self.rng ^= self.rng >> 7;
                    self.rng ^= self.rng << 17;
                    self.rng & 127 == 0
                });
        let narrow = candidate_freq == victim_freq.saturating_add(1);
        // Scored only when the margin decided (not the lottery) and both
        // sides are in probation: there the chosen side's next hit is a
        // probation hit, which is what the score counts.
        if narrow
            && admitted == by_margin
            && self.nodes[candidate as usize].queue() == Queue::Probation
            && self.nodes[victim as usize].queue() == Queue::Probation
        {
            let (candidate_hash, victim_hash) = (
                self.nodes[candidate as usize].hash,
                self.nodes[victim as usize].hash,
            );
            if admitted {
                self.margin.narrow_duel(candidate_hash, victim_hash);
            } else {
                self.margin.narrow_duel(victim_hash, candidate_hash);
            }
        }
        admitted
    }

    /// Whether a candidate that did not out-count `victim` may be admitted
    /// at random: after `RANDOM_ADMISSION_STREAK` duels in a row won by
    /// `victim`, or at once when the candidate outweighs it. Counts this
    /// duel into the streak.
    fn lottery_open(&mut self, candidate: u32, victim: u32) -> bool {
        if self.weights.get(candidate) > self.weights.get(victim) {
            return true;
        }
        if self.duel_victim == victim {
            self.duel_streak = self.duel_streak.saturating_add(1);
        } else {
            self.duel_victim = victim;
            self.duel_streak = 1;
        }
        self.duel_streak > RANDOM_ADMISSION_STREAK
    }

    /// The summed frequency of the victims, from `victim` on, whose weight
    /// together covers the candidate's, stopping as soon as the sum reaches
    /// `candidate_freq` (the candidate has lost by then). With unit weights
    /// that is the victim's own frequency, as in Caffeine. With weights it
    /// is moka's rule: a candidate heavier than the victim must be more
    /// popular than all the entries it would displace together, not just
    /// than the first (Caffeine compares it with one victim at a time, so a
    /// large, modestly popular object displaced many popular small ones).
    /// On synthetic weighted Zipf traces this raised hit ratios by 0.2 to
    /// 3 pp (BENCHMARKS.md, "Weighted traces").
    fn displaced_frequency(&self, candidate: u32, victim: u32, candidate_freq: u8) -> u8 {
        let needed = self.weights.get(candidate);
        let (mut freq, mut weight, mut node, mut walked) = (0u8, 0u32, victim, 0);
        while node != NIL && node != candidate && walked < MAX_DISPLACED {
            let n = &self.nodes[node as usize];
            freq = freq.saturating_add(self.sketch.frequency(n.hash));
            weight = weight.saturating_add(self.weights.get(node));
            if weight >= needed || freq >= candidate_freq {
                break;
            }
            node = n.next();
            walked += 1;
        }
        freq
    }

    // ---- adaptation ---------------------------------------------------------

    /// Adapts the window after an insert; `full` says whether the insert
    /// took the weight over the capacity.
    fn climb(&mut self, full: bool) {
        if self.pinned_window {
            // The large configuration: the window stays where it was put.
            self.demote_from_protected();
            return;
        }
        if !self.filled {
            // Until the cache first comes within a step of full, nothing
            // the climber counts is what a step would change: with room
            // left, a smaller main would evict nothing, so its zone's hits
            // are no loss, and no candidate has lost a duel yet. The first
            // period starts once it is that full, or once an insert takes
            // it over the capacity (entries heavier than a step can leave
            // the weight more than a step short after every eviction), for
            // the admission margin's scorekeeping too (climber docs,
            // "Counting from the fill").
            if !full && self.weight().saturating_add(self.step) < self.capacity {
                self.demote_from_protected();
                return;
            }
            self.filled = true;
            self.climber.restart_period(0);
            self.margin.end_period();
        }
        let entries = self.period_entries();
        if self.climber.period_ended(entries) {
            let amount = self.climber.adjustment(entries, self.shape());
            self.margin.end_period();
            self.demote_from_protected();
            self.move_window(amount);
        } else if self.climber.early_look_due(entries) {
            let amount = self.climber.early_adjustment(entries, self.shape());
            self.demote_from_protected();
            if self.move_window(amount) > 0 {
                // A new period, for the margin's scorekeeping too. (A move
                // the window's limits refused leaves the period running.)
                self.climber.restart_period(amount);
                self.margin.end_period();
            }
        } else {
            // Most calls: only the queues' shape is kept.
            self.demote_from_protected();
        }
    }

    /// Moves `amount` of weight into (positive) or out of (negative) the
    /// window, as far as its limits allow; returns the weight moved.
    fn move_window(&mut self, amount: i64) -> u64 {
        match amount.signum() {
            1 => self.increase_window(amount.unsigned_abs()),
            -1 => self.decrease_window(amount.unsigned_abs()),
            _ => 0,
        }
    }

    /// What the climber needs to know of the queues.
    fn shape(&self) -> Shape {
        Shape {
            len: self.len,
            weight: self.weight(),
            step: self.step,
        }
    }

    /// Entries the climber's periods are sized for: those the sketch ages
    /// for, but at least `MIN_PERIOD_ENTRIES` when the table was sized for
    /// more (only weighted caches: with unit weights both are the
    /// capacity).
    fn period_entries(&self) -> usize {
        self.sketch
            .tracked()
            .max(MIN_PERIOD_ENTRIES)
            .min(self.sketch.capacity())
    }

    /// Sizes the sketch's aging (and so the climber's periods) for the
    /// entries that fit at the current mean weight: the capacity itself
    /// with unit weights, about `capacity × len / weight` with weighted
    /// entries.
    fn retrack(&mut self) {
        let weight = self.weight();
        let entries = if weight == 0 {
            self.sketch.capacity()
        } else {
            (u128::from(self.capacity) * self.len as u128 / u128::from(weight))
                .try_into()
                .unwrap_or(usize::MAX)
        };
        self.sketch.track(entries);
    }

    fn demote_from_protected(&mut self) {
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            if self.queues[Queue::Protected as usize].weight <= self.protected_max {
                break;
            }
            let demoted = self.queues[Queue::Protected as usize].head;
            if demoted == NIL {
                break;
            }
            self.move_to_tail(demoted, Queue::Probation);
        }
    }

    /// Returns the weight moved into the window's share.
    fn increase_window(&mut self, amount: u64) -> u64 {
        if self.protected_max == 0 {
            return 0;
        }
        let granted = amount.min(self.protected_max);
        let mut quota = granted;
        self.protected_max -= quota;
        self.window_max += quota;
        self.demote_from_protected();
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            let mut candidate = self.queues[Queue::Probation as usize].head;
            if candidate == NIL || quota < u64::from(self.weights.get(candidate)) {
                candidate = self.queues[Queue::Protected as usize].head;
            }
            if candidate == NIL {
                break;
            }
            let weight = u64::from(self.weights.get(candidate));
            if quota < weight {
                break;
            }
            quota -= weight;
            self.move_to_tail(candidate, Queue::Window);
        }
        self.protected_max += quota;
        self.window_max -= quota;
        granted - quota
    }

    /// Returns the weight moved out of the window's share.
    fn decrease_window(&mut self, amount: u64) -> u64 {
        if self.window_max <= 1 {
            return 0;
        }
        let granted = amount.min(self.window_max - 1);
        let mut quota = granted;
        self.protected_max += quota;
        self.window_max -= quota;
        for _ in 0..QUEUE_TRANSFER_THRESHOLD {
            let candidate = self.queues[Queue::Window as usize].head;
            if candidate == NIL {
                break;
            }
            let weight = u64::from(self.weights.get(candidate));
            if quota < weight {
                break;
            }
            quota -= weight;
            self.move_to_tail(candidate, Queue::Probation);
            self.climber.window_departed();
        }
        self.protected_max -= quota;
        self.window_max += quota;
        granted - quota
    }

    // ---- introspection ------------------------------------------------------

    /// Heap bytes of the policy's metadata.
    pub(crate) fn bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.weights.bytes()
            + self.sketch.bytes()
            + self.climber.bytes()
            + self.margin.bytes()
            + self.shadows.as_ref().map_or(0, |shadows| shadows.bytes())
    }

    /// Recomputes queue lengths, weights and links from scratch.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut len = 0;
        for queue in [Queue::Window, Queue::Probation, Queue::Protected] {
            let q = &self.queues[queue as usize];
            let (mut count, mut weight, mut prev, mut node) = (0usize, 0u64, NIL, q.head);
            while node != NIL {
                let n = &self.nodes[node as usize];
                if n.queue() != queue || n.prev() != prev {
                    return Err(format!(
                        "node {node} has bad queue or prev link in {queue:?}"
                    ));
                }
                count += 1;
                weight += u64::from(self.weights.get(node));
                if count > self.nodes.len() {
                    return Err(format!("cycle in {queue:?}"));
                }
                prev = node;
                node = n.next();
            }
            if prev != q.tail || count != q.len || weight != q.weight {
                return Err(format!(
                    "{queue:?}: tail {} len {} weight {} but walked tail {prev} len {count} weight {weight}",
                    q.tail, q.len, q.weight
                ));
            }
            len += count;
        }
        let resident = self
            .nodes
            .iter()
            .filter(|n| n.queue() != Queue::Free)
            .count();
        if len != self.len || resident != self.len {
            return Err(format!(
                "len {} but queues hold {len} and {resident} nodes are resident",
                self.len
            ));
        }
        if self.window_max + self.protected_max > self.capacity {
            return Err("window and protected maxima exceed the capacity".into());
        }
        self.validate_zones()
    }

    /// Recomputes each queue's zone (see [`Deque`]) and compares.
    fn validate_zones(&self) -> Result<(), String> {
        for queue in [Queue::Window, Queue::Probation, Queue::Protected] {
            let q = &self.queues[queue as usize];
            let (mut before, mut zone_weight, mut zone_end) = (0u64, 0u64, NIL);
            let mut node = q.head;
            while node != NIL {
                let n = &self.nodes[node as usize];
                let expected = zoned(queue) && before < self.step;
                if n.in_zone() != expected {
                    return Err(format!(
                        "node {node} in {queue:?} with {before} before it: zone bit {}",
                        n.in_zone()
                    ));
                }
                let weight = u64::from(self.weights.get(node));
                if expected {
                    zone_weight += weight;
                    zone_end = node;
                }
                before += weight;
                node = n.next();
            }
            if (zone_end, zone_weight) != (q.zone_end, q.zone_weight) {
                return Err(format!(
                    "{queue:?}: zone ends at {} weighing {}, walked {zone_end} weighing {zone_weight}",
                    q.zone_end, q.zone_weight
                ));
            }
        }
        if let Some(i) = self
            .nodes
            .iter()
            .position(|n| n.queue() == Queue::Free && n.in_zone())
        {
            return Err(format!("free node {i} has the zone bit"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test key's hash: the key scattered by a multiplicative hash, so
    /// that neighbouring keys land in different sketch blocks.
    fn scatter(key: u32) -> u32 {
        key.wrapping_mul(2_654_435_761)
    }

    /// Inserts `keys` (hashes scattered) at `weight` each, evicting after
    /// every insert as a full cache does.
    fn insert_evicting(
        policy: &mut Policy,
        keys: std::ops::Range<u32>,
        weight: u32,
        victims: &mut Vec<Victim>,
    ) {
        for i in keys {
            policy.insert(i, scatter(i), weight);
            policy.evict(victims, |_| Retention::Normal);
        }
    }

    fn run(policy: &mut Policy, index: u32, victims: &mut Vec<Victim>) {
        policy.insert(index, scatter(index), 1);
        policy.evict(victims, |_| Retention::Normal);
        policy.validate().unwrap();
    }

    /// Entries that weigh 0 never take the weight over the capacity; the
    /// entry bound evicts them (and any others) by count, so a shard never
    /// runs out of entry indices from live entries alone.
    #[test]
    fn weightless_entries_are_evicted_by_count() {
        let mut p = Policy::new(1_000);
        p.max_entries = 500;
        let mut victims = Vec::new();
        insert_evicting(&mut p, 0..2_000, 0, &mut victims);
        assert_eq!(p.len(), 500);
        assert_eq!(p.weight(), 0);
        assert_eq!(victims.len(), 1_500, "one victim per entry over the bound");
        p.validate().unwrap();
        // Unit weights below the capacity: the count bound alone evicts.
        victims.clear();
        let mut p = Policy::new(1_000_000);
        p.max_entries = 300;
        insert_evicting(&mut p, 0..1_000, 1, &mut victims);
        assert_eq!((p.len(), p.weight()), (300, 300));
        p.validate().unwrap();
    }

    #[test]
    fn evict_one_takes_main_first_then_the_window() {
        let mut p = Policy::new(100);
        let mut victims = Vec::new();
        for i in 0..50 {
            p.insert(i, scatter(i), 1);
        }
        p.evict(&mut victims, |_| Retention::Normal);
        assert!(victims.is_empty(), "50 of 100: nothing to evict");
        // Window 1 entry at most; the rest went to probation.
        let mut taken = Vec::new();
        while p.evict_one(&mut victims) {
            taken.push(victims.pop().map(|v| v.index));
            p.validate().unwrap();
        }
        assert_eq!(taken.len(), 50);
        assert_eq!(p.len(), 0);
        assert!(!p.evict_one(&mut victims), "an empty policy evicts nothing");
    }

    #[test]
    fn new_entries_enter_the_window_even_when_protected_is_empty() {
        // Once the window has taken all of protected (protected_max 0), a
        // new entry must still go to the window's most-recent end; this
        // port once sent it to the LRU end, where the next eviction took
        // it first.
        let mut p = Policy::new(100);
        let mut victims = Vec::new();
        for i in 0..100u32 {
            run(&mut p, i, &mut victims);
        }
        p.increase_window(p.protected_max);
        assert_eq!(p.protected_max, 0);
        run(&mut p, 1000, &mut victims);
        assert_eq!(p.queues[Queue::Window as usize].tail, 1000);
        run(&mut p, 1001, &mut victims);
        assert!(
            victims.iter().all(|v| v.index < 1000),
            "a new entry was evicted at once: {victims:?}"
        );
        p.validate().unwrap();
    }

    #[test]
    fn a_heavy_candidate_must_beat_the_victims_it_displaces_together() {
        let mut p = Policy::new(100);
        let mut victims = Vec::new();
        let small = scatter;
        insert_evicting(&mut p, 0..100, 1, &mut victims);
        for _ in 0..3 {
            (0..100u32).for_each(|i| {
                p.access(i, small(i));
            });
        }
        // Promotions overfilled protected; an eviction pass demotes the
        // overflow, so probation holds victims for the duel.
        p.evict(&mut victims, |_| Retention::Normal);
        assert!(victims.is_empty() && p.queues[Queue::Probation as usize].len >= 10);
        // A weight-10 candidate more popular than any one small entry (5
        // against 4) but not than the ten it would displace.
        let heavy = 0xdead_beef;
        (0..4).for_each(|_| p.sketch.increment(heavy));
        p.insert(100, heavy, 10);
        p.evict(&mut victims, |_| Retention::Normal);
        assert!(
            victims.iter().any(|v| v.index == 100),
            "the heavy candidate was admitted: {victims:?}"
        );
        assert!(p.weight() <= 100);
        p.validate().unwrap();
    }

    #[test]
    fn holds_capacity_and_keeps_frequent_entries() {
        let mut p = Policy::new(10);
        let mut victims = Vec::new();
        let mut resident = std::collections::HashSet::new();
        for i in 0..10u32 {
            run(&mut p, i, &mut victims);
            resident.insert(i);
        }
        // Make 0..5 popular.
        for _ in 0..5 {
            for i in 0..5u32 {
                p.access(i, scatter(i));
            }
        }
        // A scan of one-hit wonders.
        for i in 100..200u32 {
            run(&mut p, i, &mut victims);
            resident.insert(i);
            for v in victims.drain(..) {
                resident.remove(&v.index);
            }
            assert!(p.weight() <= 10);
            assert_eq!(resident.len(), p.len());
        }
        for i in 0..5u32 {
            assert!(resident.contains(&i), "popular entry {i} survived the scan");
        }
    }

    /// A victim (index 0) counted 15 and a warm candidate (index 1)
    /// counted `ADMIT_HASHDOS_THRESHOLD`, both of weight 1.
    fn inflated_victim() -> Policy {
        let mut p = Policy::new(100);
        let hash = scatter;
        for i in 0..2u32 {
            p.insert(i, hash(i), 1);
        }
        (0..20).for_each(|_| p.sketch.increment(hash(0)));
        (1..ADMIT_HASHDOS_THRESHOLD).for_each(|_| p.sketch.increment(hash(1)));
        assert_eq!(p.sketch.frequency(hash(0)), 15);
        assert!(p.sketch.frequency(hash(1)) >= ADMIT_HASHDOS_THRESHOLD);
        p
    }

    #[test]
    fn a_victim_that_keeps_winning_unused_still_loses_a_duel_at_random() {
        // The hash-flooding defence: an inflated victim cannot keep every
        // warm candidate out, only for its first streak of duels.
        let mut p = inflated_victim();
        for duel in 0..RANDOM_ADMISSION_STREAK {
            assert!(!p.admit(1, 0), "admitted within the streak, duel {duel}");
        }
        // 1 in 128 from here on: 10,000 duels all lost has odds of ~1e-34.
        assert!((0..10_000).any(|_| p.admit(1, 0)));
    }

    #[test]
    fn a_victim_used_between_duels_is_never_lost_at_random() {
        // In a loop the victim is the entry used next: its streak restarts.
        let mut p = inflated_victim();
        for _ in 0..100 {
            for _ in 0..RANDOM_ADMISSION_STREAK {
                assert!(!p.admit(1, 0));
            }
            assert!(p.access(0, scatter(0)));
        }
        p.validate().unwrap();
    }

    #[test]
    fn stale_access_reports_are_ignored() {
        let mut p = Policy::new(4);
        let mut victims = Vec::new();
        run(&mut p, 0, &mut victims);
        p.access(0, 12345); // wrong hash: slot reused by another key
        p.access(7, 0); // never resident
        p.validate().unwrap();
    }

    /// Inserts `index` and evicts with `retention`, returning the victims.
    fn insert_judged(p: &mut Policy, index: u32, retention: impl Fn(u32) -> Retention) -> Vec<u32> {
        let mut victims = Vec::new();
        p.insert(index, scatter(index), 1);
        p.evict(&mut victims, retention);
        p.validate().unwrap();
        assert!(p.weight() <= p.capacity());
        victims.into_iter().map(|v| v.index).collect()
    }

    #[test]
    fn pinned_entries_survive_a_scan_of_more_frequent_entries() {
        let mut p = Policy::new(20);
        let pinned = |i: u32| {
            if i < 10 {
                Retention::Pinned
            } else {
                Retention::Normal
            }
        };
        for i in 0..10 {
            insert_judged(&mut p, i, pinned);
        }
        for i in 100..1_000u32 {
            let victims = insert_judged(&mut p, i, pinned);
            assert!(
                victims.iter().all(|&v| v >= 10),
                "evicted pinned {victims:?}"
            );
            // Make the scan look popular: it would win every duel.
            for _ in 0..3 {
                p.access(i, scatter(i));
            }
        }
        for i in 0..10 {
            assert!(p.is_resident(i));
        }
    }

    proptest::proptest! {
        /// The window's and probation's zones (their step of oldest
        /// entries, whose hits the climber counts as a step's loss) stay
        /// exact through every way entries enter, move and leave: inserts,
        /// hits, evictions, window moves, removals, replacements with a new
        /// weight and demotions to probation's head (`validate` walks the
        /// queues and recomputes them).
        #[test]
        fn zones_stay_exact_through_any_history(
            ops in proptest::collection::vec((0..48u32, 0..7u8, 0..5u32), 1..600),
        ) {
            // A step of 3 weight units: zones of a few entries, crossed and
            // refilled all the time. Weight 0 is a weigher's right.
            let mut p = Policy::new(48);
            let mut victims = Vec::new();
            for (key, op, weight) in ops {
                if p.is_resident(key) {
                    match op {
                        0 => { p.access(key, scatter(key)); }
                        1 => { p.remove(key); }
                        2 => p.replace(key, key, weight),
                        3 => p.demote(key),
                        // The climber's moves, by a step or more.
                        4 => { p.move_window(i64::from(weight) * 3); }
                        5 => { p.move_window(-i64::from(weight) * 3); }
                        _ => {
                            p.access(key, scatter(key));
                            p.access(key, scatter(key));
                        }
                    }
                } else {
                    p.insert(key, scatter(key), weight);
                }
                victims.clear();
                p.evict(&mut victims, |_| Retention::Normal);
                p.validate().map_err(proptest::test_runner::TestCaseError::fail)?;
                proptest::prop_assert!(p.weight() <= p.capacity());
            }
        }

        /// A pinned entry is evicted only when nothing unpinned is left to
        /// evict (the capacity bound then wins), whatever the mix of
        /// inserts, hits and weights.
        #[test]
        fn pinned_entries_go_only_when_nothing_else_can(
            ops in proptest::collection::vec((0..64u32, 0..4u8, 1..4u32), 1..400),
        ) {
            let mut p = Policy::new(24);
            let pinned = |i: u32| if i % 4 == 0 { Retention::Pinned } else { Retention::Normal };
            let hash = scatter;
            let mut victims = Vec::new();
            for (key, op, weight) in ops {
                if p.is_resident(key) {
                    // Hits: op 0..4 times.
                    for _ in 0..op {
                        p.access(key, hash(key));
                    }
                    continue;
                }
                p.insert(key, hash(key), weight);
                p.evict(&mut victims, pinned);
                p.validate().map_err(proptest::test_runner::TestCaseError::fail)?;
                proptest::prop_assert!(p.weight() <= p.capacity());
                if victims.iter().any(|v| pinned(v.index) == Retention::Pinned) {
                    let mut resident = Vec::new();
                    p.resident_indices(&mut resident);
                    proptest::prop_assert!(
                        resident.iter().all(|&i| pinned(i) == Retention::Pinned),
                        "evicted {:?} while unpinned {:?} stayed",
                        victims,
                        resident.iter().filter(|&&i| pinned(i) != Retention::Pinned).collect::<Vec<_>>()
                    );
                }
                victims.clear();
            }
        }
    }

    #[test]
    fn the_capacity_holds_when_everything_is_pinned() {
        let mut p = Policy::new(10);
        for i in 0..100 {
            let victims = insert_judged(&mut p, i, |_| Retention::Pinned);
            assert!(i < 10 || victims.len() == 1, "{i}: {victims:?}");
        }
        assert_eq!(p.len(), 10);
    }

    #[test]
    fn expendable_entries_lose_every_duel() {
        // Without hints, TinyLFU keeps ten entries read three times
        // against a scan of one-hit wonders...
        let popular = |p: &mut Policy| {
            for i in 0..10 {
                insert_judged(p, i, |_| Retention::Normal);
            }
            for _ in 0..3 {
                for i in 0..10u32 {
                    p.access(i, scatter(i));
                }
            }
        };
        let mut p = Policy::new(10);
        popular(&mut p);
        for i in 100..200 {
            insert_judged(&mut p, i, |_| Retention::Normal);
        }
        let kept = (0..10).filter(|&i| p.is_resident(i)).count();
        assert!(kept >= 7, "kept {kept}");
        // ...but loses them when they are demoted and expendable.
        let mut p = Policy::new(10);
        popular(&mut p);
        for i in 0..10 {
            p.demote(i);
        }
        let expendable = |i: u32| {
            if i < 10 {
                Retention::Expendable
            } else {
                Retention::Normal
            }
        };
        for i in 100..120 {
            insert_judged(&mut p, i, expendable);
        }
        assert_eq!((0..10).filter(|&i| p.is_resident(i)).count(), 0);
    }

    #[test]
    fn an_entry_much_heavier_than_the_resident_ones_skips_the_window() {
        // Window 10 of 1,000 weight units; residents weigh 2 each.
        let mut p = Policy::new(1_000);
        let mut victims = Vec::new();
        insert_evicting(&mut p, 0..100, 2, &mut victims);
        let window = |p: &Policy| p.queues[Queue::Window as usize];
        // 4 is twice the mean: it enters the window's recent end.
        p.insert(100, 7, 4);
        assert_eq!(window(&p).tail, 100);
        // 5 fits the window but is more than twice the mean: it goes to the
        // window's LRU end, the next candidate for admission.
        p.insert(101, 11, 5);
        assert_eq!(window(&p).head, 101);
        p.evict(&mut victims, |_| Retention::Normal);
        p.validate().unwrap();

        // Unit weights never count as heavy.
        let mut unit = Policy::new(1_000);
        for i in 0..100u32 {
            unit.insert(i, scatter(i), 1);
            assert_eq!(window(&unit).tail, i);
            unit.evict(&mut victims, |_| Retention::Normal);
        }
    }

    #[test]
    fn a_full_power_of_two_shard_keeps_its_sketch() {
        // 1,024 entries fill the sketch's capacity; the 1,025th is over it
        // only until the eviction that follows, which must not grow the
        // sketch (growing forgets every count).
        let mut p = Policy::new(1_024);
        let mut victims = Vec::new();
        for i in 0..1_024u32 {
            p.insert(i, scatter(i), 1);
        }
        p.sketch.increment(7);
        insert_evicting(&mut p, 1_024..3_000, 1, &mut victims);
        assert_eq!(p.sketch.capacity(), 1_024);
        assert!(p.sketch.frequency(7) > 0, "counts survived");
    }

    #[test]
    fn a_grown_sketch_stays_full_width() {
        // A unit-weight shard larger than the first sketch: the sketch
        // grows to the shard's capacity, one word per entry.
        let capacity = 100_000;
        let mut p = Policy::new(capacity);
        let mut victims = Vec::new();
        insert_evicting(&mut p, 0..capacity as u32 + 10, 1, &mut victims);
        assert_eq!(p.sketch.bytes() / 8, capacity as usize);
        p.validate().unwrap();
    }

    #[test]
    fn a_weighted_sketch_grows_full_width_in_powers_of_two() {
        // Weight 2 per entry in a large byte capacity: the sketch starts at
        // 65,536 entries and grows to the next power of two of the count.
        let mut p = Policy::new(1 << 30);
        for i in 0..70_000u32 {
            p.insert(i, scatter(i), 2);
        }
        assert_eq!(p.sketch.capacity(), 1 << 17);
        assert_eq!(p.sketch.bytes() / 8, 1 << 17);
        p.validate().unwrap();
    }

    #[test]
    fn the_sketch_ages_for_the_entries_that_fit() {
        // A byte-weighted cache of 1 MiB holding 4 KiB entries: 256 fit,
        // though the sketch's table was sized for 65,536.
        let mut p = Policy::new(1 << 20);
        assert_eq!(p.sketch.capacity(), 1 << 16);
        let mut victims = Vec::new();
        insert_evicting(&mut p, 0..2_000, 4096, &mut victims);
        p.validate().unwrap();
        assert_eq!(p.sketch.tracked(), 256);
        assert_eq!(p.sketch.sample_size(), 2_560);
        // The climber's periods keep their floor.
        assert_eq!(p.period_entries(), MIN_PERIOD_ENTRIES);

        // With unit weights nothing moves: the capacity is the entry count.
        let mut unit = Policy::new(1_000);
        insert_evicting(&mut unit, 0..2_000, 1, &mut victims);
        assert_eq!(unit.sketch.tracked(), 1_024);
        assert_eq!(unit.sketch.sample_size(), 10_240);
        assert_eq!(unit.period_entries(), 1_024);
    }

    #[test]
    fn weighted_entries_fit_capacity() {
        let mut p = Policy::new(100);
        let mut victims = Vec::new();
        for i in 0..200u32 {
            p.insert(i, i.wrapping_mul(40_503), 1 + i % 37);
            p.evict(&mut victims, |_| Retention::Normal);
            p.validate().unwrap();
            assert!(p.weight() <= 100);
        }
    }

    /// A policy driven by key requests, as a cache would drive it: a hit is
    /// an access, a miss an insert and an eviction.
    struct Sim {
        policy: Policy,
        index_of: std::collections::HashMap<u32, u32>,
        key_of: Vec<u32>,
        free: Vec<u32>,
        victims: Vec<Victim>,
    }

    impl Sim {
        fn new(capacity: u64) -> Self {
            Self {
                policy: Policy::new(capacity),
                index_of: Default::default(),
                key_of: Vec::new(),
                free: Vec::new(),
                victims: Vec::new(),
            }
        }

        /// Clears the policy and forgets every key, as `Cache::clear` does.
        fn clear(&mut self) {
            self.policy.clear();
            self.index_of.clear();
            self.key_of.clear();
            self.free.clear();
        }

        fn request(&mut self, key: u32) {
            let hash = scatter(key);
            if let Some(&index) = self.index_of.get(&key) {
                assert!(self.policy.access(index, hash));
                return;
            }
            let index = self.free.pop().unwrap_or_else(|| {
                self.key_of.push(0);
                self.key_of.len() as u32 - 1
            });
            self.key_of[index as usize] = key;
            self.index_of.insert(key, index);
            self.policy.insert(index, hash, 1);
            self.policy.evict(&mut self.victims, |_| Retention::Normal);
            for v in self.victims.drain(..) {
                self.index_of.remove(&self.key_of[v.index as usize]);
                self.free.push(v.index);
            }
        }
    }

    #[test]
    fn the_window_grows_for_short_reuse_and_stays_small_on_a_loop() {
        // Recency: every key comes back once, 40 new keys after it first
        // came (further than the 10-entry window reaches), after a warm-up
        // that filled main with keys read twice (so newcomers lose duels).
        let mut sim = Sim::new(1000);
        for _ in 0..2 {
            (0..1000).for_each(|k| sim.request(k));
        }
        let start = sim.policy.window_max;
        for k in 10_000..60_000u32 {
            sim.request(k);
            if k >= 10_040 {
                sim.request(k - 40);
            }
        }
        assert!(
            sim.policy.window_max >= start + 40,
            "window {} -> {}",
            start,
            sim.policy.window_max
        );
        sim.policy.validate().unwrap();

        // A loop 5% longer than the cache: rejected candidates do come back
        // within a step, but a larger window would cost main space as many
        // hits, which the loss estimate sees.
        let mut sim = Sim::new(1000);
        let start = sim.policy.window_max;
        for _ in 0..100 {
            (0..1050).for_each(|k| sim.request(k));
        }
        assert!(
            sim.policy.window_max <= start,
            "window {} -> {}",
            start,
            sim.policy.window_max
        );
        sim.policy.validate().unwrap();
    }

    #[test]
    fn the_climber_counts_from_the_fill() {
        // While the cache fills, every key comes back once when it is
        // probation's oldest entry: hits on the zone a smaller main would
        // lose once full, but nothing is evicted yet, so they are no loss.
        let mut sim = Sim::new(1000);
        let start = sim.policy.window_max;
        for k in 0..880u32 {
            sim.request(k);
            if k >= 100 {
                sim.request(k - 100);
            }
        }
        assert!(
            !sim.policy.filled,
            "880 entries: 58 short of a step from full"
        );
        // Then recency: each new key comes back once, 20 keys later: 40
        // window departures (the return is a miss too), further than the
        // 10-entry window reaches and within a step (62) of it.
        let mut requests = 0;
        let mut k = 10_000u32;
        while sim.policy.window_max <= start && requests < 20_000 {
            sim.request(k);
            sim.request(k - 20);
            k += 1;
            requests += 2;
        }
        assert!(sim.policy.filled);
        // Counted from the fill, the climber grows at its first early look:
        // half the 1,024 tracked entries into the period, about 600
        // requests of recency. Counting the fill's 780 zone hits against
        // growth, its first period (3,072 requests) stayed and it grew at
        // the second's first look, after 1,924.
        assert!(
            requests < 1_200,
            "the window grew only after {requests} requests of recency"
        );
        sim.policy.validate().unwrap();
    }

    #[test]
    fn heavy_entries_fill_the_cache_when_they_first_overflow_it() {
        // Entries of 300 in 1,000 leave the weight at 900 after every
        // eviction, more than a step (62) short of the capacity: the first
        // insert over the capacity counts as the fill.
        let mut p = Policy::new(1_000);
        let mut victims = Vec::new();
        insert_evicting(&mut p, 0..3, 300, &mut victims);
        assert!(!p.filled, "900 of 1,000: not full yet");
        for i in 3..50u32 {
            insert_evicting(&mut p, i..i + 1, 300, &mut victims);
            assert!(p.filled, "an insert over the capacity fills it");
        }
        p.validate().unwrap();
    }

    #[test]
    fn a_cleared_policy_waits_for_the_next_fill() {
        let mut sim = Sim::new(1000);
        (0..2_000).for_each(|k| sim.request(k));
        assert!(sim.policy.filled);
        sim.clear();
        assert!(!sim.policy.filled);
        // A refill by recency that would grow the window once counted: no
        // move until the cache is within a step of full again.
        let window = sim.policy.window_max;
        for k in 10_000..10_450u32 {
            sim.request(k);
            sim.request(k - 20);
        }
        assert!(!sim.policy.filled);
        assert_eq!(sim.policy.window_max, window);
        sim.policy.validate().unwrap();
    }

    /// Hits of `rounds` passes over a loop of `len` keys, counted after the
    /// first `warm` passes.
    fn loop_hits(sim: &mut Sim, len: u32, rounds: u32, warm: u32) -> u64 {
        let mut hits = 0;
        for round in 0..rounds {
            for k in 0..len {
                let hit = sim.index_of.contains_key(&k);
                sim.request(k);
                if round >= warm && hit {
                    hits += 1;
                }
            }
        }
        hits
    }

    #[test]
    fn a_loop_longer_than_the_aging_period_turns_on_the_admission_margin() {
        // 100 entries (aging every 10 × 128 increments) against a loop of
        // 2,000 keys, as the `scan` trace: under Caffeine's rule every
        // candidate out-counts its victim by the one access that brought it
        // in, the resident set churns and nothing hits. Returning rejects
        // never outnumber hits on kept victims, so the margin goes to 1 and
        // a stable resident set hits about 100 of every 2,000.
        let mut sim = Sim::new(100);
        assert_eq!(sim.policy.margin.margin(), 0, "Caffeine's rule at first");
        let hits = loop_hits(&mut sim, 2_000, 30, 10);
        assert_eq!(sim.policy.margin.margin(), 1);
        // Bélády: 99 of 2,000 per pass, 1,980 over 20 passes.
        assert!(hits >= 1_500, "{hits} hits over 20 passes");
        sim.policy.validate().unwrap();
    }

    #[test]
    fn skewed_independent_requests_keep_caffeines_rule() {
        // Zipf-like popularity: key k is requested with weight 1 / (k + 1);
        // narrow admissions of warm keys pay off there, so a margin started
        // at 1 returns to 0 and stays there.
        let mut sim = Sim::new(1_000);
        sim.policy.margin = AdaptiveMargin::new(sim.policy.sketch.capacity(), 1);
        let weights: Vec<f64> = (0..100_000).map(|k| 1.0 / f64::from(k + 1)).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = Vec::with_capacity(weights.len());
        let mut acc = 0.0;
        for w in &weights {
            acc += w / total;
            cumulative.push(acc);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut zero_periods = 0;
        for step in 0..400_000u32 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let u = (rng >> 11) as f64 / (1u64 << 53) as f64;
            let key = cumulative.partition_point(|&c| c < u) as u32;
            sim.request(key);
            if step % 4_000 == 0 && step >= 200_000 {
                zero_periods += u32::from(sim.policy.margin.margin() == 0);
            }
        }
        assert!(
            zero_periods >= 40,
            "margin 0 at {zero_periods} of 50 samples"
        );
        sim.policy.validate().unwrap();
    }
}
