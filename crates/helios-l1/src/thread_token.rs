//! A number per thread that no other thread ever gets, and a way for other
//! threads to learn that its thread has exited.
//!
//! The agents' read counters are owned by one thread, which adds with a
//! plain load and store (`agent::registry`, `Counters`). Ownership may pass
//! to another thread only once the owner can never add again, or a count
//! could be lost; an exited thread is such an owner. Without a hand-over,
//! an agent first counted by a thread that has since exited (a short-lived
//! worker, a recycled slot) would make every later reader pay a locked
//! `fetch_add` per read.
//!
//! A thread's token is read from a constant-initialised thread-local
//! without a destructor, so the read is one load with no lazy-init check
//! (the agents' read path pays it per read). The token is assigned on first
//! use from a second thread-local whose destructor, at thread exit, first
//! replaces the token with [`GONE`] and then marks it exited, with
//! `Release`: code running later in the thread's exit (another
//! thread-local's destructor) never counts as the owner again. A reader
//! that sees the mark (`Acquire`) also sees every count the owner stored.
//!
//! The marks are a bitmap in chunks allocated on first use, 8 KiB per
//! 65,536 threads the process ever started, never freed; tokens beyond
//! [`MAX_TRACKED`] are never marked (their ownership just never passes on).
//!
//! Not through `crate::sync`: process-wide statics that loom would have to
//! reset between iterations, and the hand-over is not part of the modelled
//! read protocol.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Tokens per chunk of the exit bitmap (8 KiB of bits).
const CHUNK_BITS: u64 = 1 << 16;
/// Chunks: room for the first 2^28 threads of the process.
const CHUNKS: usize = 1 << 12;
/// Tokens above this are never marked exited.
pub(crate) const MAX_TRACKED: u64 = CHUNK_BITS * CHUNKS as u64 - 1;

type Chunk = Box<[AtomicU64]>;

static EXITED: [OnceLock<Chunk>; CHUNKS] = [const { OnceLock::new() }; CHUNKS];
static NEXT: AtomicU64 = AtomicU64::new(1);

/// The raw value of a thread that has not asked for its token yet.
pub(crate) const UNASSIGNED: u64 = u64::MAX;
/// The raw value of a thread whose token was retired (its `LIFE` destroyed
/// at thread exit): it never owns again.
pub(crate) const GONE: u64 = u64::MAX - 1;

/// Owns the calling thread's token; at thread exit, retires it from
/// `TOKEN` and marks it exited.
struct Life {
    token: u64,
}

impl Drop for Life {
    fn drop(&mut self) {
        // `TOKEN` has no destructor, so with native thread-locals it is
        // still there: every later read on this thread sees `GONE` before
        // anyone can see the mark. (Where thread-locals are OS keys and it
        // is already gone, `raw` answers `GONE` anyway.)
        let _ = TOKEN.try_with(|token| token.set(GONE));
        mark_exited(self.token);
    }
}

thread_local! {
    /// The thread's token, [`UNASSIGNED`] or [`GONE`]. Constant-initialised
    /// and without a destructor: readable at any point of the thread's life.
    static TOKEN: Cell<u64> = const { Cell::new(UNASSIGNED) };
    static LIFE: Life = Life {
        // Relaxed: only uniqueness matters. Tokens start at 1 and never
        // reach `GONE` (2^64 - 2 threads).
        token: NEXT.fetch_add(1, Ordering::Relaxed),
    };
}

/// The calling thread's token as stored: a token, or [`UNASSIGNED`] or
/// [`GONE`], neither of which is ever a token. One thread-local load, for
/// a fast path that compares it with an owner; anything but a match goes
/// through [`current`].
#[inline(always)]
pub(crate) fn raw() -> u64 {
    TOKEN.try_with(Cell::get).unwrap_or(GONE)
}

/// The calling thread's token (never 0), or `None` once it was retired
/// (`LIFE`'s destructor has run).
#[inline]
pub(crate) fn current() -> Option<u64> {
    match raw() {
        UNASSIGNED => assign(),
        GONE => None,
        token => Some(token),
    }
}

/// Assigns the calling thread its token on first use (`None` if `LIFE` was
/// already destroyed). A thread whose first use comes from a thread-local
/// destructor creates `LIFE` during its exit; where destructors registered
/// that late do not run, its token is never marked exited, so a slot it
/// claimed stays its own and later readers count as foreign: exact counts,
/// only slower (as for tokens beyond [`MAX_TRACKED`]).
#[cold]
fn assign() -> Option<u64> {
    // Fails once `LIFE`'s destructor has begun (which set `GONE` first).
    let token = LIFE.try_with(|life| life.token).ok()?;
    let _ = TOKEN.try_with(|cell| cell.set(token));
    Some(token)
}

/// Bitmap word and bit of `token`, or `None` beyond [`MAX_TRACKED`].
fn locate(token: u64) -> Option<(usize, usize, u64)> {
    (token <= MAX_TRACKED).then(|| {
        let chunk = (token / CHUNK_BITS) as usize;
        let bit = token % CHUNK_BITS;
        (chunk, (bit / 64) as usize, 1 << (bit % 64))
    })
}

fn mark_exited(token: u64) {
    let Some((chunk, word, mask)) = locate(token) else {
        return;
    };
    let words =
        EXITED[chunk].get_or_init(|| (0..CHUNK_BITS / 64).map(|_| AtomicU64::new(0)).collect());
    // Release pairs with the Acquire in `has_exited`: whoever sees the mark
    // sees everything the thread stored before it exited.
    words[word].fetch_or(mask, Ordering::Release);
}

/// Whether the thread of `token` has exited (its thread-locals are gone),
/// so it will never again act on anything it owns.
#[inline]
pub(crate) fn has_exited(token: u64) -> bool {
    let Some((chunk, word, mask)) = locate(token) else {
        return false;
    };
    EXITED[chunk]
        .get()
        .is_some_and(|words| words[word].load(Ordering::Acquire) & mask != 0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_exits_are_seen() {
        let mine = current().expect("a live thread has a token");
        assert_ne!(mine, 0);
        assert_eq!(current(), Some(mine), "stable within a thread");
        let theirs = std::thread::spawn(|| current().expect("token"))
            .join()
            .expect("thread");
        assert_ne!(theirs, mine);
        assert!(has_exited(theirs), "joined, so its thread-locals are gone");
        assert!(!has_exited(mine));
        assert!(!has_exited(MAX_TRACKED + 1), "untracked tokens never exit");
    }

    #[test]
    fn the_raw_token_is_unassigned_until_first_use_and_never_zero() {
        std::thread::spawn(|| {
            assert_eq!(raw(), UNASSIGNED, "no token before first use");
            let token = current().expect("a live thread has a token");
            assert_eq!(raw(), token, "the fast read sees it from now on");
            assert!(token != 0 && token < GONE);
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn a_thread_local_destructor_running_after_the_token_gets_none() {
        struct Late(std::sync::mpsc::Sender<(Option<u64>, Option<u64>)>);
        impl Drop for Late {
            fn drop(&mut self) {
                // Runs during thread exit, before or after `LIFE` goes;
                // either way the answer is consistent with the mark.
                let token = current();
                if token.is_none() {
                    // Retired: the fast read sees the marker, never a token.
                    assert_eq!(raw(), GONE);
                }
                let _ = self.0.send((token, token.filter(|&t| has_exited(t))));
            }
        }
        thread_local! {
            static LATE: std::cell::RefCell<Option<Late>> = const { std::cell::RefCell::new(None) };
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            LATE.with(|l| *l.borrow_mut() = Some(Late(tx)));
            let _ = current();
        })
        .join()
        .expect("thread");
        let (token, exited_while_live) = rx.recv().expect("destructor ran");
        // A token handed out is never one already marked exited.
        assert_eq!(exited_while_live, None, "token {token:?}");
    }
}
