//! [`RedisStreamSink`]: appends records to a stream, a batch per transaction.

use std::fmt;
use std::marker::PhantomData;

use async_trait::async_trait;
use harvester_redis::RedisConnection;
use serde::Serialize;

use super::config::StreamSinkConfig;
use super::error::StreamError;
use crate::sink::{Sink, SinkError};

/// Appends each record as one stream entry, its JSON in one field (`data` by default): the
/// format a [`RedisStreamSource`](super::RedisStreamSource) reads.
///
/// A batch is one `MULTI` / `XADD`×N / `EXEC` transaction sent as one pipeline: one round
/// trip per batch, and all of the batch or none of it is appended. With
/// [`max_len`](StreamSinkConfig::max_len) every `XADD` trims the stream with `MAXLEN ~ N`.
/// A batch that cannot be serialized appends nothing and fails naming the record. When
/// Redis is down or slower than the connection's response timeout the write fails, and the
/// processor retries it; after a timeout the batch may have been appended already, so a
/// retry may append it twice (at least once, never lost).
///
/// ```no_run
/// use harvester_pipeline::Sink;
/// use harvester_pipeline::redis_streams::{RedisConfig, RedisConnection, RedisStreamSink, StreamSinkConfig};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect(&RedisConfig::default()).await?;
/// let config = StreamSinkConfig { max_len: Some(1_000_000), ..StreamSinkConfig::new("pages") };
/// let sink = RedisStreamSink::new(redis, config)?;
/// sink.write(&["https://a.example/".to_owned(), "https://b.example/".to_owned()]).await?;
/// # Ok(())
/// # }
/// ```
pub struct RedisStreamSink<T> {
    connection: RedisConnection,
    config: StreamSinkConfig,
    key: String,
    name: String,
    _records: PhantomData<fn(&T)>,
}

impl<T> fmt::Debug for RedisStreamSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStreamSink")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("config", &self.config)
            .field("connection", &self.connection)
            .finish()
    }
}

impl<T> RedisStreamSink<T> {
    /// A sink appending to `config.stream` (after the connection's key prefix), named
    /// `redis_stream:<stream>`.
    pub fn new(connection: RedisConnection, config: StreamSinkConfig) -> Result<Self, StreamError> {
        config.validate()?;
        let key = format!("{}{}", connection.key_prefix(), config.stream);
        let name = format!("redis_stream:{}", config.stream);
        Ok(RedisStreamSink { connection, config, key, name, _records: PhantomData })
    }

    /// Renames the sink (for errors, logs, metrics and dead letters).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The stream's key, prefix included.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The configuration.
    pub fn config(&self) -> &StreamSinkConfig {
        &self.config
    }
}

#[async_trait]
impl<T: Serialize + Send + Sync + 'static> Sink<T> for RedisStreamSink<T> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (i, record) in batch.iter().enumerate() {
            let json = serde_json::to_vec(record).map_err(|error| {
                SinkError::new(&self.name, format!("cannot serialize record {i} of the batch: {error}"))
            })?;
            let command = pipe.cmd("XADD").arg(&self.key);
            if let Some(max_len) = self.config.max_len {
                command.arg("MAXLEN").arg("~").arg(max_len);
            }
            command.arg("*").arg(&self.config.field).arg(json).ignore();
        }
        self.connection
            .run(|mut connection| async move { pipe.query_async::<()>(&mut connection).await })
            .await
            .map_err(|error| SinkError::new(&self.name, format!("XADD to {}: {error}", self.key)))
    }
}
