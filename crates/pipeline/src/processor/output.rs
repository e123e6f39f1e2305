//! The end of the pipeline: the task that writes finished records to the sink in batches,
//! and the task that writes dead letters.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::metrics::TotalCounters;
use crate::sink::{DeadLetter, Sink};

/// How often, and how patiently, a failing sink write is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkRetry {
    /// Writes in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second write; doubled before each further one.
    pub backoff: Duration,
}

impl Default for SinkRetry {
    fn default() -> Self {
        SinkRetry { max_attempts: 3, backoff: Duration::from_millis(100) }
    }
}

/// Writes `batch` with retries; returns the last error's text and the attempts when all failed.
async fn write_with_retry<R: Send + Sync + 'static>(
    sink: &dyn Sink<R>,
    batch: &[R],
    retry: SinkRetry,
) -> Result<(), (String, u32)> {
    let mut attempt = 1;
    loop {
        match sink.write(batch).await {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= retry.max_attempts => return Err((error.to_string(), attempt)),
            Err(error) => {
                tracing::warn!(sink = sink.name(), attempt, %error, "sink write failed, retrying");
                tokio::time::sleep(retry.backoff.saturating_mul(1u32 << (attempt - 1).min(16))).await;
                attempt += 1;
            }
        }
    }
}

/// Fills `batch` with the next record and whatever else is ready, up to `max`; false when closed.
async fn next_batch<R>(input: &mut mpsc::Receiver<R>, batch: &mut Vec<R>, max: usize) -> bool {
    let Some(first) = input.recv().await else { return false };
    batch.push(first);
    while batch.len() < max {
        match input.try_recv() {
            Ok(record) => batch.push(record),
            Err(_) => break,
        }
    }
    true
}

/// Drains the output queue into the sink; records of a batch that cannot be written are dead-lettered.
pub(crate) async fn run_sink<T: Send + Sync + 'static>(
    sink: Arc<dyn Sink<T>>,
    mut input: mpsc::Receiver<T>,
    dead_letters: mpsc::Sender<DeadLetter<T>>,
    batch_size: usize,
    retry: SinkRetry,
    totals: Arc<TotalCounters>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    while next_batch(&mut input, &mut batch, batch_size).await {
        match write_with_retry(sink.as_ref(), &batch, retry).await {
            Ok(()) => {
                totals.output.fetch_add(batch.len() as u64, Relaxed);
                batch.clear();
            }
            Err((error, attempts)) => {
                tracing::error!(sink = sink.name(), %error, records = batch.len(), "sink write gave up, dead-lettering");
                for record in batch.drain(..) {
                    totals.sink_dead_lettered.fetch_add(1, Relaxed);
                    let letter = DeadLetter {
                        record,
                        stage: sink.name().to_owned(),
                        error: error.clone(),
                        attempts,
                        at: SystemTime::now(),
                    };
                    if dead_letters.send(letter).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
    if let Err(error) = sink.flush().await {
        tracing::error!(sink = sink.name(), %error, "sink flush failed at shutdown");
    }
}

/// Drains dead letters into the dead-letter sink, or logs them when there is none.
pub(crate) async fn run_dead_letters<T: Send + Sync + 'static>(
    sink: Option<Arc<dyn Sink<DeadLetter<T>>>>,
    mut input: mpsc::Receiver<DeadLetter<T>>,
    batch_size: usize,
    retry: SinkRetry,
    totals: Arc<TotalCounters>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    while next_batch(&mut input, &mut batch, batch_size).await {
        match &sink {
            Some(sink) => {
                if let Err((error, _)) = write_with_retry(sink.as_ref(), &batch, retry).await {
                    totals.dead_letters_lost.fetch_add(batch.len() as u64, Relaxed);
                    tracing::error!(sink = sink.name(), %error, records = batch.len(), "dead letters lost");
                }
            }
            None => {
                for letter in &batch {
                    tracing::warn!(stage = %letter.stage, error = %letter.error, attempts = letter.attempts, "dead letter (no dead-letter sink)");
                }
            }
        }
        batch.clear();
    }
    if let Some(sink) = &sink
        && let Err(error) = sink.flush().await
    {
        tracing::error!(sink = sink.name(), %error, "dead-letter sink flush failed at shutdown");
    }
}
