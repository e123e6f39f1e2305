//! Latency averages kept in atomics: a plain EWMA for least-latency and quality, and
//! Finagle's peak EWMA for power-of-two-choices, which jumps up to any slower sample at
//! once and decays towards faster ones with a time constant τ.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Nanos;

/// Seconds as `f64` bits; `NONE` until the first sample.
#[derive(Debug)]
pub(crate) struct Ewma {
    bits: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Default for Ewma {
    fn default() -> Self {
        Ewma { bits: AtomicU64::new(NONE) }
    }
}

impl Ewma {
    pub(crate) fn record(&self, sample_secs: f64, alpha: f64) {
        let _ = self.bits.fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
            let next =
                if bits == NONE { sample_secs } else { f64::from_bits(bits) * (1.0 - alpha) + sample_secs * alpha };
            Some(next.to_bits())
        });
    }

    pub(crate) fn get(&self) -> Option<f64> {
        let bits = self.bits.load(Ordering::Acquire);
        (bits != NONE).then(|| f64::from_bits(bits))
    }
}

/// Peak EWMA, stored as its *log key* `ln(value) + stamp / τ`.
///
/// The estimate decayed to `now` is `value · e^(−(now − stamp)/τ) = e^(key − now/τ)`, so
/// comparing two proxies' decayed estimates is comparing their keys: `now` cancels out.
/// A pick therefore reads one word per proxy and needs neither the clock nor `exp`; only
/// recording a sample (once per request, off the pick path) does the maths.
///
/// The key and the time of the last sample sit in two words. Two reports racing on one
/// proxy may lose one sample's update, which a load-balancing estimate can afford.
#[derive(Debug)]
pub(crate) struct PeakEwma {
    key: AtomicU64,
    stamp: AtomicU64,
}

/// The key of a proxy without a sample: lower than any real key.
pub(crate) const NO_PEAK: f64 = f64::NEG_INFINITY;

impl Default for PeakEwma {
    fn default() -> Self {
        PeakEwma { key: AtomicU64::new(NO_PEAK.to_bits()), stamp: AtomicU64::new(0) }
    }
}

impl PeakEwma {
    /// Takes a sample of `sample_secs` at `now`, with time constant `tau_nanos`.
    pub(crate) fn record(&self, sample_secs: f64, now: Nanos, tau_nanos: f64) {
        let key = f64::from_bits(self.key.load(Ordering::Acquire));
        let stamp = self.stamp.load(Ordering::Acquire);
        let sample = sample_secs.max(MIN_SECS);
        let next = if key == NO_PEAK {
            sample
        } else {
            let raw = (key - stamp as f64 / tau_nanos).exp();
            let w = (-(now.saturating_sub(stamp) as f64) / tau_nanos).exp();
            let decayed = raw * w;
            // Finagle: a slower sample is taken at once; a faster one is blended in with
            // the weight that time has taken from the old estimate.
            if sample > decayed { sample } else { decayed + sample * (1.0 - w) }
        };
        self.stamp.store(now, Ordering::Release);
        self.key.store((next.ln() + now as f64 / tau_nanos).to_bits(), Ordering::Release);
    }

    /// Back to no sample.
    pub(crate) fn reset(&self) {
        self.key.store(NO_PEAK.to_bits(), Ordering::Relaxed);
        self.stamp.store(0, Ordering::Relaxed);
    }

    /// The log key; [`NO_PEAK`] before the first sample.
    #[inline]
    pub(crate) fn key(&self) -> f64 {
        f64::from_bits(self.key.load(Ordering::Acquire))
    }

    /// The estimate in seconds decayed to `now`; 0 before the first sample.
    pub(crate) fn get(&self, now: Nanos, tau_nanos: f64) -> f64 {
        let key = self.key();
        if key == NO_PEAK { 0.0 } else { (key - now as f64 / tau_nanos).exp() }
    }
}

/// Samples are floored at a nanosecond so that the logarithm stays finite.
const MIN_SECS: f64 = 1e-9;

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: f64 = 10e9;
    const SEC: Nanos = 1_000_000_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn ewma_starts_at_first_sample_then_moves_by_alpha() {
        let e = Ewma::default();
        assert_eq!(e.get(), None);
        e.record(1.0, 0.5);
        e.record(2.0, 0.5);
        assert_eq!(e.get(), Some(1.5));
    }

    #[test]
    fn peak_jumps_up_at_once_and_decays_with_time() {
        let p = PeakEwma::default();
        assert_eq!(p.get(SEC, TAU), 0.0);
        p.record(0.1, SEC, TAU);
        p.record(2.0, 2 * SEC, TAU);
        assert!(close(p.get(2 * SEC, TAU), 2.0), "a slower sample is taken at once");
        let later = p.get(12 * SEC, TAU);
        assert!(close(later, 2.0 / std::f64::consts::E), "one time constant decays by 1/e, got {later}");
    }

    #[test]
    fn a_faster_sample_blends_with_the_decayed_estimate_once() {
        let p = PeakEwma::default();
        p.record(1.0, SEC, TAU);
        // One τ later: the estimate has decayed to 1/e ≈ 0.368; 0.3 s is faster still and
        // is blended with the weight time took away: 0.368 + 0.3 × (1 − 1/e) ≈ 0.558.
        p.record(0.3, 11 * SEC, TAU);
        let w = (-1.0f64).exp();
        assert!(close(p.get(11 * SEC, TAU), w + 0.3 * (1.0 - w)), "got {}", p.get(11 * SEC, TAU));
    }

    #[test]
    fn keys_order_proxies_as_their_decayed_estimates_do() {
        let (a, b) = (PeakEwma::default(), PeakEwma::default());
        a.record(1.0, SEC, TAU);
        b.record(0.5, 8 * SEC, TAU);
        for now in [8 * SEC, 20 * SEC, 100 * SEC] {
            assert_eq!(a.key() < b.key(), a.get(now, TAU) < b.get(now, TAU), "at {now}");
        }
    }
}
