//! Entry notifications: user callbacks told about every entry that is
//! stored, and every entry that leaves the cache and why. Both run under the
//! entry's shard lock, so for one key an arrival is always heard before its
//! departure: the hook exact per-agent accounting builds on. The set also
//! carries the retention hint (`retention.rs`), the third per-entry hook.

use std::sync::Arc;

use crate::retention::RetentionFn;

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

/// Called for each entry stored: its key, side word (0 in a cache without
/// them; `crate::equivalent`), value, and the weight the cache charged.
pub(crate) type OnInsert<K, V> = Box<dyn Fn(&K, u64, &V, u64) + Send + Sync>;
/// Called for each entry that leaves: key, side word, value, why, and the
/// weight it was charged at.
pub(crate) type OnRemoval<K, V> = Box<dyn Fn(&K, u64, &V, RemovalCause, u64) + Send + Sync>;

/// The listeners as stored: shared by every shard.
pub(crate) struct ListenerSet<K, V> {
    pub(crate) on_insert: Option<OnInsert<K, V>>,
    pub(crate) on_removal: Option<OnRemoval<K, V>>,
    pub(crate) retention: Option<RetentionFn<K, V>>,
}

/// Shared by every shard.
pub(crate) type Listeners<K, V> = Arc<ListenerSet<K, V>>;
