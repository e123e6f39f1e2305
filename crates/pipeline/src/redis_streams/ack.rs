//! The acknowledger: one task per source that sends `XACK` for the entries whose records
//! were stored, in batches, retrying while Redis is away.

use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::consumer::{CommandError, Consumer, IDS_PER_COMMAND};
use super::lease::Leases;
use super::stats::SourceCounters;

/// What a delivery's ticket reports to: shared by the source and every delivery it made.
/// When the source and all its deliveries are gone, the acknowledger's channel closes and
/// it ends after sending what it has.
pub(crate) struct Acks {
    queue: mpsc::UnboundedSender<Arc<str>>,
    leases: Arc<Leases>,
    counters: Arc<SourceCounters>,
}

impl Acks {
    pub(crate) fn new(
        leases: Arc<Leases>,
        counters: Arc<SourceCounters>,
    ) -> (Arc<Acks>, mpsc::UnboundedReceiver<Arc<str>>) {
        let (queue, acks) = mpsc::unbounded_channel();
        (Arc::new(Acks { queue, leases, counters }), acks)
    }

    pub(crate) fn leases(&self) -> &Arc<Leases> {
        &self.leases
    }

    pub(crate) fn counters(&self) -> &Arc<SourceCounters> {
        &self.counters
    }

    /// The record of entry `id` is stored (or dropped on purpose): acknowledge the entry.
    /// The lease is kept until `XACK` succeeds, so the entry stays renewed meanwhile.
    pub(crate) fn ack(&self, id: Arc<str>) {
        if let Err(unsent) = self.queue.send(id) {
            // The acknowledger was aborted: the entry stays pending, to be delivered again.
            self.leases.release(&unsent.0);
            self.counters.abandoned();
        }
    }

    /// The record of entry `id` left the pipeline unstored: the entry stays pending, and
    /// once its lease is no longer renewed it is delivered again after the visibility
    /// timeout.
    pub(crate) fn abandon(&self, id: &str) {
        self.leases.release(id);
        self.counters.abandoned();
        tracing::debug!(entry = id, "record left the pipeline unstored; its entry will be delivered again");
    }
}

/// Sends `XACK` for every id that arrives, in batches of what is ready; on failure waits
/// (backing off) and tries the same batch again. A `NOGROUP` answer means the group and
/// its pending entries are gone: there is nothing left to acknowledge. Ends when every
/// sender is gone and the queue is empty; dropping `_done` then stops the lease renewal.
pub(crate) async fn run_acknowledger(
    consumer: Arc<Consumer>,
    leases: Arc<Leases>,
    counters: Arc<SourceCounters>,
    mut queue: mpsc::UnboundedReceiver<Arc<str>>,
    _done: watch::Sender<()>,
) {
    let mut batch: Vec<Arc<str>> = Vec::new();
    let mut failures = 0u32;
    loop {
        if batch.is_empty() {
            match queue.recv().await {
                Some(id) => batch.push(id),
                None => return,
            }
        }
        while batch.len() < IDS_PER_COMMAND {
            match queue.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        match consumer.ack(&batch).await {
            Ok(()) => failures = 0,
            Err(CommandError::NoGroup) => {
                tracing::warn!(
                    stream = %consumer.config().stream,
                    entries = batch.len(),
                    "consumer group gone (Redis restarted empty?); nothing to acknowledge"
                );
            }
            Err(error) => {
                failures += 1;
                counters.error();
                tracing::warn!(stream = %consumer.config().stream, entries = batch.len(), %error, "XACK failed, retrying");
                tokio::time::sleep(consumer.config().backoff(failures)).await;
                continue;
            }
        }
        leases.release_all(&batch);
        counters.acked(batch.len());
        batch.clear();
    }
}
