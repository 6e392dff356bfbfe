//! Finding a stored key by a form of it that is not a `&K`.
//!
//! The public API takes `&Q` where `K: Borrow<Q>`, as std's maps do. Inside,
//! lookups only need "does this stored key equal what I was given", so they
//! take any `Q: Equivalent<K>` (hashbrown's trait of the same name). Every
//! `Borrow` pair is one, through the blanket impl below; the agent layer adds
//! borrowed lookups of its namespaces (`agent::SharedRef`,
//! `agent::PrivateRef`), so that an agent's read of a `String` key needs no
//! `String`.
//!
//! Contract, as for `Borrow`: if `q.equivalent(k)`, then `q` and `k` hash
//! alike under the cache's hasher.
//!
//! # Side words and classes
//! A cache may keep a side word beside each entry (`raw::slab`): an agent
//! store keeps the entry's namespace there, so that its entries are as wide
//! as a plain cache's. Two rules keep lookups exact without reading the
//! side word on the common path:
//! - **Class.** Bit 31 of every hash in such a cache is the lookup's
//!   [`CLASS`](Equivalent::CLASS): the store's hasher clears it and the
//!   cache sets it from the lookup type. Bit 31 is the top bit of the
//!   table's 8-bit tag, so a lookup never matches an entry of the other
//!   class, whatever the keys.
//! - **Side.** A class-1 lookup also checks the entry's side word
//!   ([`side_matches`](Equivalent::side_matches)); class-0 lookups do not,
//!   so a shared read never loads it. A writer finds the entry it replaces
//!   by key and side identity, in either class ([`SidedKey`]).
//!   A side word with bit 63 set only carries data (every such word is the
//!   same identity, [`side_identity`]); one with bit 63 clear is part of
//!   the entry's identity.

use std::borrow::Borrow;

/// The class bit of a hash (see the module docs): bit 31, the top bit of
/// the table's tag.
pub(crate) const CLASS_BIT: u64 = 1 << 31;

/// A side word as identity sees it: every word with bit 63 set is the same
/// identity (it only carries data, such as the agent charged for a shared
/// entry); any other word is itself. Branch-free: an arithmetic shift
/// spreads bit 63 over the word.
#[inline(always)]
pub(crate) fn side_identity(side: u64) -> u64 {
    side | ((side as i64 >> 63) as u64)
}

/// `self` names the stored key `key`.
pub(crate) trait Equivalent<K: ?Sized> {
    /// The class bit this lookup's hashes carry in a cache with side words
    /// ([`CLASS_BIT`] or 0; see the module docs).
    const CLASS: u64 = 0;

    fn equivalent(&self, key: &K) -> bool;

    /// Whether an entry whose key is equivalent also matches by its side
    /// word, which `side` loads. Every lookup but an agent's private one
    /// leaves the word unread.
    #[inline(always)]
    fn side_matches(&self, _side: impl FnOnce() -> u64) -> bool {
        true
    }
}

impl<Q: Eq + ?Sized, K: Borrow<Q> + ?Sized> Equivalent<K> for Q {
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self == key.borrow()
    }
}

/// A stored key and its side word, as a writer looks for the entry it
/// replaces: the same key and, in a cache with side words (`sided`), the
/// same side identity ([`side_identity`]).
pub(crate) struct SidedKey<'a, K> {
    pub(crate) key: &'a K,
    pub(crate) side: u64,
    pub(crate) sided: bool,
}

impl<K: Eq> Equivalent<K> for SidedKey<'_, K> {
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self.key == key
    }

    #[inline]
    fn side_matches(&self, side: impl FnOnce() -> u64) -> bool {
        // Asked only once the key matched; a plain cache loads nothing.
        !self.sided || side_identity(side()) == side_identity(self.side)
    }
}
