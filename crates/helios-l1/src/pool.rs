//! Reusable byte buffers for loading values, so that a steady stream of
//! loads does not allocate.
//!
//! Content loaded from a store (an object's bytes, a checkpoint) is read
//! into a buffer, checked, and then either kept as the cached value or
//! dropped. A [`BufferPool`] hands out [`BytesMut`] buffers by size class
//! (powers of two between a minimum and a maximum capacity) and takes them
//! back when the [`PooledBuffer`] guard drops. Each class is a bounded
//! lock-free queue (`crossbeam_queue::ArrayQueue`), so taking and returning
//! a buffer neither locks nor allocates once the pool is warm. A buffer that
//! becomes a cached value ([`PooledBuffer::freeze`]) leaves the pool; one
//! that comes back later (for example from `Bytes::try_into_mut` after an
//! eviction) can be returned with [`BufferPool::give`].
//!
//! Statistics use striped counters, so concurrent loads do not contend on
//! them.

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytes::{Bytes, BytesMut};
use crossbeam_queue::ArrayQueue;

use crate::counter::StripedCounter;

/// Why a [`BufferPool`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// `min` must be at least 1 and not above `max`.
    BadSizes {
        /// The smallest class capacity given.
        min: usize,
        /// The largest class capacity given.
        max: usize,
    },
    /// Each class must keep at least one idle buffer.
    ZeroBuffers,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadSizes { min, max } => write!(
                f,
                "buffer pool sizes must satisfy 1 <= min <= max, got min {min} and max {max}"
            ),
            Self::ZeroBuffers => write!(f, "a buffer pool must keep at least one buffer per class"),
        }
    }
}

impl std::error::Error for PoolError {}

/// What a pool did; see [`BufferPool::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Buffers handed out from the pool (no allocation).
    pub hits: u64,
    /// Buffers handed out newly allocated (class empty, or larger than the
    /// largest class).
    pub misses: u64,
    /// Buffers taken back into the pool.
    pub returned: u64,
    /// Buffers dropped instead of kept: the class was full, or their
    /// capacity fits no class.
    pub discarded: u64,
    /// Buffers that left the pool as values ([`PooledBuffer::freeze`] or
    /// [`PooledBuffer::into_inner`]).
    pub detached: u64,
    /// Buffers idle in the pool now.
    pub idle: usize,
}

/// A pool of reusable [`BytesMut`] buffers in power-of-two size classes.
///
/// ```
/// use helios_l1::BufferPool;
/// let pool = BufferPool::new(4096, 1 << 20, 64)?;
/// {
///     let mut buf = pool.take(10_000); // capacity 16 KiB
///     buf.extend_from_slice(b"object bytes");
/// } // back in the pool
/// let again = pool.take(9_000);
/// assert!(again.is_empty());
/// assert_eq!(pool.stats().hits, 1);
/// # Ok::<(), helios_l1::PoolError>(())
/// ```
pub struct BufferPool {
    /// `classes[i]` holds buffers of capacity `min << i`.
    classes: Box<[ArrayQueue<BytesMut>]>,
    min_shift: u32,
    hits: StripedCounter,
    misses: StripedCounter,
    returned: StripedCounter,
    discarded: StripedCounter,
    detached: StripedCounter,
}

impl BufferPool {
    /// A pool with classes `min, 2·min, …` up to `max` (both rounded up to
    /// powers of two), keeping at most `buffers` idle buffers per class.
    pub fn new(min: usize, max: usize, buffers: usize) -> Result<Self, PoolError> {
        if min == 0 || min > max {
            return Err(PoolError::BadSizes { min, max });
        }
        if buffers == 0 {
            return Err(PoolError::ZeroBuffers);
        }
        let (Some(min), Some(max)) = (
            min.checked_next_power_of_two(),
            max.checked_next_power_of_two(),
        ) else {
            return Err(PoolError::BadSizes { min, max });
        };
        let classes = (max.trailing_zeros() - min.trailing_zeros() + 1) as usize;
        Ok(Self {
            classes: (0..classes).map(|_| ArrayQueue::new(buffers)).collect(),
            min_shift: min.trailing_zeros(),
            hits: StripedCounter::new(),
            misses: StripedCounter::new(),
            returned: StripedCounter::new(),
            discarded: StripedCounter::new(),
            detached: StripedCounter::new(),
        })
    }

    /// The class holding buffers of at least `len` bytes, if any.
    fn class_for(&self, len: usize) -> Option<usize> {
        let capacity = len.max(1).checked_next_power_of_two()?;
        let class = capacity.trailing_zeros().saturating_sub(self.min_shift) as usize;
        (class < self.classes.len()).then_some(class)
    }

    /// The capacity of buffers in `class`.
    fn class_capacity(&self, class: usize) -> usize {
        1 << (self.min_shift as usize + class)
    }

    /// An empty buffer with capacity for at least `len` bytes. Reused when
    /// the pool has one; allocated otherwise (and for sizes above the
    /// largest class, which are never pooled).
    pub fn take(&self, len: usize) -> PooledBuffer<'_> {
        let buffer = match self.class_for(len) {
            Some(class) => match self.classes[class].pop() {
                Some(buffer) => {
                    self.hits.add(1);
                    buffer
                }
                None => {
                    self.misses.add(1);
                    BytesMut::with_capacity(self.class_capacity(class))
                }
            },
            None => {
                self.misses.add(1);
                BytesMut::with_capacity(len)
            }
        };
        PooledBuffer {
            pool: self,
            buffer: Some(buffer),
        }
    }

    /// Offers `buffer` to the pool (cleared). Kept if its capacity is exactly
    /// a class's and that class has room; dropped otherwise.
    pub fn give(&self, mut buffer: BytesMut) {
        buffer.clear();
        let capacity = buffer.capacity();
        let class = self
            .class_for(capacity)
            .filter(|&c| self.class_capacity(c) == capacity);
        match class.map(|c| self.classes[c].push(buffer)) {
            Some(Ok(())) => self.returned.add(1),
            _ => self.discarded.add(1),
        }
    }

    /// Counts so far (sums of per-thread stripes).
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hits: self.hits.sum(),
            misses: self.misses.sum(),
            returned: self.returned.sum(),
            discarded: self.discarded.sum(),
            detached: self.detached.sum(),
            idle: self.classes.iter().map(ArrayQueue::len).sum(),
        }
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("classes", &self.classes.len())
            .field("min", &(1usize << self.min_shift))
            .field("stats", &self.stats())
            .finish()
    }
}

/// A buffer from a [`BufferPool`]; returns to it on drop.
pub struct PooledBuffer<'p> {
    pool: &'p BufferPool,
    /// Always `Some` until drop or detachment.
    buffer: Option<BytesMut>,
}

impl PooledBuffer<'_> {
    fn detach(mut self) -> BytesMut {
        self.pool.detached.add(1);
        self.buffer.take().unwrap_or_default()
    }

    /// Keeps the bytes as an immutable value; the buffer leaves the pool.
    pub fn freeze(self) -> Bytes {
        self.detach().freeze()
    }

    /// The buffer itself; it leaves the pool.
    pub fn into_inner(self) -> BytesMut {
        self.detach()
    }
}

impl Deref for PooledBuffer<'_> {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        // Only `detach` and `drop` empty it, and both consume the guard.
        self.buffer
            .as_ref()
            .unwrap_or_else(|| unreachable!("buffer taken"))
    }
}

impl DerefMut for PooledBuffer<'_> {
    fn deref_mut(&mut self) -> &mut BytesMut {
        self.buffer
            .as_mut()
            .unwrap_or_else(|| unreachable!("buffer taken"))
    }
}

impl Drop for PooledBuffer<'_> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give(buffer);
        }
    }
}

impl fmt::Debug for PooledBuffer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuffer")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_and_reuse_buffers() {
        let pool = BufferPool::new(1000, 5000, 2).unwrap(); // 1024, 2048, 4096, 8192
        let a = pool.take(1);
        assert_eq!(a.capacity(), 1024);
        let b = pool.take(3000);
        assert_eq!(b.capacity(), 4096);
        drop((a, b));
        let s = pool.stats();
        assert_eq!((s.hits, s.misses, s.returned, s.idle), (0, 2, 2, 2));
        let mut c = pool.take(4096);
        assert_eq!(pool.stats().hits, 1);
        c.extend_from_slice(b"data");
        drop(c);
        assert!(pool.take(4000).is_empty(), "returned buffers are cleared");
    }

    #[test]
    fn oversize_full_and_foreign_buffers_are_not_kept() {
        let pool = BufferPool::new(64, 128, 1).unwrap();
        let big = pool.take(10_000);
        assert!(big.capacity() >= 10_000);
        drop(big);
        assert_eq!(pool.stats().discarded, 1);
        drop((pool.take(64), pool.take(64)));
        assert_eq!(pool.stats().idle, 1, "one buffer per class");
        pool.give(BytesMut::with_capacity(100));
        let s = pool.stats();
        assert_eq!((s.returned, s.discarded), (1, 3));
    }

    #[test]
    fn frozen_buffers_leave_the_pool() {
        let pool = BufferPool::new(64, 64, 4).unwrap();
        let mut buf = pool.take(10);
        buf.extend_from_slice(b"value");
        let value = buf.freeze();
        assert_eq!(&value[..], b"value");
        assert_eq!(pool.stats().detached, 1);
        assert_eq!(pool.stats().idle, 0);
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(matches!(
            BufferPool::new(0, 10, 1),
            Err(PoolError::BadSizes { .. })
        ));
        assert!(matches!(
            BufferPool::new(20, 10, 1),
            Err(PoolError::BadSizes { .. })
        ));
        assert_eq!(
            BufferPool::new(1, 1, 0).unwrap_err(),
            PoolError::ZeroBuffers
        );
        assert!(BufferPool::new(1, usize::MAX, 1).is_err());
    }
}
