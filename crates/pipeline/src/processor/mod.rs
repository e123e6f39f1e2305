//! The staged stream processor: records of one type pass named stages in order, each run by
//! a pool of workers, through bounded queues, into a batching [`Sink`]; failures end in a
//! dead-letter sink, and shutdown accounts for every record.
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use harvester_pipeline::processor::{ErrorPolicy, Outcome, Stage, StreamProcessor};
//! use harvester_pipeline::{Sink, SinkError};
//!
//! struct Print;
//! #[async_trait]
//! impl Sink<u32> for Print {
//!     fn name(&self) -> &str { "print" }
//!     async fn write(&self, batch: &[u32]) -> Result<(), SinkError> { println!("{batch:?}"); Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let processor = StreamProcessor::builder()
//!     .stage(Stage::new("validate", |n: u32| async move { if n % 2 == 0 { Outcome::Keep(n) } else { Outcome::Drop } }).workers(2))
//!     .stage(
//!         Stage::new("double", |n: u32| async move { Outcome::Keep(n * 2) })
//!             .timeout(Duration::from_secs(1))
//!             .on_error(ErrorPolicy::Retry { max_attempts: 3, backoff: Duration::from_millis(10) }),
//!     )
//!     .queue_size(1_000)
//!     .sink(Print)
//!     .build()?;
//! let sender = processor.sender();
//! for n in 0..10 {
//!     sender.send(n).await?;
//! }
//! let report = processor.shutdown(Duration::from_secs(5)).await;
//! assert_eq!((report.received, report.output, report.dropped), (10, 5, 5));
//! # Ok(())
//! # }
//! ```
//!
//! Records must be `Send + Sync + 'static` (the sink borrows a batch across an await).
//! `T` needs `Clone` only for stages with a [`Stage::timeout`]: a handler cancelled by its
//! timeout cannot hand the record back, so it is copied before each timed attempt. Retries
//! without a timeout use the record returned in [`Outcome::Error`].

mod builder;
mod metrics;
mod output;
mod report;
mod sender;
mod shutdown;
mod stage;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::{Stream, StreamExt};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use builder::{ConfigError, StreamProcessorBuilder};
pub use metrics::{ProcessorMetrics, StageSnapshot};
pub use output::SinkRetry;
pub use report::Report;
pub use sender::{SendError, Sender};
pub use stage::{ErrorPolicy, Outcome, Stage};

use self::metrics::{StageMetrics, TotalCounters};
use self::stage::{StageRuntime, WorkerOutputs};
use crate::sink::{DeadLetter, Sink};

/// What [`StreamProcessor::feed`] does with a record when the first queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait for room (backpressure on the stream).
    #[default]
    Block,
    /// Drop the new record and count it as rejected.
    DropNewest,
}

/// Why a run-time change was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProcessorError {
    /// No stage has that name.
    #[error("no stage named {0:?}")]
    UnknownStage(String),
    /// A stage needs at least one worker.
    #[error("stage {0:?}: workers must be at least 1")]
    ZeroWorkers(String),
}

fn lock<G>(mutex: &Mutex<G>) -> MutexGuard<'_, G> {
    // The guarded values are plain handles; a panic elsewhere cannot leave them half-updated.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One stage as the processor runs it.
struct StageSlot<T> {
    runtime: Arc<StageRuntime<T>>,
    target: Arc<AtomicUsize>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Observes the stage's queue depth without keeping the queue open.
    queue: mpsc::WeakSender<T>,
    /// Templates handed to new workers; dropped at shutdown so the next queue can close.
    next: Mutex<Option<mpsc::Sender<T>>>,
    dead_letters: Mutex<Option<mpsc::Sender<DeadLetter<T>>>>,
}

/// A running staged stream processor. See the [module documentation](self).
///
/// Dropping it aborts every task at once (records in flight are lost); call
/// [`shutdown`](Self::shutdown) to drain.
pub struct StreamProcessor<T: Send + Sync + 'static> {
    stages: Vec<StageSlot<T>>,
    input: Arc<Mutex<Option<mpsc::Sender<T>>>>,
    totals: Arc<TotalCounters>,
    sink_task: Mutex<Option<JoinHandle<()>>>,
    dead_letter_task: Mutex<Option<JoinHandle<()>>>,
    feeds: Mutex<Vec<JoinHandle<()>>>,
    overflow: Overflow,
    started: Instant,
}

impl<T: Send + Sync + 'static> StreamProcessor<T> {
    /// Starts a builder.
    pub fn builder() -> StreamProcessorBuilder<T> {
        StreamProcessorBuilder::default()
    }

    fn start(config: StreamProcessorBuilder<T>, sink: Arc<dyn Sink<T>>) -> Self {
        let totals = Arc::new(TotalCounters::default());
        let (dl_tx, dl_rx) = mpsc::channel(config.queue_size);
        let dead_letter_task = tokio::spawn(output::run_dead_letters(
            config.dead_letter,
            dl_rx,
            config.batch_size,
            config.sink_retry,
            totals.clone(),
        ));
        let (out_tx, out_rx) = mpsc::channel(config.queue_size);
        let sink_task = tokio::spawn(output::run_sink(
            sink,
            out_rx,
            dl_tx.clone(),
            config.batch_size,
            config.sink_retry,
            totals.clone(),
        ));
        // Built from the last stage back, so each stage knows the queue after it.
        let mut next = out_tx;
        let mut stages = Vec::with_capacity(config.stages.len());
        for stage in config.stages.into_iter().rev() {
            let (tx, rx) = mpsc::channel(config.queue_size);
            let runtime = Arc::new(StageRuntime {
                metrics: StageMetrics::new(&stage.name),
                name: stage.name,
                timeout: stage.timeout,
                backup: stage.backup,
                policy: stage.policy,
                handler: stage.handler,
                input: Arc::new(tokio::sync::Mutex::new(rx)),
            });
            let slot = StageSlot {
                runtime,
                target: Arc::new(AtomicUsize::new(0)),
                workers: Mutex::new(Vec::new()),
                queue: tx.downgrade(),
                next: Mutex::new(Some(next)),
                dead_letters: Mutex::new(Some(dl_tx.clone())),
            };
            slot.scale_to(stage.workers);
            stages.push(slot);
            next = tx;
        }
        stages.reverse();
        StreamProcessor {
            stages,
            input: Arc::new(Mutex::new(Some(next))),
            totals,
            sink_task: Mutex::new(Some(sink_task)),
            dead_letter_task: Mutex::new(Some(dead_letter_task)),
            feeds: Mutex::new(Vec::new()),
            overflow: config.overflow,
            started: Instant::now(),
        }
    }

    /// A cloneable handle that puts records into the first stage's queue.
    pub fn sender(&self) -> Sender<T> {
        Sender::new(self.input.clone(), self.totals.clone())
    }

    /// Spawns a task that sends every item of `stream`, waiting or dropping when the first queue
    /// is full as [`Overflow`] says. The task stops when the stream ends or at shutdown.
    pub fn feed<S>(&self, stream: S)
    where
        S: Stream<Item = T> + Send + 'static,
    {
        let sender = self.sender();
        let overflow = self.overflow;
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(record) = stream.next().await {
                let sent = match overflow {
                    Overflow::Block => sender.send(record).await,
                    Overflow::DropNewest => sender.try_send(record),
                };
                if let Err(SendError::Closed(_)) = sent {
                    break;
                }
            }
        });
        let mut feeds = lock(&self.feeds);
        feeds.retain(|feed| !feed.is_finished());
        feeds.push(task);
    }

    /// Sends every item of `stream` (waiting for room), then shuts down within `deadline`.
    pub async fn run_stream<S>(self, stream: S, deadline: std::time::Duration) -> Report
    where
        S: Stream<Item = T> + Send,
    {
        let sender = self.sender();
        let mut stream = std::pin::pin!(stream);
        while let Some(record) = stream.next().await {
            if sender.send(record).await.is_err() {
                break;
            }
        }
        drop(sender);
        self.shutdown(deadline).await
    }

    /// Sets the number of workers of stage `stage`: new workers start at once, surplus
    /// workers retire after the run of records they hold (none is lost).
    pub fn set_workers(&self, stage: &str, workers: usize) -> Result<(), ProcessorError> {
        let slot = self
            .stages
            .iter()
            .find(|slot| slot.runtime.name == stage)
            .ok_or_else(|| ProcessorError::UnknownStage(stage.to_owned()))?;
        if workers == 0 {
            return Err(ProcessorError::ZeroWorkers(stage.to_owned()));
        }
        slot.scale_to(workers);
        Ok(())
    }

    /// Counters of every stage and of the whole processor, now.
    pub fn metrics(&self) -> ProcessorMetrics {
        let uptime = self.started.elapsed();
        let stages: Vec<StageSnapshot> = self
            .stages
            .iter()
            .map(|slot| {
                let depth = slot.queue.upgrade().map_or(0, |tx| tx.max_capacity() - tx.capacity());
                slot.runtime.metrics.snapshot(&slot.runtime.name, depth, uptime)
            })
            .collect();
        let dropped = stages.iter().map(|s| s.dropped).sum();
        let stage_dead = stages.iter().map(|s| s.dead_lettered).sum::<u64>();
        ProcessorMetrics {
            received: self.totals.received.load(Relaxed),
            output: self.totals.output.load(Relaxed),
            dropped,
            dead_lettered: stage_dead + self.totals.sink_dead_lettered.load(Relaxed),
            rejected: self.totals.rejected.load(Relaxed),
            dead_letters_lost: self.totals.dead_letters_lost.load(Relaxed),
            stages,
        }
    }
}

impl<T: Send + Sync + 'static> StageSlot<T> {
    /// Sets the target and starts the missing workers; surplus workers retire on their own.
    fn scale_to(&self, target: usize) {
        let (Some(next), Some(dead_letters)) = (lock(&self.next).clone(), lock(&self.dead_letters).clone()) else {
            return;
        };
        // Held while counting and spawning, so two concurrent calls cannot both fill the gap.
        let mut workers = lock(&self.workers);
        self.target.store(target, Relaxed);
        let live = self.runtime.metrics.workers.load(Relaxed);
        let missing = target.saturating_sub(live);
        workers.retain(|worker| !worker.is_finished());
        self.runtime.metrics.add_workers(missing);
        for _ in 0..missing {
            let outputs = WorkerOutputs { next: next.clone(), dead_letters: dead_letters.clone() };
            workers.push(tokio::spawn(stage::run_worker(self.runtime.clone(), outputs, self.target.clone())));
        }
    }
}
