//! HPA configuration: bounds, metrics and their targets, tolerance, and the optional
//! behaviour (stabilisation windows and scaling policies), with Kubernetes' defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::sample::usable;

/// Largest milli-value accepted: integers up to 2^53 are exact in an `f64`, and sums of many
/// of them still fit an `i128`.
const MAX_MILLI: f64 = 9_007_199_254_740_992.0;
/// Kubernetes' limits on behaviour fields.
const MAX_WINDOW: Duration = Duration::from_secs(3_600);
const MAX_PERIOD: Duration = Duration::from_secs(1_800);
/// Kubernetes' replica counts are `int32`.
const MAX_REPLICAS: u32 = i32::MAX as u32;

/// A value in thousandths, rounded up, as Kubernetes reads quantities (`MilliValue`); `None`
/// for a value that is not a finite, non-negative number or is too large.
pub(crate) fn milli(value: f64) -> Option<i64> {
    if !usable(value) {
        return None;
    }
    let scaled = (value * 1_000.0).ceil();
    (scaled <= MAX_MILLI).then_some(scaled as i64)
}

/// What a metric is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricTarget {
    /// Per-replica readings against their requests: utilisation = Σ usage ÷ Σ requests, in
    /// whole percent (Kubernetes truncates), compared with this percentage. Needs a
    /// [`Reading::Pods`](crate::Reading::Pods) with requests.
    Utilization(u32),
    /// A whole-target reading (Kubernetes' object or external metric) compared with this value;
    /// desired = ⌈ratio × ready replicas⌉.
    Value(f64),
    /// This much per replica: per-replica readings are averaged (Kubernetes' pods metric), a
    /// whole-target reading is divided by the replicas running (object metric with an
    /// average-value target); desired = ⌈total ÷ target⌉. Only the whole-target reading can
    /// scale a target up from zero replicas: at zero there is no replica to report a value.
    AverageValue(f64),
}

/// A metric the HPA scales on: a reading's name and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// The reading's name in a [`Sample`](crate::Sample).
    pub name: String,
    /// Its target.
    pub target: MetricTarget,
}

impl MetricSpec {
    /// `name` at `percent` of the replicas' requests.
    pub fn utilization(name: impl Into<String>, percent: u32) -> Self {
        MetricSpec { name: name.into(), target: MetricTarget::Utilization(percent) }
    }

    /// `name`, a whole-target reading, at `value`.
    pub fn value(name: impl Into<String>, value: f64) -> Self {
        MetricSpec { name: name.into(), target: MetricTarget::Value(value) }
    }

    /// `name` at `value` per replica.
    pub fn average_value(name: impl Into<String>, value: f64) -> Self {
        MetricSpec { name: name.into(), target: MetricTarget::AverageValue(value) }
    }

    /// Whether it can read a whole-target reading, the only kind a target at zero replicas
    /// still has (Kubernetes: an object or external metric).
    fn reads_whole_target(&self) -> bool {
        matches!(self.target, MetricTarget::Value(_) | MetricTarget::AverageValue(_))
    }

    fn validate(&self, index: usize) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new(format!("hpa.metrics[{index}].name"), "must not be empty"));
        }
        let field = || format!("hpa.metrics[{index}].target");
        match self.target {
            MetricTarget::Utilization(0) => Err(ConfigError::new(field(), "utilization must be at least 1 %")),
            MetricTarget::Utilization(_) => Ok(()),
            MetricTarget::Value(v) | MetricTarget::AverageValue(v) => match milli(v) {
                Some(m) if m > 0 => Ok(()),
                _ => Err(ConfigError::new(field(), format!("{v} must be a positive, finite number"))),
            },
        }
    }
}

/// How far the usage ratio (current ÷ target) may stray from 1 before replicas change:
/// nothing happens while `1 - scale_down ≤ ratio ≤ 1 + scale_up` (both bounds included, as in
/// Kubernetes). Default 0.1 both ways, the controller's `--horizontal-pod-autoscaler-tolerance`;
/// separate values are Kubernetes 1.33's `behavior.scaleUp.tolerance` /
/// `behavior.scaleDown.tolerance`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tolerance {
    /// Above 1 + this, scale up.
    pub scale_up: f64,
    /// Below 1 - this, scale down.
    pub scale_down: f64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { scale_up: 0.1, scale_down: 0.1 }
    }
}

impl Tolerance {
    /// The same tolerance both ways.
    pub fn both(tolerance: f64) -> Self {
        Tolerance { scale_up: tolerance, scale_down: tolerance }
    }

    /// Whether `ratio` is close enough to 1 to change nothing.
    pub fn contains(&self, ratio: f64) -> bool {
        (1.0 - self.scale_down) <= ratio && ratio <= (1.0 + self.scale_up)
    }
}

/// A scaling policy's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// At most `value` replicas added (or removed) per period.
    Pods,
    /// At most `value` percent of the replicas at the period's start added (rounded up) or
    /// removed (rounded down) per period.
    Percent,
}

/// One rate limit: a change of `value` pods or percent per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalingPolicy {
    /// Pods or percent.
    pub kind: PolicyKind,
    /// How many; at least 1.
    pub value: u32,
    /// Over how long (Kubernetes: 1 s to 30 min).
    #[serde(with = "humantime_serde")]
    pub period: Duration,
}

impl ScalingPolicy {
    /// `pods` replicas per `period`.
    pub fn pods(pods: u32, period: Duration) -> Self {
        ScalingPolicy { kind: PolicyKind::Pods, value: pods, period }
    }

    /// `percent` % of the replicas per `period`.
    pub fn percent(percent: u32, period: Duration) -> Self {
        ScalingPolicy { kind: PolicyKind::Percent, value: percent, period }
    }
}

/// Which policy wins when several apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelectPolicy {
    /// The policy allowing the largest change.
    #[default]
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No change this way at all.
    Disabled,
}

/// The rules of one direction; a field left `None` takes Kubernetes' default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalingRules {
    /// How far back recommendations are considered (up to 1 h). Default: 0 up, the HPA's
    /// `downscale_stabilization` (300 s) down.
    #[serde(with = "humantime_serde::option")]
    pub stabilization_window: Option<Duration>,
    /// Which policy wins. Default `Max`.
    pub select_policy: SelectPolicy,
    /// The rate limits. Default: up, 4 pods or 100 % per 15 s; down, 100 % per 15 s. When set,
    /// at least one.
    pub policies: Option<Vec<ScalingPolicy>>,
}

impl ScalingRules {
    /// Default rules with `select_policy`.
    pub fn select(select_policy: SelectPolicy) -> Self {
        ScalingRules { select_policy, ..ScalingRules::default() }
    }

    /// Sets the stabilisation window.
    pub fn with_window(mut self, window: Duration) -> Self {
        self.stabilization_window = Some(window);
        self
    }

    /// Sets the policies.
    pub fn with_policies(mut self, policies: impl IntoIterator<Item = ScalingPolicy>) -> Self {
        self.policies = Some(policies.into_iter().collect());
        self
    }

    fn validate(&self, direction: &str) -> Result<(), ConfigError> {
        if let Some(window) = self.stabilization_window
            && window > MAX_WINDOW
        {
            return Err(ConfigError::new(
                format!("hpa.behavior.{direction}.stabilization_window"),
                format!("{window:?} is longer than an hour"),
            ));
        }
        let Some(policies) = &self.policies else { return Ok(()) };
        if policies.is_empty() {
            return Err(ConfigError::new(format!("hpa.behavior.{direction}.policies"), "give at least one policy"));
        }
        for (index, policy) in policies.iter().enumerate() {
            if policy.value == 0 {
                return Err(ConfigError::new(
                    format!("hpa.behavior.{direction}.policies[{index}].value"),
                    "must be at least 1",
                ));
            }
            if policy.period.is_zero() || policy.period > MAX_PERIOD {
                return Err(ConfigError::new(
                    format!("hpa.behavior.{direction}.policies[{index}].period"),
                    format!("{:?} is not within 1 s..=30 min", policy.period),
                ));
            }
        }
        Ok(())
    }
}

/// Kubernetes' `behavior`: stabilisation and rate limits per direction. Its mere presence
/// changes the algorithm: without it the HPA uses the 5-minute downscale stabilisation and the
/// `max(2 × current, 4)` scale-up limit; with it, windows and policies (defaults filled in).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Scale-up rules; `None`: all defaults.
    pub scale_up: Option<ScalingRules>,
    /// Scale-down rules; `None`: all defaults.
    pub scale_down: Option<ScalingRules>,
}

impl Behavior {
    /// Sets the scale-up rules.
    pub fn with_scale_up(mut self, rules: ScalingRules) -> Self {
        self.scale_up = Some(rules);
        self
    }

    /// Sets the scale-down rules.
    pub fn with_scale_down(mut self, rules: ScalingRules) -> Self {
        self.scale_down = Some(rules);
        self
    }
}

/// The rules of one direction with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rules {
    pub(crate) window: Duration,
    pub(crate) select: SelectPolicy,
    pub(crate) policies: Vec<ScalingPolicy>,
}

impl Rules {
    fn resolve(rules: Option<&ScalingRules>, default_window: Duration, default_policies: &[ScalingPolicy]) -> Rules {
        let rules = rules.cloned().unwrap_or_default();
        Rules {
            window: rules.stabilization_window.unwrap_or(default_window),
            select: rules.select_policy,
            policies: rules.policies.unwrap_or_else(|| default_policies.to_vec()),
        }
    }

    pub(crate) fn longest_period(&self) -> Duration {
        self.policies.iter().map(|p| p.period).max().unwrap_or_default()
    }
}

/// The HPA's period for its default policies (`scaleUpLimitPeriodSeconds`).
const POLICY_PERIOD: Duration = Duration::from_secs(15);

impl Behavior {
    /// (scale-up, scale-down) rules with Kubernetes' defaults filled in.
    pub(crate) fn resolve(&self, downscale_stabilization: Duration) -> (Rules, Rules) {
        let up = Rules::resolve(
            self.scale_up.as_ref(),
            Duration::ZERO,
            &[ScalingPolicy::pods(4, POLICY_PERIOD), ScalingPolicy::percent(100, POLICY_PERIOD)],
        );
        let down = Rules::resolve(
            self.scale_down.as_ref(),
            downscale_stabilization,
            &[ScalingPolicy::percent(100, POLICY_PERIOD)],
        );
        (up, down)
    }
}

/// Configuration of an [`Hpa`](crate::Hpa).
///
/// Defaults are Kubernetes': 1 to 10 replicas (10 is ours: Kubernetes requires a maximum),
/// tolerance 0.1, downscale stabilisation 300 s, no behaviour. Metrics have no default: give
/// at least one.
///
/// ```
/// use std::time::Duration;
/// use harvester_scaler::{Behavior, HpaConfig, MetricSpec, ScalingPolicy, ScalingRules, SelectPolicy};
///
/// let config = HpaConfig {
///     max_replicas: 50,
///     behavior: Some(Behavior::default().with_scale_down(
///         ScalingRules::select(SelectPolicy::Min).with_policies([ScalingPolicy::pods(1, Duration::from_secs(60))]),
///     )),
///     ..HpaConfig::new([MetricSpec::utilization("cpu", 70), MetricSpec::average_value("queue_depth", 100.0)])
/// };
/// config.validate()?;
/// # Ok::<(), harvester_scaler::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HpaConfig {
    /// Fewest replicas (Kubernetes' `minReplicas`, default 1). With 0, a target at zero
    /// replicas is scaled from zero by whole-target readings (Kubernetes' alpha
    /// `HPAScaleToZero`): a `Value` metric, or an `AverageValue` metric given a whole-target
    /// [`Reading::Value`](crate::Reading::Value) (per-replica readings are empty at zero). As
    /// Kubernetes refuses `minReplicas: 0` without an object or external metric, 0 is refused
    /// when every metric is a `Utilization`. With more than 0, a target at zero is left alone.
    pub min_replicas: u32,
    /// Most replicas; at least `min_replicas` and 1.
    pub max_replicas: u32,
    /// The metrics; the largest proposal wins.
    pub metrics: Vec<MetricSpec>,
    /// The tolerance band around each target.
    pub tolerance: Tolerance,
    /// Without a behaviour: how long a scale-down waits (the highest recommendation of this
    /// window wins). With one: the default scale-down stabilisation window. Kubernetes'
    /// `--horizontal-pod-autoscaler-downscale-stabilization`, 300 s; at most an hour, as
    /// Kubernetes allows (the engine keeps the window's recommendations).
    #[serde(with = "humantime_serde")]
    pub downscale_stabilization: Duration,
    /// Stabilisation windows and scaling policies; `None`: the behaviour-less algorithm.
    pub behavior: Option<Behavior>,
}

impl Default for HpaConfig {
    fn default() -> Self {
        HpaConfig {
            min_replicas: 1,
            max_replicas: 10,
            metrics: Vec::new(),
            tolerance: Tolerance::default(),
            downscale_stabilization: Duration::from_secs(300),
            behavior: None,
        }
    }
}

impl HpaConfig {
    /// Defaults with `metrics`.
    pub fn new(metrics: impl IntoIterator<Item = MetricSpec>) -> Self {
        HpaConfig { metrics: metrics.into_iter().collect(), ..HpaConfig::default() }
    }

    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_replicas == 0 || self.max_replicas > MAX_REPLICAS {
            return Err(ConfigError::new("hpa.max_replicas", format!("must be within 1..={MAX_REPLICAS}")));
        }
        if self.downscale_stabilization > MAX_WINDOW {
            return Err(ConfigError::new(
                "hpa.downscale_stabilization",
                format!("{:?} is longer than an hour (Kubernetes' own limit)", self.downscale_stabilization),
            ));
        }
        if self.min_replicas > self.max_replicas {
            return Err(ConfigError::new(
                "hpa.min_replicas",
                format!("{} is above max_replicas {}", self.min_replicas, self.max_replicas),
            ));
        }
        if self.metrics.is_empty() {
            return Err(ConfigError::new("hpa.metrics", "give at least one metric"));
        }
        for (index, metric) in self.metrics.iter().enumerate() {
            metric.validate(index)?;
        }
        if self.min_replicas == 0 && !self.metrics.iter().any(MetricSpec::reads_whole_target) {
            return Err(ConfigError::new(
                "hpa.min_replicas",
                "0 needs a whole-target metric (a `value` target, or an `average_value` target read from a \
                 whole-target reading): per-replica metrics report nothing at zero replicas, so the target \
                 would never scale back up",
            ));
        }
        for (field, value) in [
            ("hpa.tolerance.scale_up", self.tolerance.scale_up),
            ("hpa.tolerance.scale_down", self.tolerance.scale_down),
        ] {
            if !usable(value) {
                return Err(ConfigError::new(field, format!("{value} is not a finite, non-negative number")));
            }
        }
        if let Some(behavior) = &self.behavior {
            if let Some(rules) = &behavior.scale_up {
                rules.validate("scale_up")?;
            }
            if let Some(rules) = &behavior.scale_down {
                rules.validate("scale_down")?;
            }
        }
        Ok(())
    }
}
