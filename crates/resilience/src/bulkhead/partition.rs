//! One partition's places (a semaphore) and queue (an atomic count of waiters).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::config::{BulkheadConfig, PartitionConfig};
use crate::error::{BulkheadFull, ConfigError};

pub(crate) struct Partition {
    name: String,
    places: Semaphore,
    max_concurrent: usize,
    max_queue: usize,
    max_wait: Duration,
    queued: AtomicUsize,
    in_flight_gauge: Gauge,
    queued_gauge: Gauge,
    rejected: Counter,
}

impl Partition {
    fn new(bulkhead: &str, name: &str, config: &PartitionConfig) -> Partition {
        let labels = [("bulkhead", bulkhead.to_owned()), ("partition", name.to_owned())];
        Partition {
            name: name.to_owned(),
            places: Semaphore::new(config.max_concurrent),
            max_concurrent: config.max_concurrent,
            max_queue: config.effective_max_queue(),
            max_wait: config.max_wait,
            queued: AtomicUsize::new(0),
            in_flight_gauge: metrics::gauge!("harvester_bulkhead_in_flight", &labels),
            queued_gauge: metrics::gauge!("harvester_bulkhead_queued", &labels),
            rejected: metrics::counter!("harvester_bulkhead_rejected_total", &labels),
        }
    }

    /// A place now, if one is free.
    ///
    /// No check of the queue: a place given back while calls wait in the semaphore goes to
    /// the longest waiting one (tokio's semaphore is fair), so `try_acquire` cannot take it
    /// from them. A queued call whose future has not been polled yet is not waiting there,
    /// and must not keep free places idle.
    #[inline]
    pub(crate) fn try_enter(self: &Arc<Self>) -> Option<Place> {
        let permit = self.places.try_acquire().ok()?;
        permit.forget();
        Some(Place::new(Arc::clone(self)))
    }

    /// A place in the queue, its wait counted from `since` (the call), or the refusal when
    /// the queue is full (or waiting is off).
    pub(crate) fn join_queue(self: &Arc<Self>, since: Instant) -> Result<QueueSlot, BulkheadFull> {
        if self.max_wait.is_zero() {
            return Err(self.refuse(Duration::ZERO));
        }
        let mut queued = self.queued.load(Ordering::Relaxed);
        loop {
            if queued >= self.max_queue {
                return Err(self.refuse(Duration::ZERO));
            }
            match self.queued.compare_exchange_weak(queued, queued + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    self.queued_gauge.increment(1.0);
                    return Ok(QueueSlot { partition: Arc::clone(self), deadline: since + self.max_wait });
                }
                Err(actual) => queued = actual,
            }
        }
    }

    /// Waits in the queue (holding `slot`) for a place, until the partition's max wait after
    /// the call. The wait in the semaphore starts at the first poll, the deadline at the call.
    pub(crate) async fn wait_for_place(self: Arc<Self>, slot: QueueSlot) -> Result<Place, BulkheadFull> {
        let acquired = tokio::time::timeout_at(slot.deadline, self.places.acquire()).await;
        drop(slot);
        match acquired {
            Ok(Ok(permit)) => {
                permit.forget();
                Ok(Place::new(Arc::clone(&self)))
            }
            // The semaphore is never closed; treat it like a timeout all the same.
            Ok(Err(_)) | Err(_) => Err(self.refuse(self.max_wait)),
        }
    }

    fn refuse(&self, waited: Duration) -> BulkheadFull {
        self.rejected.increment(1);
        tracing::debug!(partition = %self.name, max_concurrent = self.max_concurrent, ?waited, "bulkhead refused a call");
        BulkheadFull { partition: self.name.clone(), max_concurrent: self.max_concurrent, waited }
    }

    fn stats(&self) -> PartitionStats {
        let available = self.places.available_permits();
        PartitionStats {
            max_concurrent: self.max_concurrent,
            in_flight: self.max_concurrent.saturating_sub(available),
            available,
            queued: self.queued.load(Ordering::Relaxed),
            max_queue: self.max_queue,
        }
    }
}

/// A running call's place; given back when dropped (completion, error, panic or cancel).
#[must_use = "dropping it gives the place back at once"]
pub(crate) struct Place(Arc<Partition>);

impl Place {
    #[inline]
    fn new(partition: Arc<Partition>) -> Place {
        partition.in_flight_gauge.increment(1.0);
        Place(partition)
    }
}

impl Drop for Place {
    #[inline]
    fn drop(&mut self) {
        self.0.places.add_permits(1);
        self.0.in_flight_gauge.decrement(1.0);
    }
}

/// A waiting call's place in the queue and the end of its wait; given back when dropped.
#[must_use = "dropping it leaves the queue at once"]
pub(crate) struct QueueSlot {
    partition: Arc<Partition>,
    /// The call's instant plus the partition's max wait.
    deadline: Instant,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.partition.queued.fetch_sub(1, Ordering::Relaxed);
        self.partition.queued_gauge.decrement(1.0);
    }
}

/// One partition's occupation at a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    /// The limit.
    pub max_concurrent: usize,
    /// Calls holding a place.
    pub in_flight: usize,
    /// Free places.
    pub available: usize,
    /// Calls waiting for a place.
    pub queued: usize,
    /// The queue bound.
    pub max_queue: usize,
}

/// The partitions' shared state: every layer clone, service and service clone built from
/// one [`BulkheadLayer`](super::BulkheadLayer) holds the same. Cheap to clone.
#[derive(Clone)]
pub struct Bulkhead {
    partitions: Arc<[Arc<Partition>]>,
    default: usize,
}

impl Bulkhead {
    /// The partitions of a valid `config`.
    pub fn new(config: BulkheadConfig) -> Result<Bulkhead, ConfigError> {
        config.validate()?;
        let partitions: Arc<[Arc<Partition>]> = config
            .partitions
            .iter()
            .map(|(name, partition)| Arc::new(Partition::new(&config.name, name, partition)))
            .collect();
        let default = partitions.iter().position(|p| p.name == config.default_partition).unwrap_or(0);
        Ok(Bulkhead { partitions, default })
    }

    /// The partition called `name`; the default one for `None` or an unknown name.
    #[inline]
    pub(crate) fn partition(&self, name: Option<&str>) -> &Arc<Partition> {
        let default = &self.partitions[self.default];
        match name {
            Some(name) => self.partitions.iter().find(|p| p.name == name).unwrap_or(default),
            None => default,
        }
    }

    /// The partitions' names.
    pub fn partition_names(&self) -> impl Iterator<Item = &str> {
        self.partitions.iter().map(|p| p.name.as_str())
    }

    /// The default partition's name.
    pub fn default_partition(&self) -> &str {
        &self.partitions[self.default].name
    }

    /// The occupation of partition `name`, if it exists.
    pub fn stats(&self, name: &str) -> Option<PartitionStats> {
        self.partitions.iter().find(|p| p.name == name).map(|p| p.stats())
    }
}

impl std::fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for partition in self.partitions.iter() {
            map.entry(&partition.name, &partition.stats());
        }
        map.finish()
    }
}
