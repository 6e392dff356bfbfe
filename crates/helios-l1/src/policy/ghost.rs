//! Ghosts: a lossy memory of recently evicted keys and when they left.
//!
//! The window climber (`climber.rs`) asks "had this queue been `step`
//! entries larger, would this miss have been a hit?". An entry that left a
//! queue would have stayed for `step` more departures in a queue `step`
//! larger, so the answer is yes when, by that queue's own clock of
//! departures (every entry leaving it, remembered or not), the key left at
//! most `step` departures ago.
//!
//! The table is direct-mapped: each slot packs a 12-bit tag of the key's
//! hash with the low 20 bits of the clock when it left. A newer ghost
//! overwrites an older one in its slot, and a tag collision can report a
//! ghost that is not there; both only add noise to a statistic. Ages are
//! compared modulo 2^20; see [`MAX_STEP`] and [`MAX_SLOTS`] for why that
//! stays sound.

const TAG_BITS: u32 = 12;
const CLOCK_BITS: u32 = 32 - TAG_BITS;
const CLOCK_MASK: u32 = (1 << CLOCK_BITS) - 1;
/// Largest step the climber may ask about: half the clock's range. A ghost
/// older than the whole range reads as a random age, so it counts as young
/// with probability `step / 2^20`, at most 1/2 here; and such ghosts are
/// rare, see [`MAX_SLOTS`].
pub(crate) const MAX_STEP: u64 = (CLOCK_MASK as u64) / 2;
/// Largest table. A slot keeps a ghost until another departure hashes to
/// it, so in a table of 2^18 slots a ghost outlives the clock's 2^20 range
/// with probability about e^-4 (2%); the slot bits (at most 18) also stay
/// clear of the tag bits (the top 12).
pub(crate) const MAX_SLOTS: usize = 1 << 18;
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
    /// A table that remembers roughly the last `entries` ghosts.
    pub(crate) fn new(entries: usize) -> Self {
        let len = entries.clamp(16, MAX_SLOTS).next_power_of_two();
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

    /// An entry left the queue (whether or not it is remembered).
    pub(crate) fn tick(&mut self) {
        self.clock += 1;
    }

    /// Remembers that the key with `hash` left the queue at the last tick.
    pub(crate) fn record(&mut self, hash: u32) {
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

    /// Forgets every ghost (the table keeps its size).
    pub(crate) fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.clock = 0;
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
        g.tick();
        g.record(0xdead_0001);
        (0..10).for_each(|_| g.tick());
        assert!(g.take_within(0xdead_0001, 10));
        assert!(
            !g.take_within(0xdead_0001, 10),
            "an answer forgets the ghost"
        );
        g.record(0xbeef_0003);
        (0..20).for_each(|_| g.tick());
        assert!(!g.take_within(0xbeef_0003, 10), "left 20 departures ago");
    }

    #[test]
    fn unknown_keys_are_not_ghosts() {
        let mut g = Ghosts::new(64);
        assert!(!g.take_within(0x1234_5678, 1000));
        g.record(0x1234_5678);
        assert!(!g.take_within(0x9234_5678, 1000), "same slot, other tag");
    }

    #[test]
    fn tables_are_capped_so_ghosts_rarely_outlive_the_clock() {
        assert_eq!(Ghosts::new(usize::MAX / 2).slots.len(), MAX_SLOTS);
        assert_eq!(Ghosts::new(0).slots.len(), 16);
        // The slot bits never reach the tag's.
        assert!(MAX_SLOTS.trailing_zeros() <= CLOCK_BITS);
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
