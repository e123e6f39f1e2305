//! [`Recommendation`]: what an engine says — a replica count, a typed [`Reason`] a program can
//! match on, and a sentence a person can read.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which way a change goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More replicas.
    Up,
    /// Fewer replicas.
    Down,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Up => "up",
            Direction::Down => "down",
        })
    }
}

/// Which configured bound held a recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// `min_replicas`.
    Min,
    /// `max_replicas`.
    Max,
}

/// Why an engine recommends what it does: the constraint that decided the number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Reason {
    /// Nothing to change: the metrics are on target (or within tolerance).
    Steady,
    /// A metric is above its target (or threshold); `metric` names the one that asked most.
    AboveTarget {
        /// The metric.
        metric: String,
    },
    /// Every metric is below its target (or threshold).
    BelowTarget,
    /// A change waits for the cooldown after the last one.
    Cooldown {
        /// Time left.
        #[serde(with = "humantime_serde")]
        remaining: Duration,
    },
    /// A stabilisation window held the change back: recent recommendations disagree.
    Stabilized {
        /// The change that was held back.
        direction: Direction,
    },
    /// A rate limit (scaling policies, or the HPA's ×2 / 4 rule) capped the change.
    RateLimited {
        /// The change that was capped.
        direction: Direction,
    },
    /// `min_replicas` or `max_replicas` held the recommendation (or brought replicas running
    /// outside the bounds back in).
    Clamped {
        /// Which bound.
        bound: Bound,
    },
    /// Scaling this way is disabled (`SelectPolicy::Disabled`).
    DirectionDisabled {
        /// The disabled direction.
        direction: Direction,
    },
    /// The target runs zero replicas while `min_replicas` is not zero: Kubernetes takes this as
    /// autoscaling switched off by hand, and so do we.
    ScalingDisabled,
    /// Too many metrics are missing to decide (all of them, or some while the rest would scale
    /// down): replicas stay.
    MetricsMissing {
        /// Metrics that could not be used.
        missing: usize,
        /// Metrics configured.
        of: usize,
    },
    /// The forecast demand asked for more than the current metrics.
    Predicted {
        /// Demand forecast at the horizon.
        forecast: f64,
        /// Confidence of the fit, in `0..=1`.
        confidence: f64,
    },
    /// A schedule window raised the minimum.
    Scheduled {
        /// The window's name.
        window: String,
        /// Its minimum.
        min_replicas: u32,
    },
    /// The cost budget capped the replicas.
    CostCapped {
        /// The budget.
        max_cost_per_hour: f64,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Steady => f.write_str("steady"),
            Reason::AboveTarget { metric } => write!(f, "{metric} above target"),
            Reason::BelowTarget => f.write_str("all metrics below target"),
            Reason::Cooldown { remaining } => write!(f, "cooldown, {remaining:?} left"),
            Reason::Stabilized { direction } => write!(f, "scale {direction} stabilized"),
            Reason::RateLimited { direction } => write!(f, "scale {direction} rate limited"),
            Reason::Clamped { bound: Bound::Min } => f.write_str("held at min_replicas"),
            Reason::Clamped { bound: Bound::Max } => f.write_str("held at max_replicas"),
            Reason::DirectionDisabled { direction } => write!(f, "scale {direction} disabled"),
            Reason::ScalingDisabled => f.write_str("scaling disabled (zero replicas)"),
            Reason::MetricsMissing { missing, of } => write!(f, "{missing} of {of} metrics missing"),
            Reason::Predicted { forecast, confidence } => {
                write!(f, "forecast demand {forecast:.1} (confidence {confidence:.2})")
            }
            Reason::Scheduled { window, min_replicas } => write!(f, "window {window:?} holds {min_replicas} replicas"),
            Reason::CostCapped { max_cost_per_hour } => write!(f, "cost capped at {max_cost_per_hour}/h"),
        }
    }
}

/// An engine's answer: how many replicas, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Replicas to run.
    pub replicas: u32,
    /// The deciding constraint.
    pub reason: Reason,
    /// The same for a person, with the numbers.
    pub message: String,
    /// What `replicas` cost per hour, when a [`CostCap`](crate::CostCap) knows the unit cost.
    #[serde(default)]
    pub cost_per_hour: Option<f64>,
}

impl Recommendation {
    /// A recommendation of `replicas` for `reason`, with `message` as its text.
    pub fn new(replicas: u32, reason: Reason, message: impl Into<String>) -> Self {
        Recommendation { replicas, reason, message: message.into(), cost_per_hour: None }
    }
}

impl fmt::Display for Recommendation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} replicas: {}", self.replicas, self.message)
    }
}
