//! Striped, lossy buffers through which hits report to the policy.
//!
//! A hit must not wait for the shard lock, yet the policy (recency order and
//! frequency sketch) needs to hear about it. As in Caffeine's
//! `BoundedBuffer` and ristretto's ring buffers, a hit appends one `u64` to a
//! small ring; the writer drains the rings under the shard lock before it
//! changes anything. When a ring is full, `record` refuses it; the
//! shard then decides whether the reader drains the rings itself (under a
//! try-lock, a bounded number of times between writes: `crate::recording`)
//! or drops the record. Once a read-only phase has used up those drains, a
//! hit costs two loads here.
//!
//! Rings are striped by thread so that two threads reading the same hot shard
//! append to different cache lines. Each stripe is `CachePadded`.
//!
//! Protocol per stripe (many producers, one consumer holding the shard lock):
//! producers claim a position with a CAS on `tail`, then store the record;
//! the consumer reads from `head` to `tail`, stops at a claimed but not yet
//! written position (value 0), clears what it read, and publishes `head`.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Records per stripe: how many hits a thread can report to a shard between
/// two writes to it before records are dropped. Hits come in bursts (a
/// working set re-read between two misses), and a dropped hit is a recency
/// and frequency update the policy never sees. Over the shared traces
/// (3-run averages) 64 records left a mean gap to Bélády of 5.13 pp, 256 left
/// 4.98 pp; the drain cost is per recorded hit, not per slot. A stripe is
/// 2 KiB.
const STRIPE_LEN: u32 = 256;

struct Stripe {
    /// Next position to claim (producers, CAS).
    tail: AtomicU32,
    /// Next position to drain (consumer; producers read it to detect full).
    head: AtomicU32,
    /// 0 means empty; records are never 0 (see `encode`).
    records: [AtomicU64; STRIPE_LEN as usize],
}

// A stripe is padded to whole cache lines (two producers on different
// stripes never share one) and its records are a whole number of lines.
const _: () = assert!(std::mem::align_of::<CachePadded<Stripe>>() >= 64);
const _: () = assert!((STRIPE_LEN as usize * 8) % 64 == 0);

pub(crate) struct ReadBuffer {
    stripes: Box<[CachePadded<Stripe>]>,
    mask: usize,
}

/// Packs a slab index and the low 32 bits of a hash into a non-zero record.
#[inline(always)]
pub(crate) fn encode(index: u32, hash: u32) -> u64 {
    // Indices are below `MAX_INDEX`, so `index + 1` neither overflows nor is 0.
    (u64::from(hash) << 32) | u64::from(index + 1)
}

/// Inverse of [`encode`].
#[inline(always)]
pub(crate) fn decode(record: u64) -> (u32, u32) {
    ((record as u32).wrapping_sub(1), (record >> 32) as u32)
}

/// This thread's number: threads are numbered in the order they first ask,
/// and no number repeats. Read buffers mask it into a stripe. (The agents'
/// single-owner counters use `crate::thread_token` instead, which also
/// tells when a thread has exited.)
#[inline(always)]
pub(crate) fn thread_stripe() -> usize {
    use std::cell::Cell;
    // Not through `crate::sync`: a process-wide numbering that any result
    // keeps correct (see the `sync` module docs).
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|s| {
        let mut v = s.get();
        if v == usize::MAX {
            v = NEXT.fetch_add(1, Ordering::Relaxed);
            s.set(v);
        }
        v
    })
}

impl ReadBuffer {
    /// A buffer with `stripes` stripes (rounded up to a power of two).
    pub(crate) fn new(stripes: usize) -> Self {
        let n = stripes.max(1).next_power_of_two();
        Self {
            stripes: (0..n)
                .map(|_| {
                    CachePadded::new(Stripe {
                        tail: AtomicU32::new(0),
                        head: AtomicU32::new(0),
                        records: std::array::from_fn(|_| AtomicU64::new(0)),
                    })
                })
                .collect(),
            mask: n - 1,
        }
    }

    /// Appends `record` (non-zero) unless the stripe is full or contended;
    /// returns whether it was appended.
    #[inline(always)]
    pub(crate) fn record(&self, record: u64) -> bool {
        let stripe = &self.stripes[thread_stripe() & self.mask];
        let tail = stripe.tail.load(Ordering::Relaxed);
        // Acquire pairs with the consumer's Release of `head`: positions
        // below it were cleared before we reuse them.
        let head = stripe.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= STRIPE_LEN {
            return false;
        }
        if stripe
            .tail
            .compare_exchange(
                tail,
                tail.wrapping_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        // Release pairs with the consumer's Acquire load of the record.
        stripe.records[(tail % STRIPE_LEN) as usize].store(record, Ordering::Release);
        true
    }

    /// Hands every available record to `f`, in the order [`drain`](Self::drain)
    /// would, after first showing it to `soon` up to `AHEAD` records earlier
    /// and to `sooner` up to `AHEAD / 2` records earlier (the last records
    /// get less notice: the last `AHEAD / 2` skip `sooner`; every record
    /// reaches `f`, however few there are). The two hooks are for prefetching
    /// what `f` will touch: `soon` can hint lines found from the record
    /// alone, `sooner` lines found through them once they have arrived.
    ///
    /// Only one thread may drain at a time (the shard lock holder).
    pub(crate) fn drain_ahead<const AHEAD: usize, C>(
        &self,
        context: &mut C,
        soon: impl Fn(&C, u64),
        sooner: impl Fn(&C, u64),
        mut f: impl FnMut(&mut C, u64),
    ) {
        const { assert!(AHEAD.is_power_of_two() && AHEAD >= 2) };
        let mut ring = [0u64; AHEAD];
        let mut seen = 0usize;
        self.drain(|record| {
            soon(context, record);
            if seen >= AHEAD / 2 {
                sooner(context, ring[(seen - AHEAD / 2) % AHEAD]);
            }
            if seen >= AHEAD {
                f(context, ring[seen % AHEAD]);
            }
            ring[seen % AHEAD] = record;
            seen += 1;
        });
        for k in seen.saturating_sub(AHEAD)..seen {
            f(context, ring[k % AHEAD]);
        }
    }

    /// Hands every available record to `f`.
    ///
    /// Only one thread may drain at a time (the shard lock holder).
    pub(crate) fn drain(&self, mut f: impl FnMut(u64)) {
        for stripe in self.stripes.iter() {
            let tail = stripe.tail.load(Ordering::Acquire);
            let mut head = stripe.head.load(Ordering::Relaxed);
            while head != tail {
                let slot = &stripe.records[(head % STRIPE_LEN) as usize];
                let record = slot.load(Ordering::Acquire);
                if record == 0 {
                    // Claimed but not yet written; the next drain takes it.
                    break;
                }
                slot.store(0, Ordering::Relaxed);
                f(record);
                head = head.wrapping_add(1);
            }
            // Release pairs with producers' Acquire of `head`.
            stripe.head.store(head, Ordering::Release);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn drain_ahead_hands_every_record_in_order_after_both_hooks() {
        for n in 0..40u32 {
            let buf = ReadBuffer::new(1);
            for i in 0..n {
                assert!(buf.record(encode(i, 1)));
            }
            let events = std::cell::RefCell::new(Vec::new());
            let mut handed = Vec::new();
            buf.drain_ahead::<8, _>(
                &mut handed,
                |_, r| events.borrow_mut().push(('s', decode(r).0)),
                |_, r| events.borrow_mut().push(('t', decode(r).0)),
                |handed, r| {
                    handed.push(decode(r).0);
                    events.borrow_mut().push(('f', decode(r).0));
                },
            );
            let events = events.into_inner();
            assert_eq!(handed, (0..n).collect::<Vec<_>>(), "n = {n}");
            let order = |kind| {
                events
                    .iter()
                    .filter(|e| e.0 == kind)
                    .map(|e| e.1)
                    .collect::<Vec<_>>()
            };
            assert_eq!(order('f'), (0..n).collect::<Vec<_>>(), "n = {n}");
            assert_eq!(order('s'), (0..n).collect::<Vec<_>>(), "n = {n}");
            for i in 0..n {
                let at = |kind| events.iter().position(|e| *e == (kind, i));
                assert!(at('s') < at('f'), "record {i} of {n} reached f unannounced");
                if let Some(t) = at('t') {
                    assert!(at('s') < Some(t) && Some(t) < at('f'));
                }
            }
        }
    }

    #[test]
    fn encode_round_trips() {
        for &(i, h) in &[(0, 0), (5, u32::MAX), (crate::raw::MAX_INDEX, 7)] {
            assert_ne!(encode(i, h), 0);
            assert_eq!(decode(encode(i, h)), (i, h));
        }
    }

    #[test]
    fn drains_what_was_recorded_and_drops_when_full() {
        let buf = ReadBuffer::new(1);
        for i in 0..STRIPE_LEN + 10 {
            assert_eq!(buf.record(encode(i, 1)), i < STRIPE_LEN, "record {i}");
        }
        let mut seen = Vec::new();
        buf.drain(|r| seen.push(decode(r).0));
        assert_eq!(seen, (0..STRIPE_LEN).collect::<Vec<_>>());
        assert!(buf.record(encode(99, 1)), "draining made room");
        seen.clear();
        buf.drain(|r| seen.push(decode(r).0));
        assert_eq!(seen, vec![99]);
    }
}
