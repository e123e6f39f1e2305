//! How long to wait before asking Redis again after failures in a row.

use std::time::Duration;

/// Exponential backoff with jitter: the n-th failure in a row waits between half and all
/// of `min × 2ⁿ⁻¹`, capped at `max`, so that instances that lost Redis together do not
/// come back in step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Backoff {
        Backoff { min, max: max.max(min), failures: 0 }
    }

    /// Success: the next failure starts from `min` again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// True after a failure not yet followed by a success.
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }

    /// One more failure: the wait before the next try.
    pub(crate) fn fail(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.ceiling();
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=spread))
    }

    /// The longest wait after the failures so far.
    fn ceiling(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(31);
        self.min.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn waits_grow_to_the_cap_and_start_over_after_a_success() {
        let mut backoff = Backoff::new(100 * MS, 1000 * MS);
        let ceilings: Vec<Duration> = (0..6)
            .map(|_| {
                backoff.fail();
                backoff.ceiling()
            })
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000].map(|ms| ms * MS));
        assert!(backoff.failing());
        backoff.reset();
        assert!(!backoff.failing());
        backoff.fail();
        assert_eq!(backoff.ceiling(), 100 * MS);
    }

    proptest::proptest! {
        #[test]
        fn every_wait_lies_between_half_the_ceiling_and_the_ceiling(failures in 1u32..80) {
            let mut backoff = Backoff::new(100 * MS, 5000 * MS);
            let mut wait = Duration::ZERO;
            for _ in 0..failures {
                wait = backoff.fail();
            }
            let ceiling = backoff.ceiling();
            proptest::prop_assert!(wait >= ceiling / 2 && wait <= ceiling, "{wait:?} vs {ceiling:?}");
        }
    }
}
