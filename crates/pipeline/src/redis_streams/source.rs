//! [`RedisStreamSource`]: one consumer of a consumer group, feeding a processor, and
//! [`RunningSource`], the handle on it once started.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use harvester_redis::RedisConnection;
use redis::aio::MultiplexedConnection;
use redis::streams::StreamId;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::ack::{Acks, run_acknowledger};
use super::config::StreamConfig;
use super::consumer::{CommandError, Condemned, Consumer};
use super::delivery::Delivery;
use super::error::StreamError;
use super::lease::{Leases, renew_leases};
use super::stats::{SourceCounters, SourceStats};
use crate::processor::Sender;

/// Most `XAUTOCLAIM` pages taken in one reclaim round before new entries are read again.
const RECLAIM_PAGES: usize = 10;

/// Reads a stream as one consumer of a consumer group and feeds the records to a
/// [`StreamProcessor`](crate::StreamProcessor) as [`Delivery`]s; see the
/// [module docs](super) for the entry format and what "at least once" means here.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use harvester_pipeline::processor::{Stage, StreamProcessor};
/// use harvester_pipeline::redis_streams::{AckingSink, Delivery, RedisConfig, RedisConnection, RedisStreamSource, StreamConfig};
/// use harvester_pipeline::sinks::MemorySink;
/// use harvester_pipeline::StageOutcome;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect(&RedisConfig::default()).await?;
/// let stored = Arc::new(MemorySink::<String>::new("stored"));
/// let processor = StreamProcessor::builder()
///     .stage(Stage::new("upper", Delivery::handler(|s: String| async move { StageOutcome::Keep(s.to_uppercase()) })))
///     .sink(AckingSink::new(stored.clone()))
///     .build()?;
/// let mut source = RedisStreamSource::<String>::new(redis, StreamConfig::new("pages", "enrich", "worker-1"))?
///     .spawn(processor.sender())?;
/// // ... until it is time to stop:
/// source.stop().await;
/// processor.shutdown(Duration::from_secs(10)).await;
/// let stats = source.finish(Duration::from_secs(5)).await;
/// println!("{} records stored and acknowledged", stats.acked_records);
/// # Ok(())
/// # }
/// ```
pub struct RedisStreamSource<T> {
    connection: RedisConnection,
    config: StreamConfig,
    _records: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for RedisStreamSource<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamSource").field("config", &self.config).field("connection", &self.connection).finish()
    }
}

/// Where a source hands its deliveries: a processor's [`Sender`] (the usual case), or a
/// bounded tokio channel for code that takes deliveries itself (a fetch loop that admits
/// work as it has room). The source waits while the inbox is full: its backpressure.
pub trait Inbox<T>: Send + Sync + 'static {
    /// Hands over `items` in order, waiting for room; `Err` once the inbox is closed (the
    /// items not taken are dropped, so their entries are delivered again).
    fn hand_over(&self, items: Vec<T>) -> impl Future<Output = Result<(), Closed>> + Send;
}

/// The inbox no longer takes deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl<T: Send + 'static> Inbox<T> for Sender<T> {
    async fn hand_over(&self, items: Vec<T>) -> Result<(), Closed> {
        self.send_all(items).await.map_err(|_| Closed)
    }
}

impl<T: Send + 'static> Inbox<T> for tokio::sync::mpsc::Sender<T> {
    async fn hand_over(&self, items: Vec<T>) -> Result<(), Closed> {
        for item in items {
            self.send(item).await.map_err(|_| Closed)?;
        }
        Ok(())
    }
}

impl<T: DeserializeOwned + Send + Sync + 'static> RedisStreamSource<T> {
    /// A source reading `config.stream` (after the connection's key prefix) through
    /// `connection`. Nothing is sent to Redis before [`spawn`](Self::spawn).
    pub fn new(connection: RedisConnection, config: StreamConfig) -> Result<Self, StreamError> {
        config.validate()?;
        Ok(RedisStreamSource { connection, config, _records: PhantomData })
    }

    /// The configuration.
    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Starts consuming into `sender` (from [`StreamProcessor::sender`](crate::StreamProcessor::sender)):
    /// creates the group if needed, then reads new entries, reclaims idle ones every half
    /// visibility timeout, renews the leases of the entries it holds, and acknowledges
    /// what the sinks stored. Redis failures are retried with backoff, never returned.
    /// Any [`Inbox`] serves instead of a processor's sender, e.g. a
    /// `tokio::sync::mpsc::Sender<Delivery<T>>`.
    pub fn spawn(self, sender: impl Inbox<Delivery<T>>) -> Result<RunningSource, StreamError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StreamError::NoRuntime);
        }
        let consumer = Consumer::new(self.connection, self.config);
        let counters = Arc::new(SourceCounters::new(&consumer.config().stream));
        let leases = Arc::new(Leases::default());
        let (acks, queue) = Acks::new(leases.clone(), counters.clone());
        let (done, renewals_until) = watch::channel(());
        let (stop, stop_signal) = watch::channel(false);
        let reader = Reader {
            consumer: consumer.clone(),
            acks,
            sender,
            _records: PhantomData,
            stop: stop_signal,
            dedicated: None,
            group_ready: false,
            failures: 0,
            next_reclaim: Instant::now(),
            reclaim_cursor: "0-0".to_owned(),
        };
        let acknowledger =
            tokio::spawn(run_acknowledger(consumer.clone(), leases.clone(), counters.clone(), queue, done));
        let renewal = tokio::spawn(renew_leases(consumer.clone(), leases, counters.clone(), renewals_until));
        Ok(RunningSource {
            stream: consumer.config().stream.clone(),
            stop,
            reader: Some(tokio::spawn(reader.run())),
            acknowledger: Some(acknowledger),
            renewal: Some(renewal),
            counters,
        })
    }
}

/// A started [`RedisStreamSource`]: its counters, and the ways to stop it.
///
/// Stopping takes three steps, because entries are acknowledged only once the processor has
/// stored their records: [`stop`](Self::stop) reading, shut the processor down (it stores
/// what it holds), then [`finish`](Self::finish), which waits for the last
/// acknowledgements. Dropping the handle stops reading; acknowledgements go on in the
/// background until the processor lets go of its deliveries.
#[must_use = "reading stops as soon as the handle is dropped"]
pub struct RunningSource {
    stream: String,
    stop: watch::Sender<bool>,
    reader: Option<JoinHandle<()>>,
    acknowledger: Option<JoinHandle<()>>,
    renewal: Option<JoinHandle<()>>,
    counters: Arc<SourceCounters>,
}

impl fmt::Debug for RunningSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSource").field("stream", &self.stream).field("stats", &self.stats()).finish()
    }
}

impl RunningSource {
    /// The counters now.
    pub fn stats(&self) -> SourceStats {
        self.counters.snapshot()
    }

    /// Whether the source still reads: false once stopped, or once the processor closed
    /// its input.
    pub fn is_reading(&self) -> bool {
        self.reader.as_ref().is_some_and(|reader| !reader.is_finished())
    }

    /// Stops reading, and waits until the reader has ended: the read in progress (at most
    /// `block`) finishes and its records are handed to the processor (unless its input is
    /// full: they are abandoned then, to be delivered again). No entry is read or reclaimed
    /// after it. Acknowledgements go on. Call it before shutting the processor down, so
    /// that no read is cut short by the closed input.
    pub async fn stop(&mut self) {
        self.stop.send_replace(true);
        if let Some(reader) = &mut self.reader {
            let _ = reader.await;
            self.reader = None;
        }
    }

    /// Stops reading, then waits until every delivery handed out is acknowledged or
    /// abandoned (so: after the processor has shut down) and the last `XACK` is sent, at
    /// most `deadline`; what is left then is aborted (those entries are delivered again
    /// later). Returns the final counters.
    pub async fn finish(mut self, deadline: Duration) -> SourceStats {
        self.stop.send_replace(true);
        let tasks: Vec<JoinHandle<()>> =
            [self.reader.take(), self.acknowledger.take(), self.renewal.take()].into_iter().flatten().collect();
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let all = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            tracing::warn!(stream = %self.stream, ?deadline, "stream source did not finish in time; aborting");
            for abort in aborts {
                abort.abort();
            }
        }
        self.stats()
    }

    /// Stops everything at once, as a crash would: no further read, renewal or
    /// acknowledgement. The entries held stay pending and are taken over by another
    /// consumer after the visibility timeout. Returns the counters.
    pub async fn abort(mut self) -> SourceStats {
        let tasks: Vec<JoinHandle<()>> =
            [self.reader.take(), self.acknowledger.take(), self.renewal.take()].into_iter().flatten().collect();
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        self.stats()
    }
}

impl Drop for RunningSource {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

/// What the reader should do next.
enum Flow {
    Continue,
    Stop,
}

/// The task that reads, reclaims and hands records to the processor.
struct Reader<T, I> {
    consumer: Arc<Consumer>,
    acks: Arc<Acks>,
    sender: I,
    _records: PhantomData<fn() -> T>,
    stop: watch::Receiver<bool>,
    dedicated: Option<MultiplexedConnection>,
    group_ready: bool,
    failures: u32,
    next_reclaim: Instant,
    reclaim_cursor: String,
}

impl<T: DeserializeOwned + Send + Sync + 'static, I: Inbox<Delivery<T>>> Reader<T, I> {
    async fn run(mut self) {
        while !self.stopping() {
            match self.step().await {
                Ok(Flow::Continue) => self.failures = 0,
                Ok(Flow::Stop) => break,
                Err(error) => {
                    if matches!(error, CommandError::NoGroup) {
                        self.group_ready = false;
                    }
                    self.failures += 1;
                    self.acks.counters().error();
                    let wait = self.consumer.config().backoff(self.failures);
                    tracing::warn!(stream = %self.consumer.config().stream, %error, ?wait, "stream source: Redis command failed; retrying");
                    let mut stop = self.stop.clone();
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|stop| *stop) => break,
                    }
                }
            }
        }
    }

    fn stopping(&self) -> bool {
        // A dropped handle counts as a stop.
        *self.stop.borrow() || self.stop.has_changed().is_err()
    }

    async fn step(&mut self) -> Result<Flow, CommandError> {
        if !self.group_ready {
            self.consumer.create_group().await?;
            self.group_ready = true;
        }
        if Instant::now() >= self.next_reclaim
            && let Flow::Stop = self.reclaim().await?
        {
            return Ok(Flow::Stop);
        }
        let entries = self.consumer.read_new(&mut self.dedicated).await?;
        if entries.is_empty() {
            return Ok(Flow::Continue);
        }
        self.acks.counters().read(entries.len());
        let (deliveries, condemned) = self.sort(entries.into_iter().map(|entry| (entry, 1)));
        self.hand_over(deliveries, condemned).await
    }

    /// One round of `XAUTOCLAIM`: entries idle past the visibility timeout (their consumer
    /// stopped renewing them) become ours; those delivered too often go to the dead-letter
    /// stream, the others to the processor.
    async fn reclaim(&mut self) -> Result<Flow, CommandError> {
        for _ in 0..RECLAIM_PAGES {
            let reply = self.consumer.claim_idle(&self.reclaim_cursor).await?;
            self.reclaim_cursor = reply.next_stream_id;
            // Our own entries come back only when their renewal failed; they are still
            // being worked on here.
            let leases = self.acks.leases();
            let claimed: Vec<StreamId> = reply.claimed.into_iter().filter(|entry| !leases.holds(&entry.id)).collect();
            if !claimed.is_empty() {
                self.acks.counters().reclaimed(claimed.len());
                let ids: Vec<&str> = claimed.iter().map(|entry| entry.id.as_str()).collect();
                let counts = self.consumer.delivery_counts(&ids).await?;
                // An entry no longer pending was acknowledged meanwhile: nothing to do.
                let entries =
                    claimed.into_iter().zip(counts).filter_map(|(entry, count)| count.map(|count| (entry, count)));
                let (deliveries, condemned) = self.sort(entries);
                if let Flow::Stop = self.hand_over(deliveries, condemned).await? {
                    return Ok(Flow::Stop);
                }
            }
            if self.reclaim_cursor == "0-0" {
                break;
            }
        }
        // A pass over the whole pending list waits for the next half visibility timeout;
        // an unfinished one goes on at the next step.
        self.next_reclaim = if self.reclaim_cursor == "0-0" {
            self.acks.counters().reclaim_round();
            Instant::now() + self.consumer.config().visibility_timeout / 2
        } else {
            Instant::now()
        };
        Ok(Flow::Continue)
    }

    /// Decodes entries into deliveries (taking a lease on each), and condemns those that
    /// were delivered too often or cannot be decoded.
    fn sort(&self, entries: impl Iterator<Item = (StreamId, u32)>) -> (Vec<Delivery<T>>, Vec<Condemned>) {
        let config = self.consumer.config();
        let mut deliveries = Vec::new();
        let mut condemned = Vec::new();
        for (entry, count) in entries {
            if count > config.max_deliveries {
                let reason = format!(
                    "delivered {count} times without being stored (max_deliveries is {})",
                    config.max_deliveries
                );
                condemned.push(Condemned { entry, reason, deliveries: count, undecodable: false });
                continue;
            }
            match decode::<T>(&entry, &config.field) {
                Ok(record) => {
                    let id: Arc<str> = Arc::from(entry.id.as_str());
                    if self.acks.leases().take(&id) {
                        deliveries.push(Delivery::new(record, id, count, self.acks.clone()));
                    }
                }
                Err(reason) => condemned.push(Condemned { entry, reason, deliveries: count, undecodable: true }),
            }
        }
        self.acks.counters().delivered(deliveries.len());
        (deliveries, condemned)
    }

    /// Sends the deliveries to the processor (waiting for room), then dead-letters the
    /// condemned entries. Stops when the processor no longer takes input or the source is
    /// told to stop; deliveries not taken then are abandoned, to be delivered again.
    async fn hand_over(
        &mut self,
        deliveries: Vec<Delivery<T>>,
        condemned: Vec<Condemned>,
    ) -> Result<Flow, CommandError> {
        if !deliveries.is_empty() {
            let mut stop = self.stop.clone();
            tokio::select! {
                // The send first: a stop hands over what was read if there is room for it.
                biased;
                sent = self.sender.hand_over(deliveries) => {
                    if sent.is_err() {
                        tracing::info!(stream = %self.consumer.config().stream, "processor closed its input; stream source stops");
                        return Ok(Flow::Stop);
                    }
                }
                _ = stop.wait_for(|stop| *stop) => return Ok(Flow::Stop),
            }
        }
        if !condemned.is_empty() {
            self.consumer.dead_letter(&condemned).await?;
            for letter in &condemned {
                self.acks.counters().dead_lettered(letter.undecodable);
                tracing::warn!(
                    stream = %self.consumer.config().stream,
                    entry = %letter.entry.id,
                    reason = %letter.reason,
                    "entry moved to the dead-letter stream"
                );
            }
        }
        Ok(Flow::Continue)
    }
}

/// The record in `field` of `entry`, or why there is none.
fn decode<T: DeserializeOwned>(entry: &StreamId, field: &str) -> Result<T, String> {
    let Some(value) = entry.map.get(field) else {
        return Err(format!("cannot decode: the entry has no `{field}` field"));
    };
    let bytes: Vec<u8> = redis::from_redis_value_ref(value)
        .map_err(|_| format!("cannot decode: the `{field}` field is not a string"))?;
    serde_json::from_slice(&bytes).map_err(|error| format!("cannot decode the `{field}` field as a record: {error}"))
}
