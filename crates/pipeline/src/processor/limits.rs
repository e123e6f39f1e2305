//! The ranges a processor's settings must be in, and [`BuildError`], which names the first
//! setting out of its range.

use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// The most workers one stage may run.
pub const MAX_WORKERS: usize = 100_000;
/// The largest queue in front of a stage or a sink.
pub const MAX_QUEUE_SIZE: usize = 1 << 24;
/// The largest batch written to a sink at once (a batch's buffer is allocated up front).
pub const MAX_BATCH_SIZE: usize = 1_000_000;
/// The largest ordered window.
pub const MAX_ORDERED_WINDOW: usize = 1 << 30;
/// The most attempts of a stage's or a sink's retry policy.
pub const MAX_ATTEMPTS: u32 = 1_000;
/// The longest timeout or retry backoff.
pub const LONGEST_WAIT: Duration = Duration::from_secs(86_400);

/// Why [`StreamProcessorBuilder::build`](super::StreamProcessorBuilder::build) refused to build: no stage or sink, a stage name
/// used twice, a number out of range, no runtime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No stage was added.
    #[error("stages: add at least one stage")]
    NoStages,
    /// Two stages share a name (names address stages in `set_workers` and metrics).
    #[error("stage {stage:?}: name used twice")]
    DuplicateStage {
        /// The repeated name.
        stage: String,
    },
    /// A number outside its documented range: `queue_size`, `batch_size`,
    /// `ordered_window`, `sink_retry.*`, or a stage's `workers`, `timeout` or retry policy.
    #[error("{field}: {value} is out of range ({allowed})")]
    OutOfRange {
        /// The setting, e.g. `batch_size` or `stage "fetch": workers`.
        field: String,
        /// The value given.
        value: String,
        /// The range it must be in.
        allowed: &'static str,
    },
    /// No sink was given.
    #[error("sink: a sink is required")]
    NoSink,
    /// `build` was called outside a tokio runtime, so there is nowhere to run the workers.
    #[error("build must be called inside a tokio runtime")]
    NoRuntime,
}

impl BuildError {
    /// The setting that was refused, when the error is about one number.
    pub fn field(&self) -> Option<&str> {
        match self {
            BuildError::OutOfRange { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// Refuses `value` unless `ok`, naming `field`.
pub(crate) fn check<V: fmt::Debug>(
    ok: bool,
    field: impl Into<String>,
    value: V,
    allowed: &'static str,
) -> Result<(), BuildError> {
    if ok { Ok(()) } else { Err(BuildError::OutOfRange { field: field.into(), value: format!("{value:?}"), allowed }) }
}
