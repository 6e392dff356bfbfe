//! Finding a stored key by a form of it that is not a `&K`.
//!
//! The public API takes `&Q` where `K: Borrow<Q>`, as std's maps do. Inside,
//! lookups only need "does this stored key equal what I was given", so they
//! take any `Q: Equivalent<K>` (hashbrown's trait of the same name). Every
//! `Borrow` pair is one, through the blanket impl below; the agent layer adds
//! borrowed scoped keys (`agent::SharedRef`, `agent::PrivateRef`), so that an
//! agent's read of a `String` key needs no `String`.
//!
//! Contract, as for `Borrow`: if `q.equivalent(k)`, then `q` and `k` hash
//! alike under the cache's hasher.

use std::borrow::Borrow;

/// `self` names the stored key `key`.
pub(crate) trait Equivalent<K: ?Sized> {
    fn equivalent(&self, key: &K) -> bool;
}

impl<Q: Eq + ?Sized, K: Borrow<Q> + ?Sized> Equivalent<K> for Q {
    #[inline]
    fn equivalent(&self, key: &K) -> bool {
        self == key.borrow()
    }
}
