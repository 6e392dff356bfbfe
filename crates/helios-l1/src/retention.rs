//! Retention hints: how strongly eviction should keep an entry, decided per
//! entry by the user when the policy is about to evict it.
//!
//! The policy (W-TinyLFU) chooses victims by frequency and recency alone. A
//! retention hint lets a caller who knows more override it for particular
//! entries, which is what per-agent reservations are built on
//! ([`AgentCache`](crate::AgentCache)): an entry of an agent within its
//! reservation is pinned against other agents' inserts, and the entries of
//! a suspended agent are expendable.

/// How strongly eviction should keep an entry; see
/// [`CacheBuilder::retention`](crate::CacheBuilder::retention).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Retention {
    /// Evict before others: it loses every admission duel against a
    /// `Normal` or `Pinned` entry, whatever the frequency sketch says.
    Expendable,
    /// Leave it to the policy.
    Normal,
    /// Do not evict: the policy passes over it (moving it to the
    /// most-recent end of its queue) and evicts something else. Only when
    /// every entry of the shard has been passed over once in one eviction
    /// round, so that nothing else could make room, is a pinned entry
    /// evicted, because the capacity bound comes first.
    Pinned,
}

/// Called for each entry the policy is about to evict or must compare.
pub(crate) type RetentionFn<K, V> = Box<dyn Fn(&K, u64, &V) -> Retention + Send + Sync>;
