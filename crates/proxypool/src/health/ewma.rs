//! Latency averages kept in atomics: a plain EWMA for least-latency and quality, and
//! Finagle's peak EWMA for power-of-two-choices, which jumps up to any slower sample at
//! once and decays towards faster ones with a time constant.

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

/// Peak EWMA: value and time of the last update. The two words are updated one after the
/// other; a reader racing a writer may pair a new value with an old stamp, which only
/// shifts the decay by one sample and is harmless for a load-balancing estimate.
#[derive(Debug, Default)]
pub(crate) struct PeakEwma {
    bits: AtomicU64,
    stamp: AtomicU64,
}

impl PeakEwma {
    pub(crate) fn record(&self, sample_secs: f64, now: Nanos, decay_nanos: f64) {
        let current = self.get(now, decay_nanos);
        let next = if sample_secs > current {
            sample_secs
        } else {
            let elapsed = now.saturating_sub(self.stamp.load(Ordering::Acquire)) as f64;
            let w = (-elapsed / decay_nanos).exp();
            current * w + sample_secs * (1.0 - w)
        };
        self.bits.store(next.to_bits(), Ordering::Release);
        self.stamp.store(now, Ordering::Release);
    }

    /// The estimate decayed to `now`: a proxy that had one slow answer and was then left
    /// alone drifts back to zero, so it is tried again instead of starved forever.
    pub(crate) fn get(&self, now: Nanos, decay_nanos: f64) -> f64 {
        let value = f64::from_bits(self.bits.load(Ordering::Acquire));
        if value == 0.0 {
            return 0.0;
        }
        let elapsed = now.saturating_sub(self.stamp.load(Ordering::Acquire)) as f64;
        value * (-elapsed / decay_nanos).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let tau = 10e9;
        p.record(0.1, 1, tau);
        p.record(2.0, 2, tau);
        assert_eq!(p.get(2, tau), 2.0, "a slower sample is taken at once");
        let later = p.get(2 + 10_000_000_000, tau);
        assert!((later - 2.0 / std::f64::consts::E).abs() < 1e-9, "one time constant decays by 1/e, got {later}");
    }
}
