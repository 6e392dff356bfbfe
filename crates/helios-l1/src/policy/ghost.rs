//! Ghosts: a lossy memory of recently evicted keys and when they left.
//!
//! The window climber (`climber.rs`) asks "had this queue been `step`
//! entries larger, would this miss have been a hit?". An entry that left a
//! queue would have stayed for `step` more departures in a queue `step`
//! larger, so the answer is yes when, by that queue's own clock of
//! departures, the key left at most `step` departures ago.
//!
//! The table is direct-mapped: each slot packs a 12-bit tag of the key's
//! hash with the low 20 bits of the clock when it left. A newer departure
//! overwrites an older one in its slot, and a tag collision can report a
//! ghost that is not there; both only add noise to a statistic. Ages are
//! compared modulo 2^20, so the table must not be asked about steps of 2^20
//! or more (the climber caps its step below that).

const TAG_BITS: u32 = 12;
const CLOCK_BITS: u32 = 32 - TAG_BITS;
const CLOCK_MASK: u32 = (1 << CLOCK_BITS) - 1;
/// Largest step the ages can answer for without wrapping.
pub(crate) const MAX_STEP: u64 = (CLOCK_MASK as u64) / 2;
/// Empty slots hold this (tag 0 is reserved for them).
const EMPTY: u32 = 0;

#[derive(Debug)]
pub(crate) struct Ghosts {
    slots: Box<[u32]>,
    mask: u32,
    /// Departures since the table was made.
    clock: u64,
}

impl Ghosts {
    /// A table that remembers roughly the last `entries` departures.
    pub(crate) fn new(entries: usize) -> Self {
        let len = entries.max(16).next_power_of_two();
        Self {
            slots: vec![EMPTY; len].into_boxed_slice(),
            mask: (len - 1) as u32,
            clock: 0,
        }
    }

    fn slot_and_tag(&self, hash: u32) -> (usize, u32) {
        // The low bits pick the slot (the hash is already mixed); the top
        // bits, independent of them, are the tag, never 0.
        let tag = (hash >> CLOCK_BITS).max(1);
        ((hash & self.mask) as usize, tag)
    }

    /// The key with `hash` left the queue.
    pub(crate) fn record(&mut self, hash: u32) {
        self.clock += 1;
        let (slot, tag) = self.slot_and_tag(hash);
        self.slots[slot] = (tag << CLOCK_BITS) | (self.clock as u32 & CLOCK_MASK);
    }

    /// Whether the key with `hash` left at most `step` departures ago;
    /// forgets it either way (one miss, one answer).
    pub(crate) fn take_within(&mut self, hash: u32, step: u64) -> bool {
        let (slot, tag) = self.slot_and_tag(hash);
        let packed = self.slots[slot];
        if packed == EMPTY || packed >> CLOCK_BITS != tag {
            return false;
        }
        self.slots[slot] = EMPTY;
        let left_at = packed & CLOCK_MASK;
        let age = (self.clock as u32).wrapping_sub(left_at) & CLOCK_MASK;
        u64::from(age) <= step
    }

    /// Heap bytes of the table.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_departure_is_within_the_step_and_an_old_one_is_not() {
        let mut g = Ghosts::new(64);
        g.record(0xdead_0001);
        (0..10u32).for_each(|i| g.record(0x1000_0000 + (i << 8) + 2));
        assert!(g.take_within(0xdead_0001, 10));
        assert!(
            !g.take_within(0xdead_0001, 10),
            "an answer forgets the ghost"
        );
        g.record(0xbeef_0003);
        (0..20u32).for_each(|i| g.record(0x2000_0000 + (i << 8) + 4));
        assert!(!g.take_within(0xbeef_0003, 10), "left 20 units ago");
    }

    #[test]
    fn unknown_keys_are_not_ghosts() {
        let mut g = Ghosts::new(64);
        assert!(!g.take_within(0x1234_5678, 1000));
        g.record(0x1234_5678);
        assert!(!g.take_within(0x9234_5678, 1000), "same slot, other tag");
    }

    #[test]
    fn a_newer_departure_in_the_same_slot_replaces_the_older() {
        let mut g = Ghosts::new(64);
        g.record(0xaaaa_0001);
        g.record(0xbbbb_0001);
        assert!(!g.take_within(0xaaaa_0001, 1000));
        assert!(g.take_within(0xbbbb_0001, 0));
    }
}
