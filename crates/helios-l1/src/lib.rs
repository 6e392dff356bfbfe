//! # Helios L1
//!
//! A concurrent, weight-bounded in-process cache for AI-agent state.
//!
//! ```
//! use helios_l1::Cache;
//! let cache = Cache::new(10_000)?;
//! cache.insert(7u64, "seven".to_string()).ok();
//! assert_eq!(cache.get(&7).as_deref(), Some("seven"));
//! # Ok::<(), helios_l1::BuildError>(())
//! ```
//!
//! ## Guarantees
//! - **Lookups take no lock, hits never wait for one, nothing allocates.**
//!   A lookup enters a read section (plain stores to the thread's own
//!   record; the fence is on the writers' side), probes an
//!   open-addressing table of slab indices, compares the key and clones the
//!   value ([`Cache::with`] borrows it instead of cloning). `src/raw/mod.rs`
//!   documents the protocol and its memory orderings. The hit is then
//!   recorded in the thread's read-buffer stripe; a reader that finds its
//!   stripe full replays the buffer into the policy if the shard lock is
//!   free (a try-lock, never a wait), at most 4 times between two writes to
//!   the shard (`src/recording.rs`;
//!   [`CacheBuilder::reader_drains_per_write`]). Readers never help
//!   reclaim what writers retire, so hits do not allocate even while
//!   writers run.
//! - **Hot hits store nothing shared.** The most-hit entries (1,024 by
//!   default, chosen from the hits the policy drains) are copied into an
//!   immutable hot table in front of the shards. A hit there checks a
//!   membership filter, enters a read section (plain stores to the thread's
//!   own cache-padded record; `membarrier(2)` on the writer side spares
//!   readers the fence) and probes the table: no lock, no atomic
//!   read-modify-write, no store to memory another thread writes, no
//!   allocation, and no read-buffer record. The table is published only while
//!   its entries take at least 80% of the hits (below that the tier costs
//!   more than it saves). See `src/hot/mod.rs` and `src/raw/sections.rs`.
//! - **The weight never exceeds the capacity.** The capacity is split evenly
//!   across shards; each shard evicts before its write returns. An entry
//!   heavier than one shard's share is refused and handed back.
//! - **Scan-resistant, adaptive eviction.** Each shard runs W-TinyLFU with a
//!   window sized from ghosts of recent evictions; see `src/policy/mod.rs`.
//! - **Single-flight loading.** [`Cache::get_or_insert_with`] runs one loader
//!   per key at a time; errors reach every waiter, panics wedge nobody.
//! - **Reservations hold.** In an [`AgentCache`], an agent within its
//!   reservation never loses an entry to another agent's inserts: eviction
//!   passes over its entries ([`Retention::Pinned`]). Caps are hard, and an
//!   agent streaming through far more than its fair share has its inserts
//!   refused; see [`AgentCache`] for the rules and their one exception.
//!
//! ## Consistency
//! Every operation on one key is linearizable: a `get` that starts after an
//! `insert` or `remove` returned observes it, in either tier (writes
//! invalidate the key's hot slot before they return). `len` and `weight` are sums of
//! per-shard counters, exact when no write is in progress. The policy learns
//! of hits through lossy buffers (a hit may go unrecorded when a buffer is
//! full and its reader may not drain it), which affects which entry is
//! evicted, never correctness.
//!
//! ## Map
//! | module | concept |
//! |---|---|
//! | `cache` | the public [`Cache`]: hashing, shards, single flight |
//! | `agent` | [`AgentCache`]: registered agents, private namespaces, per-agent statistics, lifecycle events |
//! | `options` | [`CacheBuilder`] and defaults |
//! | `shard` | one shard: map + read buffer + policy under a lock |
//! | `raw` | the lock-free core: slab, index table, read buffer, hot tables and their read sections (all `unsafe`) |
//! | `reclaim` | deferred reclamation: each writer's limbo of unlinked slots and tables, freed after shared grace periods |
//! | `recording` | how hits reach the policy once a read buffer is full: bounded reader drains, or exact |
//! | `policy` | adaptive W-TinyLFU: queues, frequency sketch, ghost-guided window climber, and the shadows that choose between the adaptive and a large window |
//! | `hot` | the hot tier: most-hit entries readable with no shared store |
//! | `flight` | single-flight loading |
//! | `pool` | [`BufferPool`]: reusable value buffers in size classes |
//! | `counter` | striped, cache-padded statistics counters |
//! | `thread_token` | a number per thread that is never reused, and whether its thread has exited (the agents' single-owner read counters) |
//! | `prefetch` | software prefetch hints (replays of buffered hits fetch ahead) |
//! | `hash`, `weigher` | pluggable hashing and weighing |
//! | `equivalent` | finding a stored key by a borrowed form of it; side words and the class bit that keep an agent store's namespaces apart |
//! | `removal` | [`RemovalCause`] and the removal listener |
//! | `retention` | [`Retention`]: per-entry hints that pin or expend entries at eviction |
//! | `error` | errors at the boundaries |
//! | `sync` | the one import point for atomics and locks (loom shim) |

#![deny(unsafe_op_in_unsafe_fn)]

mod agent;
mod cache;
mod counter;
mod equivalent;
mod error;
mod flight;
mod hash;
mod hot;
mod options;
mod policy;
mod pool;
mod prefetch;
mod raw;
mod reclaim;
mod recording;
mod removal;
mod retention;
mod shard;
mod sync;
mod thread_token;
mod weigher;

pub use agent::{
    AgentCache, AgentConfig, AgentError, AgentEvent, AgentHandle, AgentHashBuilder, AgentHasher,
    AgentId, AgentSort, AgentState, AgentStats, AgentStore, AgentWeigher, Scoped, Stored,
    MAX_AGENTS,
};
pub use cache::{Cache, SlotStats};
pub use error::{BuildError, RefusalReason, Refused};
pub use hash::{DefaultHashBuilder, UniformHashBuilder, UniformHasher};
pub use hot::HotTierStats;
pub use options::{
    default_shards, CacheBuilder, DEFAULT_HOT_TIER_ENTRIES, DEFAULT_HOT_TIER_MIN_HIT_SHARE,
    DEFAULT_HOT_TIER_REFRESH, MAX_ENTRIES_PER_SHARD, MAX_HOT_TIER_ENTRIES,
};
pub use pool::{BufferPool, PoolError, PoolStats, PooledBuffer};
pub use recording::{HitRecordingStats, DEFAULT_READER_DRAINS_PER_WRITE};
pub use removal::RemovalCause;
pub use retention::Retention;
pub use weigher::{UnitWeigher, Weigher};

/// The README's Rust examples compile and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
