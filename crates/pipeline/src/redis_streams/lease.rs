//! The entries a consumer holds (handed to the processor, not yet acknowledged), and the
//! task that keeps other consumers from taking them over while they are worked on.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::consumer::Consumer;
use super::stats::SourceCounters;

/// Ids of the entries this consumer holds.
#[derive(Default)]
pub(crate) struct Leases {
    ids: Mutex<HashSet<Arc<str>>>,
}

impl Leases {
    /// Takes a lease on `id`; false when it is held already (a reclaim of our own entry).
    pub(crate) fn take(&self, id: &Arc<str>) -> bool {
        self.lock().insert(id.clone())
    }

    pub(crate) fn holds(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    pub(crate) fn release(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn release_all(&self, ids: &[Arc<str>]) {
        let mut held = self.lock();
        for id in ids {
            held.remove(id);
        }
    }

    fn snapshot(&self) -> Vec<Arc<str>> {
        self.lock().iter().cloned().collect()
    }

    // The set is only inserted into and removed from: a panic elsewhere cannot leave it
    // half-updated.
    fn lock(&self) -> MutexGuard<'_, HashSet<Arc<str>>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every third of the visibility timeout, resets the idle time of every entry held, until
/// `done` closes (the acknowledger ended: nothing is held any more). A failed renewal is
/// counted and tried again at the next tick; entries whose renewal keeps failing for a
/// whole visibility timeout may be taken over by another consumer (a duplicate, never a
/// loss).
pub(crate) async fn renew_leases(
    consumer: Arc<Consumer>,
    leases: Arc<Leases>,
    counters: Arc<SourceCounters>,
    mut done: watch::Receiver<()>,
) {
    let every = consumer.config().visibility_timeout / 3;
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = done.changed() => return,
            _ = tick.tick() => {}
        }
        let held = leases.snapshot();
        if held.is_empty() {
            counters.renewal_round();
            continue;
        }
        match consumer.renew(&held).await {
            Ok(lost) if !lost.is_empty() => {
                // Another consumer took these over while this one could not renew: it works
                // on them now, so this one stops holding them (its own copy may still be
                // stored and acknowledged: a duplicate, never a loss).
                tracing::warn!(stream = %consumer.config().stream, entries = lost.len(), "entries taken over by another consumer");
                leases.release_all(&lost);
                counters.renewal_round();
            }
            Ok(_) => counters.renewal_round(),
            Err(error) => {
                counters.error();
                tracing::warn!(stream = %consumer.config().stream, entries = held.len(), %error, "lease renewal failed");
            }
        }
    }
}
