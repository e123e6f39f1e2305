//! What can go wrong: a refused configuration, a metric source that could not be read, an
//! actuator that could not apply a decision.
//!
//! Engines themselves never fail: a metric value that is not a finite, non-negative number is
//! treated as missing (see [`Sample`](crate::Sample)), and each engine documents what it does
//! when metrics are missing.

use thiserror::Error;

pub use harvester_core::ConfigError;

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
