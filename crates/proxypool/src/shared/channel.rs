//! Health verdicts in Redis: announced on a pub/sub channel for low delay, and kept
//! while they run (an index scored by their end, and a hash of their JSON) for whoever
//! missed the announcement (the polling fallback).

use std::sync::Arc;
use std::time::Duration;

use harvester_redis::redis::{self, Value};
use harvester_redis::{RedisConnection, RedisError};

use crate::health::{HealthEvent, HealthEventKind};

use super::keys::Keys;
use super::scripts::{ANNOUNCE_SCRIPT, POLL_SCRIPT, RETRACT_SCRIPT};
use super::verdict::{self, Verdict};

/// The verdicts of one namespace, written and read as one instance.
#[derive(Clone)]
pub(crate) struct HealthChannel {
    connection: RedisConnection,
    keys: Arc<Keys>,
    instance: Arc<str>,
}

impl HealthChannel {
    pub(crate) fn new(connection: RedisConnection, keys: Arc<Keys>, instance: Arc<str>) -> HealthChannel {
        HealthChannel { connection, keys, instance }
    }

    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    /// Keeps `event` under its key for as long as it lasts (a restoration ends the
    /// ejection's key instead) and announces it.
    pub(crate) async fn announce(&self, event: &HealthEvent) -> Result<(), RedisError> {
        let json = verdict::encode(&self.instance, event);
        let channel = self.keys.channel();
        let (index, texts) = (self.keys.verdicts(), self.keys.verdict_json());
        let invocation = match (&event.kind, verdict::lasts(event)) {
            (HealthEventKind::Restored, _) | (_, None) => {
                let mut invocation = RETRACT_SCRIPT.prepare_invoke();
                invocation.key(index).key(texts).arg(Keys::ejection(&event.proxy)).arg(json).arg(channel);
                invocation
            }
            (kind, Some(lasts)) => {
                let name = match kind {
                    HealthEventKind::Banned { host, .. } => Keys::ban(&event.proxy, host.as_deref()),
                    _ => Keys::ejection(&event.proxy),
                };
                let ms = u64::try_from(lasts.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut invocation = ANNOUNCE_SCRIPT.prepare_invoke();
                invocation.key(index).key(texts).arg(name).arg(json).arg(ms).arg(channel);
                invocation
            }
        };
        let _: i64 =
            self.connection.run(|mut manager| async move { invocation.invoke_async(&mut manager).await }).await?;
        Ok(())
    }

    /// Up to `max` running verdicts, each lasting what its key has left, this instance's
    /// own and unreadable ones left out.
    pub(crate) async fn poll(&self, max: usize) -> Result<Vec<Verdict>, RedisError> {
        let (index, texts) = (self.keys.verdicts(), self.keys.verdict_json());
        let values: Vec<Value> =
            self.connection
                .run(|mut manager| async move {
                    POLL_SCRIPT.key(index).key(texts).arg(max).invoke_async(&mut manager).await
                })
                .await?;
        let mut verdicts = Vec::with_capacity(values.len() / 2);
        for pair in values.chunks_exact(2) {
            let (Value::BulkString(json), Value::Int(left)) = (&pair[0], &pair[1]) else { continue };
            let left = Duration::from_millis(u64::try_from(*left).unwrap_or(0));
            if let Some(read) = verdict::decode(json, Some(left)).filter(|v| v.origin != *self.instance) {
                verdicts.push(read);
            }
        }
        Ok(verdicts)
    }

    /// A stream of the announcements on the channel, from a connection of its own.
    pub(crate) async fn subscribe(&self) -> Result<redis::aio::PubSubStream, RedisError> {
        let mut pubsub = self.connection.pubsub().await?;
        let channel = self.keys.channel();
        match tokio::time::timeout(self.connection.response_timeout(), pubsub.subscribe(channel)).await {
            Ok(Ok(())) => Ok(pubsub.into_on_message()),
            Ok(Err(error)) => Err(self.connection.command_error(&error)),
            Err(_) => Err(RedisError::TimedOut {
                endpoint: self.connection.endpoint().to_owned(),
                after: self.connection.response_timeout(),
            }),
        }
    }

    /// The verdict an announcement carries, unless it is this instance's own or does not
    /// read.
    pub(crate) fn read(&self, message: &redis::Msg) -> Option<Verdict> {
        verdict::decode(message.get_payload_bytes(), None).filter(|v| v.origin != *self.instance)
    }

    /// The URL of Redis, redacted.
    pub(crate) fn endpoint(&self) -> &str {
        self.connection.endpoint()
    }
}
