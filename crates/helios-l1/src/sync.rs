//! The one place that imports atomics, cells and locks.
//!
//! Everything concurrent in the crate goes through this module so that a
//! `--cfg loom` build swaps in loom's model-checked primitives without
//! touching the code that uses them (the same shim tokio and quick_cache use).
//! Locks stay `parking_lot` even under loom: the loom models exercise only the
//! lock-free read protocol (`raw`), whose writers are serialised by the test.
//!
//! Two process-wide statics use `std` atomics directly, on purpose: the
//! counter that numbers threads (`raw::read_buffer::thread_stripe`: any
//! number is a correct stripe; the agents' counter owners rely only on the
//! numbers being unique, which the `fetch_add` gives whatever the model) and
//! the flag that says whether `membarrier` is in use (`raw::sections`; set
//! once per process before any thread's first section, and under loom the
//! fences ignore it and use loom's). Neither takes part in a protocol the models check, and a
//! loom static would have to be reset between model iterations.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};

pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
pub(crate) use std::sync::Arc;

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std::cell::UnsafeCell` with loom's closure-based access API, so the code
/// that touches cell contents reads the same in both builds.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Runs `f` with a shared pointer to the contents.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Runs `f` with an exclusive pointer to the contents.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
