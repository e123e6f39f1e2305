//! The end of the pipeline: the task that writes finished records to the sink in batches,
//! and the task that writes dead letters.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::metrics::TotalCounters;
use super::order::Reorder;
use super::queue::QueueReceiver;
use crate::sink::{DeadLetter, Sink, flush_guarded, write_guarded};
use crate::sink_stats::WriteStats;

/// How often, and how patiently, a failing sink write is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkRetry {
    /// Writes in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Wait before the second write; doubled before each further one.
    pub base_delay: Duration,
}

impl Default for SinkRetry {
    fn default() -> Self {
        SinkRetry { max_attempts: 3, base_delay: Duration::from_millis(100) }
    }
}

/// Writes `batch` with retries; returns the last error's text and the attempts when all failed.
async fn write_with_retry<R: Send + Sync + 'static>(
    sink: &dyn Sink<R>,
    batch: &[R],
    retry: SinkRetry,
    stats: Option<&WriteStats>,
) -> Result<(), (String, u32)> {
    let mut attempt = 1;
    loop {
        let started = harvester_core::time::now();
        let written = write_guarded(sink, batch).await;
        if let Some(stats) = stats {
            match &written {
                Ok(()) => stats.written(batch.len(), harvester_core::time::since(started)),
                Err(_) => stats.failed_attempt(),
            }
        }
        match written {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= retry.max_attempts => return Err((error.to_string(), attempt)),
            Err(error) => {
                tracing::warn!(sink = sink.name(), attempt, %error, "sink write failed, retrying");
                tokio::time::sleep(retry.base_delay.saturating_mul(1u32 << (attempt - 1).min(16))).await;
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

/// The sink side of the processor: the output queue, and in ordered mode the reorder buffer
/// with the stages' gap reports.
pub(crate) struct SinkInput<T> {
    pub(crate) queue: QueueReceiver<T>,
    pub(crate) order: Option<(Reorder<T>, mpsc::UnboundedReceiver<u64>)>,
}

/// Drains the output queue into the sink (in input order in ordered mode); records of a batch
/// that cannot be written are dead-lettered.
pub(crate) async fn run_sink<T: Send + Sync + 'static>(
    sink: Arc<dyn Sink<T>>,
    input: SinkInput<T>,
    dead_letters: mpsc::Sender<DeadLetter<T>>,
    batch_size: usize,
    retry: SinkRetry,
    totals: Arc<TotalCounters>,
) {
    let writer = BatchWriter { sink: sink.as_ref(), dead_letters: &dead_letters, retry, totals: &totals };
    let mut run = Vec::with_capacity(batch_size);
    let mut batch = Vec::with_capacity(batch_size);
    let SinkInput { mut queue, order } = input;
    match order {
        None => {
            while queue.recv_run(&mut run, batch_size).await > 0 {
                batch.extend(run.drain(..).map(|entry| entry.record));
                // A run may end past `batch_size` (it stops after the chunk that reaches it).
                if writer.write_all(&mut batch, batch_size).await.is_err() {
                    return;
                }
            }
        }
        Some((mut reorder, mut gaps)) => {
            let mut open = true;
            while open {
                tokio::select! {
                    // Gaps first: they may unblock records already waiting in the buffer.
                    biased;
                    gap = gaps.recv() => match gap {
                        Some(seq) => reorder.skip(seq),
                        // Every stage is gone, so nothing more can arrive either.
                        None => open = false,
                    },
                    taken = queue.recv_run(&mut run, batch_size) => {
                        for entry in run.drain(..) {
                            reorder.insert(entry.seq, entry.record);
                        }
                        if taken == 0 {
                            // Closed: only gap reports may still be on their way.
                            while let Some(seq) = gaps.recv().await {
                                reorder.skip(seq);
                            }
                            open = false;
                        }
                    }
                }
                loop {
                    reorder.release(&mut batch, batch_size);
                    if batch.is_empty() {
                        break;
                    }
                    if writer.write(&mut batch).await.is_err() {
                        return;
                    }
                }
            }
            // Numbers whose senders were cancelled at shutdown never arrive: pass over them.
            while queue.recv_run(&mut run, usize::MAX).await > 0 {
                for entry in run.drain(..) {
                    reorder.insert(entry.seq, entry.record);
                }
            }
            reorder.release_all(&mut batch);
            if writer.write_all(&mut batch, batch_size).await.is_err() {
                return;
            }
        }
    }
    if let Err(error) = flush_guarded(sink.as_ref()).await {
        tracing::error!(sink = sink.name(), %error, "sink flush failed at shutdown");
    }
}

/// Writes batches to the sink, counting them, and dead-letters a batch the sink refuses.
struct BatchWriter<'a, T> {
    sink: &'a dyn Sink<T>,
    dead_letters: &'a mpsc::Sender<DeadLetter<T>>,
    retry: SinkRetry,
    totals: &'a TotalCounters,
}

impl<T: Send + Sync + 'static> BatchWriter<'_, T> {
    /// Writes and empties `records` in batches of at most `batch_size`.
    async fn write_all(&self, records: &mut Vec<T>, batch_size: usize) -> Result<(), ()> {
        if records.len() <= batch_size {
            // The usual case, kept apart so the buffer keeps its allocation.
            return if records.is_empty() { Ok(()) } else { self.write(records).await };
        }
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(batch_size));
            self.write(records).await?;
            *records = rest;
        }
        Ok(())
    }

    /// Writes and empties `batch`; fails only when the dead-letter queue is gone (abort).
    async fn write(&self, batch: &mut Vec<T>) -> Result<(), ()> {
        match write_with_retry(self.sink, batch, self.retry, Some(&self.totals.sink)).await {
            Ok(()) => {
                batch.clear();
                Ok(())
            }
            Err((error, attempts)) => {
                let sink = self.sink.name();
                tracing::error!(sink, %error, records = batch.len(), "sink write gave up, dead-lettering");
                for record in batch.drain(..) {
                    self.totals.sink.dead_lettered(1);
                    let letter = DeadLetter {
                        record,
                        stage: sink.to_owned(),
                        error: error.clone(),
                        attempts,
                        at: SystemTime::now(),
                    };
                    self.dead_letters.send(letter).await.map_err(|_| ())?;
                }
                Ok(())
            }
        }
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
                if let Err((error, _)) = write_with_retry(sink.as_ref(), &batch, retry, None).await {
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
        && let Err(error) = flush_guarded(sink.as_ref()).await
    {
        tracing::error!(sink = sink.name(), %error, "dead-letter sink flush failed at shutdown");
    }
}
