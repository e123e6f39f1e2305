//! Per-stage counters: atomics read by [`StreamProcessor::metrics`](super::StreamProcessor::metrics),
//! mirrored to the `metrics` facade through handles registered once at build time.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use metrics::{Counter, Gauge, counter, gauge};

use crate::sink_stats::{SinkStats, WriteStats};

/// Latency buckets: bucket `i` holds latencies below `2^i` microseconds (the last one: everything above).
const BUCKETS: usize = 32;

/// A fixed-bucket, lock-free latency histogram with power-of-two bucket bounds.
pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS],
}

impl LatencyHistogram {
    fn new() -> Self {
        LatencyHistogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }

    /// Records `count` latencies of `latency` each.
    fn record_many(&self, latency: Duration, count: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let index = (u64::BITS - micros.leading_zeros()) as usize;
        self.buckets[index.min(BUCKETS - 1)].fetch_add(count, Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); zero when empty.
    fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(1u64 << index);
            }
        }
        Duration::from_micros(1u64 << (BUCKETS - 1))
    }
}

/// The live counters of one stage.
pub(crate) struct StageMetrics {
    pub(crate) received: AtomicU64,
    pub(crate) ok: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    /// Records whose handling started and finished, per worker: `received - started` are
    /// taken from the queue but not started (held), `started - finished` are in flight.
    tallies: std::sync::Mutex<Tallies>,
    pub(crate) workers: AtomicUsize,
    busy_nanos: AtomicU64,
    latency: LatencyHistogram,
    facade: FacadeHandles,
}

struct FacadeHandles {
    received: Counter,
    ok: Counter,
    dropped: Counter,
    failed: Counter,
    timed_out: Counter,
    retried: Counter,
    dead_lettered: Counter,
    in_flight: Gauge,
    workers: Gauge,
    queue_depth: Gauge,
}

/// The records one worker started and finished.
///
/// Written per record by its worker alone, with a plain load and store rather than a
/// read-modify-write: with one shared pair of counters, two locked additions per record
/// and stage were a fifth of a trivial pipeline's time. On a line of its own, so two
/// workers never write one line.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct WorkerTally {
    started: AtomicU64,
    finished: AtomicU64,
}

impl WorkerTally {
    #[inline]
    pub(crate) fn start_record(&self) {
        self.started.store(self.started.load(Relaxed) + 1, Relaxed);
    }

    #[inline]
    pub(crate) fn finish_record(&self) {
        self.finished.store(self.finished.load(Relaxed) + 1, Relaxed);
    }
}

/// The live workers' tallies, and what the gone ones counted (started, finished).
#[derive(Default)]
struct Tallies {
    live: Vec<std::sync::Arc<WorkerTally>>,
    gone: (u64, u64),
}

/// A worker's place in its stage's books; on drop (the worker ended, retired or was
/// aborted) its counts move to the stage's.
pub(crate) struct TallyGuard {
    tally: std::sync::Arc<WorkerTally>,
    metrics: std::sync::Arc<StageMetrics>,
}

impl std::ops::Deref for TallyGuard {
    type Target = WorkerTally;
    fn deref(&self) -> &WorkerTally {
        &self.tally
    }
}

impl Drop for TallyGuard {
    fn drop(&mut self) {
        let mut tallies = self.metrics.lock_tallies();
        tallies.live.retain(|t| !std::sync::Arc::ptr_eq(t, &self.tally));
        tallies.gone.0 += self.tally.started.load(Relaxed);
        tallies.gone.1 += self.tally.finished.load(Relaxed);
    }
}

/// Which counter an event bumps.
#[derive(Clone, Copy)]
pub(crate) enum Event {
    Dropped,
    Failed,
    TimedOut,
    Retried,
    DeadLettered,
}

impl StageMetrics {
    pub(crate) fn new(stage: &str) -> Self {
        let label = stage.to_owned();
        let c = |name: &'static str| counter!(name, "stage" => label.clone());
        let g = |name: &'static str| gauge!(name, "stage" => label.clone());
        StageMetrics {
            received: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            tallies: std::sync::Mutex::new(Tallies::default()),
            workers: AtomicUsize::new(0),
            busy_nanos: AtomicU64::new(0),
            latency: LatencyHistogram::new(),
            facade: FacadeHandles {
                received: c("pipeline_stage_received_total"),
                ok: c("pipeline_stage_ok_total"),
                dropped: c("pipeline_stage_dropped_total"),
                failed: c("pipeline_stage_failed_total"),
                timed_out: c("pipeline_stage_timed_out_total"),
                retried: c("pipeline_stage_retried_total"),
                dead_lettered: c("pipeline_stage_dead_lettered_total"),
                in_flight: g("pipeline_stage_in_flight"),
                workers: g("pipeline_stage_workers"),
                queue_depth: g("pipeline_stage_queue_depth"),
            },
        }
    }

    pub(crate) fn count(&self, event: Event) {
        let (atomic, counter) = match event {
            Event::Dropped => (&self.dropped, &self.facade.dropped),
            Event::Failed => (&self.failed, &self.facade.failed),
            Event::TimedOut => (&self.timed_out, &self.facade.timed_out),
            Event::Retried => (&self.retried, &self.facade.retried),
            Event::DeadLettered => (&self.dead_lettered, &self.facade.dead_lettered),
        };
        atomic.fetch_add(1, Relaxed);
        counter.increment(1);
    }

    /// A worker took `len` records from the queue; each is held until it starts.
    pub(crate) fn take_run(&self, len: usize) {
        self.received.fetch_add(len as u64, Relaxed);
        self.facade.received.increment(len as u64);
    }

    /// A tally for a worker that starts now; it leaves the stage's books when dropped,
    /// its counts kept.
    pub(crate) fn tally(self: &std::sync::Arc<Self>) -> TallyGuard {
        let tally = std::sync::Arc::new(WorkerTally::default());
        self.lock_tallies().live.push(tally.clone());
        TallyGuard { tally, metrics: self.clone() }
    }

    fn lock_tallies(&self) -> std::sync::MutexGuard<'_, Tallies> {
        self.tallies.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records started and finished by every worker, live or gone.
    fn started_finished(&self) -> (u64, u64) {
        let tallies = self.lock_tallies();
        // Finished first: a racing worker can then only make `started` look larger, never
        // `finished` larger than `started`.
        let finished = tallies.gone.1 + tallies.live.iter().map(|t| t.finished.load(Relaxed)).sum::<u64>();
        let started = tallies.gone.0 + tallies.live.iter().map(|t| t.started.load(Relaxed)).sum::<u64>();
        (started, finished)
    }

    /// `count` records were kept (counted once per run rather than per record).
    pub(crate) fn kept(&self, count: u64) {
        if count > 0 {
            self.ok.fetch_add(count, Relaxed);
            self.facade.ok.increment(count);
        }
    }

    /// A run of `len` records took `busy`: busy time is added once, and each record's latency
    /// is taken as the run's mean.
    pub(crate) fn finish_run(&self, len: usize, busy: Duration) {
        if len == 0 {
            return;
        }
        self.busy_nanos.fetch_add(u64::try_from(busy.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        self.latency.record_many(busy / len as u32, len as u64);
    }

    /// Counts `count` workers about to start (counted before they run, so a concurrent
    /// scale-down sees them).
    pub(crate) fn add_workers(&self, count: usize) {
        self.workers.fetch_add(count, Relaxed);
        self.facade.workers.increment(count as f64);
    }

    /// Retires the calling worker if there are more live workers than `target`.
    pub(crate) fn try_retire(&self, target: usize) -> bool {
        let mut live = self.workers.load(Relaxed);
        while live > target {
            match self.workers.compare_exchange_weak(live, live - 1, Relaxed, Relaxed) {
                Ok(_) => {
                    self.facade.workers.decrement(1.0);
                    return true;
                }
                Err(now) => live = now,
            }
        }
        false
    }

    pub(crate) fn worker_stopped(&self) {
        self.workers.fetch_sub(1, Relaxed);
        self.facade.workers.decrement(1.0);
    }

    /// `queue_depth` is the channel's depth; records taken by a worker but not started yet
    /// are added to it.
    pub(crate) fn snapshot(&self, name: &str, queue_depth: usize, uptime: Duration) -> StageSnapshot {
        // Read in the reverse order of their updates, so a racing update cannot make a
        // difference negative.
        let (started, finished) = self.started_finished();
        let received = self.received.load(Relaxed);
        let held = usize::try_from(received.saturating_sub(started)).unwrap_or(usize::MAX);
        let in_flight = usize::try_from(started.saturating_sub(finished)).unwrap_or(usize::MAX);
        let queue_depth = queue_depth + held;
        // Gauges that move per record are set here rather than on every change: snapshots
        // are taken every second by the processor (and whenever metrics are read).
        self.facade.queue_depth.set(queue_depth as f64);
        self.facade.in_flight.set(in_flight as f64);
        let workers = self.workers.load(Relaxed);
        let capacity = uptime.as_nanos() as f64 * workers.max(1) as f64;
        let busy = self.busy_nanos.load(Relaxed) as f64;
        StageSnapshot {
            name: name.to_owned(),
            received,
            ok: self.ok.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            failed: self.failed.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            queue_depth,
            in_flight,
            workers,
            busy_fraction: if capacity > 0.0 { (busy / capacity).min(1.0) } else { 0.0 },
            busy: Duration::from_nanos(self.busy_nanos.load(Relaxed)),
            latency_p50: self.latency.quantile(0.50),
            latency_p99: self.latency.quantile(0.99),
        }
    }
}

/// A point-in-time view of one stage.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageSnapshot {
    /// The stage's name.
    pub name: String,
    /// Records taken from the stage's queue.
    pub received: u64,
    /// Records kept and passed on.
    pub ok: u64,
    /// Records the handler dropped, or dropped by [`ErrorPolicy::Drop`](super::ErrorPolicy::Drop).
    pub dropped: u64,
    /// Failed attempts (errors and timeouts), retried or not.
    pub failed: u64,
    /// Attempts that ran past the stage's timeout (also counted in `failed`).
    pub timed_out: u64,
    /// Attempts repeated under [`ErrorPolicy::Retry`](super::ErrorPolicy::Retry).
    pub retried: u64,
    /// Records sent to the dead-letter sink.
    pub dead_lettered: u64,
    /// Records waiting in the stage's queue, including those a worker has taken in its current
    /// run but not started yet.
    pub queue_depth: usize,
    /// Records a worker is handling now.
    pub in_flight: usize,
    /// Live workers (retiring workers count until they finish their run).
    pub workers: usize,
    /// Time spent in the handler over uptime × current workers, in `0..=1` (approximate when
    /// the worker count changed).
    pub busy_fraction: f64,
    /// Time spent in the handler since the start, all workers together. Two snapshots give the
    /// recent load: `Δbusy / (Δtime × workers)`.
    #[serde(with = "humantime_serde")]
    pub busy: Duration,
    /// Median handler latency, as the upper bound of a power-of-two bucket (microseconds).
    #[serde(with = "humantime_serde")]
    pub latency_p50: Duration,
    /// 99th percentile handler latency, as the upper bound of a power-of-two bucket.
    #[serde(with = "humantime_serde")]
    pub latency_p99: Duration,
}

/// A point-in-time view of the whole processor.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProcessorMetrics {
    /// One entry per stage, in order.
    pub stages: Vec<StageSnapshot>,
    /// Records accepted by a [`Sender`](super::Sender).
    pub received: u64,
    /// Records written to the sink.
    pub output: u64,
    /// Records dropped by a stage.
    pub dropped: u64,
    /// Records sent to the dead-letter sink (by a stage or after failed sink writes).
    pub dead_lettered: u64,
    /// Records refused by [`Sender::try_send`](super::Sender::try_send) because the first queue was
    /// full (never received, so not part of the conservation sum).
    pub rejected: u64,
    /// Dead letters the dead-letter sink failed to store after its retries (logged and lost).
    pub dead_letters_lost: u64,
    /// The sink's writes: batches, failed attempts, records dead-lettered after the retries.
    pub sink: SinkStats,
}

/// Counters of the processor as a whole (the sink side and the input side).
pub(crate) struct TotalCounters {
    pub(crate) received: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) dead_letters_lost: AtomicU64,
    /// The sink's writes: `written` is the processor's output.
    pub(crate) sink: WriteStats,
}

impl TotalCounters {
    pub(crate) fn new(sink: &str) -> Self {
        TotalCounters {
            received: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            dead_letters_lost: AtomicU64::new(0),
            sink: WriteStats::new(sink, "processor"),
        }
    }
}
