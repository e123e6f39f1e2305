//! What a stream source and a stream sink need to know, as plain values with `Default`,
//! serde and a `validate` that names the offending field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::StreamError;

/// Longest `block`, backoff or visibility timeout accepted: beyond it a value is a typo.
const LONGEST_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Shortest visibility timeout: leases are renewed three times per timeout.
const SHORTEST_VISIBILITY: Duration = Duration::from_millis(30);
/// The most entries one read may take: they arrive in one reply, held in memory at once.
const MAX_READ_COUNT: usize = 100_000;

/// Where a consumer group starts reading when this source creates the group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStart {
    /// From the first entry still in the stream (`0`): entries added before any consumer
    /// existed are processed too. The usual choice for a work queue.
    #[default]
    Beginning,
    /// Only entries added after the group was created (`$`).
    New,
}

impl GroupStart {
    pub(crate) fn id(self) -> &'static str {
        match self {
            GroupStart::Beginning => "0",
            GroupStart::New => "$",
        }
    }
}

/// How a [`RedisStreamSource`](super::RedisStreamSource) consumes a stream.
///
/// Key names (`stream`, `dead_letter_stream`) are given without the connection's key
/// prefix, which is put before them. In TOML:
///
/// ```toml
/// [source]
/// stream = "pages"
/// group = "enrich"
/// consumer = "worker-7"
/// read_count = 100
/// block = "1s"
/// visibility_timeout = "30s"
/// max_deliveries = 5
/// ```
///
/// ```
/// use std::time::Duration;
/// use harvester_pipeline::redis_streams::StreamConfig;
///
/// let config = StreamConfig { visibility_timeout: Duration::from_secs(10), ..StreamConfig::new("pages", "enrich", "worker-7") };
/// config.validate()?;
/// assert_eq!(config.dead_letter_key(), "pages:dead");
/// # Ok::<(), harvester_pipeline::redis_streams::StreamError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's key (without the key prefix). Required.
    pub stream: String,
    /// The consumer group; consumers of one group share the work. Created (with the stream,
    /// `MKSTREAM`) when missing. Default `harvester`.
    pub group: String,
    /// This consumer's name within the group: unique per running consumer. Reusing the
    /// name after a restart is fine (its old entries are reclaimed like anyone's). Required.
    pub consumer: String,
    /// The entry field holding the record as JSON. Default `data`.
    pub field: String,
    /// Where a group created by this source starts. Default [`GroupStart::Beginning`].
    pub start: GroupStart,
    /// Most entries taken by one `XREADGROUP` or `XAUTOCLAIM` (1 to 100 000; they arrive
    /// in one reply). Default 100.
    pub read_count: usize,
    /// How long one `XREADGROUP` waits for new entries (`BLOCK`). It runs on a dedicated
    /// connection, so it may exceed the connection's response timeout; a stop waits for
    /// the read in progress. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub block: Duration,
    /// An entry delivered to a consumer that has neither acknowledged nor renewed it for
    /// this long is taken over by another consumer (`XAUTOCLAIM`): how long a crashed
    /// consumer's entries wait. A live consumer renews its entries every third of it, so
    /// slow records are not taken from it. Default 30 s.
    #[serde(with = "humantime_serde")]
    pub visibility_timeout: Duration,
    /// Deliveries an entry may have (at least 1); an entry claimed for one more goes to the
    /// dead-letter stream instead (and is acknowledged). Default 5.
    pub max_deliveries: u32,
    /// The dead-letter stream's key (without the key prefix). Default `<stream>:dead`.
    pub dead_letter_stream: Option<String>,
    /// Wait after the first failed Redis command; doubled after each further failure, up
    /// to `retry_max_delay`, and back to this after a success. Default 100 ms.
    #[serde(with = "humantime_serde", alias = "retry_backoff")]
    pub retry_base_delay: Duration,
    /// Longest wait between retries while Redis is failing. Default 5 s.
    #[serde(with = "humantime_serde", alias = "max_retry_backoff")]
    pub retry_max_delay: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            stream: String::new(),
            group: "harvester".to_owned(),
            consumer: String::new(),
            field: "data".to_owned(),
            start: GroupStart::Beginning,
            read_count: 100,
            block: Duration::from_secs(1),
            visibility_timeout: Duration::from_secs(30),
            max_deliveries: 5,
            dead_letter_stream: None,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
        }
    }
}

impl StreamConfig {
    /// The defaults, reading `stream` as consumer `consumer` of group `group`.
    pub fn new(stream: impl Into<String>, group: impl Into<String>, consumer: impl Into<String>) -> Self {
        StreamConfig { stream: stream.into(), group: group.into(), consumer: consumer.into(), ..Default::default() }
    }

    /// The dead-letter stream's key, without the key prefix.
    pub fn dead_letter_key(&self) -> String {
        match &self.dead_letter_stream {
            Some(key) => key.clone(),
            None => format!("{}:dead", self.stream),
        }
    }

    /// Refuses values that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), StreamError> {
        let invalid = |field, reason: &str| Err(StreamError::config(field, reason));
        for (field, value) in
            [("stream", &self.stream), ("group", &self.group), ("consumer", &self.consumer), ("field", &self.field)]
        {
            if value.is_empty() {
                return invalid(field, "must not be empty");
            }
        }
        if !(1..=MAX_READ_COUNT).contains(&self.read_count) {
            return invalid("read_count", "must be in 1..=100000");
        }
        if self.block.is_zero() || self.block > LONGEST_WAIT {
            return invalid("block", "must be longer than zero and at most a day");
        }
        if self.visibility_timeout < SHORTEST_VISIBILITY || self.visibility_timeout > LONGEST_WAIT {
            return invalid("visibility_timeout", "must be at least 30ms and at most a day");
        }
        if self.max_deliveries == 0 {
            return invalid("max_deliveries", "must be at least 1");
        }
        if self.dead_letter_stream.as_deref().is_some_and(str::is_empty) {
            return invalid("dead_letter_stream", "must not be empty (leave it out for `<stream>:dead`)");
        }
        if self.dead_letter_key() == self.stream {
            return invalid("dead_letter_stream", "must differ from the stream read");
        }
        if self.retry_base_delay.is_zero() || self.retry_base_delay > self.retry_max_delay {
            return invalid("retry_base_delay", "must be longer than zero and at most retry_max_delay");
        }
        if self.retry_max_delay > LONGEST_WAIT {
            return invalid("retry_max_delay", "must be at most a day");
        }
        Ok(())
    }

    /// The wait after `failures` failures in a row (1-based).
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.retry_base_delay.saturating_mul(factor).min(self.retry_max_delay)
    }
}

/// Where a [`RedisStreamSink`](super::RedisStreamSink) appends.
///
/// ```
/// use harvester_pipeline::redis_streams::StreamSinkConfig;
///
/// let config = StreamSinkConfig { max_len: Some(100_000), ..StreamSinkConfig::new("pages") };
/// config.validate()?;
/// # Ok::<(), harvester_pipeline::redis_streams::StreamError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamSinkConfig {
    /// The stream's key (without the key prefix). Required.
    pub stream: String,
    /// The entry field the record's JSON goes into. Default `data`.
    pub field: String,
    /// Keep about this many entries: every `XADD` trims with `MAXLEN ~ N`, which Redis does
    /// in whole nodes, so the stream may hold somewhat more. Default: no trimming.
    pub max_len: Option<usize>,
}

impl Default for StreamSinkConfig {
    fn default() -> Self {
        StreamSinkConfig { stream: String::new(), field: "data".to_owned(), max_len: None }
    }
}

impl StreamSinkConfig {
    /// The defaults, appending to `stream`.
    pub fn new(stream: impl Into<String>) -> Self {
        StreamSinkConfig { stream: stream.into(), ..Default::default() }
    }

    /// Refuses values that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), StreamError> {
        if self.stream.is_empty() {
            return Err(StreamError::config("stream", "must not be empty"));
        }
        if self.field.is_empty() {
            return Err(StreamError::config("field", "must not be empty"));
        }
        if self.max_len == Some(0) {
            return Err(StreamError::config("max_len", "must be at least 1 (leave it out to keep everything)"));
        }
        Ok(())
    }
}
