//! The Kubernetes Horizontal Pod Autoscaler's algorithm, exactly, as an [`Engine`].
//!
//! Each round (Kubernetes syncs every 15 s; here, whenever the caller samples):
//!
//! 1. A target at zero replicas with `min_replicas > 0` is left alone
//!    ([`Reason::ScalingDisabled`]); one outside `[min, max]` is brought to the bound.
//! 2. Each metric proposes replicas: ratio = current ÷ target; inside the tolerance band
//!    (`1 - down ≤ ratio ≤ 1 + up`) it proposes the current count, else `⌈ratio × ready⌉`
//!    (see [`MetricTarget`] for the three kinds, and the missing / unready replica rules).
//! 3. The largest proposal wins. If **every** metric is invalid (missing reading, bad value,
//!    no ready replica…), or **some** are and the rest would scale down, nothing changes
//!    ([`Reason::MetricsMissing`]); some invalid while the rest scale up (or hold) proceeds.
//! 4. Without a [`Behavior`]: the highest recommendation of the last `downscale_stabilization`
//!    (300 s) wins, then the result is clamped to `[min, min(max, max(2 × current, 4))]`.
//!    With one: the recommendation is held between the lowest of the scale-up window and the
//!    highest of the scale-down window, then each direction's policies cap the change: a
//!    policy allows `value` pods or `value` % of the replicas running at the start of its
//!    period (changes made within the period are taken back out), `select_policy` picks the
//!    largest (`Max`) or smallest (`Min`) allowance, or forbids the direction (`Disabled`);
//!    `[min, max]` still holds.
//!
//! The first round records the replicas found as a recommendation (as Kubernetes does), so
//! a target that starts large waits out the downscale window before shrinking.
//!
//! A change counts against the policies only once it was made: Kubernetes stores a scale
//! event after the scale update succeeded, and here a recommended change becomes an event,
//! dated from its round, when the next round's sample runs exactly the recommended replicas.
//! A change the actuator failed to apply, or that a wrapper ([`CostCap`](crate::CostCap),
//! [`Scheduled`](crate::Scheduled)) replaced by another number, leaves no event, so the next
//! round may make it in full. Stabilisation windows, as in Kubernetes, remember every
//! recommendation, applied or not.
//!
//! ```
//! use std::time::Duration;
//! use harvester_scaler::{Engine, Hpa, HpaConfig, MetricSpec, Sample, Timestamp};
//!
//! let mut hpa = Hpa::new(HpaConfig::new([MetricSpec::average_value("queue_depth", 100.0)]))?;
//! let t0 = Timestamp::from_unix_secs(0);
//! // 2 replicas, 900 records waiting, 100 per replica wanted: ⌈900 / 100⌉ = 9, but without a
//! // behaviour one round may at most reach max(2 × 2, 4) = 4.
//! assert_eq!(hpa.recommend(&Sample::new(2).with_value("queue_depth", 900.0), t0).replicas, 4);
//! assert_eq!(hpa.recommend(&Sample::new(4).with_value("queue_depth", 900.0), t0 + Duration::from_secs(15)).replicas, 8);
//! assert_eq!(hpa.recommend(&Sample::new(8).with_value("queue_depth", 900.0), t0 + Duration::from_secs(30)).replicas, 9);
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

mod config;
mod history;
mod replicas;

use std::ops::RangeInclusive;

pub use config::{
    Behavior, HpaConfig, MetricSpec, MetricTarget, PolicyKind, ScalingPolicy, ScalingRules, SelectPolicy, Tolerance,
};

use self::config::Rules;
pub(crate) use self::config::milli;
use self::history::History;
pub(crate) use self::replicas::Target;
use self::replicas::{Context, Invalid, propose};
use crate::engine::Engine;
use crate::error::ConfigError;
use crate::recommendation::{Bound, Direction, Reason, Recommendation};
use crate::sample::{Reading, Sample};
use crate::time::Timestamp;

/// A metric beyond the configured ones, added for one round (the predictive engine's
/// forecast).
pub(crate) struct ExtraMetric<'a> {
    pub(crate) name: &'a str,
    pub(crate) target: Target,
    pub(crate) reading: Reading,
}

/// What held the normalised recommendation, if anything.
enum Limit {
    None,
    Bound(Bound),
    Rate(Direction),
    Disabled(Direction),
}

/// The Kubernetes HPA. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Hpa {
    config: HpaConfig,
    targets: Vec<Target>,
    rules: Option<(Rules, Rules)>,
    history: History,
}

impl Hpa {
    /// An HPA with `config`, validated.
    pub fn new(config: HpaConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let targets = config
            .metrics
            .iter()
            .enumerate()
            .map(|(index, metric)| {
                Target::from_config(metric.target)
                    .ok_or_else(|| ConfigError::new(format!("hpa.metrics[{index}].target"), "out of range"))
            })
            .collect::<Result<_, _>>()?;
        let rules = config.behavior.as_ref().map(|b| b.resolve(config.downscale_stabilization));
        Ok(Hpa { config, targets, rules, history: History::default() })
    }

    /// The configuration.
    pub fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// One round with an optional extra metric.
    pub(crate) fn reconcile(
        &mut self,
        sample: &Sample,
        now: Timestamp,
        extra: Option<ExtraMetric<'_>>,
    ) -> Recommendation {
        let current = i64::from(sample.replicas);
        let (min, max) = (i64::from(self.config.min_replicas), i64::from(self.config.max_replicas));
        if let Some((up, down)) = &self.rules {
            self.history.settle(sample.replicas, up, down);
        }
        self.history.record_initial(current, now);
        if current == 0 && min != 0 {
            return Recommendation::new(
                0,
                Reason::ScalingDisabled,
                "the target runs zero replicas: autoscaling is off until something scales it up",
            );
        }
        let (desired, reason, message) = if current > max {
            (
                max,
                Reason::Clamped { bound: Bound::Max },
                format!("{current} replicas running, above max_replicas {max}"),
            )
        } else if current < min {
            (
                min,
                Reason::Clamped { bound: Bound::Min },
                format!("{current} replicas running, below min_replicas {min}"),
            )
        } else {
            match self.metric_replicas(sample, extra.as_ref()) {
                Err(hold) => return hold,
                Ok((proposal, metric)) => self.normalize(current, proposal.max(0), metric, now),
            }
        };
        let desired = clamp_u32(desired);
        if self.rules.is_some() {
            self.history.recommend_scale(sample.replicas, desired, now);
        }
        Recommendation::new(desired, reason, message)
    }

    /// The largest proposal and the metric making it, or the hold when metrics are missing.
    fn metric_replicas(
        &self,
        sample: &Sample,
        extra: Option<&ExtraMetric<'_>>,
    ) -> Result<(i64, String), Recommendation> {
        let cx = Context {
            current: i64::from(sample.replicas),
            ready: i64::from(sample.ready()),
            running: i64::from(sample.replicas),
            tolerance: self.config.tolerance,
        };
        let configured = self
            .config
            .metrics
            .iter()
            .zip(&self.targets)
            .map(|(spec, target)| (spec.name.as_str(), propose(*target, sample.metrics.get(&spec.name), &cx)));
        let added = extra.map(|e| (e.name, propose(e.target, Some(&e.reading), &cx)));
        let (mut replicas, mut metric) = (0, String::new());
        let (mut invalid, mut total) = (0, 0);
        let mut first_problem: Option<(&str, Invalid)> = None;
        for (name, proposal) in configured.chain(added) {
            total += 1;
            match proposal {
                Err(problem) => {
                    invalid += 1;
                    first_problem.get_or_insert((name, problem));
                }
                // Kubernetes' own comparison: the first valid proposal, then any larger one.
                Ok(p) if replicas == 0 || p > replicas => {
                    replicas = p;
                    metric = name.to_owned();
                }
                Ok(_) => {}
            }
        }
        if invalid >= total || (invalid > 0 && replicas < cx.current) {
            let detail = first_problem.map(|(name, why)| format!("; first: {name}: {why}")).unwrap_or_default();
            let message = if invalid >= total {
                format!("no metric usable ({invalid} of {total} invalid{detail}); replicas stay")
            } else {
                format!("{invalid} of {total} metrics invalid{detail}; no scale-down to {replicas} without them")
            };
            return Err(Recommendation::new(
                clamp_u32(cx.current),
                Reason::MetricsMissing { missing: invalid, of: total },
                message,
            ));
        }
        Ok((replicas, metric))
    }

    /// Stabilisation and limits; returns the replicas, the deciding reason and its text.
    fn normalize(&mut self, current: i64, desired: i64, metric: String, now: Timestamp) -> (i64, Reason, String) {
        let (min, max) = (i64::from(self.config.min_replicas), i64::from(self.config.max_replicas));
        let (stabilized, limited, limit) = match &self.rules {
            None => {
                let stabilized = self.history.stabilize_down(desired, self.config.downscale_stabilization, now);
                let scale_up_limit = (2 * current).max(4);
                let (ceiling, ceiling_limit) = if max > scale_up_limit {
                    (scale_up_limit, Limit::Rate(Direction::Up))
                } else {
                    (max, Limit::Bound(Bound::Max))
                };
                let (limited, limit) = if stabilized < min {
                    (min, Limit::Bound(Bound::Min))
                } else if stabilized > ceiling {
                    (ceiling, ceiling_limit)
                } else {
                    (stabilized, Limit::None)
                };
                (stabilized, limited, limit)
            }
            Some((up, down)) => {
                let stabilized = self.history.stabilize(current, desired, up.window, down.window, now);
                let (limited, limit) = if stabilized > current {
                    let allowed = self.history.scale_up_limit(current, up, now).max(current);
                    let (ceiling, ceiling_limit) = if max > allowed {
                        let why = if up.select == SelectPolicy::Disabled {
                            Limit::Disabled(Direction::Up)
                        } else {
                            Limit::Rate(Direction::Up)
                        };
                        (allowed, why)
                    } else {
                        (max, Limit::Bound(Bound::Max))
                    };
                    if stabilized > ceiling { (ceiling, ceiling_limit) } else { (stabilized, Limit::None) }
                } else if stabilized < current {
                    let allowed = self.history.scale_down_limit(current, down, now).min(current);
                    let (floor, floor_limit) = if min < allowed {
                        let why = if down.select == SelectPolicy::Disabled {
                            Limit::Disabled(Direction::Down)
                        } else {
                            Limit::Rate(Direction::Down)
                        };
                        (allowed, why)
                    } else {
                        (min, Limit::Bound(Bound::Min))
                    };
                    if stabilized < floor { (floor, floor_limit) } else { (stabilized, Limit::None) }
                } else {
                    (stabilized, Limit::None)
                };
                (stabilized, limited, limit)
            }
        };
        let proposal = if metric.is_empty() {
            format!("metrics propose {desired}")
        } else {
            format!("{metric} proposes {desired}")
        };
        let reason = match limit {
            Limit::Bound(bound) => Reason::Clamped { bound },
            Limit::Rate(direction) => Reason::RateLimited { direction },
            Limit::Disabled(direction) => Reason::DirectionDisabled { direction },
            Limit::None if stabilized > desired => Reason::Stabilized { direction: Direction::Down },
            Limit::None if stabilized < desired => Reason::Stabilized { direction: Direction::Up },
            Limit::None if limited > current => Reason::AboveTarget { metric },
            Limit::None if limited < current => Reason::BelowTarget,
            Limit::None => Reason::Steady,
        };
        let message = match &reason {
            Reason::Steady => format!("{proposal}; {current} replicas stay"),
            Reason::AboveTarget { .. } | Reason::BelowTarget => format!("{proposal}: {current} -> {limited}"),
            other => format!("{proposal}, stabilized to {stabilized}; {other}: {current} -> {limited}"),
        };
        (limited, reason, message)
    }
}

fn clamp_u32(replicas: i64) -> u32 {
    replicas.clamp(0, i64::from(u32::MAX)) as u32
}

impl Engine for Hpa {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        self.reconcile(sample, now, None)
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        self.config.min_replicas..=self.config.max_replicas
    }
}
