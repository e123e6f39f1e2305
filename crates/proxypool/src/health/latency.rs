//! How long answers take, per target host and for the whole pool: a histogram of
//! successful latencies over the last one to two windows, with its quantiles.
//!
//! The quantiles set how long the client waits before it hedges an attempt and when it
//! gives up on one, and how long a request may stay in flight before its proxy looks
//! suspect. The client's hedging delay is capped at a multiple of the median
//! ([`tail`](Windows::tail)): a few slow proxies that still answer would otherwise drag
//! the high quantiles up to their own latency, and then nothing they serve looks slow.
//! Buckets grow by a fifth from 0.1 ms to an hour (96 of them, so a quantile is
//! within 20 % of the truth, always rounded up: a timeout made from it errs long). Two
//! windows rotate, as tower's hedge middleware does, so a change of regime shows within
//! two windows and a quiet minute does not empty the histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use crate::clock::Nanos;

const BUCKETS: usize = 96;
/// The upper edge of bucket 0, in seconds.
const FIRST_EDGE: f64 = 1e-4;
const GROWTH: f64 = 1.2;
/// Quantiles are recomputed after this many samples (and at each rotation).
const REFRESH_EVERY: u32 = 16;

/// Quantiles of the successful latencies at one host (or over the whole pool), over the
/// last one to two windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LatencyQuantiles {
    /// The median.
    #[serde(with = "humantime_serde")]
    pub p50: Duration,
    /// The 90th percentile.
    #[serde(with = "humantime_serde")]
    pub p90: Duration,
    /// The 95th percentile.
    #[serde(with = "humantime_serde")]
    pub p95: Duration,
    /// The 99th percentile.
    #[serde(with = "humantime_serde")]
    pub p99: Duration,
    /// Samples they come from.
    pub samples: u64,
}

#[derive(Debug)]
struct Windows {
    current: [u32; BUCKETS],
    previous: [u32; BUCKETS],
    current_count: u32,
    previous_count: u32,
    started: Nanos,
    since_refresh: u32,
}

impl Default for Windows {
    fn default() -> Self {
        Windows {
            current: [0; BUCKETS],
            previous: [0; BUCKETS],
            current_count: 0,
            previous_count: 0,
            started: 0,
            since_refresh: 0,
        }
    }
}

/// The histogram and its cached 99th percentile (nanoseconds, 0 until there are enough
/// samples), which the pick path reads without the lock.
#[derive(Debug, Default)]
pub(crate) struct LatencyStats {
    windows: Mutex<Windows>,
    p99: AtomicU64,
}

fn bucket_of(secs: f64) -> usize {
    if secs.is_nan() || secs <= FIRST_EDGE {
        return 0;
    }
    let i = ((secs / FIRST_EDGE).ln() / GROWTH.ln()).ceil();
    (i as usize).min(BUCKETS - 1)
}

/// The upper edge of bucket `i` in nanoseconds.
fn edge_nanos(i: usize) -> u64 {
    (FIRST_EDGE * GROWTH.powi(i as i32) * 1e9) as u64
}

impl Windows {
    fn rotate_if_due(&mut self, now: Nanos, window: Nanos) {
        if self.started == 0 {
            self.started = now;
            return;
        }
        let elapsed = now.saturating_sub(self.started);
        if elapsed < window {
            return;
        }
        if elapsed >= 2 * window {
            // Nothing recent enough to keep.
            self.previous = [0; BUCKETS];
            self.previous_count = 0;
        } else {
            self.previous = self.current;
            self.previous_count = self.current_count;
        }
        self.current = [0; BUCKETS];
        self.current_count = 0;
        self.started = now;
        self.since_refresh = REFRESH_EVERY;
    }

    fn samples(&self) -> u32 {
        self.current_count + self.previous_count
    }

    /// The `q` quantile's bucket edge in nanoseconds.
    fn quantile(&self, q: f64) -> u64 {
        let total = self.samples();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * f64::from(total)).ceil() as u32).max(1);
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += self.current[i] + self.previous[i];
            if seen >= rank {
                return edge_nanos(i);
            }
        }
        edge_nanos(BUCKETS - 1)
    }

    /// The `q` quantile as a tail threshold: at most `spread` times the median.
    ///
    /// Why capped: the answers come through many proxies, and a proxy that adds a second
    /// to every answer yet still answers is not ejected for failing. When round robin (or
    /// P2C's occasional pair of two bad samples) gives two such proxies of five their
    /// share, the 95th and 99th percentiles become their latency, so hedges wait for it:
    /// the slow proxies make themselves look normal (found on the testbed's dirty fleet,
    /// where this made whole runs 10× slower at random). The median moves only once half
    /// the answers are slow; while fewer are, the cap keeps the hedging delay at the site's
    /// own spread of latency.
    fn tail(&self, q: f64, spread: f64) -> u64 {
        let cap = self.quantile(0.5) as f64 * spread;
        // `as` saturates: a huge cap is no cap.
        self.quantile(q).min(cap as u64)
    }
}

impl LatencyStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a successful answer's latency.
    pub(crate) fn record(&self, secs: f64, now: Nanos, window: Nanos, min_samples: u32) {
        let mut w = self.lock();
        w.rotate_if_due(now, window);
        let i = bucket_of(secs);
        w.current[i] = w.current[i].saturating_add(1);
        w.current_count = w.current_count.saturating_add(1);
        w.since_refresh += 1;
        if w.since_refresh >= REFRESH_EVERY {
            w.since_refresh = 0;
            let enough = w.samples() >= min_samples;
            self.p99.store(if enough { w.quantile(0.99) } else { 0 }, Ordering::Release);
        }
    }

    /// The cached 99th percentile, in nanoseconds; `None` before enough samples.
    #[inline]
    pub(crate) fn p99_nanos(&self) -> Option<u64> {
        Some(self.p99.load(Ordering::Acquire)).filter(|&n| n > 0)
    }

    /// The `q` quantile as of `now`, at most `spread` times the median when one is given
    /// (see [`Windows::tail`]), or `None` with fewer than `min_samples` samples.
    pub(crate) fn quantile(
        &self,
        q: f64,
        spread: Option<f64>,
        now: Nanos,
        window: Nanos,
        min_samples: u32,
    ) -> Option<Duration> {
        let mut w = self.lock();
        w.rotate_if_due(now, window);
        let at = |w: &Windows| spread.map_or_else(|| w.quantile(q), |spread| w.tail(q, spread));
        (w.samples() >= min_samples.max(1)).then(|| Duration::from_nanos(at(&w)))
    }

    /// The usual quantiles as of `now`, or `None` with fewer than `min_samples` samples.
    pub(crate) fn quantiles(&self, now: Nanos, window: Nanos, min_samples: u32) -> Option<LatencyQuantiles> {
        let mut w = self.lock();
        w.rotate_if_due(now, window);
        if w.samples() < min_samples.max(1) {
            return None;
        }
        let at = |q| Duration::from_nanos(w.quantile(q));
        Some(LatencyQuantiles {
            p50: at(0.5),
            p90: at(0.9),
            p95: at(0.95),
            p99: at(0.99),
            samples: u64::from(w.samples()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;
    const WINDOW: Nanos = 60 * SEC;

    #[test]
    fn quantiles_round_up_to_within_a_fifth() {
        let s = LatencyStats::default();
        for i in 1..=100 {
            s.record(f64::from(i) / 1000.0, SEC, WINDOW, 20);
        }
        let q = s.quantiles(SEC, WINDOW, 20).expect("enough samples");
        for (got, truth) in [(q.p50, 0.050), (q.p90, 0.090), (q.p99, 0.099)] {
            let got = got.as_secs_f64();
            assert!(got >= truth && got <= truth * GROWTH * 1.0001, "{got} for {truth}");
        }
        assert_eq!(q.samples, 100);
        assert!(s.p99_nanos().is_some(), "the cached quantile follows the records");
        let tail = s.quantile(0.99, Some(8.0), SEC, WINDOW, 20).expect("enough samples");
        assert_eq!(tail, q.p99, "a site's own spread (p99 = 2 × the median) is below the cap");
    }

    #[test]
    fn too_few_samples_give_no_quantile() {
        let s = LatencyStats::default();
        s.record(0.1, SEC, WINDOW, 20);
        assert_eq!(s.quantile(0.5, None, SEC, WINDOW, 20), None);
        assert_eq!(s.p99_nanos(), None);
        assert_eq!(s.quantile(0.99, Some(8.0), SEC, WINDOW, 20), None);
    }

    #[test]
    fn old_windows_rotate_out() {
        let s = LatencyStats::default();
        for _ in 0..50 {
            s.record(2.0, SEC, WINDOW, 1);
        }
        for _ in 0..50 {
            s.record(0.01, 70 * SEC, WINDOW, 1);
        }
        assert!(
            s.quantile(0.99, None, 70 * SEC, WINDOW, 1).expect("samples") >= Duration::from_secs(2),
            "both windows"
        );
        assert!(s.quantile(0.99, None, 135 * SEC, WINDOW, 1).expect("samples") < Duration::from_millis(20), "one left");
        assert_eq!(s.quantile(0.5, None, 300 * SEC, WINDOW, 1), None, "nothing recent");
    }

    /// Answers at `fast` (3 ms) from most proxies and at `slow` (1 s) from the rest:
    /// `slow_share` of `total`, interleaved.
    fn mixed(slow_share: f64, total: u32) -> LatencyStats {
        let s = LatencyStats::default();
        let slow = (f64::from(total) * slow_share) as u32;
        for i in 0..total {
            let secs = if i * slow / total != (i + 1) * slow / total { 1.0 } else { 0.003 };
            s.record(secs, SEC, WINDOW, 20);
        }
        s
    }

    #[test]
    fn a_minority_of_slow_answers_cannot_drag_the_tail_threshold_up_to_them() {
        for share in [0.05, 0.2, 0.4] {
            let s = mixed(share, 1_000);
            let true_p99 = s.quantile(0.99, None, SEC, WINDOW, 20).expect("samples");
            assert!(true_p99 >= Duration::from_secs(1), "{share}: the quantile itself is the slow proxies'");
            let median = s.quantile(0.5, None, SEC, WINDOW, 20).expect("samples");
            assert!(median < Duration::from_millis(4), "{share}: the median is the fast ones'");
            for q in [0.95, 0.99] {
                let tail = s.quantile(q, Some(8.0), SEC, WINDOW, 20).expect("samples");
                assert!(tail <= median * 8, "{share}, {q}: {tail:?} is capped at 8 × the median");
            }
        }
    }

    #[test]
    fn once_most_answers_are_slow_the_tail_threshold_follows_them() {
        let s = mixed(0.6, 1_000);
        let tail = s.quantile(0.99, Some(8.0), SEC, WINDOW, 20).expect("samples");
        assert!(tail >= Duration::from_secs(1), "slow is the norm now: {tail:?}");
    }
}
