//! [`BatchSink`]: groups records into batches by count, bytes and age, writes them to an
//! inner [`Sink`] with retries, and dead-letters a batch only after the retries.
//!
//! A background task owns the batch being built; callers [`push`](BatchSink::push)
//! records through a bounded channel, so a slow sink slows the producers down instead of
//! growing memory. A batch is written when it reaches `max_records` or `max_bytes`, or
//! `max_wait` after its *first* record arrived, whichever comes first.
//! [`close`](BatchSink::close) writes the partial batch, flushes the inner sink and
//! reports what happened; dropping the `BatchSink` does the same in the background.
//!
//! ```
//! use harvester_pipeline::batch::{BatchConfig, BatchSink};
//! use harvester_pipeline::sinks::MemorySink;
//! use std::sync::Arc;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime").block_on(async {
//! let out = Arc::new(MemorySink::new("out"));
//! let batch = BatchSink::builder(out.clone(), BatchConfig::default()).spawn().expect("valid config");
//! batch.push(1u32).await.expect("running");
//! batch.push(2u32).await.expect("running");
//! let report = batch.close().await.expect("no panic");
//! assert_eq!(out.records(), vec![1, 2]);
//! assert_eq!(report.written, 2);
//! # });
//! ```

pub use harvester_core::ConfigError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::sink::{DeadLetter, Sink, SinkError, flush_guarded, write_guarded};
use crate::sink_stats::{SinkStats, WriteStats};

/// How records are grouped and how a failing write is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// A batch is written when it holds this many records. Default 1 000 (the seed and
    /// Vector agree).
    pub max_records: usize,
    /// A batch is written when its records' sizes add up to this many bytes; a record
    /// that would push a non-empty batch past it starts the next batch. Default 10 MiB.
    pub max_bytes: usize,
    /// A batch is written this long after its first record arrived. Default 1 s (Vector;
    /// the seed waited 30 s).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Records that may wait in the channel before `push` waits. Default 10 000 (the seed's
    /// queue size).
    pub channel_capacity: usize,
    /// Retries of a failing write.
    pub retry: RetryConfig,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_records: 1_000,
            max_bytes: 10 * 1024 * 1024,
            max_wait: Duration::from_secs(1),
            channel_capacity: 10_000,
            retry: RetryConfig::default(),
        }
    }
}

/// Exponential backoff between attempts to write one batch: `base_delay`, `2 × base_delay`, …
/// capped at `max_delay` (the field names are resilience's `RetryConfig`'s; the old names
/// `attempts`, `base`, `max` still load from config files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts in all, the first included (1 = no retry). Default 5.
    #[serde(alias = "attempts")]
    pub max_attempts: u32,
    /// Wait after the first failed attempt. Default 100 ms.
    #[serde(with = "humantime_serde", alias = "base")]
    pub base_delay: Duration,
    /// Longest wait between attempts. Default 10 s.
    #[serde(with = "humantime_serde", alias = "max")]
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig { max_attempts: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(10) }
    }
}

impl RetryConfig {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }
}

impl BatchConfig {
    /// The most records a batch may be told to hold.
    pub const MAX_RECORDS: usize = 1_000_000;
    /// The largest byte size a batch may be told to reach (4 GiB).
    pub const MAX_BYTES: usize = 1 << 32;
    /// The longest a batch may be told to wait, and the longest retry wait.
    pub const LONGEST_WAIT: Duration = Duration::from_secs(86_400);
    /// The most records that may be told to wait in the channel.
    pub const MAX_CHANNEL_CAPACITY: usize = 1 << 24;
    /// The most attempts a write may be told to get.
    pub const MAX_ATTEMPTS: u32 = 1_000;

    /// Refuses values outside their ranges: `max_records` 1..=[`MAX_RECORDS`](Self::MAX_RECORDS),
    /// `max_bytes` 1..=[`MAX_BYTES`](Self::MAX_BYTES), `max_wait` more than zero and at most
    /// [`LONGEST_WAIT`](Self::LONGEST_WAIT) (a day), `channel_capacity`
    /// 1..=[`MAX_CHANNEL_CAPACITY`](Self::MAX_CHANNEL_CAPACITY), `retry.max_attempts`
    /// 1..=[`MAX_ATTEMPTS`](Self::MAX_ATTEMPTS), `retry.base_delay` ≤ `retry.max_delay` ≤ a day.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: &str| Err(ConfigError::new(field, reason));
        if !(1..=Self::MAX_RECORDS).contains(&self.max_records) {
            return invalid("max_records", "must be in 1..=1000000");
        }
        if !(1..=Self::MAX_BYTES).contains(&self.max_bytes) {
            return invalid("max_bytes", "must be in 1..=4294967296");
        }
        if self.max_wait.is_zero() || self.max_wait > Self::LONGEST_WAIT {
            return invalid("max_wait", "must be longer than zero and at most a day");
        }
        if !(1..=Self::MAX_CHANNEL_CAPACITY).contains(&self.channel_capacity) {
            return invalid("channel_capacity", "must be in 1..=16777216");
        }
        if !(1..=Self::MAX_ATTEMPTS).contains(&self.retry.max_attempts) {
            return invalid("retry.max_attempts", "must be in 1..=1000 (the first attempt included)");
        }
        if self.retry.max_delay > Self::LONGEST_WAIT {
            return invalid("retry.max_delay", "must be at most a day");
        }
        if self.retry.base_delay > self.retry.max_delay {
            return invalid("retry.base_delay", "must not exceed retry.max_delay");
        }
        Ok(())
    }
}

/// What a closed [`BatchSink`] did (the same counters [`BatchSink::stats`] reads live).
pub type BatchReport = SinkStats;

/// Why a [`BatchSink`] could not take a record or finish.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BatchError<T> {
    /// The background task is gone (it panicked); the record is handed back.
    #[error("batch sink {sink} is no longer running")]
    Closed {
        /// The sink's name.
        sink: String,
        /// The record that was not taken.
        record: T,
    },
    /// The background task panicked; what it had buffered is lost.
    #[error("batch sink {sink} task failed: {message}")]
    TaskFailed {
        /// The sink's name.
        sink: String,
        /// The join error.
        message: String,
    },
}

type SizeFn<T> = Arc<dyn Fn(&T) -> usize + Send + Sync>;

enum Command<T> {
    Record(T),
    Flush(oneshot::Sender<Result<(), SinkError>>),
}

/// Sets up a [`BatchSink`]: [`BatchSink::builder`] or [`BatchSink::builder_with_size`].
#[must_use = "a builder does nothing until it is built"]
pub struct BatchSinkBuilder<T: Send + 'static> {
    inner: Arc<dyn Sink<T>>,
    config: BatchConfig,
    size: SizeFn<T>,
    dead_letter: Option<Arc<dyn Sink<DeadLetter<T>>>>,
}

impl<T: Send + 'static> fmt::Debug for BatchSinkBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchSinkBuilder").field("inner", &self.inner.name()).field("config", &self.config).finish()
    }
}

impl<T: Send + 'static> BatchSinkBuilder<T> {
    /// Measures records with `size` (bytes) instead of the default.
    pub fn size_with(mut self, size: impl Fn(&T) -> usize + Send + Sync + 'static) -> Self {
        self.size = Arc::new(size);
        self
    }

    /// Where a batch goes, one [`DeadLetter`] per record, when every attempt failed.
    /// Without one such records are logged and counted as lost.
    pub fn dead_letter(mut self, sink: Arc<dyn Sink<DeadLetter<T>>>) -> Self {
        self.dead_letter = Some(sink);
        self
    }

    /// Validates the configuration and starts the background task (needs a tokio
    /// runtime with time enabled).
    pub fn spawn(self) -> Result<BatchSink<T>, ConfigError> {
        self.config.validate()?;
        let (tx, rx) = mpsc::channel(self.config.channel_capacity);
        let name = self.inner.name().to_owned();
        let stats = Arc::new(WriteStats::new(&name, "batch_sink"));
        let worker = Worker {
            inner: self.inner,
            dead_letter: self.dead_letter,
            size: self.size,
            config: self.config,
            batch: Vec::new(),
            bytes: 0,
            stats: stats.clone(),
        };
        let task = tokio::spawn(worker.run(rx));
        Ok(BatchSink { name, tx: Some(tx), task: Some(task), stats })
    }
}

/// Batches records for an inner [`Sink`]; see the [module docs](self).
pub struct BatchSink<T: Send + 'static> {
    name: String,
    tx: Option<mpsc::Sender<Command<T>>>,
    task: Option<JoinHandle<BatchReport>>,
    stats: Arc<WriteStats>,
}

impl<T: Send + 'static> fmt::Debug for BatchSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchSink").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> BatchSink<T> {
    /// A builder measuring records by the length of their JSON.
    pub fn builder(inner: Arc<dyn Sink<T>>, config: BatchConfig) -> BatchSinkBuilder<T>
    where
        T: Serialize,
    {
        Self::builder_with_size(inner, config, json_len::<T>)
    }

    /// A builder measuring records with `size` (bytes), for records that are not
    /// `Serialize` or have a cheaper measure.
    pub fn builder_with_size(
        inner: Arc<dyn Sink<T>>,
        config: BatchConfig,
        size: impl Fn(&T) -> usize + Send + Sync + 'static,
    ) -> BatchSinkBuilder<T> {
        BatchSinkBuilder { inner, config, size: Arc::new(size), dead_letter: None }
    }

    /// Adds a record to the current batch; waits while the channel is full.
    pub async fn push(&self, record: T) -> Result<(), BatchError<T>> {
        let Some(tx) = &self.tx else {
            return Err(BatchError::Closed { sink: self.name.clone(), record });
        };
        tx.send(Command::Record(record)).await.map_err(|e| match e.0 {
            Command::Record(record) => BatchError::Closed { sink: self.name.clone(), record },
            Command::Flush(_) => unreachable!("a record was sent"),
        })
    }

    /// Writes the partial batch now and flushes the inner sink.
    pub async fn flush_now(&self) -> Result<(), SinkError> {
        let gone = || SinkError::new(&self.name, "batch sink is no longer running");
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        let (ack, done) = oneshot::channel();
        tx.send(Command::Flush(ack)).await.map_err(|_| gone())?;
        done.await.map_err(|_| gone())?
    }

    /// What the batch sink's writes did so far (also exported through the `metrics` facade
    /// as `pipeline_sink_*{sink="<name>", via="batch_sink"}`).
    pub fn stats(&self) -> SinkStats {
        self.stats.snapshot()
    }

    /// Stops taking records, writes the partial batch, flushes the inner sink and
    /// reports. Waits for writes and their retries.
    pub async fn close(mut self) -> Result<BatchReport, BatchError<T>> {
        self.tx = None;
        let Some(task) = self.task.take() else { return Ok(BatchReport::default()) };
        task.await.map_err(|e| BatchError::TaskFailed { sink: self.name.clone(), message: e.to_string() })
    }
}

// Dropping the sender is enough: the task sees the channel close, writes the partial
// batch, flushes and ends on its own. Aborting it would lose records.
impl<T: Send + 'static> Drop for BatchSink<T> {
    fn drop(&mut self) {
        self.tx = None;
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Sink<T> for BatchSink<T> {
    fn name(&self) -> &str {
        &self.name
    }

    /// Pushes every record; they are written later, in batches of this sink's own.
    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        for record in batch {
            self.push(record.clone()).await.map_err(|e| SinkError::new(&self.name, e.to_string()))?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), SinkError> {
        self.flush_now().await
    }
}

fn json_len<T: Serialize>(record: &T) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // A record that cannot be serialized counts as what was produced before the error;
    // the sink will report the error itself.
    let _ = serde_json::to_writer(&mut counter, record);
    counter.0
}

struct Worker<T: Send + 'static> {
    inner: Arc<dyn Sink<T>>,
    dead_letter: Option<Arc<dyn Sink<DeadLetter<T>>>>,
    size: SizeFn<T>,
    config: BatchConfig,
    batch: Vec<T>,
    bytes: usize,
    stats: Arc<WriteStats>,
}

impl<T: Send + 'static> Worker<T> {
    async fn run(mut self, mut rx: mpsc::Receiver<Command<T>>) -> BatchReport {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        loop {
            let armed = !self.batch.is_empty();
            let command = tokio::select! {
                biased;
                () = &mut timer, if armed => {
                    self.write_batch().await;
                    continue;
                }
                command = rx.recv() => command,
            };
            match command {
                Some(Command::Record(record)) => {
                    let size = (self.size)(&record);
                    if !self.batch.is_empty() && self.bytes.saturating_add(size) > self.config.max_bytes {
                        self.write_batch().await;
                    }
                    if self.batch.is_empty() {
                        timer.as_mut().reset(harvester_core::time::now() + self.config.max_wait);
                    }
                    self.batch.push(record);
                    self.bytes = self.bytes.saturating_add(size);
                    if self.batch.len() >= self.config.max_records || self.bytes >= self.config.max_bytes {
                        self.write_batch().await;
                    }
                }
                Some(Command::Flush(ack)) => {
                    self.write_batch().await;
                    let _ = ack.send(flush_guarded(self.inner.as_ref()).await);
                }
                None => break,
            }
        }
        self.write_batch().await;
        if let Err(e) = flush_guarded(self.inner.as_ref()).await {
            tracing::error!(sink = self.inner.name(), error = %e, "flush on close failed");
        }
        if let Some(dead_letter) = &self.dead_letter
            && let Err(e) = flush_guarded(dead_letter.as_ref()).await
        {
            tracing::error!(sink = dead_letter.name(), error = %e, "dead-letter flush on close failed");
        }
        self.stats.snapshot()
    }

    async fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        self.bytes = 0;
        let retry = &self.config.retry;
        let mut attempt = 1;
        let error = loop {
            let started = harvester_core::time::now();
            match write_guarded(self.inner.as_ref(), &batch).await {
                Ok(()) => {
                    self.stats.written(batch.len(), harvester_core::time::since(started));
                    return;
                }
                Err(e) => {
                    self.stats.failed_attempt();
                    if attempt >= retry.max_attempts {
                        break e;
                    }
                    let wait = retry.backoff(attempt);
                    tracing::warn!(sink = self.inner.name(), attempt, ?wait, error = %e, "batch write failed, retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        };
        self.give_up(batch, error, attempt).await;
    }

    async fn give_up(&mut self, batch: Vec<T>, error: SinkError, attempts: u32) {
        let count = batch.len() as u64;
        let Some(dead_letter) = &self.dead_letter else {
            tracing::error!(sink = self.inner.name(), records = count, error = %error, "batch lost: no dead-letter sink");
            self.stats.lost(count);
            return;
        };
        let at = SystemTime::now();
        let stage = self.inner.name().to_owned();
        let message = error.to_string();
        let letters: Vec<DeadLetter<T>> = batch
            .into_iter()
            .map(|record| DeadLetter { record, stage: stage.clone(), error: message.clone(), attempts, at })
            .collect();
        match write_guarded(dead_letter.as_ref(), &letters).await {
            Ok(()) => self.stats.dead_lettered(count),
            Err(e) => {
                tracing::error!(sink = dead_letter.name(), records = count, error = %e, "dead-letter write failed: batch lost");
                self.stats.lost(count);
            }
        }
    }
}
