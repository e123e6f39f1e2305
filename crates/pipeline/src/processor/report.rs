//! The account a processor gives when it stops.

use super::metrics::ProcessorMetrics;

/// What happened to every record, returned by [`shutdown`](super::StreamProcessor::shutdown)
/// and [`abort`](super::StreamProcessor::abort).
///
/// Conservation: `received == output + dropped + dead_lettered + in_flight_at_end`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Per-stage counts, in stage order (queue depths and in-flight as they were at the end).
    pub stages: Vec<super::StageSnapshot>,
    /// Records accepted by a sender.
    pub received: u64,
    /// Records written to the sink.
    pub output: u64,
    /// Records dropped by a stage.
    pub dropped: u64,
    /// Records sent to the dead-letter sink.
    pub dead_lettered: u64,
    /// Records refused by `try_send` because the first queue was full (not received).
    pub rejected: u64,
    /// Dead letters the dead-letter sink could not store.
    pub dead_letters_lost: u64,
    /// Records still queued or being handled when the processor stopped (lost).
    pub in_flight_at_end: u64,
    /// True when shutdown stopped because the deadline passed (the rest was aborted).
    pub deadline_exceeded: bool,
    /// The sink's writes: batches, failed attempts, records dead-lettered after the retries.
    pub sink: crate::SinkStats,
}

impl Report {
    pub(crate) fn from_metrics(metrics: ProcessorMetrics, deadline_exceeded: bool) -> Self {
        let left = metrics.output + metrics.dropped + metrics.dead_lettered;
        Report {
            in_flight_at_end: metrics.received.saturating_sub(left),
            stages: metrics.stages,
            received: metrics.received,
            output: metrics.output,
            dropped: metrics.dropped,
            dead_lettered: metrics.dead_lettered,
            rejected: metrics.rejected,
            dead_letters_lost: metrics.dead_letters_lost,
            deadline_exceeded,
            sink: metrics.sink,
        }
    }
}
