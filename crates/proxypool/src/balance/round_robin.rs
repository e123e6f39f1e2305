use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use super::{Balancer, Candidates};

/// Each pick takes the next eligible candidate in turn.
///
/// O(1) per pick while most candidates are eligible. When the turn falls on ineligible
/// candidates (busy, ejected, banned, or filtered out of a set the indexes could not
/// narrow), the turn skips past them as well, so the eligible ones keep taking equal
/// turns instead of the first after a gap taking the gap's share.
///
/// Each thread turns a cursor of its own (one of 16, each on its own cache
/// line), so threads picking at once never write the same line: with one shared counter,
/// two threads made every pick 1.6× slower. One thread's picks follow the pool's order
/// exactly, from the first candidate for the first thread that picks. The other threads'
/// cursors start spread around the ring (at 1/2, 1/4, 3/4… of it), so that threads
/// picking in step do not pile onto the same proxies; each still visits every candidate
/// in turn. Beyond 16 threads, two may share a cursor and now and then take the
/// same turn. A cursor serves every candidate set the balancer is asked about, so across
/// different requirements the rotation is even only on average.
#[derive(Debug, Default)]
pub struct RoundRobin {
    /// The thread number (see [`thread_number`]) of the first thread that picked; 0 before.
    first_thread: AtomicUsize,
    cursors: [Cursor; CURSORS],
}

/// How many cursors a round robin keeps.
const CURSORS: usize = 16;

/// One cursor: a position in `0..n`, alone on its cache line (128 bytes: adjacent-line
/// prefetchers fetch lines in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Cursor(AtomicU32);

/// A number for the calling thread, from 1, fixed for its lifetime.
fn thread_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    thread_local! {
        static NUMBER: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

impl RoundRobin {
    /// A round robin starting at the first candidate.
    pub fn new() -> Self {
        Self::default()
    }

    /// The calling thread's cursor number.
    #[inline]
    fn cursor(&self) -> usize {
        let me = thread_number();
        let first = match self.first_thread.load(Ordering::Relaxed) {
            0 => match self.first_thread.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => me,
                Err(first) => first,
            },
            first => first,
        };
        me.wrapping_sub(first) % CURSORS
    }
}

/// Where cursor `k` starts on a ring of `n`: `k` bit-reversed, as a fraction of the ring
/// (0, 1/2, 1/4, 3/4, 1/8…), so that any few cursors start far apart.
#[inline]
fn offset(k: usize, n: u32) -> u32 {
    let bits = CURSORS.trailing_zeros();
    let reversed = (k as u32).reverse_bits() >> (u32::BITS - bits);
    // `reversed < CURSORS`, so the product stays below `n`.
    ((u64::from(reversed) * u64::from(n)) >> bits) as u32
}

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    #[inline]
    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        // Snapshots hold at most u32::MAX proxies (slots are u32).
        let n = u32::try_from(c.len()).unwrap_or(u32::MAX);
        if n == 0 {
            return None;
        }
        let k = self.cursor();
        let cursor = &self.cursors[k].0;
        // The cursor counts turns in `0..n` and wraps at `n` itself, which spares the pick
        // a division; one left beyond `n` by a larger candidate set is brought back by one
        // modulo. A load and a store, not a read-modify-write: the cursor is this thread's
        // alone, unless more threads than cursors share it (then a turn may repeat).
        let turn = cursor.load(Ordering::Relaxed);
        let turn = if turn < n { turn } else { turn % n };
        let start = {
            let at = turn + offset(k, n);
            if at >= n { at - n } else { at }
        };
        let next = |turn: u32| if turn + 1 >= n { 0 } else { turn + 1 };
        if c.is_eligible(start as usize) {
            cursor.store(next(turn), Ordering::Relaxed);
            return Some(start as usize);
        }
        let found = (start + 1..n).chain(0..start).find(|&i| c.is_eligible(i as usize))?;
        // The next turn goes to the candidate after the one chosen, not to one of the
        // ineligible ones skipped (which would hand the chosen one their turns again).
        let skipped = if found >= start { found - start } else { found + n - start };
        let turn = turn + skipped;
        cursor.store(next(if turn >= n { turn - n } else { turn }), Ordering::Relaxed);
        Some(found as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_start_spread_around_the_ring() {
        let starts: Vec<u32> = (0..4).map(|k| offset(k, 1000)).collect();
        assert_eq!(starts, [0, 500, 250, 750]);
        assert!((0..CURSORS).all(|k| offset(k, 7) < 7));
        assert!((0..CURSORS).all(|k| offset(k, u32::MAX) < u32::MAX));
        assert_eq!(offset(CURSORS - 1, 1), 0);
    }
}
