//! Bulkhead configuration: the partitions, their limits and the default partition.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::error::ConfigError;

/// Longest queue wait accepted.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);

/// The limits of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    /// Calls running at once at most; at least 1.
    pub max_concurrent: usize,
    /// Calls waiting for a place at most; beyond, a call is refused at once. Default: as
    /// many as `max_concurrent` (0: never wait).
    #[serde(default)]
    pub max_queue: Option<usize>,
    /// Longest wait in the queue; a call still waiting then is refused. Default 1 s (zero:
    /// never wait).
    #[serde(default = "default_max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
}

fn default_max_wait() -> Duration {
    Duration::from_secs(1)
}

impl PartitionConfig {
    /// `max_concurrent` places, a queue as long, waits up to 1 s.
    pub fn new(max_concurrent: usize) -> Self {
        PartitionConfig { max_concurrent, max_queue: None, max_wait: default_max_wait() }
    }

    /// Sets the queue bound and the longest wait in it.
    pub fn with_queue(mut self, max_queue: usize, max_wait: Duration) -> Self {
        self.max_queue = Some(max_queue);
        self.max_wait = max_wait;
        self
    }

    /// The queue bound, defaults applied.
    pub fn effective_max_queue(&self) -> usize {
        self.max_queue.unwrap_or(self.max_concurrent)
    }

    /// `position` is the partition's rank in name order: names are user text and may hold
    /// anything (a URL with a password), so messages never repeat them.
    fn validate(&self, position: usize) -> Result<(), ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::new(
                "bulkhead.partitions.max_concurrent",
                format!("partition {position} (in name order): must be at least 1"),
            ));
        }
        if self.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "bulkhead.partitions.max_concurrent",
                format!("partition {position} (in name order): must be at most {}", Semaphore::MAX_PERMITS),
            ));
        }
        if self.max_wait > LONGEST_WAIT {
            return Err(ConfigError::new(
                "bulkhead.partitions.max_wait",
                format!("partition {position} (in name order): must be at most a day"),
            ));
        }
        Ok(())
    }
}

/// Named partitions, each with its own places and queue, and the partition of requests
/// that name none (or an unknown one).
///
/// The default is the seed's: `critical` 10, `regular` 50, `monitoring` 5 calls at once,
/// `regular` the default partition. Queues are as long as the partition is wide and a call
/// waits up to 1 s: our choice, so that a short burst is smoothed rather than refused
/// (resilience4j and Polly default to no waiting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Label of the bulkhead's metrics and events. Default `bulkhead`.
    pub name: String,
    /// The partitions by name; at least one.
    pub partitions: BTreeMap<String, PartitionConfig>,
    /// Where requests naming no known partition go; must be one of `partitions`.
    pub default_partition: String,
}

impl Default for BulkheadConfig {
    fn default() -> Self {
        let partitions = [("critical", 10), ("regular", 50), ("monitoring", 5)]
            .into_iter()
            .map(|(name, max_concurrent)| (name.to_owned(), PartitionConfig::new(max_concurrent)))
            .collect();
        BulkheadConfig { name: "bulkhead".to_owned(), partitions, default_partition: "regular".to_owned() }
    }
}

impl BulkheadConfig {
    /// One partition, named `default`, for every request.
    pub fn single(partition: PartitionConfig) -> Self {
        BulkheadConfig {
            name: "bulkhead".to_owned(),
            partitions: BTreeMap::from([("default".to_owned(), partition)]),
            default_partition: "default".to_owned(),
        }
    }

    /// Refuses out-of-range values, naming the field and the rule. A message never repeats
    /// a name given here (partition names, `default_partition`): they are user text.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partitions.is_empty() {
            return Err(ConfigError::new("bulkhead.partitions", "at least one partition is needed"));
        }
        for (position, partition) in self.partitions.values().enumerate() {
            partition.validate(position + 1)?;
        }
        if !self.partitions.contains_key(&self.default_partition) {
            return Err(ConfigError::new("bulkhead.default_partition", "must be the name of one of the partitions"));
        }
        Ok(())
    }
}
