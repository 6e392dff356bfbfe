//! Removal notifications: a user callback told about every entry that
//! leaves the cache, and why (the hook per-agent accounting builds on).

use std::sync::Arc;

/// Why an entry left the cache; see
/// [`CacheBuilder::removal_listener`](crate::CacheBuilder::removal_listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// The policy chose it to make room.
    Evicted,
    /// An insert of the same key replaced it (or, if the new value was
    /// refused as too heavy, removed it).
    Replaced,
    /// [`Cache::remove`](crate::Cache::remove) removed it.
    Removed,
    /// [`Cache::clear`](crate::Cache::clear) removed it.
    Cleared,
}

/// The listener as stored: shared by every shard.
pub(crate) type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;
