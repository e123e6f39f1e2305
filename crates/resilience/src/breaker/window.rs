//! The sliding windows the rates are computed over, updated with atomics only.
//!
//! Both windows keep running totals (calls, failures, slow calls) next to the raw data, so a
//! verdict never scans the window. Totals are signed and clamped when read: under contention
//! an update may land before the one it logically follows and dip a total below zero for a
//! moment; the totals are exact again once the updates in flight have landed.
//!
//! A window is never cleared in place: clearing slot by slot while calls record would let a
//! call swap a slot already zeroed before the totals are, leaving the totals off for good. The
//! breaker installs a fresh window instead (see `state::Period`), and late calls land in the
//! discarded one.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::*};

use super::config::SlidingWindow;

/// One call's outcome as stored in a count window slot; 0 is an empty slot.
pub(crate) type Encoded = u8;
const RECORDED: u8 = 1;
const FAILED: u8 = 2;
const SLOW: u8 = 4;

/// Encodes an outcome.
pub(crate) fn encode(failed: bool, slow: bool) -> Encoded {
    RECORDED | if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 }
}

/// Totals of a window at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

/// Keeps a hot atomic on its own cache line, so that writes to it do not slow down reads of
/// its neighbours (the state word is read on every call).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(T);

#[derive(Debug, Default)]
struct Totals {
    calls: AtomicI64,
    failures: AtomicI64,
    slow: AtomicI64,
}

impl Totals {
    fn add(&self, calls: i64, failures: i64, slow: i64) {
        if calls != 0 {
            self.calls.fetch_add(calls, Relaxed);
        }
        if failures != 0 {
            self.failures.fetch_add(failures, Relaxed);
        }
        if slow != 0 {
            self.slow.fetch_add(slow, Relaxed);
        }
    }

    fn read(&self) -> Counts {
        let calls = self.calls.load(Relaxed).max(0) as u64;
        let clamp = |v: i64| (v.max(0) as u64).min(calls);
        Counts { calls, failures: clamp(self.failures.load(Relaxed)), slow: clamp(self.slow.load(Relaxed)) }
    }
}

/// A count- or time-based window.
#[derive(Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

impl Window {
    /// An empty window as configured.
    pub(crate) fn new(kind: &SlidingWindow) -> Window {
        match *kind {
            SlidingWindow::Count { calls } => Window::Count(CountWindow::new(calls)),
            SlidingWindow::Time { span, buckets } => {
                let bucket_nanos = (span.as_nanos() / u128::from(buckets)).clamp(1, u128::from(u64::MAX)) as u64;
                Window::Time(TimeWindow::new(buckets, bucket_nanos))
            }
        }
    }

    /// Records one outcome. Returns the totals when a verdict may be due: after a failed or
    /// slow call, or when the number of calls has just reached `min_calls`. A fast success
    /// never raises a rate, so most calls return `None` and the caller judges nothing.
    /// `now_nanos` is only called by a time-based window.
    #[inline]
    pub(crate) fn record(&self, outcome: Encoded, min_calls: u64, now_nanos: impl FnOnce() -> u64) -> Option<Counts> {
        match self {
            Window::Count(w) => w.record(outcome, min_calls),
            Window::Time(w) => w.record(outcome, min_calls, now_nanos()),
        }
    }

    /// The totals as of `now_nanos` (a time-based window first forgets expired buckets).
    pub(crate) fn counts(&self, now_nanos: impl FnOnce() -> u64) -> Counts {
        match self {
            Window::Count(w) => w.totals.read(),
            Window::Time(w) => {
                w.advance(now_nanos() / w.bucket_nanos);
                w.totals.read()
            }
        }
    }
}

/// The last `n` outcomes in a ring of one byte each. A call claims the next slot with one
/// `fetch_add`, and in the steady state (the slot already holds the same outcome, e.g. success
/// over success) touches nothing else.
#[derive(Debug)]
pub(crate) struct CountWindow {
    next: Padded<AtomicU64>,
    slots: Box<[AtomicU8]>,
    totals: Totals,
}

impl CountWindow {
    fn new(calls: u32) -> CountWindow {
        CountWindow {
            next: Padded(AtomicU64::new(0)),
            slots: (0..calls.max(1)).map(|_| AtomicU8::new(0)).collect(),
            totals: Totals::default(),
        }
    }

    #[inline]
    fn record(&self, outcome: Encoded, min_calls: u64) -> Option<Counts> {
        let seq = self.next.0.fetch_add(1, Relaxed);
        let slot = &self.slots[(seq % self.slots.len() as u64) as usize];
        // Overwriting an equal outcome changes nothing. A concurrent writer a whole lap ahead
        // on the same slot accounts for replacing this same value, so skipping is still exact.
        if slot.load(Relaxed) == outcome {
            return None;
        }
        let old = slot.swap(outcome, Relaxed);
        if old == outcome {
            return None;
        }
        let bit = |o: u8, b: u8| i64::from(o & b != 0);
        let new_call = old == 0;
        self.totals.add(
            i64::from(new_call),
            bit(outcome, FAILED) - bit(old, FAILED),
            bit(outcome, SLOW) - bit(old, SLOW),
        );
        let counts = self.totals.read();
        let bad = outcome & (FAILED | SLOW) != 0;
        (bad || (new_call && counts.calls >= min_calls)).then_some(counts)
    }
}

/// Flag on `TimeWindow::current` while one thread clears the buckets a clock tick skipped.
const ROTATING: u64 = 1 << 63;

#[derive(Debug, Default)]
struct Bucket {
    calls: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// The calls of the last `n` buckets of `bucket_nanos` each.
///
/// Bucket `e % n` holds epoch `e` (= time / bucket length). The first call of a new epoch
/// raises `current` with a compare-and-swap and clears the buckets in between; calls that race
/// with the rotation count in the newest published bucket instead of waiting, so nothing spins
/// and nothing is lost (at worst a call lands one bucket early).
#[derive(Debug)]
pub(crate) struct TimeWindow {
    current: Padded<AtomicU64>,
    buckets: Box<[Bucket]>,
    bucket_nanos: u64,
    totals: Totals,
}

impl TimeWindow {
    fn new(buckets: u32, bucket_nanos: u64) -> TimeWindow {
        TimeWindow {
            current: Padded(AtomicU64::new(0)),
            buckets: (0..buckets.max(1)).map(|_| Bucket::default()).collect(),
            bucket_nanos,
            totals: Totals::default(),
        }
    }

    fn record(&self, outcome: Encoded, min_calls: u64, now_nanos: u64) -> Option<Counts> {
        let epoch = self.advance(now_nanos / self.bucket_nanos);
        let bucket = &self.buckets[(epoch % self.buckets.len() as u64) as usize];
        let failed = outcome & FAILED != 0;
        let slow = outcome & SLOW != 0;
        bucket.calls.fetch_add(1, Relaxed);
        let calls_before = self.totals.calls.fetch_add(1, Relaxed);
        if failed {
            bucket.failures.fetch_add(1, Relaxed);
            self.totals.failures.fetch_add(1, Relaxed);
        }
        if slow {
            bucket.slow.fetch_add(1, Relaxed);
            self.totals.slow.fetch_add(1, Relaxed);
        }
        // Calls only ever grow by one, so exactly one call sees the total reach `min_calls`.
        ((failed || slow) || calls_before + 1 == min_calls as i64).then(|| self.totals.read())
    }

    /// Moves the window to `epoch` (if it is ahead) and returns the epoch to count a call in.
    fn advance(&self, epoch: u64) -> u64 {
        let n = self.buckets.len() as u64;
        let mut current = self.current.0.load(Acquire);
        loop {
            if current & ROTATING != 0 {
                return current & !ROTATING;
            }
            if epoch <= current {
                // A call timed just before a rotation still has its bucket, unless a whole
                // window has passed since.
                return if current - epoch < n { epoch } else { current };
            }
            match self.current.0.compare_exchange_weak(current, current | ROTATING, Acquire, Acquire) {
                Ok(_) => {
                    let first = (current + 1).max(epoch.saturating_sub(n - 1));
                    for expired in first..=epoch {
                        let bucket = &self.buckets[(expired % n) as usize];
                        let calls = bucket.calls.swap(0, Relaxed) as i64;
                        let failures = bucket.failures.swap(0, Relaxed) as i64;
                        let slow = bucket.slow.swap(0, Relaxed) as i64;
                        self.totals.add(-calls, -failures, -slow);
                    }
                    self.current.0.store(epoch, Release);
                    return epoch;
                }
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_window_replaces_the_oldest_outcome() {
        let w = CountWindow::new(3);
        for failed in [true, true, false, false] {
            w.record(encode(failed, false), 3);
        }
        assert_eq!(w.totals.read(), Counts { calls: 3, failures: 1, slow: 0 });
    }

    #[test]
    fn time_window_forgets_buckets_older_than_its_span() {
        let w = TimeWindow::new(4, 10);
        w.record(encode(true, false), 1, 5);
        w.record(encode(false, true), 1, 25);
        assert_eq!(w.totals.read(), Counts { calls: 2, failures: 1, slow: 1 });
        // Epoch 4 reuses the bucket of epoch 0.
        w.record(encode(false, false), 1, 45);
        assert_eq!(w.totals.read(), Counts { calls: 2, failures: 0, slow: 1 });
        // A jump of more than the whole window clears everything.
        w.advance(100);
        assert_eq!(w.totals.read(), Counts::default());
    }
}
