//! Registered agents: ids with generations, configurations, lifecycle
//! states, statistics counters and event listeners.
//!
//! An agent's record lives in a slot that is reused after the agent is
//! terminated; the slot's generation then advances, so an old handle (which
//! remembers the generation it was issued for) gets
//! [`AgentError::Terminated`] instead of acting as the slot's next agent.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::removal::RemovalCause;
use crate::retention::Retention;
use crate::sync::{
    AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Mutex, MutexGuard, Ordering, RwLock,
};
use crate::thread_token;

/// An agent may hold up to this many times its fair share while the cache is
/// full (more only within its reservation): beyond it, its inserts are
/// refused and its entries are the first to go. Fair shares are averages;
/// agents whose working sets differ by 2× should not be throttled, one that
/// streams through ten times the cache should.
pub(crate) const OVER_SHARE_FACTOR: u64 = 2;

/// Each agent's every this many inserts (loads included), its inserting
/// thread recounts the claimants of the pool (`Registry::recount_claimants`),
/// so fair shares follow agents that start inserting. A recount visits
/// every slot, about 2 ns each warm and uncontended: at 10,000 agents 21 µs,
/// or 20 ns per insert at one recount per 1,024 (`cargo bench -p helios-l1
/// --bench memory`), a few percent of an insert's cost; at 850 agents under
/// 2 ns per insert. It holds the registry's name lock meanwhile, and is
/// skipped when that lock is busy.
const RECOUNT_EVERY: u64 = 1024;

/// Where slot `index` is within its chunk: below [`CHUNK_SLOTS`], so
/// indexing a [`SlotChunk`] with it needs no bounds check (once inlined).
#[inline(always)]
pub(crate) fn slot_offset(index: u32) -> usize {
    index as usize % CHUNK_SLOTS
}

/// One chunk of slots, as a fixed-size array: a handle holds a thin `Arc`
/// to it and reaches its slot without a length check.
pub(crate) type SlotChunk<K> = [Slot<K>; CHUNK_SLOTS];

/// Most agents registered at once.
pub const MAX_AGENTS: usize = CHUNKS * CHUNK_SLOTS;
/// Slots are allocated 256 at a time and never move, so a handle reaches its
/// slot through a fixed chunk table without a lock or a per-agent `Arc`
/// (whose 64-byte-aligned header alone would cost 64 bytes per agent).
const CHUNK_SLOTS: usize = 256;
const CHUNKS: usize = 4096;

/// A set with a zero-sized hasher (SipHash, keyed by nothing): private-key
/// bookkeeping is off the hit path, and a seeded hasher would add 8 bytes
/// to every agent.
pub(crate) type KeySet<K> =
    HashSet<K, std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>>;

/// Smallest private-key set that is pruned (see [`PrivateKeys`]).
const PRUNE_FLOOR: usize = 64;

/// One agent's private keys: every key it stored privately that may still
/// be resident, so that `terminate` can release them without a pass over
/// the cache. Keys whose entries were evicted are forgotten lazily.
#[derive(Debug)]
pub(crate) struct PrivateKeys<K> {
    keys: KeySet<K>,
    /// The length at which the next insert prunes the set (keeps only the
    /// keys still resident): twice what the last pruning kept, at least
    /// [`PRUNE_FLOOR`]. So a pruning's pass over `n` keys follows at least
    /// `n / 2` inserts (O(1) per insert, amortized), and the set holds at
    /// most about twice the private keys that were resident at its last
    /// pruning, whatever their weights. (It used to be pruned whenever it held the capacity's
    /// worth of keys: every insert rescanned it once an agent's private
    /// entries filled a unit-weight cache, and with byte weights the
    /// threshold, in bytes, let evicted keys pile up.)
    prune_at: usize,
}

impl<K> Default for PrivateKeys<K> {
    fn default() -> Self {
        Self {
            keys: KeySet::default(),
            prune_at: PRUNE_FLOOR,
        }
    }
}

impl<K: Hash + Eq> PrivateKeys<K> {
    /// Records `key`, first pruning the keys for which `resident` is false
    /// if the set has reached its pruning length.
    pub(crate) fn insert(&mut self, key: K, resident: impl Fn(&K) -> bool) {
        if self.keys.len() >= self.prune_at {
            self.keys.retain(|k| resident(k));
            self.prune_at = self.keys.len().saturating_mul(2).max(PRUNE_FLOOR);
        }
        self.keys.insert(key);
    }

    pub(crate) fn remove(&mut self, key: &K) -> bool {
        self.keys.remove(key)
    }

    pub(crate) fn into_keys(self) -> KeySet<K> {
        self.keys
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// How an agent may use the cache; see [`AgentCache::register_agent`](crate::AgentCache::register_agent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentConfig {
    reserved: u64,
    /// `u64::MAX`: no cap (8 bytes instead of an `Option`'s 16).
    cap: u64,
    priority: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl AgentConfig {
    /// No reservation, no cap, priority 1.
    pub fn new() -> Self {
        Self {
            reserved: 0,
            cap: u64::MAX,
            priority: 1,
        }
    }

    /// Weight the agent is guaranteed to keep resident while it uses it.
    pub fn reserved(mut self, weight: u64) -> Self {
        self.reserved = weight;
        self
    }

    /// Weight the agent may never exceed.
    pub fn cap(mut self, weight: u64) -> Self {
        self.cap = weight;
        self
    }

    /// Share of the unreserved pool relative to other agents (at least 1).
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = priority;
        self
    }

    /// The reserved weight.
    pub fn reserved_weight(&self) -> u64 {
        self.reserved
    }

    /// The cap, if any.
    pub fn cap_weight(&self) -> Option<u64> {
        (self.cap != u64::MAX).then_some(self.cap)
    }

    /// The priority.
    pub fn priority_weight(&self) -> u32 {
        self.priority
    }

    fn validate(&self) -> Result<(), AgentError> {
        if self.priority == 0 {
            return Err(AgentError::InvalidConfig(
                "priority must be at least 1".into(),
            ));
        }
        if let Some(cap) = self.cap_weight() {
            if cap < self.reserved {
                return Err(AgentError::InvalidConfig(format!(
                    "cap {cap} is below the reservation {}",
                    self.reserved
                )));
            }
        }
        Ok(())
    }
}

/// An agent's identity: its slot and the slot's generation when it was
/// registered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId {
    index: u32,
    generation: u32,
}

impl AgentId {
    /// One word: the slot index above the generation.
    pub(crate) fn to_bits(self) -> u64 {
        (u64::from(self.index) << 32) | u64::from(self.generation)
    }

    pub(crate) fn from_bits(bits: u64) -> Self {
        Self {
            index: (bits >> 32) as u32,
            generation: bits as u32,
        }
    }

    /// The slot number (reused after termination).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Which use of the slot this is.
    pub fn generation(&self) -> u32 {
        self.generation
    }
}

/// Why an agent operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentError {
    /// The agent was terminated; its handle is dead.
    Terminated {
        /// The dead agent's id.
        id: AgentId,
    },
    /// Another live agent has this name.
    DuplicateName(String),
    /// [`MAX_AGENTS`] agents are registered.
    TooManyAgents {
        /// The limit.
        max: usize,
    },
    /// The configuration is inconsistent.
    InvalidConfig(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Terminated { id } => write!(
                f,
                "agent {}:{} was terminated; its handle can no longer be used",
                id.index, id.generation
            ),
            Self::DuplicateName(name) => write!(f, "an agent named {name:?} is already registered"),
            Self::TooManyAgents { max } => write!(f, "at most {max} agents can be registered"),
            Self::InvalidConfig(why) => write!(f, "invalid agent configuration: {why}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// An agent's lifecycle state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Reading and writing normally.
    Active,
    /// Paused by [`AgentHandle::suspend`](crate::AgentHandle::suspend).
    Suspended,
}

/// A slot's status word (`Slot::status`): the generation in the high 32
/// bits, [`HAS_RESERVATION`], and the state in the low byte. One word, so
/// that a read checks its handle, the agent's state and whether it has a
/// reservation with one load and one compare (`Slot::plain_reader`).
const FREE: u64 = 0;
const ACTIVE: u64 = 1;
const SUSPENDED: u64 = 2;
const STATE_MASK: u64 = 0xff;
/// Set while the slot's agent has a reservation (its reads may adopt
/// shared objects: `AgentHandle::read_protecting`).
const HAS_RESERVATION: u64 = 1 << 8;
const GENERATION_SHIFT: u32 = 32;

/// The generation in a status word.
fn generation_of(status: u64) -> u32 {
    (status >> GENERATION_SHIFT) as u32
}

/// Something that happened to an agent; see [`AgentCache::subscribe`](crate::AgentCache::subscribe).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// A new agent.
    Registered {
        /// Its id.
        id: AgentId,
        /// Its name.
        name: Arc<str>,
    },
    /// The agent was suspended.
    Suspended {
        /// Its id.
        id: AgentId,
    },
    /// The agent resumed.
    Resumed {
        /// Its id.
        id: AgentId,
    },
    /// The agent was terminated; `released` private entries were removed.
    Terminated {
        /// Its id.
        id: AgentId,
        /// Private entries removed from the cache.
        released: usize,
    },
    /// The agent's inserts started being refused: it reached its cap, or
    /// holds more than twice its fair share of the full cache. Sent once per
    /// episode; a later accepted insert ends the episode.
    QuotaPressure {
        /// Its id.
        id: AgentId,
        /// Its resident weight when the first insert was refused.
        resident: u64,
        /// The limit it ran into (its cap, or twice its fair share).
        limit: u64,
    },
}

/// Per-agent counters. An agent is usually driven by one thread, so its
/// counters stay in that core's cache; slots are 64-byte aligned, so two
/// agents never share a line. They are padded per agent, not striped per
/// thread: one agent's handle used from many threads at once makes those
/// threads contend on its counter line, which striping would avoid at the
/// cost of multiplying the ≤ 256 bytes per agent by the stripe count. Give
/// each thread its own agent when that matters.
///
/// Hits and misses, counted on every read, are *owned*: the first thread
/// to count one claims the slot (`owner`) and from then on adds with a
/// plain load and store to `hits`/`misses`, which only it writes; other
/// threads `fetch_add` to `foreign_hits`/`foreign_misses`. The owner and
/// these four cells are never reset, not even when the slot is reused (a
/// reset could be overwritten by a stale handle's read in flight): the
/// registry records the counts at each registration and reports the
/// difference (`Names`). So the counts are exact, except that a read of a
/// terminated agent still in flight when its slot is reused may count for
/// the new agent. The slot stays owned by the thread that claimed it until
/// that thread exits; the next thread to count then claims it
/// (`crate::thread_token`), so agents outlive the threads that first read
/// them at no cost. A live owner keeps it: a thread that reads, then hands
/// the agent to a worker while it lives on (or an agent whose reads move
/// between the live threads of a pool), leaves the others on the
/// `fetch_add` path. The owner's
/// read path has no locked instruction (a `fetch_add` per
/// read, a full barrier on x86, cost the agent read path ~15% of its
/// 2-thread throughput: BENCHMARKS.md, "Throughput cost of agent
/// awareness").
#[derive(Debug, Default)]
struct Counters {
    /// Written only by the thread whose token is in `owner`.
    hits: AtomicU64,
    /// Written only by the thread whose token is in `owner`.
    misses: AtomicU64,
    /// Hits counted by other threads.
    foreign_hits: AtomicU64,
    /// Misses counted by other threads.
    foreign_misses: AtomicU64,
    /// `thread_token::current` of the thread that owns `hits` and
    /// `misses`, or 0 before one claims them. Never reset; passes to
    /// another reader once its thread has exited.
    owner: AtomicU64,
    inserts: AtomicU64,
    loads: AtomicU64,
    load_nanos: AtomicU64,
    /// Weight of the resident entries this agent owns (first touch). Signed,
    /// as `Registry::orphaned` is: what stays exact is their sum, with each
    /// charge in the slot of the agent it names (`Registry::terminate`).
    charged: AtomicI64,
    /// The part of `charged` in the shared namespace (the rest is private).
    charged_shared: AtomicI64,
    /// Its entries the policy evicted.
    evictions_suffered: AtomicU64,
    /// Entries (anyone's) its inserts evicted.
    evictions_caused: AtomicU64,
}

/// One agent slot: 64-byte aligned (one line of counters, one of state and
/// configuration). The configuration is in atomics because eviction reads
/// it, under a shard lock, for every entry it considers.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct Slot<K> {
    counters: Counters,
    /// Generation, reservation flag and state (see [`FREE`]). The
    /// generation advances when the slot's agent terminates.
    status: AtomicU64,
    /// 1 while the agent's inserts are being refused (cap or share), so
    /// that `QuotaPressure` is sent once per episode, not per refusal.
    pressured: AtomicU8,
    /// 1 if the last recount counted the agent among the pool's claimants
    /// (`Registry::claimants`).
    claimant: AtomicU8,
    /// The configuration (`AgentConfig`'s fields), set at registration.
    reserved: AtomicU64,
    cap: AtomicU64,
    priority: AtomicU32,
    /// Held by a capped agent's writes across the cap check and the write
    /// (`Slot::charge_lock`), so that two threads writing through one
    /// agent cannot both pass the check and together exceed the cap.
    charging: Mutex<()>,
    _keys: std::marker::PhantomData<fn(K)>,
}

// The per-agent budget is 256 bytes; a slot takes 128 of them (BENCHMARKS.md
// measures the total per agent). Loom's atomics are larger, hence the cfg.
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Slot<u64>>() <= 128);

/// A statistics counter of [`AgentStats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counter {
    Hits,
    Misses,
    Loads,
    EvictionsSuffered,
    EvictionsCaused,
}

impl<K> Slot<K> {
    fn new() -> Self {
        Self {
            counters: Counters::default(),
            status: AtomicU64::new(FREE),
            pressured: AtomicU8::new(0),
            claimant: AtomicU8::new(0),
            reserved: AtomicU64::new(0),
            cap: AtomicU64::new(u64::MAX),
            priority: AtomicU32::new(1),
            charging: Mutex::new(()),
            _keys: std::marker::PhantomData,
        }
    }

    /// Whether `id` is this slot's live agent; if so, whether it is
    /// active with a reservation (its reads may adopt shared objects).
    #[inline]
    pub(crate) fn check(&self, id: AgentId) -> Result<bool, AgentError> {
        let status = self.status.load(Ordering::Acquire);
        if generation_of(status) == id.generation && status & STATE_MASK != FREE {
            Ok(status & STATE_MASK == ACTIVE && status & HAS_RESERVATION != 0)
        } else {
            Err(AgentError::Terminated { id })
        }
    }

    /// The status word of `id` while it is live, active and without a
    /// reservation: the common reader, whose reads take the plain path. A
    /// handle computes it once, for [`plain_reader`](Self::plain_reader).
    pub(crate) fn plain_reader_status(id: AgentId) -> u64 {
        (u64::from(id.generation) << GENERATION_SHIFT) | ACTIVE
    }

    /// Whether the slot's status is `plain_status`
    /// ([`plain_reader_status`](Self::plain_reader_status) of the reading
    /// agent): one load and one compare. False says nothing more (see
    /// `check`).
    #[inline]
    pub(crate) fn plain_reader(&self, plain_status: u64) -> bool {
        // Acquire pairs with registration's Release store, as in `check`.
        self.status.load(Ordering::Acquire) == plain_status
    }

    /// The generation of the slot's current (or next) agent.
    fn generation(&self) -> u32 {
        generation_of(self.status.load(Ordering::Acquire))
    }

    /// The state bits of the status word.
    fn state_code(&self) -> u64 {
        self.status.load(Ordering::Acquire) & STATE_MASK
    }

    #[inline]
    pub(crate) fn count(&self, counter: Counter) {
        let c = &self.counters;
        let cell = match counter {
            Counter::Hits => return self.count_read(true),
            Counter::Misses => return self.count_read(false),
            Counter::Loads => &c.loads,
            Counter::EvictionsSuffered => &c.evictions_suffered,
            Counter::EvictionsCaused => &c.evictions_caused,
        };
        // Relaxed: statistics only.
        cell.fetch_add(1, Ordering::Relaxed);
    }

    /// The slot's hit and miss counts since it was created (all its agents').
    fn read_counts(&self) -> (u64, u64) {
        let c = &self.counters;
        (
            c.hits.load(Ordering::Relaxed) + c.foreign_hits.load(Ordering::Relaxed),
            c.misses.load(Ordering::Relaxed) + c.foreign_misses.load(Ordering::Relaxed),
        )
    }

    /// Counts a read: a hit or a miss (see `Counters` on ownership).
    #[inline]
    pub(crate) fn count_read(&self, hit: bool) {
        let c = &self.counters;
        // The owner's path: one thread-local load and one compare. No
        // token equals an unclaimed owner (0), and the raw values of a
        // thread without a live token are never owners.
        if c.owner.load(Ordering::Relaxed) == thread_token::raw() {
            self.count_owned(hit);
        } else {
            self.count_read_slow(hit);
        }
    }

    /// Counts a read in the owned cells: only for their owner thread.
    #[inline(always)]
    fn count_owned(&self, hit: bool) {
        let c = &self.counters;
        // Relaxed: statistics only. Only the owner writes these cells, so a
        // load and a store lose nothing.
        let cell = if hit { &c.hits } else { &c.misses };
        cell.store(cell.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// `count_read` by a thread that does not own the cells: it claims them
    /// if their owner has exited (or nobody owns them yet), or counts as
    /// foreign. A thread whose token was retired (a thread-local's
    /// destructor reading through a handle after the token's own destructor
    /// ran) has none: it counts as foreign, never as owner.
    #[cold]
    #[inline(never)]
    fn count_read_slow(&self, hit: bool) {
        let c = &self.counters;
        let token = thread_token::current().unwrap_or(0);
        let mut owner = c.owner.load(Ordering::Relaxed);
        if owner != token && token != 0 && (owner == 0 || thread_token::has_exited(owner)) {
            // Claim the slot from nobody, or from a thread that can never
            // count again: its last stores happen-before the exit mark that
            // `has_exited` acquired, so nothing it counted is lost. Whoever
            // wins the exchange owns the cells until its own thread exits.
            owner =
                match c
                    .owner
                    .compare_exchange(owner, token, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => token,
                    Err(current) => current,
                };
        }
        if owner == token && token != 0 {
            self.count_owned(hit);
        } else {
            // Relaxed: statistics only.
            let cell = if hit {
                &c.foreign_hits
            } else {
                &c.foreign_misses
            };
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Weight charged to this slot's agent now.
    pub(crate) fn resident(&self) -> u64 {
        self.counters.charged.load(Ordering::Acquire).max(0) as u64
    }

    pub(crate) fn add_load_time(&self, took: Duration) {
        self.counters
            .load_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts an insert (not a [`Counter`]: the count also paces
    /// recounts of the pool's claimants); returns the agent's inserts so
    /// far.
    pub(crate) fn count_insert(&self) -> u64 {
        // Relaxed: statistics, and a cadence for recounts.
        self.counters.inserts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Inserts counted for the slot's agent.
    fn inserts(&self) -> u64 {
        self.counters.inserts.load(Ordering::Relaxed)
    }

    /// The slot's reservation (one load; read on every agent read).
    #[inline]
    pub(crate) fn reserved_weight(&self) -> u64 {
        self.reserved.load(Ordering::Relaxed)
    }

    /// For an agent with a cap, a lock that its writes hold from their cap
    /// check until their entry is stored (and charged); `None` without a
    /// cap, whose writes need no lock. Taken before any shard lock, never
    /// under one.
    pub(crate) fn charge_lock(&self) -> Option<MutexGuard<'_, ()>> {
        (self.cap.load(Ordering::Acquire) != u64::MAX).then(|| self.charging.lock())
    }

    /// The configuration of the slot's agent.
    pub(crate) fn config(&self) -> AgentConfig {
        AgentConfig {
            reserved: self.reserved.load(Ordering::Acquire),
            cap: self.cap.load(Ordering::Acquire),
            priority: self.priority.load(Ordering::Acquire),
        }
    }

    fn set_config(&self, config: AgentConfig) {
        self.reserved.store(config.reserved, Ordering::Release);
        self.cap.store(config.cap, Ordering::Release);
        self.priority.store(config.priority, Ordering::Release);
    }

    pub(crate) fn state(&self) -> Option<AgentState> {
        match self.state_code() {
            ACTIVE => Some(AgentState::Active),
            SUSPENDED => Some(AgentState::Suspended),
            _ => None,
        }
    }
}

/// A snapshot of one agent's statistics.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AgentStats {
    /// The agent.
    pub id: AgentId,
    /// Its name.
    pub name: Arc<str>,
    /// Its state.
    pub state: AgentState,
    /// Its configuration.
    pub config: AgentConfig,
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Values it inserted (including loaded ones).
    pub inserts: u64,
    /// Loader runs (`get_or_insert_with` misses it loaded itself).
    pub loads: u64,
    /// Time spent in those loaders.
    pub load_time: Duration,
    /// Weight of the resident entries it owns: the entries it inserted
    /// first (shared or private), charged to it alone until they leave.
    pub resident: u64,
    /// The part of `resident` in the shared namespace, which other agents
    /// may be reading too; the rest is its private entries
    /// ([`resident_private`](Self::resident_private)).
    pub resident_shared: u64,
    /// Its entries the policy evicted.
    pub evictions_suffered: u64,
    /// Entries, anyone's, that its inserts evicted.
    pub evictions_caused: u64,
}

impl AgentStats {
    /// The part of `resident` in the agent's private namespace.
    pub fn resident_private(&self) -> u64 {
        self.resident.saturating_sub(self.resident_shared)
    }

    /// Hits over reads, in percent (0 when it has not read).
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / reads as f64
        }
    }
}

/// How [`AgentCache::agents`](crate::AgentCache::agents) orders its snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentSort {
    /// By name, ascending.
    Name,
    /// Most hits first.
    Hits,
    /// Most misses first.
    Misses,
    /// Highest hit ratio first.
    HitRatio,
    /// Most loads first.
    Loads,
    /// Most load time first.
    LoadTime,
    /// Most inserts first.
    Inserts,
    /// Most resident weight first.
    Resident,
    /// Most resident weight in the shared namespace first.
    ResidentShared,
    /// Most resident weight in the private namespace first.
    ResidentPrivate,
    /// Most evictions suffered first.
    EvictionsSuffered,
    /// Most evictions caused first.
    EvictionsCaused,
}

type Listener = Box<dyn Fn(&AgentEvent) + Send + Sync>;

/// Live agents by the hash of their name (several names may share a hash),
/// each slot's name and starting read counts, the number of slots ever
/// used, and the free slot numbers. Off the hit path, under one lock.
#[derive(Default)]
struct Names {
    /// The first slot whose agent's name has this hash: one 16-byte entry
    /// per agent (a `Vec` per hash cost 32-byte entries and a heap block).
    by_hash: HashMap<u64, u32, foldhash::fast::FixedState>,
    /// Further slots whose names share a hash with an earlier one (rare).
    same_hash: HashMap<u64, Vec<u32>, foldhash::fast::FixedState>,
    /// Per slot number: kept here rather than in the slots, whose 128 bytes
    /// hold what a read touches.
    slots: Vec<SlotNames>,
    used: usize,
    free: Vec<u32>,
    live: usize,
}

/// What the registry keeps of a slot off the hit path.
#[derive(Debug, Default)]
struct SlotNames {
    /// The agent's name; None while the slot is free.
    name: Option<Box<str>>,
    /// The slot's hit and miss counts when its agent registered: the counts
    /// are never reset (see `Counters`), an agent's are the difference.
    base: (u64, u64),
}

impl Names {
    /// The slots whose agents' names hash to `hash`.
    fn with_hash(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let more = self.same_hash.get(&hash).map_or(&[][..], |v| &v[..]);
        self.by_hash
            .get(&hash)
            .copied()
            .into_iter()
            .chain(more.iter().copied())
    }

    fn add_hash(&mut self, hash: u64, index: u32) {
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Vacant(first) => {
                first.insert(index);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.same_hash.entry(hash).or_default().push(index);
            }
        }
    }

    fn remove_hash(&mut self, hash: u64, index: u32) {
        if self.by_hash.get(&hash) == Some(&index) {
            // Promote another slot of the same hash, if any.
            let next = self.same_hash.get_mut(&hash).and_then(Vec::pop);
            if self.same_hash.get(&hash).is_some_and(Vec::is_empty) {
                self.same_hash.remove(&hash);
            }
            match next {
                Some(next) => {
                    self.by_hash.insert(hash, next);
                }
                None => {
                    self.by_hash.remove(&hash);
                }
            }
        } else if let Some(more) = self.same_hash.get_mut(&hash) {
            more.retain(|&i| i != index);
            if more.is_empty() {
                self.same_hash.remove(&hash);
            }
        }
    }

    fn slot(&self, index: u32) -> Option<&SlotNames> {
        self.slots.get(index as usize)
    }

    fn name(&self, index: u32) -> Option<&str> {
        self.slot(index)?.name.as_deref()
    }

    /// Slot `index`'s entry, growing the vector by an eighth (at least a
    /// chunk of slots) when needed: little slack per agent, and linear
    /// copying overall.
    fn slot_mut(&mut self, index: u32) -> &mut SlotNames {
        let i = index as usize;
        if i >= self.slots.len() {
            let to = (i + 1).max(self.slots.len() + (self.slots.len() / 8).max(CHUNK_SLOTS));
            self.slots.reserve_exact(to - self.slots.len());
            self.slots.resize_with(to, SlotNames::default);
        }
        &mut self.slots[i]
    }
}

/// `CHUNK_SLOTS` slots, allocated on first use.
/// Reference counted so that a handle can hold its agent's chunk and reach
/// its slot without the table lookup (a read does that on every call).
type Chunk<K> = OnceLock<Arc<SlotChunk<K>>>;

/// Shards of the private-key index (by agent slot number).
const PRIVATE_SHARDS: usize = 64;

/// Private-key sets of the agents whose slot number falls in one shard.
type PrivateShard<K> = Mutex<HashMap<u32, PrivateKeys<K>>>;

/// All agents of one cache.
pub(crate) struct Registry<K> {
    chunks: Box<[Chunk<K>]>,
    /// Sum of the reservations of active agents (suspended ones lend theirs).
    reserved: AtomicU64,
    /// Sum of the reservations of live agents, suspended ones included (they
    /// take theirs back on resume): never above the capacity. Changed under
    /// the `names` lock.
    committed: AtomicU64,
    /// Sum of the priorities of the pool's *claimants*, as of the last
    /// recount: the active agents that have a reservation, hold entries or
    /// have inserted (see `recount_claimants`). Fair shares split the pool
    /// among them, so agents that are registered but idle (without a
    /// reservation), or only read,
    /// do not shrink everyone else's share.
    claimants: AtomicU64,
    /// Set by registration, suspension, resumption and termination (and by
    /// a periodic recount that found the lock busy): the next admission
    /// check on a full cache, or `AgentHandle::fair_share`, recounts the
    /// claimants first. Eviction judges entries by the last count.
    claimants_stale: AtomicBool,
    /// Each agent's private keys (some may have been evicted since), so that
    /// termination can release them. Kept apart from the slots: an agent
    /// without private keys pays nothing here.
    private: Box<[PrivateShard<K>]>,
    /// Weight of resident entries whose owner was terminated.
    orphaned: AtomicI64,
    names: Mutex<Names>,
    listeners: RwLock<Vec<Listener>>,
}

impl<K> Default for Registry<K> {
    fn default() -> Self {
        Self {
            chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            reserved: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            claimants: AtomicU64::new(0),
            claimants_stale: AtomicBool::new(false),
            private: (0..PRIVATE_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            orphaned: AtomicI64::new(0),
            names: Mutex::new(Names::default()),
            listeners: RwLock::new(Vec::new()),
        }
    }
}

fn name_hash(name: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(name)
}

impl<K: Hash + Eq> Registry<K> {
    /// The slot of `index` (allocated, since indices come from `register`).
    pub(crate) fn slot(&self, index: u32) -> &Slot<K> {
        &self.chunk(index)[index as usize % CHUNK_SLOTS]
    }

    /// The slot of `id` if that agent is still registered (its slot holds
    /// the same generation). None for a terminated agent, and for ids that
    /// name no slot at all (such as the "nobody" of a shared key that no
    /// agent stored).
    fn live_slot(&self, id: AgentId) -> Option<&Slot<K>> {
        let chunk = self.chunks.get(id.index as usize / CHUNK_SLOTS)?.get()?;
        let slot = &chunk[id.index as usize % CHUNK_SLOTS];
        (slot.generation() == id.generation).then_some(slot)
    }

    /// The chunk holding slot `index`; the slot is at `index % CHUNK_SLOTS`
    /// within it (see [`slot_offset`]).
    pub(crate) fn chunk(&self, index: u32) -> &Arc<SlotChunk<K>> {
        self.chunks[index as usize / CHUNK_SLOTS].get_or_init(|| {
            // Built on the heap: 32 KiB of slots would be a large stack
            // frame for whichever thread registers an agent.
            let slots: Arc<[Slot<K>]> = (0..CHUNK_SLOTS).map(|_| Slot::new()).collect();
            match Arc::try_from(slots) {
                Ok(chunk) => chunk,
                Err(_) => unreachable!("collected exactly CHUNK_SLOTS slots"),
            }
        })
    }

    /// Registers an agent in a cache of `capacity`; returns its id.
    pub(crate) fn register(
        &self,
        name: &str,
        config: AgentConfig,
        capacity: u64,
    ) -> Result<AgentId, AgentError> {
        config.validate()?;
        let hash = name_hash(name);
        let id = {
            let mut names = self.names.lock();
            let committed = self.committed.load(Ordering::Acquire);
            if committed.saturating_add(config.reserved) > capacity {
                return Err(AgentError::InvalidConfig(format!(
                    "reserving {} would commit {} of a capacity of {capacity} (live agents \
                     already reserve {committed})",
                    config.reserved,
                    committed.saturating_add(config.reserved)
                )));
            }
            let taken = names.with_hash(hash).any(|i| names.name(i) == Some(name));
            if taken {
                return Err(AgentError::DuplicateName(name.to_string()));
            }
            let index = match names.free.pop() {
                Some(index) => index,
                None if names.used < MAX_AGENTS => {
                    names.used += 1;
                    (names.used - 1) as u32
                }
                None => return Err(AgentError::TooManyAgents { max: MAX_AGENTS }),
            };
            let slot = self.slot(index);
            *names.slot_mut(index) = SlotNames {
                name: Some(Box::from(name)),
                // The read counts go on from where the last agent left them.
                base: slot.read_counts(),
            };
            slot.set_config(config);
            let c = &slot.counters;
            // `charged` was moved to `orphaned` at termination.
            for cell in [
                &c.inserts,
                &c.loads,
                &c.load_nanos,
                &c.evictions_suffered,
                &c.evictions_caused,
            ] {
                cell.store(0, Ordering::Relaxed);
            }
            slot.pressured.store(0, Ordering::Relaxed);
            // Release pairs with the Acquire in `Slot::check`. The
            // generation stays: termination advanced it.
            let generation = u64::from(slot.generation()) << GENERATION_SHIFT;
            let reservation = if config.reserved > 0 {
                HAS_RESERVATION
            } else {
                0
            };
            slot.status
                .store(generation | reservation | ACTIVE, Ordering::Release);
            names.add_hash(hash, index);
            names.live += 1;
            self.committed.fetch_add(config.reserved, Ordering::AcqRel);
            self.join_pool(config, true);
            AgentId {
                index,
                generation: slot.generation(),
            }
        };
        self.emit(&AgentEvent::Registered {
            id,
            name: Arc::from(name),
        });
        Ok(id)
    }

    /// Moves a live agent between active and suspended.
    pub(crate) fn set_state(&self, id: AgentId, state: AgentState) -> Result<bool, AgentError> {
        let slot = self.slot(id.index);
        let (from, to) = match state {
            AgentState::Active => (SUSPENDED, ACTIVE),
            AgentState::Suspended => (ACTIVE, SUSPENDED),
        };
        let changed = {
            // Under the lock that registration and termination hold, so the
            // slot cannot pass to another agent between the check and the
            // change (an old handle must never suspend its slot's next agent).
            let _names = self.names.lock();
            slot.check(id)?;
            // Every writer of the status word (registration, this, and
            // termination) holds the `names` lock, so a load and a store
            // cannot lose a change.
            let status = slot.status.load(Ordering::Acquire);
            let changed = status & STATE_MASK == from;
            if changed {
                // The pool's reserved sum includes an agent's reservation
                // whenever the agent reads as active (or a share could
                // count its reservation twice): add it before resuming,
                // remove it after suspending.
                let resuming = state == AgentState::Active;
                if resuming {
                    self.join_pool(slot.config(), true);
                }
                slot.status
                    .store((status & !STATE_MASK) | to, Ordering::Release);
                if !resuming {
                    self.join_pool(slot.config(), false);
                }
            }
            changed
        };
        if changed {
            self.emit(&match state {
                AgentState::Active => AgentEvent::Resumed { id },
                AgentState::Suspended => AgentEvent::Suspended { id },
            });
        }
        Ok(changed)
    }

    /// Ends the agent: its slot becomes free under a new generation. Runs
    /// `release` (removing its private entries) before the event is sent.
    ///
    /// `wait_for_writers` must return only once every listener call in
    /// progress has returned (`Cache::wait_for_writers`). A listener that
    /// charges an entry to this agent checks the agent's generation, then
    /// adds to its charge: one that checked before the generation moved
    /// may add after it. Waiting for those before the charge moves to the
    /// orphaned weight, and freeing the slot only after that, keeps a
    /// late charge from staying in the slot for its next agent to inherit.
    pub(crate) fn terminate(
        &self,
        id: AgentId,
        wait_for_writers: impl FnOnce(),
        release: impl FnOnce(KeySet<K>) -> usize,
    ) -> Result<usize, AgentError> {
        let slot = self.slot(id.index);
        let private = {
            let mut names = self.names.lock();
            slot.check(id)?;
            // One store advances the generation and frees the slot.
            let next = u64::from(id.generation.wrapping_add(1)) << GENERATION_SHIFT;
            let state_before = slot.status.swap(next | FREE, Ordering::AcqRel) & STATE_MASK;
            // The slot's next agent starts uncounted; the sum still holds
            // this one until the next count.
            slot.claimant.store(0, Ordering::Release);
            self.claimants_stale.store(true, Ordering::Release);
            let config = slot.config();
            self.committed.fetch_sub(config.reserved, Ordering::AcqRel);
            if state_before == ACTIVE {
                self.join_pool(config, false);
            }
            if let Some(name) = names.slot_mut(id.index).name.take() {
                names.remove_hash(name_hash(&name), id.index);
            }
            names.live -= 1;
            self.private[id.index as usize % PRIVATE_SHARDS]
                .lock()
                .remove(&id.index)
                .map(PrivateKeys::into_keys)
                .unwrap_or_default()
        };
        // Outside the names lock: listeners run under shard locks and may
        // take it (the retention judge recounts claimants).
        wait_for_writers();
        {
            // Under the names lock, as `total_charged` sums: it never sees
            // the charge in neither place nor in both.
            let mut names = self.names.lock();
            // Every charge that saw the old generation has landed; later
            // departures of its entries credit `orphaned` (see `depart`).
            let charged = slot.counters.charged.swap(0, Ordering::AcqRel);
            slot.counters.charged_shared.store(0, Ordering::Release);
            self.orphaned.fetch_add(charged, Ordering::AcqRel);
            // The slot is reused only after this push.
            names.free.push(id.index);
        }
        let released = release(private);
        self.emit(&AgentEvent::Terminated { id, released });
        Ok(released)
    }

    /// Statistics of every live agent, ordered by `sort`.
    pub(crate) fn snapshot(&self, sort: AgentSort) -> Vec<AgentStats> {
        // Under the lock, so that no slot is terminated and reused while
        // its row is read (its name and counts would then mix two agents).
        let names = self.names.lock();
        let mut out: Vec<AgentStats> = (0..names.used)
            .filter_map(|index| {
                let slot = self.slot(index as u32);
                let state = slot.state()?;
                let names = names.slot(index as u32)?;
                let name = Arc::<str>::from(names.name.as_deref()?);
                let (hits, misses) = slot.read_counts();
                let config = slot.config();
                let c = &slot.counters;
                Some(AgentStats {
                    id: AgentId {
                        index: index as u32,
                        generation: slot.generation(),
                    },
                    name,
                    state,
                    config,
                    hits: hits.saturating_sub(names.base.0),
                    misses: misses.saturating_sub(names.base.1),
                    inserts: c.inserts.load(Ordering::Relaxed),
                    loads: c.loads.load(Ordering::Relaxed),
                    load_time: Duration::from_nanos(c.load_nanos.load(Ordering::Relaxed)),
                    resident: c.charged.load(Ordering::Relaxed).max(0) as u64,
                    resident_shared: c.charged_shared.load(Ordering::Relaxed).max(0) as u64,
                    evictions_suffered: c.evictions_suffered.load(Ordering::Relaxed),
                    evictions_caused: c.evictions_caused.load(Ordering::Relaxed),
                })
            })
            .collect();
        drop(names);
        match sort {
            AgentSort::Name => out.sort_by(|a, b| a.name.cmp(&b.name)),
            AgentSort::Hits => out.sort_by_key(|a| std::cmp::Reverse(a.hits)),
            AgentSort::Misses => out.sort_by_key(|a| std::cmp::Reverse(a.misses)),
            AgentSort::HitRatio => out.sort_by(|a, b| b.hit_ratio().total_cmp(&a.hit_ratio())),
            AgentSort::Loads => out.sort_by_key(|a| std::cmp::Reverse(a.loads)),
            AgentSort::LoadTime => out.sort_by_key(|a| std::cmp::Reverse(a.load_time)),
            AgentSort::Inserts => out.sort_by_key(|a| std::cmp::Reverse(a.inserts)),
            AgentSort::Resident => out.sort_by_key(|a| std::cmp::Reverse(a.resident)),
            AgentSort::ResidentShared => out.sort_by_key(|a| std::cmp::Reverse(a.resident_shared)),
            AgentSort::ResidentPrivate => {
                out.sort_by_key(|a| std::cmp::Reverse(a.resident_private()))
            }
            AgentSort::EvictionsSuffered => {
                out.sort_by_key(|a| std::cmp::Reverse(a.evictions_suffered))
            }
            AgentSort::EvictionsCaused => {
                out.sort_by_key(|a| std::cmp::Reverse(a.evictions_caused))
            }
        }
        out
    }

    /// Adds (or with `join` false, removes) an active agent's reservation
    /// to the pool's reserved sum; its priority counts once a recount finds
    /// it claiming (`recount_claimants`).
    fn join_pool(&self, config: AgentConfig, join: bool) {
        self.claimants_stale.store(true, Ordering::Release);
        if join {
            self.reserved.fetch_add(config.reserved, Ordering::AcqRel);
        } else {
            self.reserved.fetch_sub(config.reserved, Ordering::AcqRel);
        }
    }

    /// The fair share of `capacity` for the agent of `slot`: 0 unless it
    /// is active; else its reservation plus its priority's part of what
    /// active agents have not reserved (Memshare's reserved-plus-pool
    /// split), the pool being split among its claimants
    /// (`recount_claimants`) and the agent itself. As of the last count:
    /// call [`refresh_claimants`](Self::refresh_claimants) first where a
    /// lifecycle change must show at once.
    pub(crate) fn fair_share(&self, capacity: u64, slot: &Slot<K>) -> u64 {
        if slot.state_code() != ACTIVE {
            return 0;
        }
        let config = slot.config();
        let priority = u64::from(config.priority);
        let reserved = self.reserved.load(Ordering::Acquire);
        let claimants = self.claimants.load(Ordering::Acquire);
        // The flag and the sum are published apart, so a reader may pair a
        // new flag with an old sum: never let the agent count for less
        // than itself, nor its part exceed the pool.
        let claimants = if slot.claimant.load(Ordering::Acquire) != 0 {
            claimants.max(priority)
        } else {
            claimants.saturating_add(priority)
        };
        let pool = capacity.saturating_sub(reserved);
        let part = (u128::from(pool) * u128::from(priority) / u128::from(claimants.max(1))) as u64;
        config.reserved.saturating_add(part.min(pool))
    }

    /// Recounts the claimants if a lifecycle change made the count stale.
    pub(crate) fn refresh_claimants(&self) {
        // A load first: the common case writes nothing shared. A recount
        // skipped because the lock was busy leaves the count stale.
        if self.claimants_stale.load(Ordering::Acquire) {
            self.recount_claimants();
        }
    }

    /// Recounts the claimants when an agent's insert count `inserts`
    /// reaches a multiple of [`RECOUNT_EVERY`].
    #[inline]
    pub(crate) fn recount_claimants_every(&self, inserts: u64) {
        if inserts % RECOUNT_EVERY == 0 && !self.recount_claimants() {
            // The lock was busy: the next share computation recounts.
            self.claimants_stale.store(true, Ordering::Release);
        }
    }

    /// Counts the claimants of the pool: every active agent that has a
    /// reservation, holds resident weight, or has inserted since it was
    /// registered. Under the `names` lock, so that no slot changes hands
    /// during the count (charges still move: the count is a snapshot).
    /// Skipped, returning false, when the lock is busy (a lifecycle
    /// change, a snapshot, another recount); the count then stays stale
    /// or is marked so by the caller.
    fn recount_claimants(&self) -> bool {
        let Some(names) = self.names.try_lock() else {
            return false;
        };
        // Lifecycle changes mark the count stale under this lock, so none
        // of their marks set after this point is lost. (A periodic
        // recount that found the lock busy marks it without the lock; such
        // a mark may be cleared here, by this very count.)
        self.claimants_stale.store(false, Ordering::Release);
        let mut claimants = 0u64;
        for index in 0..names.used {
            let slot = self.slot(index as u32);
            let claims = slot.state_code() == ACTIVE
                && (slot.reserved_weight() > 0 || slot.resident() > 0 || slot.inserts() > 0);
            // Written only when it changes: the flag likely shares a line
            // with the status word that every read of the agent loads.
            let flag = u8::from(claims);
            if slot.claimant.load(Ordering::Relaxed) != flag {
                slot.claimant.store(flag, Ordering::Release);
            }
            if claims {
                claimants += u64::from(slot.priority.load(Ordering::Acquire));
            }
        }
        self.claimants.store(claimants, Ordering::Release);
        true
    }

    /// How eviction should treat an entry of `owner` when `by` (if any) is
    /// the agent whose insert needs the room; see `AgentCache`'s docs.
    pub(crate) fn retention(
        &self,
        owner: AgentId,
        capacity: u64,
        by: Option<AgentId>,
    ) -> Retention {
        let Some(slot) = self.live_slot(owner) else {
            // Its owner was terminated: shared content nobody is charged for.
            return Retention::Normal;
        };
        match slot.state_code() {
            SUSPENDED => return Retention::Expendable,
            ACTIVE => {}
            _ => return Retention::Normal,
        }
        let config = slot.config();
        let resident = slot.resident();
        if resident > config.reserved
            && resident
                > self
                    .fair_share(capacity, slot)
                    .saturating_mul(OVER_SHARE_FACTOR)
        {
            return Retention::Expendable;
        }
        if by != Some(owner) && config.reserved > 0 && resident <= config.reserved {
            return Retention::Pinned;
        }
        Retention::Normal
    }

    /// Whether `owner`'s reservation protects its entries now: it is live,
    /// active, has a reservation and is within it.
    pub(crate) fn protects(&self, owner: AgentId) -> bool {
        self.live_slot(owner).is_some_and(|slot| {
            let reserved = slot.reserved_weight();
            slot.state_code() == ACTIVE && reserved > 0 && slot.resident() <= reserved
        })
    }

    /// Runs `f` on the private keys of the agent in slot `index`.
    pub(crate) fn with_private<R>(
        &self,
        index: u32,
        f: impl FnOnce(&mut PrivateKeys<K>) -> R,
    ) -> R {
        let mut shard = self.private[index as usize % PRIVATE_SHARDS].lock();
        f(shard.entry(index).or_default())
    }

    /// An entry owned by `owner` weighing `weight` was stored, in the
    /// shared namespace if `shared`.
    pub(crate) fn arrive(&self, owner: AgentId, weight: u64, shared: bool) {
        let weight = i64::try_from(weight).unwrap_or(i64::MAX);
        self.charge(self.live_slot(owner), weight, shared);
    }

    /// Adds `delta` to the charge of `slot`'s agent (and its shared part),
    /// or, with no live agent, to the orphaned weight.
    fn charge(&self, slot: Option<&Slot<K>>, delta: i64, shared: bool) {
        match slot {
            Some(slot) => {
                slot.counters.charged.fetch_add(delta, Ordering::AcqRel);
                if shared {
                    slot.counters
                        .charged_shared
                        .fetch_add(delta, Ordering::Relaxed);
                }
            }
            None => {
                self.orphaned.fetch_add(delta, Ordering::AcqRel);
            }
        }
    }

    /// An entry owned by `owner` left; `by` is the agent whose insert
    /// evicted it, if any.
    pub(crate) fn depart(
        &self,
        owner: AgentId,
        weight: u64,
        shared: bool,
        cause: RemovalCause,
        by: Option<AgentId>,
    ) {
        let weight = i64::try_from(weight).unwrap_or(i64::MAX);
        let slot = self.live_slot(owner);
        self.charge(slot, -weight, shared);
        if cause == RemovalCause::Evicted {
            if let Some(slot) = slot {
                slot.count(Counter::EvictionsSuffered);
            }
            if let Some(causer) = by.and_then(|by| self.live_slot(by)) {
                causer.count(Counter::EvictionsCaused);
            }
        }
    }

    /// Weight charged to live agents plus orphaned weight (equals the
    /// cache's weight when no write is in progress).
    pub(crate) fn total_charged(&self) -> i64 {
        // Under the names lock: `terminate` moves a charge to `orphaned`
        // under it, so the sum never counts that charge twice or not at all.
        let names = self.names.lock();
        let agents: i64 = (0..names.used)
            .map(|i| self.slot(i as u32).counters.charged.load(Ordering::Acquire))
            .sum();
        agents + self.orphaned.load(Ordering::Acquire)
    }

    /// Live agents.
    pub(crate) fn len(&self) -> usize {
        self.names.lock().live
    }

    pub(crate) fn subscribe(&self, listener: Listener) {
        self.listeners.write().push(listener);
    }

    /// Notes a refused insert; sends `QuotaPressure` if it starts an episode.
    pub(crate) fn pressure(&self, id: AgentId, resident: u64, limit: u64) {
        let slot = self.slot(id.index);
        if slot.pressured.swap(1, Ordering::AcqRel) == 0 {
            self.emit(&AgentEvent::QuotaPressure {
                id,
                resident,
                limit,
            });
        }
    }

    /// Notes an accepted insert: a pressure episode, if any, is over.
    #[inline]
    pub(crate) fn relieve(&self, id: AgentId) {
        let slot = self.slot(id.index);
        // A load first: the common case (no episode) stores nothing.
        if slot.pressured.load(Ordering::Relaxed) != 0 {
            slot.pressured.store(0, Ordering::Release);
        }
    }

    fn emit(&self, event: &AgentEvent) {
        for listener in self.listeners.read().iter() {
            listener(event);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Pruning the private-key set costs O(1) per insert, amortized, even
    /// when every key stays resident (it used to rescan the whole set on
    /// every insert once it held the capacity's worth of keys), and the
    /// set never holds much more than twice the resident keys.
    #[test]
    fn private_key_sets_prune_in_amortized_constant_time() {
        let mut all_resident = PrivateKeys::default();
        let looks = std::cell::Cell::new(0u64);
        for k in 0..100_000u64 {
            all_resident.insert(k, |_| {
                looks.set(looks.get() + 1);
                true
            });
        }
        assert_eq!(all_resident.len(), 100_000);
        assert!(looks.get() <= 2 * 100_000, "{} looks", looks.get());

        // Only the last 100 keys inserted are resident at any time.
        let mut churning = PrivateKeys::default();
        let mut max_len = 0;
        for k in 0..100_000u64 {
            churning.insert(k, |key| k - key < 100);
            max_len = max_len.max(churning.len());
        }
        assert!(max_len <= 2 * 100 + 1, "the set grew to {max_len}");
    }

    /// A listener that checked the agent's generation before `terminate`
    /// moved it, and adds its charge after, is one that `terminate` waits
    /// for (under shard locks, `Cache::wait_for_writers`): the charge then
    /// goes to the orphaned weight, and the slot's next agent starts at 0.
    #[test]
    fn a_charge_racing_with_termination_does_not_reach_the_next_agent() {
        let registry = &Registry::<u64>::default();
        let old = registry
            .register("old", AgentConfig::new(), 1_000)
            .expect("registers");
        let (checked_tx, checked_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            // The listener: generation checked, then held up until the
            // termination has begun.
            let listener = s.spawn(move || {
                let slot = registry.live_slot(old);
                assert!(slot.is_some(), "the agent is live when checked");
                checked_tx.send(()).expect("send");
                go_rx.recv().expect("recv");
                registry.charge(slot, 5, false);
            });
            checked_rx.recv().expect("recv");
            registry
                .terminate(
                    old,
                    || {
                        // The generation has moved; let the listener finish,
                        // as the shard lock would make `terminate` wait.
                        go_tx.send(()).expect("send");
                        while !listener.is_finished() {
                            std::thread::yield_now();
                        }
                    },
                    |_| 0,
                )
                .expect("terminates");
        });
        let new = registry
            .register("new", AgentConfig::new(), 1_000)
            .expect("registers");
        assert_eq!(new.index, old.index, "the slot is reused");
        assert_eq!(registry.slot(new.index).resident(), 0);
        assert_eq!(registry.total_charged(), 5, "the late charge is orphaned");
    }

    #[test]
    fn read_counters_pass_to_the_next_thread_once_their_owner_exits() {
        let slot = Slot::<u64>::new();
        let owner = std::thread::scope(|s| {
            s.spawn(|| {
                (0..1_000).for_each(|i| slot.count_read(i % 4 != 0));
                thread_token::current()
            })
            .join()
            .expect("thread")
        });
        let c = &slot.counters;
        assert_eq!(c.owner.load(Ordering::Relaxed), owner.expect("a token"));
        // The owner has exited: this thread takes the plain cells over and
        // continues from the exited owner's counts, losing none.
        (0..500).for_each(|_| slot.count_read(true));
        let me = thread_token::current().expect("a token");
        assert_eq!(c.owner.load(Ordering::Relaxed), me);
        assert_eq!(c.hits.load(Ordering::Relaxed), 750 + 500);
        assert_eq!(c.misses.load(Ordering::Relaxed), 250);
        assert_eq!(c.foreign_hits.load(Ordering::Relaxed), 0);
        assert_eq!(slot.read_counts(), (1_250, 250));
        // A live owner keeps them: another thread counts as foreign.
        std::thread::scope(|s| {
            s.spawn(|| (0..100).for_each(|_| slot.count_read(false)));
        });
        assert_eq!(c.owner.load(Ordering::Relaxed), me);
        assert_eq!(c.foreign_misses.load(Ordering::Relaxed), 100);
        assert_eq!(slot.read_counts(), (1_250, 350));
    }

    #[test]
    fn reads_counted_while_a_thread_exits_are_kept() {
        // A thread-local destructor reading through a handle after the
        // thread's token was retired: it must count as foreign, never write
        // the owned cells that another thread may claim meanwhile.
        static SLOT: std::sync::OnceLock<Slot<u64>> = std::sync::OnceLock::new();
        let slot = SLOT.get_or_init(Slot::new);
        struct Late;
        impl Drop for Late {
            fn drop(&mut self) {
                if let Some(slot) = SLOT.get() {
                    (0..10).for_each(|_| slot.count_read(true));
                }
            }
        }
        thread_local! {
            static LATE: std::cell::RefCell<Option<Late>> = const { std::cell::RefCell::new(None) };
        }
        std::thread::spawn(|| {
            LATE.with(|l| *l.borrow_mut() = Some(Late));
            (0..5).for_each(|_| slot.count_read(false));
        })
        .join()
        .expect("thread");
        (0..3).for_each(|_| slot.count_read(true));
        assert_eq!(slot.read_counts(), (13, 5), "nothing lost or doubled");
    }

    #[test]
    fn a_thread_without_a_token_never_writes_the_owned_cells() {
        // A thread that took its token but never read, then reads from a
        // thread-local destructor after the token was retired: the slot is
        // still unclaimed, and it must stay so (the thread can claim nothing
        // once its exit mark may be seen), its reads counted as foreign.
        static FRESH: std::sync::OnceLock<Slot<u64>> = std::sync::OnceLock::new();
        static RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let slot = FRESH.get_or_init(Slot::new);
        struct Late;
        impl Drop for Late {
            fn drop(&mut self) {
                if let Some(slot) = FRESH.get() {
                    // Only once the token is retired: a destructor that
                    // runs earlier may still claim, legitimately.
                    if thread_token::current().is_none() {
                        (0..10).for_each(|_| slot.count_read(true));
                        RAN.store(true, Ordering::SeqCst);
                    }
                }
            }
        }
        thread_local! {
            static LATE: std::cell::RefCell<Option<Late>> = const { std::cell::RefCell::new(None) };
        }
        std::thread::spawn(|| {
            // `LATE` first, then the token: thread-local destructors run
            // in reverse order of registration (std's list on Linux), so
            // `LATE` runs after the token's retirement.
            LATE.with(|l| *l.borrow_mut() = Some(Late));
            let _ = thread_token::current();
        })
        .join()
        .expect("thread");
        let ran = RAN.load(Ordering::SeqCst);
        #[cfg(target_os = "linux")]
        assert!(ran, "the destructor read after the token was retired");
        let c = &slot.counters;
        let foreign = c.foreign_hits.load(Ordering::Relaxed);
        assert_eq!(foreign, if ran { 10 } else { 0 }, "counted as foreign");
        assert_eq!(c.owner.load(Ordering::Relaxed), 0, "nobody claimed");
        assert_eq!(c.hits.load(Ordering::Relaxed), 0, "no owned write");
    }

    #[test]
    fn slots_sharing_a_name_hash_are_kept_and_released_one_by_one() {
        let mut names = Names::default();
        let with = |names: &Names, hash| names.with_hash(hash).collect::<Vec<_>>();
        names.add_hash(1, 3);
        names.add_hash(1, 7);
        names.add_hash(1, 9);
        names.add_hash(2, 4);
        assert_eq!(with(&names, 1), [3, 7, 9]);
        assert_eq!(with(&names, 2), [4]);
        names.remove_hash(1, 7);
        names.remove_hash(1, 42); // absent: nothing changes
        assert_eq!(with(&names, 1), [3, 9]);
        // Removing the first promotes another.
        names.remove_hash(1, 3);
        assert_eq!(with(&names, 1), [9]);
        assert!(names.same_hash.is_empty(), "no list left behind");
        names.remove_hash(1, 9);
        assert!(with(&names, 1).is_empty());
        assert_eq!(names.by_hash.len(), 1);
    }

    #[test]
    fn slot_names_grow_with_little_slack() {
        let mut names = Names::default();
        names.slot_mut(0).name = Some("a".into());
        assert_eq!(names.slots.len(), CHUNK_SLOTS);
        names.slot_mut(CHUNK_SLOTS as u32).name = Some("b".into());
        assert_eq!(names.slots.len(), 2 * CHUNK_SLOTS);
        names.slot_mut(20_000);
        assert!(names.slots.len() >= 20_001 && names.slots.len() <= 20_001 + 20_001 / 8);
        assert_eq!(names.name(0), Some("a"));
        assert_eq!(names.name(u32::MAX), None);
    }
}
