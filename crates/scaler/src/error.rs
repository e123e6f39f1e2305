//! What can go wrong: a refused configuration, a metric source that could not be read, an
//! actuator that could not apply a decision.
//!
//! Engines themselves never fail: a metric value that is not a finite, non-negative number is
//! treated as missing (see [`Sample`](crate::Sample)), and each engine documents what it does
//! when metrics are missing.

use thiserror::Error;

/// A configuration value is out of range; `field` names it.
///
/// ```
/// use harvester_scaler::{HpaConfig, MetricSpec};
///
/// let config = HpaConfig { min_replicas: 5, max_replicas: 2, ..HpaConfig::new([MetricSpec::utilization("cpu", 70)]) };
/// let err = config.validate().unwrap_err();
/// assert_eq!(err.field, "hpa.min_replicas");
/// assert_eq!(err.to_string(), "invalid config hpa.min_replicas: 5 is above max_replicas 2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid config {field}: {reason}")]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `hpa.behavior.scale_up.policies[1].period`.
    pub field: String,
    /// What is wrong and what is allowed.
    pub reason: String,
}

impl ConfigError {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError { field: field.into(), reason: reason.into() }
    }
}

/// A [`MetricSource`](crate::MetricSource) could not produce a sample; the driver records it
/// and skips the round (no scaling without metrics).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("metric source {source_name}: {reason}")]
pub struct SourceError {
    /// The source, e.g. the stage it reads.
    pub source_name: String,
    /// What failed.
    pub reason: String,
}

impl SourceError {
    /// An error of source `source_name`.
    pub fn new(source_name: impl Into<String>, reason: impl Into<String>) -> Self {
        SourceError { source_name: source_name.into(), reason: reason.into() }
    }
}

/// An [`Actuator`](crate::Actuator) could not apply a replica count; the driver records it and
/// tries again at the next round.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("actuator {target}: {reason}")]
pub struct ActuatorError {
    /// What the actuator drives, e.g. `concurrency` or a stage name.
    pub target: String,
    /// What failed.
    pub reason: String,
}

impl ActuatorError {
    /// An error of the actuator driving `target`.
    pub fn new(target: impl Into<String>, reason: impl Into<String>) -> Self {
        ActuatorError { target: target.into(), reason: reason.into() }
    }
}
