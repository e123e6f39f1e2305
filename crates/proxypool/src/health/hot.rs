//! What a pick reads of each proxy, packed densely: one cache line per proxy in tables of
//! [`CHUNK`] lines, instead of the first line of a large allocation per proxy.
//!
//! A pick that looks at a proxy reads whether it is busy, ejected or may be banned, and
//! P2C reads its peak latency and answer share. Kept at the head of each proxy's own
//! health (over half a kilobyte), those lines sat a page apart from each other: round robin
//! over 100k proxies missed the cache on every pick, and P2C's random lines came from
//! memory rather than from the second-level cache. Packed here, round robin walks
//! consecutive lines (which the hardware prefetches), and P2C's lines fit a cache a tenth
//! the size.
//!
//! A proxy's [`HotCell`] owns one line for as long as its health lives; dropped, the line
//! goes back to its table for the next proxy, reset. Lines never move, so a snapshot can
//! point at them directly.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::evidence::FadingPair;
use super::ewma::PeakEwma;
use crate::clock::Nanos;

/// Lines per table chunk: 16 KiB, small enough to build in place on any thread's stack.
pub(crate) const CHUNK: usize = 256;

/// One proxy's hot state: everything an eligibility check and a P2C comparison read,
/// and the in-flight count every lease writes.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Hot {
    pub(crate) in_flight: AtomicU32,
    /// Has succeeded since it joined the pool or last came back from an ejection.
    pub(crate) proven: AtomicBool,
    /// 0: in rotation.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) peak: PeakEwma,
    /// Answers (of any kind) against network failures, timeouts and abandoned attempts:
    /// does the proxy deliver at all?
    pub(crate) transport: FadingPair,
    /// When the oldest request in flight was sent, at the latest (0: unknown): the later
    /// of the last completion and the moment the proxy went from idle to busy.
    pub(crate) stall_since: AtomicU64,
    /// The latest end of any ban ever set on the proxy; only while it lies in the future
    /// can a ban be active, so picks skip the per-host table otherwise.
    pub(crate) ban_hint: AtomicU64,
}

impl Default for Hot {
    fn default() -> Self {
        Hot {
            in_flight: AtomicU32::new(0),
            proven: AtomicBool::new(false),
            ejected_until: AtomicU64::new(0),
            peak: PeakEwma::default(),
            transport: FadingPair::default(),
            stall_since: AtomicU64::new(0),
            ban_hint: AtomicU64::new(0),
        }
    }
}

impl Hot {
    /// Takes an in-flight place, refusing when `max_sessions` are already taken. When
    /// the proxy was idle, its oldest request is this one, sent at `now()` (0 when the
    /// pick did not read the clock: then the age is unknown).
    #[inline]
    pub(crate) fn try_begin(&self, max_sessions: Option<u32>, now: impl FnOnce() -> Nanos) -> bool {
        let before = match max_sessions {
            None => self.in_flight.fetch_add(1, Ordering::AcqRel),
            Some(max) => {
                match self.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)) {
                    Ok(before) => before,
                    Err(_) => return false,
                }
            }
        };
        if before == 0 {
            self.stall_since.store(now(), Ordering::Relaxed);
        }
        true
    }

    /// Gives an in-flight place back.
    #[inline]
    pub(crate) fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// Requests in flight now.
    #[inline]
    pub(crate) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The stored end of an ejection, expired or not (0: none).
    #[inline]
    pub(crate) fn ejection_end(&self) -> Nanos {
        self.ejected_until.load(Ordering::Acquire)
    }

    /// True when some ban may bar the proxy at `now()` (the per-host table decides).
    #[inline]
    pub(crate) fn may_be_banned(&self, now: impl FnOnce() -> Nanos) -> bool {
        let hint = self.ban_hint.load(Ordering::Acquire);
        hint != 0 && hint > now()
    }

    fn reset(&self) {
        self.in_flight.store(0, Ordering::Relaxed);
        self.proven.store(false, Ordering::Relaxed);
        self.ejected_until.store(0, Ordering::Relaxed);
        self.peak.reset();
        self.transport.reset();
        self.stall_since.store(0, Ordering::Relaxed);
        self.ban_hint.store(0, Ordering::Relaxed);
    }
}

/// [`CHUNK`] consecutive lines.
#[derive(Debug)]
pub(crate) struct Chunk {
    lines: [Hot; CHUNK],
}

impl Chunk {
    fn new() -> Arc<Chunk> {
        Arc::new(Chunk { lines: std::array::from_fn(|_| Hot::default()) })
    }

    #[inline]
    pub(crate) fn line(&self, line: u16) -> &Hot {
        // Lines are below `CHUNK`: the modulo (a mask) lets the compiler drop the bounds check.
        &self.lines[usize::from(line) % CHUNK]
    }
}

/// Where the lines of a pool's proxies come from.
#[derive(Debug, Default)]
pub(crate) struct HotTable {
    spare: Arc<Mutex<Spare>>,
}

#[derive(Debug, Default)]
struct Spare {
    /// Lines given back, taken again first (last in, first out).
    returned: Vec<(Arc<Chunk>, u16)>,
    /// The newest chunk and its first line never handed out.
    fresh: Option<(Arc<Chunk>, usize)>,
}

impl HotTable {
    /// A line for a new proxy, in its starting state. Proxies added together get
    /// consecutive lines.
    pub(crate) fn take(&self) -> HotCell {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let (chunk, line) = match spare.returned.pop() {
            Some((chunk, line)) => {
                chunk.lines[usize::from(line)].reset();
                (chunk, line)
            }
            None => {
                let (chunk, next) = match spare.fresh.take() {
                    Some((chunk, next)) if next < CHUNK => (chunk, next),
                    _ => (Chunk::new(), 0),
                };
                spare.fresh = Some((chunk.clone(), next + 1));
                // `next < CHUNK` = 256, so it fits.
                (chunk, next as u16)
            }
        };
        HotCell { at: HotRef { chunk, line }, home: Arc::downgrade(&self.spare) }
    }
}

/// A shared handle on one line: what a snapshot and a pool member hold to reach it
/// without going through the proxy's health.
#[derive(Clone, Debug)]
pub(crate) struct HotRef {
    chunk: Arc<Chunk>,
    line: u16,
}

impl HotRef {
    #[inline]
    pub(crate) fn get(&self) -> &Hot {
        self.chunk.line(self.line)
    }

    /// The chunk and the line in it, for a table that stores them apart.
    pub(crate) fn into_parts(self) -> (Arc<Chunk>, u16) {
        (self.chunk, self.line)
    }
}

/// The line one proxy's health owns; it returns to its table when dropped.
#[derive(Debug)]
pub(crate) struct HotCell {
    at: HotRef,
    home: Weak<Mutex<Spare>>,
}

impl HotCell {
    /// A line of its own, outside any pool (for a health made on its own).
    pub(crate) fn standalone() -> HotCell {
        HotTable::default().take()
    }

    #[inline]
    pub(crate) fn get(&self) -> &Hot {
        self.at.get()
    }

    /// A handle on the line, for a snapshot or a member.
    pub(crate) fn share(&self) -> HotRef {
        self.at.clone()
    }
}

impl Drop for HotCell {
    fn drop(&mut self) {
        // No one reads the line any more: snapshots and members reach it only while they
        // hold the health that owns this cell.
        if let Some(home) = self.home.upgrade() {
            let mut spare = home.lock().unwrap_or_else(PoisonError::into_inner);
            spare.returned.push((self.at.chunk.clone(), self.at.line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Hot>(), 64);
        assert_eq!(std::mem::align_of::<Hot>(), 64);
    }

    #[test]
    fn proxies_added_together_get_consecutive_lines() {
        let table = HotTable::default();
        let cells: Vec<HotCell> = (0..CHUNK + 3).map(|_| table.take()).collect();
        let address = |c: &HotCell| c.get() as *const Hot as usize;
        for pair in cells[..CHUNK].windows(2) {
            assert_eq!(address(&pair[1]) - address(&pair[0]), 64);
        }
        assert_eq!(address(&cells[CHUNK + 1]) - address(&cells[CHUNK]), 64, "a second chunk, consecutive again");
    }

    #[test]
    fn a_returned_line_is_taken_again_reset() {
        let table = HotTable::default();
        let first = table.take();
        first.get().in_flight.store(3, Ordering::Relaxed);
        first.get().ejected_until.store(99, Ordering::Relaxed);
        first.get().ban_hint.store(7, Ordering::Relaxed);
        let address = first.get() as *const Hot as usize;
        drop(first);
        let again = table.take();
        assert_eq!(again.get() as *const Hot as usize, address);
        assert_eq!(again.get().in_flight(), 0);
        assert_eq!(again.get().ejection_end(), 0);
        assert!(!again.get().may_be_banned(|| 1));
    }

    #[test]
    fn a_line_outlives_its_table() {
        let table = HotTable::default();
        let cell = table.take();
        drop(table);
        cell.get().try_begin(None, || 5);
        assert_eq!(cell.get().in_flight(), 1);
    }
}
