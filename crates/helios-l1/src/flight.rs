//! Single-flight loading: concurrent misses on one key run one loader.
//!
//! The first caller to miss becomes the *leader* and registers a [`Flight`]
//! in its shard's pending list; later callers for the same key find it and
//! wait on its condition variable. The leader publishes one [`Outcome`]:
//! the value, the loader's error (shared by every waiter), or `Abandoned` if
//! the loader panicked, in which case the waiters start over (one of them
//! becomes the next leader) instead of waiting forever.

use std::any::Any;
use std::sync::Arc;

use crate::sync::{Condvar, Mutex};

/// What a finished flight produced.
pub(crate) enum Outcome<V> {
    Loaded(V),
    /// The loader's error, type-erased so that waiters whose error type
    /// differs from the leader's can tell and load for themselves.
    Failed(Arc<dyn Any + Send + Sync>),
    Abandoned,
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Self::Loaded(v) => Self::Loaded(v.clone()),
            Self::Failed(e) => Self::Failed(Arc::clone(e)),
            Self::Abandoned => Self::Abandoned,
        }
    }
}

/// One load in progress.
pub(crate) struct Flight<V> {
    outcome: Mutex<Option<Outcome<V>>>,
    done: Condvar,
}

impl<V: Clone> Flight<V> {
    /// Blocks until the leader finishes, then returns its outcome.
    pub(crate) fn wait(&self) -> Outcome<V> {
        let mut outcome = self.outcome.lock();
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return outcome.clone();
            }
            self.done.wait(&mut outcome);
        }
    }
}

struct Pending<K, V> {
    hash: u64,
    key: K,
    flight: Arc<Flight<V>>,
}

/// A shard's loads in progress. Few at a time, so a vector beats a map.
pub(crate) struct Flights<K, V> {
    pending: Mutex<Vec<Pending<K, V>>>,
}

/// What [`Flights::join`] made the caller.
pub(crate) enum Role<V> {
    Leader(Arc<Flight<V>>),
    Follower(Arc<Flight<V>>),
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            pending: Mutex::new(Vec::new()),
        }
    }
}

impl<K: Eq + Clone, V> Flights<K, V> {
    /// Joins the flight for `key`, starting one if there is none.
    pub(crate) fn join(&self, hash: u64, key: &K) -> Role<V> {
        let mut pending = self.pending.lock();
        if let Some(p) = pending.iter().find(|p| p.hash == hash && p.key == *key) {
            return Role::Follower(Arc::clone(&p.flight));
        }
        let flight = Arc::new(Flight {
            outcome: Mutex::new(None),
            done: Condvar::new(),
        });
        pending.push(Pending {
            hash,
            key: key.clone(),
            flight: Arc::clone(&flight),
        });
        Role::Leader(flight)
    }

    /// Ends `flight`: unregisters it, then wakes its waiters with `outcome`.
    pub(crate) fn finish(&self, flight: &Arc<Flight<V>>, outcome: Outcome<V>) {
        self.pending
            .lock()
            .retain(|p| !Arc::ptr_eq(&p.flight, flight));
        *flight.outcome.lock() = Some(outcome);
        flight.done.notify_all();
    }
}

/// Ends the leader's flight as `Abandoned` if the loader unwinds.
pub(crate) struct LeaderGuard<'a, K: Eq + Clone, V> {
    pub(crate) flights: &'a Flights<K, V>,
    pub(crate) flight: Arc<Flight<V>>,
    pub(crate) finished: bool,
}

impl<K: Eq + Clone, V> LeaderGuard<'_, K, V> {
    pub(crate) fn finish(mut self, outcome: Outcome<V>) {
        self.finished = true;
        self.flights.finish(&self.flight, outcome);
    }
}

impl<K: Eq + Clone, V> Drop for LeaderGuard<'_, K, V> {
    fn drop(&mut self) {
        if !self.finished {
            self.flights.finish(&self.flight, Outcome::Abandoned);
        }
    }
}
