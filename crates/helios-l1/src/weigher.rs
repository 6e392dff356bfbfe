//! How much of the capacity an entry uses.

/// Computes an entry's weight in capacity units (for example bytes).
///
/// Called once per insert, before the shard lock is taken; it should be cheap
/// and must return the same weight for the same entry. A weight of 0 is
/// allowed: such entries use no capacity, so the weight never makes room
/// for them (eviction for weight takes them from its queues like any
/// other entry, but only while the weight is over the capacity). What
/// bounds them is the entry count: a shard evicts by count beyond about
/// 15.7 million entries ([`MAX_ENTRIES_PER_SHARD`](crate::MAX_ENTRIES_PER_SHARD)).
pub trait Weigher<K, V> {
    /// The weight of `value` stored under `key`.
    fn weigh(&self, key: &K, value: &V) -> u64;

    /// Whether every entry weighs 1. The default shard count depends on it
    /// ([`CacheBuilder::shards`](crate::CacheBuilder::shards)): with real
    /// weights a shard must stay large enough to hold large entries.
    fn is_unit(&self) -> bool {
        false
    }
}

/// Every entry weighs 1, so the capacity counts entries. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitWeigher;

impl<K, V> Weigher<K, V> for UnitWeigher {
    #[inline(always)]
    fn weigh(&self, _key: &K, _value: &V) -> u64 {
        1
    }

    fn is_unit(&self) -> bool {
        true
    }
}

impl<K, V, F> Weigher<K, V> for F
where
    F: Fn(&K, &V) -> u64,
{
    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u64 {
        self(key, value)
    }
}
