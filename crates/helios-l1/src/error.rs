//! Errors at the cache's boundaries: building it and inserting into it.

use std::fmt;

/// Why [`CacheBuilder::build`](crate::CacheBuilder::build) refused options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The capacity was zero: such a cache could hold nothing.
    ZeroCapacity,
    /// The shard count must be a power of two (shards are picked by hash bits).
    ShardsNotPowerOfTwo {
        /// The shard count given.
        shards: usize,
    },
    /// Each shard needs at least one unit of capacity.
    CapacityBelowShards {
        /// The capacity given.
        capacity: u64,
        /// The shard count given or chosen.
        shards: usize,
    },
    /// The hot tier may hold at most `max` entries.
    HotTierTooLarge {
        /// The entry count given.
        entries: usize,
        /// The largest accepted.
        max: usize,
    },
    /// The hot tier's least hit share is a percentage.
    HotTierShareAbove100 {
        /// The share given.
        percent: u8,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroCapacity => write!(f, "cache capacity must be at least 1"),
            Self::ShardsNotPowerOfTwo { shards } => {
                write!(f, "shard count must be a power of two, got {shards}")
            }
            Self::CapacityBelowShards { capacity, shards } => write!(
                f,
                "capacity {capacity} is smaller than the shard count {shards}; use fewer shards"
            ),
            Self::HotTierTooLarge { entries, max } => write!(
                f,
                "hot tier of {entries} entries requested; at most {max} are supported"
            ),
            Self::HotTierShareAbove100 { percent } => write!(
                f,
                "hot tier minimum hit share is a percentage (0 to 100), got {percent}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}

/// Why an insert was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// The entry weighs more than one shard's capacity, the most any single
    /// entry may weigh (see [`Cache::max_entry_weight`](crate::Cache::max_entry_weight)).
    TooHeavy {
        /// The weigher's verdict on the entry.
        weight: u64,
        /// The largest weight an entry may have in this cache.
        max: u64,
    },
    /// The shard has no free entry index left: its slots that wait for
    /// readers before reuse have used up the indices its live entries leave
    /// ([`MAX_ENTRIES_PER_SHARD`](crate::MAX_ENTRIES_PER_SHARD) in all; a
    /// shard evicts by count well before its live entries alone could).
    /// The refusal evicts one entry, so inserts find room again once the
    /// waiting slots are reclaimed.
    IndexSpaceExhausted,
    /// The inserting agent would exceed its cap
    /// ([`AgentConfig::cap`](crate::AgentConfig::cap)).
    AgentCap {
        /// The agent's resident weight before the insert.
        resident: u64,
        /// Its cap.
        cap: u64,
    },
    /// The cache is full and the inserting agent holds more than twice its
    /// fair share: its insert would push out other agents' entries.
    AgentOverShare {
        /// The agent's resident weight before the insert.
        resident: u64,
        /// Its fair share of the capacity.
        share: u64,
    },
}

/// An insert the cache refused. The key and value are handed back.
///
/// If the key was present before, its old entry has been removed: after a
/// refused insert the cache never serves a value the caller tried to replace.
pub struct Refused<K, V> {
    /// The key that was not inserted.
    pub key: K,
    /// The value that was not inserted.
    pub value: V,
    /// Why.
    pub reason: RefusalReason,
}

impl<K, V> fmt::Debug for Refused<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refused")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl<K, V> fmt::Display for Refused<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            RefusalReason::TooHeavy { weight, max } => write!(
                f,
                "entry refused: it weighs {weight}, more than the largest admissible entry weight {max}"
            ),
            RefusalReason::IndexSpaceExhausted => {
                write!(f, "entry refused: the shard has no free entry index left")
            }
            RefusalReason::AgentCap { resident, cap } => write!(
                f,
                "entry refused: the agent holds {resident} of its cap {cap}"
            ),
            RefusalReason::AgentOverShare { resident, share } => write!(
                f,
                "entry refused: the cache is full and the agent holds {resident}, over twice its fair share {share}"
            ),
        }
    }
}

impl<K, V> std::error::Error for Refused<K, V> {}
