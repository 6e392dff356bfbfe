//! Agent awareness: registered agents that read and write through handles,
//! with private namespaces, per-agent statistics and lifecycle events.
//!
//! An [`AgentCache`] wraps a [`Cache`] whose keys are [`Scoped`]: a key in the
//! shared namespace, or a key private to one agent (tagged with its
//! [`AgentId`], generation included). A handle can only name its own private
//! keys, so another agent reading the same key gets its own namespace's
//! answer, never the value; a terminated agent's private entries are
//! removed, and its slot's next agent has a different generation, so any
//! leftover is unreachable.
//!
//! Not yet built (see the issue notes): reservations and caps are validated
//! and reported but not enforced, because the engine does not yet record an
//! entry's owner or let eviction prefer agents above their share.

mod registry;

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::Instant;

pub use registry::{
    AgentConfig, AgentError, AgentEvent, AgentId, AgentSort, AgentState, AgentStats, MAX_AGENTS,
};
use registry::{Counter, Registry, Slot};

use crate::error::Refused;
use crate::weigher::Weigher;
use crate::Cache;

/// A key of an [`AgentCache`]: shared, or private to one agent.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scoped<K> {
    owner: Option<AgentId>,
    key: K,
}

impl<K> Scoped<K> {
    /// A key in the shared namespace.
    pub fn shared(key: K) -> Self {
        Self { owner: None, key }
    }

    /// The agent whose private key this is, if any.
    pub fn owner(&self) -> Option<AgentId> {
        self.owner
    }

    /// The key within its namespace.
    pub fn key(&self) -> &K {
        &self.key
    }
}

/// A cache shared by registered agents; see the [module docs](self).
///
/// ```
/// use helios_l1::{AgentCache, AgentConfig, Cache};
/// let cache = AgentCache::new(Cache::new(10_000)?);
/// let planner = cache.register_agent("planner", AgentConfig::new())?;
/// let coder = cache.register_agent("coder", AgentConfig::new())?;
/// planner.insert(1u64, "shared plan".to_string())?;
/// planner.insert_private(2, "scratch".to_string())?;
/// assert_eq!(coder.get(&1)?.as_deref(), Some("shared plan"));
/// assert_eq!(coder.get_private(&2)?, None); // not coder's
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AgentCache<K, V, W = crate::UnitWeigher, S = crate::DefaultHashBuilder> {
    cache: Cache<Scoped<K>, V, W, S>,
    registry: Registry<K>,
}

impl<K, V, W, S> AgentCache<K, V, W, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<Scoped<K>, V>,
    S: BuildHasher,
{
    /// Wraps `cache`.
    pub fn new(cache: Cache<Scoped<K>, V, W, S>) -> Arc<Self> {
        Arc::new(Self {
            cache,
            registry: Registry::default(),
        })
    }

    /// Registers an agent named `name` (unique among live agents).
    pub fn register_agent(
        self: &Arc<Self>,
        name: &str,
        config: AgentConfig,
    ) -> Result<AgentHandle<K, V, W, S>, AgentError> {
        let id = self.registry.register(name, config)?;
        Ok(AgentHandle {
            cache: Arc::clone(self),
            id,
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

    /// Calls `listener` for every later registration, suspension,
    /// resumption and termination, on the thread that caused it.
    pub fn subscribe(&self, listener: impl Fn(&AgentEvent) + Send + Sync + 'static) {
        self.registry.subscribe(Box::new(listener));
    }

    /// The underlying cache (for its statistics and capacity).
    pub fn cache(&self) -> &Cache<Scoped<K>, V, W, S> {
        &self.cache
    }
}

/// One agent's access to an [`AgentCache`]. Cheap to clone, Send + Sync.
/// Every method fails with [`AgentError::Terminated`] once the agent was
/// terminated.
pub struct AgentHandle<K, V, W = crate::UnitWeigher, S = crate::DefaultHashBuilder> {
    cache: Arc<AgentCache<K, V, W, S>>,
    id: AgentId,
}

impl<K, V, W, S> Clone for AgentHandle<K, V, W, S> {
    fn clone(&self) -> Self {
        Self {
            cache: Arc::clone(&self.cache),
            id: self.id,
        }
    }
}

impl<K, V, W, S> AgentHandle<K, V, W, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    W: Weigher<Scoped<K>, V>,
    S: BuildHasher,
{
    /// This agent's id.
    pub fn id(&self) -> AgentId {
        self.id
    }

    fn slot(&self) -> &Slot<K> {
        self.cache.registry.slot(self.id.index())
    }

    /// Whether the agent is active or suspended.
    pub fn state(&self) -> Result<AgentState, AgentError> {
        self.slot().check(self.id)?;
        self.slot()
            .state()
            .ok_or(AgentError::Terminated { id: self.id })
    }

    fn private_key(&self, key: K) -> Scoped<K> {
        Scoped {
            owner: Some(self.id),
            key,
        }
    }

    fn read(&self, key: &Scoped<K>) -> Result<Option<V>, AgentError> {
        self.slot().check(self.id)?;
        let value = self.cache.cache.get(key);
        self.slot().count(if value.is_some() {
            Counter::Hits
        } else {
            Counter::Misses
        });
        Ok(value)
    }

    /// A clone of the shared value of `key`.
    pub fn get<Q>(&self, key: &Q) -> Result<Option<V>, AgentError>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + ?Sized,
    {
        self.read(&Scoped::shared(key.to_owned()))
    }

    /// A clone of this agent's private value of `key`.
    pub fn get_private<Q>(&self, key: &Q) -> Result<Option<V>, AgentError>
    where
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + ?Sized,
    {
        self.read(&self.private_key(key.to_owned()))
    }

    /// Inserts into the shared namespace.
    pub fn insert(
        &self,
        key: K,
        value: V,
    ) -> Result<Result<(), Refused<Scoped<K>, V>>, AgentError> {
        self.slot().check(self.id)?;
        self.slot().count(Counter::Inserts);
        Ok(self.cache.cache.insert(Scoped::shared(key), value))
    }

    /// Inserts into this agent's private namespace.
    pub fn insert_private(
        &self,
        key: K,
        value: V,
    ) -> Result<Result<(), Refused<Scoped<K>, V>>, AgentError> {
        self.slot().check(self.id)?;
        self.slot().count(Counter::Inserts);
        {
            let mut book = self.slot().book.lock();
            let private = &mut book.private;
            // Forget keys evicted since, before the set outgrows the cache.
            if private.len() as u64 >= self.cache.cache.capacity().max(64) {
                private.retain(|k| self.cache.cache.contains_key(&self.private_key(k.clone())));
            }
            private.insert(key.clone());
        }
        Ok(self.cache.cache.insert(self.private_key(key), value))
    }

    /// Removes `key` from the shared namespace.
    pub fn remove(&self, key: &K) -> Result<Option<V>, AgentError> {
        self.slot().check(self.id)?;
        Ok(self.cache.cache.remove(&Scoped::shared(key.clone())))
    }

    /// Removes `key` from this agent's private namespace.
    pub fn remove_private(&self, key: &K) -> Result<Option<V>, AgentError> {
        self.slot().check(self.id)?;
        self.slot().book.lock().private.remove(key);
        Ok(self.cache.cache.remove(&self.private_key(key.clone())))
    }

    /// Publishes this agent's private value of `key` in the shared namespace
    /// (explicit sharing); returns whether there was one. The private copy
    /// stays.
    pub fn share(&self, key: &K) -> Result<bool, AgentError> {
        self.slot().check(self.id)?;
        let Some(value) = self.cache.cache.get(&self.private_key(key.clone())) else {
            return Ok(false);
        };
        Ok(self
            .cache
            .cache
            .insert(Scoped::shared(key.clone()), value)
            .is_ok())
    }

    /// The shared value of `key`, loaded with `load` on a miss (single
    /// flight across agents). Counts a hit, or a miss and (if this agent
    /// ran the loader) a load and its time.
    pub fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> Result<V, AgentError> {
        self.slot().check(self.id)?;
        let mut loaded = false;
        let value = self
            .cache
            .cache
            .get_or_insert_with(Scoped::shared(key), || {
                loaded = true;
                let start = Instant::now();
                let value = load();
                self.slot().add_load_time(start.elapsed());
                value
            });
        if loaded {
            self.slot().count(Counter::Misses);
            self.slot().count(Counter::Loads);
            self.slot().count(Counter::Inserts);
        } else {
            self.slot().count(Counter::Hits);
        }
        Ok(value)
    }

    /// Suspends the agent (returns false if it already was).
    pub fn suspend(&self) -> Result<bool, AgentError> {
        self.cache
            .registry
            .set_state(self.id, AgentState::Suspended)
    }

    /// Resumes a suspended agent (returns false if it was active).
    pub fn resume(&self) -> Result<bool, AgentError> {
        self.cache.registry.set_state(self.id, AgentState::Active)
    }

    /// Ends the agent: its private entries are removed, its name and slot
    /// are free for reuse, and every clone of this handle fails from now on.
    /// Returns how many private entries were still cached and removed. Cost:
    /// one removal per private key the agent inserted (BENCHMARKS.md).
    pub fn terminate(&self) -> Result<usize, AgentError> {
        let cache = &self.cache;
        cache.registry.terminate(self.id, |keys| {
            keys.into_iter()
                .filter(|k| cache.cache.remove(&self.private_key(k.clone())).is_some())
                .count()
        })
    }
}

impl<K, V, W, S> std::fmt::Debug for AgentHandle<K, V, W, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHandle").field("id", &self.id).finish()
    }
}
