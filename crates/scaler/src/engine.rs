//! [`Engine`]: the one interface every scaling engine has, so that a [`Driver`](crate::Driver)
//! runs any of them and wrappers ([`Scheduled`](crate::Scheduled), [`CostCap`](crate::CostCap))
//! stack on any of them.

use std::ops::RangeInclusive;

use crate::recommendation::Recommendation;
use crate::sample::Sample;
use crate::time::Timestamp;

/// A deterministic scaling engine: the same samples at the same times give the same answers.
///
/// An engine keeps what its algorithm needs to remember (past recommendations, scale events,
/// a demand history), but never reads a clock: `now` is the sample's time, given by the
/// caller, and calls are expected in time order (one every sync period, 15 s by default for
/// the HPA). It never assumes that what it recommends is applied: the next sample's `replicas`
/// tells it what actually runs, and a change counts as made (a scale event for the HPA's
/// policies, the start of the reactive cooldown) only once a sample runs exactly the
/// recommended replicas. So an actuator that failed, or a wrapper that answered another number,
/// leaves no false event behind, and the next round may retry the change in full.
///
/// ```
/// use harvester_scaler::{Engine, ReactiveConfig, ReactiveScaler, Sample, Timestamp};
///
/// let mut engine: Box<dyn Engine> = Box::new(ReactiveScaler::new(ReactiveConfig::default())?);
/// let decision = engine.recommend(&Sample::new(2).with_value("cpu", 0.95), Timestamp::from_unix_secs(0));
/// assert_eq!(decision.replicas, 4);
/// assert!(engine.replica_range().contains(&decision.replicas));
/// # Ok::<(), harvester_scaler::ConfigError>(())
/// ```
pub trait Engine: Send {
    /// The replicas to run, given `sample` taken at `now`.
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation;

    /// The bounds of every recommendation (`min_replicas..=max_replicas`), except where the
    /// engine documents a hold (the HPA leaves a target at zero replicas alone).
    fn replica_range(&self) -> RangeInclusive<u32>;
}

impl<E: Engine + ?Sized> Engine for Box<E> {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        (**self).recommend(sample, now)
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        (**self).replica_range()
    }
}
