//! How hits reach the policy once a read buffer is full.
//!
//! A hit appends a record to its thread's stripe of the shard's read buffer
//! (`raw::read_buffer`), and every write replays the buffer into the policy
//! first. Between two writes a stripe holds 256 records; what happens to the
//! hits after that is set here:
//! - by default a reader whose stripe is full *drains* it itself, under a
//!   try-lock of the shard (it never waits: if the lock is held, the record
//!   is dropped, and the holder has drained the buffer or is about to), at most
//!   [`DEFAULT_READER_DRAINS_PER_WRITE`] times between two writes to the
//!   shard; after that, records are dropped until the next write;
//! - with exact recording a reader whose stripe is full waits for the lock
//!   and drains, so no record is ever dropped.
//!
//! A hit that drains does the replay work itself, as every write already
//! does: up to 256 records per stripe in use, tens of microseconds, so such a
//! hit shows up in the latency tail (Caffeine hands the same work to an
//! executor thread; this crate starts no threads of its own).
//!
//! Why a bound: draining replays each hit into the policy (a sketch
//! increment and a queue move, about 180 instructions), which is what
//! Caffeine does for every hit. With the bound, a read-only phase costs
//! nothing after its first 5 × 256 hits per stripe, and the 100%-read and
//! 95%-read benchmarks run as fast as without reader drains; read-mostly
//! phases (in our probe, a write every ~1,000 reads to an 8-shard cache)
//! pay up to a third more instructions per read. Why drain at all: a run of
//! hits longer than a stripe is exactly what loop- and phase-structured
//! workloads produce, and dropping it cost `gli` at 1,260 2.7 pp and
//! `orm-night` at 4,300 1.8 pp of hit ratio against these drains (4 runs
//! each; BENCHMARKS.md, "Reader drains").

/// Reader drains allowed between two writes to a shard. Over the shared
/// traces (mean gap to Bélády, 2–4 runs each): 0 drains (drop when full)
/// 4.17 pp, 1 drain 4.16, 4 drains 4.04, 16 drains 4.08, unbounded 4.03.
/// Four keep nearly all of the unbounded gain; one keeps none of it (the
/// runs of hits that matter are longer than two stripes).
pub const DEFAULT_READER_DRAINS_PER_WRITE: u32 = 4;

/// What a hit does when its read-buffer stripe is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HitRecording {
    /// Wait for the shard lock and drain: no hit record is ever dropped.
    pub(crate) exact: bool,
    /// Otherwise: drains a reader may run (under a try-lock) between two
    /// writes to the shard.
    pub(crate) reader_drains_per_write: u32,
}

impl Default for HitRecording {
    fn default() -> Self {
        Self {
            exact: false,
            reader_drains_per_write: DEFAULT_READER_DRAINS_PER_WRITE,
        }
    }
}

/// How much of the hit stream the policy heard (see
/// [`Cache::hit_recording_stats`](crate::Cache::hit_recording_stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HitRecordingStats {
    /// Hit records replayed into the policy (by writers and by readers).
    pub replayed: u64,
    /// Drains run by readers whose stripe was full.
    pub reader_drains: u64,
}
