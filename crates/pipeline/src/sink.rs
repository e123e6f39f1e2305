//! Where records leave the pipeline: the [`Sink`] trait, and the dead-letter entry.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use async_trait::async_trait;
use futures::FutureExt;
use thiserror::Error;

/// Why a sink could not take a batch. The sink's own words; the pipeline retries a
/// failing write with backoff before it dead-letters the batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("sink {sink} failed: {message}")]
pub struct SinkError {
    /// The sink's name.
    pub sink: String,
    /// What went wrong.
    pub message: String,
}

impl SinkError {
    /// An error of sink `sink`.
    pub fn new(sink: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError { sink: sink.into(), message: message.into() }
    }
}

/// Takes records out of the pipeline, a batch at a time.
///
/// `write` must either store the whole batch or fail: on failure the pipeline keeps the
/// batch, retries, and dead-letters it only after the retries. `flush` makes written
/// records durable (fsync, a round trip); it is called on shutdown.
#[async_trait]
pub trait Sink<T: Send + 'static>: Send + Sync + 'static {
    /// A short name for errors, logs and metrics.
    fn name(&self) -> &str;

    /// Stores `batch` (never empty).
    async fn write(&self, batch: &[T]) -> Result<(), SinkError>;

    /// Makes everything written durable. Default: nothing to do.
    async fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A shared sink is a sink: hand the processor an `Arc` and keep a clone to read it (a
/// [`MemorySink`](crate::sinks::MemorySink) in a test, a sink with counters of its own).
#[async_trait]
impl<T: Send + Sync + 'static, S: Sink<T> + ?Sized> Sink<T> for std::sync::Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        (**self).write(batch).await
    }

    async fn flush(&self) -> Result<(), SinkError> {
        (**self).flush().await
    }
}

/// Writes `batch`, a panic in the sink becoming an error: a faulty sink costs its batch a
/// retry and then a dead letter, never the writer task and every record it holds.
pub(crate) fn write_guarded<'a, T: Send + 'static>(
    sink: &'a dyn Sink<T>,
    batch: &'a [T],
) -> impl Future<Output = Result<(), SinkError>> + Send + 'a {
    // Not an `async fn`: holding `batch` across an await would ask `T: Sync`; the sink's
    // own future is `Send` whatever `T`.
    guarded(sink.name(), "write", sink.write(batch))
}

/// Flushes `sink`, a panic becoming an error.
pub(crate) fn flush_guarded<T: Send + 'static>(
    sink: &dyn Sink<T>,
) -> impl Future<Output = Result<(), SinkError>> + Send + '_ {
    guarded(sink.name(), "flush", sink.flush())
}

async fn guarded(name: &str, what: &str, call: impl Future<Output = Result<(), SinkError>>) -> Result<(), SinkError> {
    match AssertUnwindSafe(call).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let message = harvester_core::panic_text(&*panic);
            Err(SinkError::new(name, format!("{what} panicked: {message}")))
        }
    }
}

/// A record that could not be processed: it goes to the dead-letter sink with why.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter<T> {
    /// The record as it was when it failed.
    pub record: T,
    /// The stage (or sink) it failed in.
    pub stage: String,
    /// The last error, as text.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was given up.
    pub at: SystemTime,
}
