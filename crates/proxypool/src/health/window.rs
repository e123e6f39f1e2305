//! The recent-outcome window: the last up to 56 successes and failures packed with
//! their count into one `AtomicU64`, so recording and reading are single atomic
//! operations with no lock and no allocation.

use std::sync::atomic::{AtomicU64, Ordering};

const COUNT_SHIFT: u32 = 56;
const HISTORY_MASK: u64 = (1 << COUNT_SHIFT) - 1;

/// Bit 0 is the newest outcome (1 = success); the top byte counts valid bits.
#[derive(Debug, Default)]
pub(crate) struct OutcomeWindow {
    packed: AtomicU64,
}

/// A copy of the window at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowView {
    history: u64,
    count: u32,
}

impl OutcomeWindow {
    pub(crate) fn record(&self, success: bool, size: u32) {
        let _ = self.packed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            let view = unpack(packed);
            let history = ((view.history << 1) | u64::from(success)) & mask(size);
            let count = (view.count + 1).min(size);
            Some(history | (u64::from(count) << COUNT_SHIFT))
        });
    }

    pub(crate) fn view(&self) -> WindowView {
        unpack(self.packed.load(Ordering::Acquire))
    }

    pub(crate) fn reset(&self) {
        self.packed.store(0, Ordering::Release);
    }
}

impl WindowView {
    pub(crate) fn count(self) -> u32 {
        self.count
    }

    /// Share of successes, or `None` before the first outcome.
    pub(crate) fn success_rate(self) -> Option<f64> {
        (self.count > 0).then(|| f64::from((self.history & mask(self.count)).count_ones()) / f64::from(self.count))
    }

    /// The seed's trend over the last ten outcomes: success rate of the newer half minus
    /// that of the older half, in [-1, 1]; 0 with fewer than two outcomes.
    pub(crate) fn trend(self) -> f64 {
        let n = self.count.min(10);
        if n < 2 {
            return 0.0;
        }
        let newer = n / 2;
        let older = n - newer;
        let newer_ok = (self.history & mask(newer)).count_ones();
        let older_ok = ((self.history >> newer) & mask(older)).count_ones();
        f64::from(newer_ok) / f64::from(newer) - f64::from(older_ok) / f64::from(older)
    }
}

fn unpack(packed: u64) -> WindowView {
    WindowView { history: packed & HISTORY_MASK, count: (packed >> COUNT_SHIFT) as u32 }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_covers_only_the_last_window_outcomes() {
        let w = OutcomeWindow::default();
        assert_eq!(w.view().success_rate(), None);
        for _ in 0..10 {
            w.record(false, 4);
        }
        for _ in 0..3 {
            w.record(true, 4);
        }
        assert_eq!(w.view().count(), 4);
        assert_eq!(w.view().success_rate(), Some(0.75));
    }

    #[test]
    fn trend_is_positive_when_recent_outcomes_improve() {
        let w = OutcomeWindow::default();
        for ok in [false, false, false, false, false, true, true, true, true, true] {
            w.record(ok, 56);
        }
        assert_eq!(w.view().trend(), 1.0);
        w.reset();
        assert_eq!(w.view().trend(), 0.0);
    }

    proptest::proptest! {
        #[test]
        fn rate_is_the_share_of_successes_in_the_last_size_outcomes(
            outcomes in proptest::collection::vec(proptest::bool::ANY, 0..200),
            size in 1u32..=56,
        ) {
            let w = OutcomeWindow::default();
            for &ok in &outcomes {
                w.record(ok, size);
            }
            let tail: Vec<bool> = outcomes.iter().rev().take(size as usize).copied().collect();
            let expected = (!tail.is_empty()).then(|| tail.iter().filter(|&&ok| ok).count() as f64 / tail.len() as f64);
            proptest::prop_assert_eq!(w.view().success_rate(), expected);
        }
    }
}
