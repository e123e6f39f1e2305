//! What a sink's writes did: counters kept in atomics (read live with a snapshot) and
//! mirrored to the `metrics` facade under the sink's name.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, histogram};

/// A snapshot of a sink's write counters: live from [`BatchSink::stats`](crate::batch::BatchSink::stats)
/// and [`ProcessorMetrics::sink`](crate::processor::ProcessorMetrics::sink), final in a
/// [`BatchReport`](crate::batch::BatchReport).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// Records the sink accepted.
    pub written: u64,
    /// Batches the sink accepted.
    pub batches: u64,
    /// Records handed to the dead-letter sink after the retries.
    pub dead_lettered: u64,
    /// Records lost: the write failed and there was no dead-letter sink, or it failed too.
    pub lost: u64,
    /// Failed write attempts, retried or not.
    pub failed_attempts: u64,
}

/// The live counters behind [`SinkStats`].
pub(crate) struct WriteStats {
    written: AtomicU64,
    batches: AtomicU64,
    dead_lettered: AtomicU64,
    lost: AtomicU64,
    failed_attempts: AtomicU64,
    facade: Facade,
}

struct Facade {
    written: Counter,
    batches: Counter,
    dead_lettered: Counter,
    lost: Counter,
    failed_attempts: Counter,
    batch_records: Histogram,
    write_seconds: Histogram,
}

impl WriteStats {
    /// Counters for sink `sink` written to by `via` (`processor` or `batch_sink`: a processor
    /// writing into a `BatchSink` of the same name must not count each record twice).
    pub(crate) fn new(sink: &str, via: &'static str) -> Self {
        let label = sink.to_owned();
        let c = |name: &'static str| counter!(name, "sink" => label.clone(), "via" => via);
        let h = |name: &'static str| histogram!(name, "sink" => label.clone(), "via" => via);
        WriteStats {
            written: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            facade: Facade {
                written: c("pipeline_sink_records_written_total"),
                batches: c("pipeline_sink_batches_written_total"),
                dead_lettered: c("pipeline_sink_dead_lettered_total"),
                lost: c("pipeline_sink_records_lost_total"),
                failed_attempts: c("pipeline_sink_failed_attempts_total"),
                batch_records: h("pipeline_sink_batch_records"),
                write_seconds: h("pipeline_sink_write_seconds"),
            },
        }
    }

    /// A batch of `records` was written in `took`.
    pub(crate) fn written(&self, records: usize, took: Duration) {
        self.written.fetch_add(records as u64, Relaxed);
        self.batches.fetch_add(1, Relaxed);
        self.facade.written.increment(records as u64);
        self.facade.batches.increment(1);
        self.facade.batch_records.record(records as f64);
        self.facade.write_seconds.record(took.as_secs_f64());
    }

    pub(crate) fn failed_attempt(&self) {
        self.failed_attempts.fetch_add(1, Relaxed);
        self.facade.failed_attempts.increment(1);
    }

    pub(crate) fn dead_lettered(&self, records: u64) {
        self.dead_lettered.fetch_add(records, Relaxed);
        self.facade.dead_lettered.increment(records);
    }

    pub(crate) fn lost(&self, records: u64) {
        self.lost.fetch_add(records, Relaxed);
        self.facade.lost.increment(records);
    }

    pub(crate) fn snapshot(&self) -> SinkStats {
        SinkStats {
            written: self.written.load(Relaxed),
            batches: self.batches.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            lost: self.lost.load(Relaxed),
            failed_attempts: self.failed_attempts.load(Relaxed),
        }
    }
}
