//! Software prefetch: a hint that a cache line will be read soon.
//!
//! Replaying buffered hits into the policy touches, per record, a policy
//! node, a frequency-sketch block and the node's list neighbours, each a
//! likely cache miss at a random address; handled one record at a time the
//! misses are paid one after another. Hinting the lines of records a few
//! places ahead lets the memory system fetch them in parallel with the
//! current record's work (`raw::read_buffer::ReadBuffer::drain_ahead`).

/// Asks the CPU to bring the cache line holding `value` towards the core.
/// Never faults and changes no memory: a hint only, ignored on targets
/// without a prefetch instruction.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `prefetch` reads no memory and cannot fault, even on an
        // invalid address (here it is a valid reference); SSE, which
        // provides it, is part of the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
