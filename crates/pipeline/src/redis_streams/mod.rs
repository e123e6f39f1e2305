//! Redis Streams in and out of a [`StreamProcessor`](crate::StreamProcessor) (feature
//! `redis`): a consumer-group **source** that acknowledges an entry only after its record
//! was stored, and a **sink** that appends a batch in one round trip.
//!
//! - [`RedisStreamSource`] reads a stream as one consumer of a consumer group
//!   (`XGROUP CREATE ... MKSTREAM`, then `XREADGROUP ... BLOCK` on a dedicated connection, so
//!   the block never runs into the shared connection's response timeout), decodes each
//!   entry and sends it into the processor as a [`Delivery`]. Started with
//!   [`spawn`](RedisStreamSource::spawn), it runs as a [`RunningSource`].
//! - [`Delivery<T>`] is the record plus the entry it came from; [`Delivery::handler`] turns
//!   a stage over `T` into a stage over `Delivery<T>`.
//! - [`AckingSink`] wraps the processor's sink (and its dead-letter sink): it stores the
//!   records, then acknowledges their entries (`XACK`, batched by a background task).
//! - [`RedisStreamSink`] appends records (`XADD`, optionally `MAXLEN ~ N`), one
//!   `MULTI`/`EXEC` pipeline per batch.
//! - [`StreamConfig`] and [`StreamSinkConfig`] configure them; [`SourceStats`] counts.
//! - [`RedisConfig`] and [`RedisConnection`] (re-exported from `harvester-redis`) say where
//!   Redis is and carry the key prefix and response timeout.
//!
//! # Entry format
//!
//! One entry per record, the record's JSON in one field, `data` by default
//! ([`StreamConfig::field`]); other fields are ignored (and copied into a dead letter).
//! `XADD pages * data '{"url":"https://a.example/"}'` is a record; [`RedisStreamSink`]
//! writes exactly that. Key names in the configurations get the connection's key prefix.
//!
//! # At least once
//!
//! An entry is acknowledged only once its record is settled: stored by the sink, stored
//! by the dead-letter sink, or dropped on purpose. Every other path leaves it pending in
//! Redis, where it is delivered again:
//!
//! | the record…                                       | its entry                                                    |
//! |---------------------------------------------------|--------------------------------------------------------------|
//! | is stored by the sink (an [`AckingSink`])         | acknowledged after the sink's `write` succeeded              |
//! | is dead-lettered by a stage or after the sink's retries, and the dead-letter sink (an [`AckingSink`]) stores it | acknowledged after the dead letter is stored |
//! | is dropped by a [`Delivery::handler`] stage ([`StageOutcome::Drop`](crate::StageOutcome::Drop)) | acknowledged at once: dropping is a decision |
//! | is dead-lettered and the dead-letter sink refuses (or there is none) | pending: delivered again                      |
//! | is lost in the processor (a handler panics, an [`ErrorPolicy::Drop`](crate::ErrorPolicy::Drop) stage discards it, shutdown's deadline aborts it) | pending: delivered again |
//! | is held when the process crashes or the source is [aborted](RunningSource::abort) | pending: taken over by another consumer after the visibility timeout |
//! | cannot be decoded                                 | moved to the dead-letter stream at once, and acknowledged     |
//! | was delivered more than `max_deliveries` times    | moved to the dead-letter stream, and acknowledged             |
//!
//! So a record is never lost, and may be stored twice: when a process crashed between
//! storing and acknowledging, or when a consumer could not renew its leases for a whole
//! visibility timeout (Redis away) and another took its entries over. Sinks that must not
//! hold duplicates deduplicate on [`Delivery::entry_id`].
//!
//! **Reclaiming.** Every half [`visibility_timeout`](StreamConfig::visibility_timeout) a
//! source runs `XAUTOCLAIM` for entries idle longer than that timeout: those of consumers
//! that crashed or were stopped. A live consumer renews its own entries every third of the
//! timeout (`XCLAIM ... JUSTID`, which leaves the delivery count alone), so a record that
//! takes long in the pipeline is not taken from it. A reclaimed entry whose delivery count
//! (`XPENDING`) now exceeds [`max_deliveries`](StreamConfig::max_deliveries) is poison: it
//! goes to the dead-letter stream `<stream>:dead`, with the entry's fields plus `dead_id`,
//! `dead_reason` and `dead_deliveries`, and is acknowledged in the same `MULTI`/`EXEC`.
//!
//! Neither the dead-letter stream nor the group's consumer list is trimmed by the source:
//! bound the first with `XTRIM` and remove consumers gone for good with
//! `XGROUP DELCONSUMER` (a consumer name reused after a restart needs neither).
//!
//! **When Redis is down** the source retries every command with exponential backoff
//! ([`retry_base_delay`](StreamConfig::retry_base_delay) up to
//! [`retry_max_delay`](StreamConfig::retry_max_delay)), counting failures in
//! [`SourceStats::errors`]; acknowledgements wait and are sent when Redis is back. A group
//! that disappeared (Redis restarted empty) is created again, and the acknowledgements
//! meant for it are dropped (their entries are gone with it). The sink returns an error
//! for the processor to retry. Nothing panics, and no record is lost: an entry is never
//! acknowledged before its record is stored.
//!
//! ```no_run
//! use std::time::Duration;
//! use harvester_pipeline::processor::{ErrorPolicy, Stage, StreamProcessor};
//! use harvester_pipeline::redis_streams::{
//!     AckingSink, Delivery, RedisConfig, RedisConnection, RedisStreamSink, RedisStreamSource, StreamConfig,
//!     StreamSinkConfig,
//! };
//! use harvester_pipeline::{DeadLetter, StageOutcome};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Page { url: String, body: String }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisConnection::connect(&RedisConfig { url: "redis://127.0.0.1:6379".into(), ..Default::default() }).await?;
//! // Pages in from one stream, cleaned pages out to another; failures to a third.
//! let cleaned = RedisStreamSink::<Page>::new(redis.clone(), StreamSinkConfig { max_len: Some(1_000_000), ..StreamSinkConfig::new("pages:clean") })?;
//! let failed = RedisStreamSink::<DeadLetter<Page>>::new(redis.clone(), StreamSinkConfig::new("pages:failed"))?;
//! let processor = StreamProcessor::builder()
//!     .stage(
//!         Stage::new("clean", Delivery::handler(|page: Page| async move {
//!             if page.body.is_empty() { StageOutcome::Drop } else { StageOutcome::Keep(Page { body: page.body.trim().into(), ..page }) }
//!         }))
//!         .workers(4)
//!         .on_error(ErrorPolicy::Retry { max_attempts: 3, base_delay: Duration::from_millis(100) }),
//!     )
//!     .sink(AckingSink::new(cleaned))
//!     .dead_letter(AckingSink::new(failed))
//!     .build()?;
//! let mut source = RedisStreamSource::<Page>::new(redis, StreamConfig::new("pages", "cleaners", "cleaner-1"))?
//!     .spawn(processor.sender())?;
//!
//! tokio::time::sleep(Duration::from_secs(3600)).await; // an hour's work, then stop:
//! source.stop().await;
//! processor.shutdown(Duration::from_secs(30)).await;
//! source.finish(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```

mod ack;
mod acking_sink;
mod config;
mod consumer;
mod delivery;
mod error;
mod lease;
mod sink;
mod source;
mod stats;

pub use acking_sink::AckingSink;
pub use config::{GroupStart, StreamConfig, StreamSinkConfig};
pub use delivery::{Delivery, HandleRecord};
pub use error::StreamError;
pub use harvester_redis::{RedisConfig, RedisConnection};
pub use sink::RedisStreamSink;
pub use source::{Closed, Inbox, RedisStreamSource, RunningSource};
pub use stats::SourceStats;
