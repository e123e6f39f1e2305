//! Why a stream source or sink could not be set up.

use thiserror::Error;

/// A stream source or sink refused to start.
///
/// Redis failures while running are not errors here: the source retries them with
/// backoff (and counts them in [`SourceStats::errors`](super::SourceStats::errors)); the
/// sink returns them as [`SinkError`](crate::SinkError) for the processor to retry.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamError {
    /// A configuration value cannot work.
    #[error("stream config: `{field}` {reason}")]
    Config {
        /// The offending field, e.g. `visibility_timeout`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The source was started outside a tokio runtime.
    #[error("a Redis stream source must be started inside a tokio runtime")]
    NoRuntime,
}

impl StreamError {
    pub(crate) fn config(field: &'static str, reason: &str) -> Self {
        StreamError::Config { field, reason: reason.to_owned() }
    }
}
