//! What a stream source did: counters kept in atomics (read live with a snapshot) and
//! mirrored to the `metrics` facade under the stream's name.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use metrics::{Counter, counter};

/// A snapshot of a source's counters: live from
/// [`RunningSource::stats`](super::RunningSource::stats), final from
/// [`RunningSource::finish`](super::RunningSource::finish).
///
/// Every entry handed to the processor ends acknowledged or abandoned:
/// `delivered == acked_records + abandoned + in_flight` (acknowledgements of entries that
/// left Redis meanwhile included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceStats {
    /// New entries read (`XREADGROUP ... >`).
    pub read: u64,
    /// Entries taken over from a consumer that stopped renewing them (`XAUTOCLAIM`).
    pub reclaimed: u64,
    /// Records handed to the processor (read or reclaimed, decoded, not dead-lettered).
    pub delivered: u64,
    /// Records whose entry was acknowledged: stored by the sink or the dead-letter sink,
    /// or dropped by a stage.
    pub acked_records: u64,
    /// Records that left the pipeline without being stored (lost to a panic, a refusing
    /// dead-letter sink, an abort): their entries stay pending and are delivered again
    /// after the visibility timeout.
    pub abandoned: u64,
    /// Records handed to the processor and not yet acknowledged or abandoned.
    pub in_flight: u64,
    /// Entries this source moved to the dead-letter stream: undecodable, or claimed once
    /// more than `max_deliveries` allows.
    pub dead_lettered: u64,
    /// Of those, the entries that could not be decoded.
    pub undecodable: u64,
    /// Redis commands that failed (each retried after a backoff).
    pub errors: u64,
    /// Reclaim rounds completed: passes of `XAUTOCLAIM` over the whole pending list (one
    /// every half visibility timeout). A test or a health check can tell from it that this
    /// source looked for idle entries, whether or not it found any.
    pub reclaim_rounds: u64,
    /// Lease renewal rounds completed without a Redis error (one every third of the
    /// visibility timeout, counted also when nothing was held).
    pub renewal_rounds: u64,
}

/// The live counters behind [`SourceStats`].
pub(crate) struct SourceCounters {
    read: AtomicU64,
    reclaimed: AtomicU64,
    delivered: AtomicU64,
    acked: AtomicU64,
    abandoned: AtomicU64,
    dead_lettered: AtomicU64,
    undecodable: AtomicU64,
    errors: AtomicU64,
    reclaim_rounds: AtomicU64,
    renewal_rounds: AtomicU64,
    facade: Facade,
}

struct Facade {
    read: Counter,
    reclaimed: Counter,
    delivered: Counter,
    acked: Counter,
    abandoned: Counter,
    dead_lettered: Counter,
    errors: Counter,
}

impl SourceCounters {
    pub(crate) fn new(stream: &str) -> Self {
        let label = stream.to_owned();
        let c = |name: &'static str| counter!(name, "stream" => label.clone());
        SourceCounters {
            read: AtomicU64::new(0),
            reclaimed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            reclaim_rounds: AtomicU64::new(0),
            renewal_rounds: AtomicU64::new(0),
            facade: Facade {
                read: c("pipeline_stream_entries_read_total"),
                reclaimed: c("pipeline_stream_entries_reclaimed_total"),
                delivered: c("pipeline_stream_records_delivered_total"),
                acked: c("pipeline_stream_records_acked_total"),
                abandoned: c("pipeline_stream_records_abandoned_total"),
                dead_lettered: c("pipeline_stream_entries_dead_lettered_total"),
                errors: c("pipeline_stream_redis_errors_total"),
            },
        }
    }

    pub(crate) fn read(&self, entries: usize) {
        self.read.fetch_add(entries as u64, Relaxed);
        self.facade.read.increment(entries as u64);
    }

    pub(crate) fn reclaimed(&self, entries: usize) {
        self.reclaimed.fetch_add(entries as u64, Relaxed);
        self.facade.reclaimed.increment(entries as u64);
    }

    pub(crate) fn delivered(&self, records: usize) {
        self.delivered.fetch_add(records as u64, Relaxed);
        self.facade.delivered.increment(records as u64);
    }

    pub(crate) fn acked(&self, records: usize) {
        self.acked.fetch_add(records as u64, Relaxed);
        self.facade.acked.increment(records as u64);
    }

    pub(crate) fn abandoned(&self) {
        self.abandoned.fetch_add(1, Relaxed);
        self.facade.abandoned.increment(1);
    }

    pub(crate) fn dead_lettered(&self, undecodable: bool) {
        self.dead_lettered.fetch_add(1, Relaxed);
        self.facade.dead_lettered.increment(1);
        if undecodable {
            self.undecodable.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn reclaim_round(&self) {
        self.reclaim_rounds.fetch_add(1, Relaxed);
    }

    pub(crate) fn renewal_round(&self) {
        self.renewal_rounds.fetch_add(1, Relaxed);
    }

    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
        self.facade.errors.increment(1);
    }

    pub(crate) fn snapshot(&self) -> SourceStats {
        // Read in the order records move, so a snapshot taken while they move never shows
        // more leaving than arrived.
        let acked_records = self.acked.load(Relaxed);
        let abandoned = self.abandoned.load(Relaxed);
        let delivered = self.delivered.load(Relaxed);
        SourceStats {
            read: self.read.load(Relaxed),
            reclaimed: self.reclaimed.load(Relaxed),
            delivered,
            acked_records,
            abandoned,
            in_flight: delivered.saturating_sub(acked_records + abandoned),
            dead_lettered: self.dead_lettered.load(Relaxed),
            undecodable: self.undecodable.load(Relaxed),
            errors: self.errors.load(Relaxed),
            reclaim_rounds: self.reclaim_rounds.load(Relaxed),
            renewal_rounds: self.renewal_rounds.load(Relaxed),
        }
    }
}
