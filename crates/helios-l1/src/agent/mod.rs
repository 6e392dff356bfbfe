//! Agent awareness: registered agents that read and write through handles,
//! with private namespaces, ownership charging, fair eviction, per-agent
//! statistics and lifecycle events. The design is documented on
//! [`AgentCache`], where users of the crate see it.

mod registry;

use std::borrow::Borrow;
use std::cell::Cell;
use std::convert::Infallible;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Instant;

use registry::{slot_offset, Counter, Registry, Slot, SlotChunk, OVER_SHARE_FACTOR};
pub use registry::{
    AgentConfig, AgentError, AgentEvent, AgentId, AgentSort, AgentState, AgentStats, MAX_AGENTS,
};

use ref_cast::RefCast;

use crate::equivalent::{Equivalent, CLASS_BIT};
use crate::error::{BuildError, RefusalReason, Refused};

use crate::hash::DefaultHashBuilder;
use crate::weigher::{UnitWeigher, Weigher};
use crate::Cache;

/// A key of an [`AgentCache`]: shared, or private to one agent, and for a
/// stored shared key the agent charged for its entry. Refusals hand it
/// back ([`Stored`]).
///
/// The store keeps its two parts apart: the key inline in the entry, as a
/// plain [`Cache`]'s, and the namespace word in the entry's side word
/// (`crate::equivalent`), which shared reads never touch, so that an
/// agent store's entries are as wide as a plain cache's.
#[derive(Clone, Debug)]
pub struct Scoped<K> {
    /// A private key: its agent's [`AgentId::to_bits`] (bit 63 clear). A
    /// shared key: [`SHARED_BIT`] plus the bits of the agent charged for
    /// the entry ([`NOBODY`] when no agent is, as for [`Scoped::shared`]).
    /// Identity (`Eq`, `Hash`) ignores the charged agent of a shared key.
    namespace: u64,
    key: K,
}

/// Bit 63 of a namespace: the key is shared. No agent id sets it (slot
/// indices are below 2^31).
const SHARED_BIT: u64 = 1 << 63;
/// The charged agent of a shared key that no agent stored: an id whose slot
/// index is beyond [`MAX_AGENTS`], so it is charged to nobody (orphaned).
const NOBODY: u64 = SHARED_BIT - 1;
/// The namespace of a shared key no agent is charged for: [`Scoped::shared`]
/// and what the store's public API stores.
const SHARED_UNCHARGED: u64 = SHARED_BIT | NOBODY;

fn is_shared(namespace: u64) -> bool {
    namespace & SHARED_BIT != 0
}

impl<K> Scoped<K> {
    /// A key in the shared namespace.
    pub fn shared(key: K) -> Self {
        Self {
            namespace: SHARED_UNCHARGED,
            key,
        }
    }

    /// A shared key as `owner` stores it: charged to `owner`.
    fn shared_by(owner: AgentId, key: K) -> Self {
        Self {
            namespace: SHARED_BIT | owner.to_bits(),
            key,
        }
    }

    fn private(owner: AgentId, key: K) -> Self {
        Self {
            namespace: owner.to_bits(),
            key,
        }
    }

    #[inline(always)]
    fn identity(&self) -> u64 {
        identity(self.namespace)
    }

    /// The agent whose private key this is, if any.
    pub fn owner(&self) -> Option<AgentId> {
        (!self.is_shared()).then(|| AgentId::from_bits(self.namespace))
    }

    /// Whether the key is in the shared namespace.
    pub fn is_shared(&self) -> bool {
        is_shared(self.namespace)
    }

    /// The hash its lookup form has in `cache` (class bit included).
    fn hash_in<V, W, S>(&self, cache: &AgentStore<K, V, W, S>) -> u64
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        W: Weigher<K, V>,
        S: BuildHasher,
    {
        match self.owner() {
            Some(owner) => cache.hash(&PrivateRef::new(owner, &self.key)),
            None => cache.hash(SharedRef::new(&self.key)),
        }
    }

    /// The key within its namespace.
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: PartialEq> PartialEq for Scoped<K> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity() && self.key == other.key
    }
}

impl<K: Eq> Eq for Scoped<K> {}

impl<K: Hash> Hash for Scoped<K> {
    // As its lookup forms hash ([`SharedRef`], [`PrivateRef`]): a shared key
    // as its key alone, a private key with its namespace after the key.
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        if self.is_shared() {
            SharedRef::new(&self.key).hash(state);
        } else {
            PrivateRef {
                namespace: self.namespace,
                key: &self.key,
            }
            .hash(state);
        }
    }
}

/// A namespace as identity sees it: all shared keys alike (the side-word
/// convention of `crate::equivalent`, whose bit 63 is [`SHARED_BIT`]).
#[inline(always)]
fn identity(namespace: u64) -> u64 {
    crate::equivalent::side_identity(namespace)
}

/// The agent charged for an entry whose namespace (side word) is
/// `namespace`: a private key's agent, or the agent that stored a shared
/// entry (an id beyond [`MAX_AGENTS`] if none did).
#[inline]
fn charged_to(namespace: u64) -> AgentId {
    AgentId::from_bits(namespace & !SHARED_BIT)
}

/// A lookup in the shared namespace, borrowed from the caller so that
/// reading a `String` key does not build a `String`. Hashes as its key
/// (`K: Borrow<Q>` makes `Q`'s hash `K`'s), in class 0, and matches a
/// stored key by the key alone: class 0 holds shared entries only, so the
/// namespace (side) word is never read on the agents' hottest path, and
/// the read is a plain cache's. `#[repr(transparent)]` ([`RefCast`]): a
/// `&SharedRef<Q>` is the caller's `&Q` itself.
#[derive(RefCast)]
#[repr(transparent)]
struct SharedRef<Q: ?Sized>(Q);

impl<Q: ?Sized> SharedRef<Q> {
    fn new(key: &Q) -> &Self {
        Self::ref_cast(key)
    }
}

impl<Q: Hash + ?Sized> Hash for SharedRef<Q> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl<K: Borrow<Q>, Q: Eq + ?Sized> Equivalent<K> for SharedRef<Q> {
    #[inline]
    fn equivalent(&self, stored: &K) -> bool {
        self.0 == *stored.borrow()
    }
}

/// A lookup in one agent's private namespace, borrowed from the caller.
/// Hashes as its key, then its namespace, in class 1, and matches an entry
/// by key and namespace (side) word.
struct PrivateRef<'a, Q: ?Sized> {
    /// [`AgentId::to_bits`]: bit 63 clear, so it never equals a shared
    /// key's namespace.
    namespace: u64,
    key: &'a Q,
}

impl<'a, Q: ?Sized> PrivateRef<'a, Q> {
    fn new(owner: AgentId, key: &'a Q) -> Self {
        Self {
            namespace: owner.to_bits(),
            key,
        }
    }
}

impl<Q: Hash + ?Sized> Hash for PrivateRef<'_, Q> {
    #[inline]
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Key first: a pass-through hasher (`UniformHashBuilder`) keeps the
        // first word written, which must be the key's, or every private
        // key of one agent would hash alike.
        self.key.hash(state);
        state.write_u64(self.namespace);
    }
}

impl<K: Borrow<Q>, Q: Eq + ?Sized> Equivalent<K> for PrivateRef<'_, Q> {
    const CLASS: u64 = CLASS_BIT;

    #[inline]
    fn equivalent(&self, stored: &K) -> bool {
        *self.key == *stored.borrow()
    }

    #[inline]
    fn side_matches(&self, side: impl FnOnce() -> u64) -> bool {
        side() == self.namespace
    }
}

/// What a read looks up: a [`SharedRef`] or a [`PrivateRef`].
trait Lookup<K>: Hash + Equivalent<K> {
    /// The key within the shared namespace, for a shared lookup.
    type Key: ?Sized;
    fn shared_key(&self) -> Option<&Self::Key>;
}

impl<K: Borrow<Q>, Q: Hash + Eq + ?Sized> Lookup<K> for SharedRef<Q> {
    type Key = Q;
    fn shared_key(&self) -> Option<&Q> {
        Some(&self.0)
    }
}

impl<K: Borrow<Q>, Q: Hash + Eq + ?Sized> Lookup<K> for PrivateRef<'_, Q> {
    type Key = Q;
    fn shared_key(&self) -> Option<&Q> {
        None
    }
}

/// Weighs an [`AgentCache`]'s entries with the user's weigher, on the key
/// within its namespace.
#[derive(Clone, Copy, Debug, Default)]
pub struct AgentWeigher<W>(W);

impl<K, V, W: Weigher<K, V>> Weigher<K, V> for AgentWeigher<W> {
    #[inline(always)]
    fn weigh(&self, key: &K, value: &V) -> u64 {
        self.0.weigh(key, value)
    }

    fn is_unit(&self) -> bool {
        self.0.is_unit()
    }
}

/// Hashes an [`AgentCache`]'s keys with the user's hasher, bit 31 cleared:
/// the cache sets it again for an agent's private lookups (the class bit
/// of `crate::equivalent`), so that shared and private entries never meet
/// in a probe, however their keys hash.
#[derive(Clone, Copy, Debug, Default)]
pub struct AgentHashBuilder<S>(S);

impl<S: BuildHasher> BuildHasher for AgentHashBuilder<S> {
    type Hasher = AgentHasher<S::Hasher>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        AgentHasher(self.0.build_hasher())
    }
}

/// The hasher of [`AgentHashBuilder`]: the user's, every write passed on
/// as it came (a pass-through hasher keeps its meaning), bit 31 of the
/// result cleared.
#[derive(Clone, Debug)]
pub struct AgentHasher<H>(H);

impl<H: std::hash::Hasher> std::hash::Hasher for AgentHasher<H> {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish() & !CLASS_BIT
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
    #[inline]
    fn write_i8(&mut self, i: i8) {
        self.0.write_i8(i);
    }
    #[inline]
    fn write_i16(&mut self, i: i16) {
        self.0.write_i16(i);
    }
    #[inline]
    fn write_i32(&mut self, i: i32) {
        self.0.write_i32(i);
    }
    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.0.write_i64(i);
    }
    #[inline]
    fn write_i128(&mut self, i: i128) {
        self.0.write_i128(i);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.0.write_isize(i);
    }
}

/// The cache an [`AgentCache`] stores into: keys as the agents name them,
/// each entry's namespace in its side word.
pub type AgentStore<K, V, W = UnitWeigher, S = DefaultHashBuilder> =
    Cache<K, V, AgentWeigher<W>, AgentHashBuilder<S>>;

thread_local! {
    /// The agent whose insert is running on this thread, with its
    /// registry's address, so that evictions it causes are credited to it.
    static INSERTING: Cell<Option<(usize, AgentId)>> = const { Cell::new(None) };
}

/// The agent whose insert is running on this thread, if it is one of the
/// registry at `address`.
fn inserting(address: usize) -> Option<AgentId> {
    INSERTING
        .try_with(Cell::get)
        .ok()
        .flatten()
        .filter(|&(registry, _)| registry == address)
        .map(|(_, id)| id)
}

/// Runs `f` with `id` recorded as the inserting agent of the registry at
/// `address`, so that the evictions `f` causes are attributed to it and
/// its own entries are not pinned against it.
fn as_inserter<R>(address: usize, id: AgentId, f: impl FnOnce() -> R) -> R {
    let outer = INSERTING.try_with(|c| c.replace(Some((address, id))));
    let result = f();
    if let Ok(outer) = outer {
        let _ = INSERTING.try_with(|c| c.set(outer));
    }
    result
}

/// A cache shared by registered agents, which read and write through
/// handles, with private namespaces, ownership charging, fair eviction,
/// per-agent statistics and lifecycle events.
///
/// It stores into a [`Cache`] ([`AgentStore`]) whose entries carry a
/// namespace ([`Scoped`]): shared, or private to one agent (its
/// [`AgentId`], generation included). A handle can only name its own private
/// keys, so another agent reading the same key gets its own namespace's
/// answer, never the value; a terminated agent's private entries are
/// removed, and its slot's next agent has a different generation, so any
/// leftover is unreachable.
///
/// # Ownership and charging
/// Every entry's namespace names the agent charged for it ([`Scoped`]; its
/// weight is the cache's own record, told to the listeners). Content stored
/// once and read by many agents is charged to the agent that stored it
/// (first touch), and to the next agent that replaces it. The cache's insert and removal listeners run under the entry's shard
/// lock, so each entry is charged exactly once when stored and credited once
/// when it leaves, whatever the interleaving: the charges of live agents
/// plus the weight of entries whose owner was terminated always add up to
/// the cache's weight ([`AgentCache::charged_weight`]). An eviction is
/// counted as suffered by the entry's owner and caused by the agent whose
/// insert triggered it.
///
/// # Caps, shares and reservations
/// An agent's *fair share* is its reservation plus its priority's part of
/// the capacity no active agent has reserved (Memshare's reserved-plus-pool
/// split). The pool is split among its *claimants*: the active agents that
/// have a reservation, hold entries, or have stored an entry since they
/// were registered, and the agent asking. Agents registered but idle
/// (without a reservation), and pure readers of what others stored, claim
/// nothing, so they do not shrink the others' shares (with 16 agents registered and 2 inserting,
/// each of the two may use half the cache, not a sixteenth). An agent that
/// has inserted keeps its claim while it is active, even after its entries
/// are evicted, so a scanner cannot grow its share by evicting idle agents'
/// entries; suspend an idle agent to lend its share. Claimants are counted
/// anew at each agent's every 1,024th stored insert (or load), and by the first
/// admission check on a full cache or [`fair_share`](AgentHandle::fair_share)
/// call after a lifecycle change (a count that finds the registry busy is
/// retried at the next of these); eviction judges entries by the last
/// count. A suspended agent's share is 0 and its reservation is lent, so
/// on a full cache its inserts are refused. Three rules use it:
/// - **Caps are hard.** An insert, a load or an adoption that would take
///   the agent's resident weight above its cap is refused
///   ([`RefusalReason::AgentCap`]); only growth counts, so an agent at its
///   cap can still replace its own values with ones no heavier. A capped
///   agent's check and write are one step under a per-agent lock, so
///   threads writing through one agent cannot together pass its cap.
///   A refused insert removes the value it would have replaced, as
///   [`Cache::insert`] does.
/// - **Admission.** While the cache is full, an agent holding more than
///   twice its fair share (and more than its reservation) has its inserts
///   refused ([`RefusalReason::AgentOverShare`]): a scan stops displacing
///   other agents' entries after a few hundred of its own.
/// - **Eviction** asks about each entry it considers
///   ([`Retention`](crate::Retention)):
///   - an entry whose owner is *within its reservation* (resident weight at
///     most the reservation) is **pinned** against every other agent's
///     inserts: the policy passes over it. Its owner's own inserts may
///     still evict it (an agent chooses among its own entries by the
///     policy's judgement). So an agent within its reservation never loses
///     a resident entry to another agent, whatever the other does. The one
///     exception is a shard holding nothing but pinned entries, when the
///     capacity bound wins; it cannot happen while the reservations of
///     live agents sum to less than one shard's capacity, and is unlikely
///     below the whole capacity (keys spread evenly over shards).
///     Registration refuses a reservation that would take the live agents'
///     reservations above the capacity ([`AgentError::InvalidConfig`]).
///   - an entry whose owner is **suspended**, or holds more than twice its
///     fair share, is **expendable**: it loses every admission duel against
///     other entries, whatever its frequency. Suspension also moves the
///     agent's entries to the front of the eviction order, so they go
///     first.
///   - every other entry is left to W-TinyLFU, so agents that behave alike
///     see the plain cache's hit ratio (BENCHMARKS.md measures it).
///
/// A reservation is not carved out of the cache: until its agent uses it,
/// other agents' entries fill the space (it is lent), and the agent's own
/// inserts take it back on demand by evicting unpinned entries. Suspended
/// agents lend their reservation to the pool (their fair share drops to 0
/// and others' rise).
///
/// A shared object is charged to the agent that stored it and protected
/// while that agent is within its reservation. When an active agent with a
/// reservation reads a shared object whose charged agent does not protect
/// it (no reservation, above it, suspended or gone) while the reader has
/// room within its own reservation, the charge moves to the reader
/// ([`adopt`](AgentHandle::adopt), which callers may also use directly):
/// so a shared object stays protected while any reserved agent that uses it
/// can protect it, at the cost of one write per object taken over, not a
/// write per hit or a list of readers per object. Agents without a
/// reservation, and suspended agents, read through the plain path.
///
/// # Example
///
/// ```
/// use helios_l1::{AgentCache, AgentConfig};
/// let cache = AgentCache::new(10_000)?;
/// let planner = cache.register_agent("planner", AgentConfig::new())?;
/// let coder = cache.register_agent("coder", AgentConfig::new())?;
/// planner.insert(1u64, "shared plan".to_string())?.ok();
/// planner.insert_private(2, "scratch".to_string())?.ok();
/// assert_eq!(coder.get(&1)?.as_deref(), Some("shared plan"));
/// assert_eq!(coder.get_private(&2)?, None); // not coder's
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AgentCache<K, V, W = UnitWeigher, S = DefaultHashBuilder> {
    cache: AgentStore<K, V, W, S>,
    registry: Arc<Registry<K>>,
}

impl<K, V> AgentCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of `capacity` entries shared by agents.
    pub fn new(capacity: u64) -> Result<Arc<Self>, BuildError> {
        Self::with_weigher(capacity, UnitWeigher)
    }
}

impl<K, V, W> AgentCache<K, V, W>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<K, V>,
{
    /// A cache of `capacity` weight units whose entries `weigher` weighs.
    pub fn with_weigher(capacity: u64, weigher: W) -> Result<Arc<Self>, BuildError> {
        Self::with_weigher_and_hasher(capacity, weigher, DefaultHashBuilder::default())
    }
}

impl<K, V, W, S> AgentCache<K, V, W, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<K, V>,
    S: BuildHasher + Send + Sync + 'static,
{
    /// A cache of `capacity` weight units whose entries `weigher` weighs,
    /// hashing keys with `hasher` (see [`CacheBuilder::hasher`]): for
    /// example [`UniformHashBuilder`] for keys that already are uniform
    /// hashes, such as BLAKE3 content ids, or a fixed seed for replays that
    /// repeat. A pass-through hasher ignores the namespace (it keeps the
    /// key's first word), so the shared entry and every agent's private
    /// entry of one digest hash alike: they stay apart (identity compares
    /// the namespace) but share a probe chain and a frequency count.
    ///
    /// [`CacheBuilder::hasher`]: crate::CacheBuilder::hasher
    /// [`UniformHashBuilder`]: crate::UniformHashBuilder
    ///
    /// ```
    /// use helios_l1::{AgentCache, AgentConfig, UniformHashBuilder, UnitWeigher};
    /// let cache = AgentCache::<[u8; 32], Vec<u8>, _, _>::with_weigher_and_hasher(
    ///     1_000,
    ///     UnitWeigher,
    ///     UniformHashBuilder,
    /// )?;
    /// let agent = cache.register_agent("indexer", AgentConfig::new())?;
    /// let id = [7u8; 32]; // a BLAKE3 digest of the chunk, in practice
    /// agent.insert(id, b"chunk".to_vec())?.ok();
    /// assert_eq!(agent.get(&id)?.as_deref(), Some(&b"chunk"[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_weigher_and_hasher(
        capacity: u64,
        weigher: W,
        hasher: S,
    ) -> Result<Arc<Self>, BuildError> {
        let registry: Arc<Registry<K>> = Arc::default();
        let address = Arc::as_ptr(&registry) as usize;
        let (arrivals, departures, judge) = (
            Arc::clone(&registry),
            Arc::clone(&registry),
            Arc::clone(&registry),
        );
        let cache = Cache::builder()
            .capacity(capacity)
            .weigher(AgentWeigher(weigher))
            .hasher(AgentHashBuilder(hasher))
            // Entries stored through `cache()` are shared and charged to
            // nobody.
            .side_words(SHARED_UNCHARGED)
            .weighed_insert_listener(move |_: &K, namespace, _: &V, weight| {
                arrivals.arrive(charged_to(namespace), weight, is_shared(namespace));
            })
            .weighed_removal_listener(move |_: &K, namespace, _: &V, cause, weight| {
                let by = inserting(address);
                departures.depart(
                    charged_to(namespace),
                    weight,
                    is_shared(namespace),
                    cause,
                    by,
                );
            })
            .sided_retention(move |_: &K, namespace, _: &V| {
                judge.retention(charged_to(namespace), capacity, inserting(address))
            })
            .build()?;
        Ok(Arc::new(Self { cache, registry }))
    }

    /// Registers an agent named `name` (unique among live agents).
    pub fn register_agent(
        self: &Arc<Self>,
        name: &str,
        config: AgentConfig,
    ) -> Result<AgentHandle<K, V, W, S>, AgentError> {
        let id = self
            .registry
            .register(name, config, self.cache.capacity())?;
        Ok(AgentHandle {
            cache: Arc::clone(self),
            slots: Arc::clone(self.registry.chunk(id.index())),
            id,
            plain_status: Slot::<K>::plain_reader_status(id),
        })
    }

    /// Statistics of every live agent, ordered by `sort`.
    pub fn agents(&self, sort: AgentSort) -> Vec<AgentStats> {
        self.registry.snapshot(sort)
    }

    /// Number of live agents.
    pub fn agent_count(&self) -> usize {
        self.registry.len()
    }

    /// Weight charged to live agents plus that of entries whose owner was
    /// terminated: equal to `cache().weight()` whenever no write is in
    /// progress.
    pub fn charged_weight(&self) -> u64 {
        self.registry.total_charged().max(0) as u64
    }

    /// Calls `listener` for every later registration, suspension,
    /// resumption, termination and quota pressure (the first refused insert
    /// of an agent over its cap or share, once per episode), on the thread
    /// that caused it.
    pub fn subscribe(&self, listener: impl Fn(&AgentEvent) + Send + Sync + 'static) {
        self.registry.subscribe(Box::new(listener));
    }

    /// Recomputes every live agent's resident weight, owned and shared,
    /// from the entries charged to it, and checks it against the agent's
    /// statistics, the entries' total against [`charged_weight`], and the
    /// underlying cache's own invariants ([`Cache::validate`]). For tests
    /// and fuzzers: exact when no write is in progress; it locks each
    /// shard in turn.
    ///
    /// [`charged_weight`]: Self::charged_weight
    pub fn validate(&self) -> Result<(), String> {
        self.cache.validate()?;
        // (resident, resident shared) per charged agent, from the entries.
        let charged =
            std::cell::RefCell::new(std::collections::HashMap::<AgentId, (u64, u64)>::new());
        let weigher = &self.cache.weigher().0;
        self.cache.demote_where_sided(|key, namespace, value| {
            let weight = weigher.weigh(key, value);
            let mut charged = charged.borrow_mut();
            let entry = charged.entry(charged_to(namespace)).or_default();
            entry.0 += weight;
            if is_shared(namespace) {
                entry.1 += weight;
            }
            false
        });
        let charged = charged.into_inner();
        for stats in self.registry.snapshot(AgentSort::Name) {
            let (resident, shared) = charged.get(&stats.id).copied().unwrap_or_default();
            if (stats.resident, stats.resident_shared) != (resident, shared) {
                return Err(format!(
                    "agent {} ({:?}) is charged {} ({} shared), its entries weigh {resident} ({shared} shared)",
                    stats.name, stats.id, stats.resident, stats.resident_shared
                ));
            }
        }
        let total: u64 = charged.values().map(|&(resident, _)| resident).sum();
        if total != self.charged_weight() {
            return Err(format!(
                "entries weigh {total}, charges and orphans add up to {}",
                self.charged_weight()
            ));
        }
        Ok(())
    }

    /// The underlying cache (for its statistics and capacity). Its lookups
    /// and [`Cache::demote_where`] see shared entries only, and what it
    /// stores is shared and charged to no agent.
    pub fn cache(&self) -> &AgentStore<K, V, W, S> {
        &self.cache
    }
}

/// One agent's access to an [`AgentCache`]. Cheap to clone, Send + Sync.
/// Every method fails with [`AgentError::Terminated`] once the agent was
/// terminated.
pub struct AgentHandle<K, V, W = UnitWeigher, S = DefaultHashBuilder> {
    cache: Arc<AgentCache<K, V, W, S>>,
    /// The registry chunk holding this agent's slot, so that every call
    /// reaches the slot with an index below `CHUNK_SLOTS` (no bounds
    /// check, no table lookup).
    slots: Arc<SlotChunk<K>>,
    id: AgentId,
    /// The slot's status word while this agent is a plain reader (see
    /// `Slot::plain_reader`), computed once.
    plain_status: u64,
}

// A handle is part of what each agent costs (BENCHMARKS.md adds it to the
// registry's bytes per agent): the configuration stays in the slot.
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<AgentHandle<u64, u64>>() <= 32);

impl<K, V, W, S> Clone for AgentHandle<K, V, W, S> {
    fn clone(&self) -> Self {
        Self {
            cache: Arc::clone(&self.cache),
            slots: Arc::clone(&self.slots),
            id: self.id,
            plain_status: self.plain_status,
        }
    }
}

/// What a handle's insert returns when the agent is alive: `Ok`, or the
/// refusal (too heavy) with the key and value handed back.
pub type Stored<K, V> = Result<(), Refused<Scoped<K>, V>>;

/// Whether a refused store removes the value it would have replaced: an
/// insert's does (its writer meant to replace it), a load's does not (the
/// entry is another agent's, stored while the load ran).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Replacing {
    Yes,
    No,
}

/// A refusal's quota-pressure event, sent by the caller once it is safe to
/// run subscribers (see `AgentHandle::store_quietly`).
#[derive(Clone, Copy, Debug)]
struct Pressure {
    resident: u64,
    limit: u64,
}

/// The entry an insert replaces, as its admission weighs it.
#[derive(Clone, Copy, Debug)]
struct Replaced {
    weight: u64,
    /// Whether it is charged to the inserting agent (its weight then
    /// leaves that agent's charge as the new value's arrives).
    charged_here: bool,
}

impl<K, V, W, S> AgentHandle<K, V, W, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<K, V>,
    S: BuildHasher + Send + Sync + 'static,
{
    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    #[inline]
    fn slot(&self) -> &Slot<K> {
        &self.slots[slot_offset(self.id.index())]
    }

    /// Whether the agent is active or suspended.
    pub fn state(&self) -> Result<AgentState, AgentError> {
        self.slot().check(self.id)?;
        self.slot()
            .state()
            .ok_or(AgentError::Terminated { id: self.id })
    }

    /// The agent's fair share of the capacity now: its reservation plus
    /// its priority's part of what active agents have not reserved, split
    /// among the agents that claim the pool (see [`AgentCache`]'s docs), 0
    /// while it is suspended (its share is lent out).
    pub fn fair_share(&self) -> Result<u64, AgentError> {
        if self.state()? == AgentState::Suspended {
            return Ok(0);
        }
        let registry = &self.cache.registry;
        registry.refresh_claimants();
        Ok(registry.fair_share(self.cache.cache.capacity(), self.slot()))
    }

    fn weigh(&self, key: &K, value: &V) -> u64 {
        self.cache.cache.weigher().0.weigh(key, value)
    }

    fn private_key(&self, key: K) -> Scoped<K> {
        Scoped::private(self.id, key)
    }

    /// Removes the entry `key` names (in its namespace).
    fn remove_scoped(&self, key: &Scoped<K>) -> Option<V> {
        let cache = &self.cache.cache;
        match key.owner() {
            Some(owner) => cache.remove_equivalent(&PrivateRef::new(owner, &key.key)),
            None => cache.remove_equivalent(SharedRef::new(&key.key)),
        }
    }

    #[inline]
    fn read<L, R>(&self, key: &L, f: impl FnOnce(&V) -> R) -> Result<Option<R>, AgentError>
    where
        L: Lookup<K> + ?Sized,
        K: Borrow<L::Key>,
        L::Key: Hash + Eq,
    {
        // One slot lookup for the check and the count.
        let slot = self.slot();
        let value = if slot.plain_reader(self.plain_status) {
            self.cache.cache.with_entry(key, |_, value| f(value))
        } else {
            self.read_other(key, slot, f)?
        };
        slot.count_read(value.is_some());
        Ok(value)
    }

    /// A read by anyone but a live, active agent without a reservation:
    /// a terminated agent's handle (an error), a suspended agent (the plain
    /// path: a suspended owner protects nothing, so it adopts nothing), or
    /// an active agent with a reservation (which may adopt what it reads).
    /// Out of line, so that the common reader's path stays one compare.
    #[inline(never)]
    fn read_other<L, R>(
        &self,
        key: &L,
        slot: &Slot<K>,
        f: impl FnOnce(&V) -> R,
    ) -> Result<Option<R>, AgentError>
    where
        L: Lookup<K> + ?Sized,
        K: Borrow<L::Key>,
        L::Key: Hash + Eq,
    {
        let reserving = slot.check(self.id)?;
        let reserved = slot.reserved_weight();
        Ok(match key.shared_key() {
            Some(shared) if reserving && reserved > 0 => {
                self.read_protecting(shared, slot, reserved, f)
            }
            _ => self.cache.cache.with_entry(key, |_, value| f(value)),
        })
    }

    /// A read by an agent with a reservation: a shared object whose charged
    /// agent does not protect it is taken over (adopted) while this agent
    /// is within its reservation, so a shared object stays protected while
    /// any reserved agent that reads it can. Costs a write only when the
    /// charge moves, once per object.
    fn read_protecting<Q, R>(
        &self,
        key: &Q,
        slot: &Slot<K>,
        reserved: u64,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        // Inside the read (a read section of the main table): a few
        // atomic loads and, only for an unprotected object, the user's
        // weigher, which must stay cheap anyway.
        // The main table only: the hot tier keeps no namespaces.
        let (value, adopt) = self.cache.cache.with_entry_sided(
            SharedRef::new(key),
            |stored, namespace, value| {
                let charged = charged_to(namespace);
                let adopt = charged != self.id
                    && !self.cache.registry.protects(charged)
                    && slot.resident().saturating_add(self.weigh(stored, value)) <= reserved;
                (f(value), adopt)
            },
        )?;
        if adopt {
            // Refused (cap) or raced: the object just stays as it was.
            let _ = self.adopt(key);
        }
        Some(value)
    }

    /// A clone of the shared value of `key`. Allocates nothing beyond what
    /// `V::clone` does: the key is looked up by reference (a reserved
    /// agent's read that adopts the object clones the key once, for the
    /// re-charged entry).
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>, AgentError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(SharedRef::new(key), V::clone)
    }

    /// A clone of this agent's private value of `key`.
    pub fn get_private<Q>(&self, key: &Q) -> Result<Option<V>, AgentError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(&PrivateRef::new(self.id, key), V::clone)
    }

    /// Runs `f` on the shared value of `key` without cloning it (see
    /// [`Cache::with`]: `f` runs inside a read section, so keep it short)
    /// and returns what `f` returns, or `None` on a miss. Counts as a read,
    /// like [`get`](Self::get).
    ///
    /// ```
    /// use helios_l1::{AgentCache, AgentConfig};
    /// let cache = AgentCache::<String, Vec<u8>>::new(1 << 20)?;
    /// let agent = cache.register_agent("reader", AgentConfig::new())?;
    /// agent.insert("weights".to_string(), vec![0; 4096])?.ok();
    /// assert_eq!(agent.with("weights", |bytes| bytes.len())?, Some(4096));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Result<Option<R>, AgentError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(SharedRef::new(key), f)
    }

    /// Like [`with`](Self::with), on this agent's private value of `key`.
    pub fn with_private<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Result<Option<R>, AgentError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.read(&PrivateRef::new(self.id, key), f)
    }

    /// Why an insert of `weight` by this agent must be refused, if it must:
    /// it would exceed the agent's cap, or the cache is full and the agent
    /// already holds more than twice its fair share (so its insert would
    /// evict other agents' entries to make room for an outsized footprint;
    /// a scanning agent hits this after a few hundred entries, agents that
    /// behave alike practically never). `replaced` is the entry the insert
    /// replaces, if any: its weight, and whether it is charged to this
    /// agent. Only growth is judged: replacing an own entry with a value no
    /// heavier is never refused.
    fn admission(&self, weight: u64, replaced: Option<Replaced>) -> Option<RefusalReason> {
        let (own, old) = replaced.map_or((0, 0), |r| {
            (if r.charged_here { r.weight } else { 0 }, r.weight)
        });
        // What this agent's charge and the cache's weight would grow by.
        let growth = weight.saturating_sub(own);
        if growth == 0 {
            return None;
        }
        let resident = self.slot().resident();
        let config = self.slot().config();
        if let Some(cap) = config.cap_weight() {
            if resident.saturating_add(growth) > cap {
                return Some(RefusalReason::AgentCap { resident, cap });
            }
        }
        let cache = &self.cache.cache;
        let capacity = cache.capacity();
        if cache.weight().saturating_sub(old).saturating_add(weight) > capacity {
            let registry = &self.cache.registry;
            registry.refresh_claimants();
            let share = registry.fair_share(capacity, self.slot());
            // A suspended agent's share is 0 and its reservation is lent.
            let reserved = if self.slot().state() == Some(AgentState::Active) {
                config.reserved_weight()
            } else {
                0
            };
            let allowed = share.saturating_mul(OVER_SHARE_FACTOR).max(reserved);
            if resident.saturating_add(growth) > allowed {
                return Some(RefusalReason::AgentOverShare { resident, share });
            }
        }
        None
    }

    /// The entry an insert of `key` would replace (read without counting an
    /// access).
    fn replaced(&self, key: &Scoped<K>) -> Option<Replaced> {
        let replaced = |stored: &K, namespace: u64, value: &V| Replaced {
            weight: self.weigh(stored, value),
            charged_here: charged_to(namespace) == self.id,
        };
        let cache = &self.cache.cache;
        match key.owner() {
            Some(owner) => cache.peek_sided(&PrivateRef::new(owner, &key.key), replaced),
            None => cache.peek_sided(SharedRef::new(&key.key), replaced),
        }
    }

    /// Counts an insert (or a load), and at its pace recounts the pool's
    /// claimants.
    fn count_insert(&self) {
        let inserts = self.slot().count_insert();
        self.cache.registry.recount_claimants_every(inserts);
    }

    /// Stores `value` under `key`, charged to this agent; evictions it
    /// causes are counted as caused by this agent. A refused insert removes
    /// the value it would have replaced, as [`Cache::insert`] does: a
    /// reader never gets a value its writer tried to replace.
    fn store(&self, key: Scoped<K>, value: V) -> Stored<K, V> {
        let (stored, pressure) = self.store_quietly(key, value, Replacing::Yes);
        if let Some(pressure) = pressure {
            self.announce(pressure);
        }
        stored
    }

    /// [`store`](Self::store) without sending the quota-pressure event that
    /// a refusal may start: returned for the caller to send once it holds
    /// no lock and leads no load (a subscriber may write through this agent,
    /// or read the key being loaded). A load's store (`Replacing::No`)
    /// leaves an entry that another agent stored meanwhile in place.
    fn store_quietly(
        &self,
        key: Scoped<K>,
        value: V,
        replacing: Replacing,
    ) -> (Stored<K, V>, Option<Pressure>) {
        let weight = self.weigh(&key.key, &value);
        // A capped agent's check and write are one step (see
        // `Slot::charge_lock`); the guard drops after the insert's charge.
        let _charging = self.slot().charge_lock();
        // What the insert replaces only ever makes it more admissible, so
        // it is looked up (a second probe) only for an insert that would
        // otherwise be refused.
        let mut replaced = None;
        let mut refusal = self.admission(weight, None);
        if refusal.is_some() {
            replaced = self.replaced(&key);
            refusal = self.admission(weight, replaced);
        }
        if let Some(reason) = refusal {
            let (resident, limit) = match reason {
                RefusalReason::AgentCap { resident, cap } => (resident, cap),
                RefusalReason::AgentOverShare { resident, share } => {
                    (resident, share.saturating_mul(OVER_SHARE_FACTOR))
                }
                _ => (0, 0),
            };
            if replaced.is_some() && replacing == Replacing::Yes {
                self.remove_scoped(&key);
            }
            return (
                Err(Refused { key, value, reason }),
                Some(Pressure { resident, limit }),
            );
        }
        self.cache.registry.relieve(self.id);
        let registry = Arc::as_ptr(&self.cache.registry) as usize;
        let hash = key.hash_in(&self.cache.cache);
        let Scoped { namespace, key } = key;
        let stored = as_inserter(registry, self.id, || {
            self.cache.cache.insert_hashed(hash, key, namespace, value)
        })
        .map_err(|refused| Refused {
            key: Scoped {
                namespace,
                key: refused.key,
            },
            value: refused.value,
            reason: refused.reason,
        });
        if stored.is_ok() {
            self.count_insert();
        }
        (stored, None)
    }

    /// Sends the quota-pressure event of a refusal (once per episode).
    fn announce(&self, pressure: Pressure) {
        self.cache
            .registry
            .pressure(self.id, pressure.resident, pressure.limit);
    }

    /// Inserts into the shared namespace.
    pub fn insert(&self, key: K, value: V) -> Result<Stored<K, V>, AgentError> {
        self.slot().check(self.id)?;
        Ok(self.store(Scoped::shared_by(self.id, key), value))
    }

    /// Inserts into this agent's private namespace.
    pub fn insert_private(&self, key: K, value: V) -> Result<Stored<K, V>, AgentError> {
        self.slot().check(self.id)?;
        self.cache
            .registry
            .with_private(self.id.index(), |private| {
                private.insert(key.clone(), |k| {
                    self.cache
                        .cache
                        .peek(&PrivateRef::new(self.id, k), |_, _| ())
                        .is_some()
                });
            });
        Ok(self.store(self.private_key(key), value))
    }

    /// Removes `key` from the shared namespace.
    pub fn remove(&self, key: &K) -> Result<Option<V>, AgentError> {
        self.slot().check(self.id)?;
        Ok(self.cache.cache.remove(key))
    }

    /// Removes `key` from this agent's private namespace.
    pub fn remove_private(&self, key: &K) -> Result<Option<V>, AgentError> {
        self.slot().check(self.id)?;
        self.cache
            .registry
            .with_private(self.id.index(), |private| private.remove(key));
        Ok(self
            .cache
            .cache
            .remove_equivalent(&PrivateRef::new(self.id, key)))
    }

    /// Publishes this agent's private value of `key` in the shared namespace
    /// (explicit sharing), charged to this agent; returns whether it was
    /// published: false if the agent has no private value of `key`, or if
    /// the insert was refused (its cap or share; a shared value it would
    /// have replaced is then removed, as by [`insert`](Self::insert)). The
    /// private copy stays.
    pub fn share(&self, key: &K) -> Result<bool, AgentError> {
        self.slot().check(self.id)?;
        let private = PrivateRef::new(self.id, key);
        let Some(value) = self.cache.cache.with_entry(&private, |_, v| v.clone()) else {
            return Ok(false);
        };
        Ok(self
            .store(Scoped::shared_by(self.id, key.clone()), value)
            .is_ok())
    }

    /// The shared value of `key`, loaded with `load` on a miss (single
    /// flight across agents; the loaded value is charged to the agent that
    /// loaded it). Counts a hit, or a miss and (if this agent ran the
    /// loader) a load and its time. A loaded value that the agent's cap or
    /// share refuses (as [`insert`](Self::insert) would, by its weight) is
    /// returned to the caller and its waiters but not cached.
    pub fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> Result<V, AgentError> {
        self.slot().check(self.id)?;
        let mut loaded = false;
        let mut pressure = None;
        let registry = Arc::as_ptr(&self.cache.registry) as usize;
        // The store names this agent: if its loader runs, the value is stored
        // through `store`, charged to the agent that loaded it, and refused
        // like any insert of its weight (over its cap or share: returned,
        // not cached).
        let value = as_inserter(registry, self.id, || {
            self.cache.cache.load_through(
                key,
                || {
                    loaded = true;
                    let start = Instant::now();
                    let value = load();
                    self.slot().add_load_time(start.elapsed());
                    Ok::<V, Infallible>(value)
                },
                |key, value| {
                    let key = Scoped::shared_by(self.id, key);
                    pressure = self.store_quietly(key, value, Replacing::No).1;
                },
            )
        });
        let value = match value {
            Ok(value) => value,
            Err(never) => match *never {},
        };
        // After the flight: a subscriber may read this very key.
        if let Some(pressure) = pressure {
            self.announce(pressure);
        }
        if loaded {
            self.slot().count(Counter::Misses);
            self.slot().count(Counter::Loads);
        } else {
            self.slot().count(Counter::Hits);
        }
        Ok(value)
    }

    /// Takes over the charge for the shared object `key` (see the module
    /// docs): it is then protected by this agent's reservation. Returns
    /// whether the object is cached and now charged to this agent. Refused
    /// (false) when it would take the agent above its cap.
    pub fn adopt<Q>(&self, key: &Q) -> Result<bool, AgentError>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.slot().check(self.id)?;
        let id = self.id;
        let slot = self.slot();
        let cap = slot.config().cap_weight();
        // The cap check and the re-charge are one step (`Slot::charge_lock`).
        let _charging = slot.charge_lock();
        let mut already = false;
        let adopted =
            self.cache
                .cache
                .update_entry(SharedRef::new(key), |stored, namespace, value| {
                    if charged_to(namespace) == id {
                        already = true;
                        return None;
                    }
                    let weight = self.weigh(stored, value);
                    if cap.is_some_and(|cap| slot.resident().saturating_add(weight) > cap) {
                        return None;
                    }
                    // A new entry, charged anew: one clone of the key and value
                    // per adoption.
                    Some((stored.clone(), SHARED_BIT | id.to_bits(), value.clone()))
                });
        Ok(adopted || already)
    }

    /// Suspends the agent (returns false if it already was): its
    /// reservation is lent to the pool, and every entry charged to it moves
    /// to the front of the eviction order and loses every admission duel
    /// until it resumes. Cost: one pass over the cache's entries
    /// ([`Cache::demote_where`]).
    pub fn suspend(&self) -> Result<bool, AgentError> {
        let suspended = self
            .cache
            .registry
            .set_state(self.id, AgentState::Suspended)?;
        if suspended {
            self.cache
                .cache
                .demote_where_sided(|_, namespace, _| charged_to(namespace) == self.id);
        }
        Ok(suspended)
    }

    /// Resumes a suspended agent (returns false if it was active).
    pub fn resume(&self) -> Result<bool, AgentError> {
        self.cache.registry.set_state(self.id, AgentState::Active)
    }

    /// Ends the agent: its private entries are removed, its name and slot
    /// are free for reuse, and every clone of this handle fails from now on.
    /// Returns how many private entries were still cached and removed. Cost:
    /// one removal per private key the agent inserted.
    pub fn terminate(&self) -> Result<usize, AgentError> {
        let cache = &self.cache;
        cache.registry.terminate(
            self.id,
            || cache.cache.wait_for_writers(),
            |keys| {
                keys.into_iter()
                    .filter(|k| {
                        cache
                            .cache
                            .remove_equivalent(&PrivateRef::new(self.id, k))
                            .is_some()
                    })
                    .count()
            },
        )
    }
}

impl<K, V, W, S> std::fmt::Debug for AgentHandle<K, V, W, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").field("id", &self.id).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    /// The map finds an entry by a lookup's hash (class bit included) and
    /// `equivalent`, and in class 1 by its namespace word: a shared lookup
    /// finds the shared entry whoever is charged for it, a private lookup
    /// only its own agent's entry, and no lookup the other class's.
    #[test]
    fn lookups_hash_and_match_exactly_the_keys_they_name() {
        let cache = AgentCache::<String, u64, _, _>::with_weigher_and_hasher(
            100,
            UnitWeigher,
            foldhash::fast::FixedState::with_seed(7),
        )
        .unwrap();
        let store = &cache.cache;
        let (a, b) = (
            AgentId::from_bits(3 << 32 | 1),
            AgentId::from_bits(4 << 32 | 1),
        );
        let key = "plan".to_string();
        let shared = store.hash(SharedRef::new("plan"));
        let private_a = store.hash(&PrivateRef::new(a, "plan"));
        let private_b = store.hash(&PrivateRef::new(b, "plan"));
        // Classes: bit 31 set for private lookups only.
        assert_eq!(shared & CLASS_BIT, 0);
        assert_eq!(store.hash(&key), shared, "a shared lookup is the key's");
        assert_ne!(private_a & CLASS_BIT, 0);
        assert_ne!(private_a, private_b, "the namespace is hashed");
        // A scoped key hashes as its lookup form, whoever is charged.
        for scoped in [
            Scoped::shared_by(a, key.clone()),
            Scoped::shared(key.clone()),
        ] {
            assert_eq!(scoped.hash_in(store), shared);
        }
        assert_eq!(Scoped::private(a, key.clone()).hash_in(store), private_a);

        // Matching: the key, and for a private lookup the namespace word.
        assert!(SharedRef::new("plan").equivalent(&key));
        assert!(!SharedRef::new("code").equivalent(&key));
        let private = PrivateRef::new(a, "plan");
        assert!(private.equivalent(&key));
        let side_matches = |side: u64| Equivalent::<String>::side_matches(&private, || side);
        assert!(side_matches(a.to_bits()));
        assert!(!side_matches(b.to_bits()));
        assert!(!side_matches(SHARED_BIT | a.to_bits()));

        // Identity of scoped keys ignores the charge of a shared one only.
        assert_eq!(Scoped::shared_by(a, 1u64), Scoped::shared_by(b, 1u64));
        assert_ne!(Scoped::private(a, 1u64), Scoped::private(b, 1u64));
        assert_ne!(Scoped::private(a, 1u64), Scoped::shared_by(a, 1u64));
    }

    /// With a pass-through hasher (content ids), a private key hashes as
    /// its key's first word, like a shared one: the namespace must not be
    /// the first word written, or all of an agent's private keys would
    /// share one hash.
    #[test]
    fn private_keys_keep_their_own_hash_under_a_pass_through_hasher() {
        let uniform = |value: &dyn Fn(&mut crate::UniformHasher)| {
            let mut hasher = crate::UniformHashBuilder.build_hasher();
            value(&mut hasher);
            std::hash::Hasher::finish(&hasher)
        };
        let agent = AgentId::from_bits(3 << 32 | 1);
        for word in [1u64, 0x0123_4567_89ab_cdef, u64::MAX] {
            let mut digest = [0u8; 32];
            digest[..8].copy_from_slice(&word.to_le_bytes());
            let private = Scoped::private(agent, digest);
            assert_eq!(uniform(&|h| private.hash(h)), word);
            assert_eq!(uniform(&|h| PrivateRef::new(agent, &digest).hash(h)), word);
            assert_eq!(uniform(&|h| Scoped::shared(digest).hash(h)), word);
        }
    }
}
