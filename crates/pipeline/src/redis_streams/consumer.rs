//! The Redis side of a group consumer: every command the source, its acknowledger and its
//! lease renewal send, in one place.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use harvester_redis::{Connection, RedisConnection};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{RedisResult, Value};

use super::config::StreamConfig;

/// Most ids in one `XACK` or `XCLAIM`.
pub(crate) const IDS_PER_COMMAND: usize = 1_000;

/// A failed command: the group is gone (Redis restarted empty, or the stream was deleted),
/// or anything else, as text scrubbed of credentials.
#[derive(Debug)]
pub(crate) enum CommandError {
    NoGroup,
    Redis(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NoGroup => f.write_str("the consumer group does not exist (NOGROUP)"),
            CommandError::Redis(reason) => f.write_str(reason),
        }
    }
}

/// An entry to move to the dead-letter stream, and why.
pub(crate) struct Condemned {
    pub(crate) entry: StreamId,
    pub(crate) reason: String,
    pub(crate) deliveries: u32,
    /// Condemned because it cannot be decoded (else: delivered too often).
    pub(crate) undecodable: bool,
}

/// One consumer of one group of one stream.
pub(crate) struct Consumer {
    connection: RedisConnection,
    config: StreamConfig,
    /// The stream's key, prefixed.
    key: String,
    /// The dead-letter stream's key, prefixed.
    dead_key: String,
}

impl Consumer {
    pub(crate) fn new(connection: RedisConnection, config: StreamConfig) -> Arc<Self> {
        let key = format!("{}{}", connection.key_prefix(), config.stream);
        let dead_key = format!("{}{}", connection.key_prefix(), config.dead_letter_key());
        Arc::new(Consumer { connection, config, key, dead_key })
    }

    pub(crate) fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Runs a command on the shared connection (bounded by the response timeout), telling
    /// `NOGROUP` apart from other failures.
    async fn run<R, F, Fut>(&self, what: &str, command: F) -> Result<R, CommandError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<R>>,
    {
        let outcome = self
            .connection
            .run(|connection| async move {
                match command(connection).await {
                    Ok(value) => Ok(Some(value)),
                    Err(error) if is_no_group(&error) => Ok(None),
                    Err(error) => Err(error),
                }
            })
            .await;
        match outcome {
            Ok(Some(value)) => Ok(value),
            Ok(None) => Err(CommandError::NoGroup),
            Err(error) => Err(CommandError::Redis(format!("{what} on {}: {error}", self.key))),
        }
    }

    /// `XGROUP CREATE <stream> <group> <start> MKSTREAM`; an existing group is fine.
    pub(crate) async fn create_group(&self) -> Result<(), CommandError> {
        let mut command = redis::cmd("XGROUP");
        command.arg("CREATE").arg(&self.key).arg(&self.config.group).arg(self.config.start.id()).arg("MKSTREAM");
        self.run("XGROUP CREATE", |mut connection| async move {
            match command.query_async::<()>(&mut connection).await {
                Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// `XREADGROUP ... BLOCK ... STREAMS <stream> >` on a dedicated connection (the block may
    /// outlast the shared connection's response timeout). A connection that failed or did
    /// not answer in time is dropped, so the next read makes a new one.
    pub(crate) async fn read_new(&self, dedicated: &mut Option<Connection>) -> Result<Vec<StreamId>, CommandError> {
        let connection = match dedicated {
            Some(connection) => connection,
            None => {
                let made = self
                    .connection
                    .dedicated()
                    .await
                    .map_err(|error| CommandError::Redis(format!("XREADGROUP on {}: {error}", self.key)))?;
                dedicated.insert(made)
            }
        };
        let block = self.config.block;
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg("COUNT")
            .arg(self.config.read_count)
            .arg("BLOCK")
            .arg(millis(block))
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">");
        // Redis answers by the end of the block; past this margin the connection is lost.
        let limit = block + self.connection.response_timeout().max(Duration::from_secs(1));
        let read = tokio::time::timeout(limit, command.query_async::<Option<StreamReadReply>>(connection)).await;
        match read {
            Ok(Ok(reply)) => {
                Ok(reply.map(|reply| reply.keys.into_iter().flat_map(|key| key.ids).collect()).unwrap_or_default())
            }
            Ok(Err(error)) if is_no_group(&error) => Err(CommandError::NoGroup),
            Ok(Err(error)) => {
                *dedicated = None;
                let error = self.connection.command_error(&error);
                Err(CommandError::Redis(format!("XREADGROUP on {}: {error}", self.key)))
            }
            Err(_) => {
                *dedicated = None;
                Err(CommandError::Redis(format!("XREADGROUP on {}: no answer within {limit:?}", self.key)))
            }
        }
    }

    /// `XAUTOCLAIM` from `cursor`: entries idle longer than the visibility timeout, now ours.
    pub(crate) async fn claim_idle(&self, cursor: &str) -> Result<StreamAutoClaimReply, CommandError> {
        let mut command = redis::cmd("XAUTOCLAIM");
        command
            .arg(&self.key)
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg(millis(self.config.visibility_timeout))
            .arg(cursor)
            .arg("COUNT")
            .arg(self.config.read_count);
        self.run("XAUTOCLAIM", |mut connection| async move { command.query_async(&mut connection).await }).await
    }

    /// How many times each of `ids` was delivered (`XPENDING <stream> <group> <id> <id> 1`,
    /// pipelined: one round trip). `None` for an id no longer pending (acknowledged
    /// meanwhile).
    pub(crate) async fn delivery_counts(&self, ids: &[&str]) -> Result<Vec<Option<u32>>, CommandError> {
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING").arg(&self.key).arg(&self.config.group).arg(*id).arg(*id).arg(1);
        }
        let replies: Vec<StreamPendingCountReply> =
            self.run("XPENDING", |mut connection| async move { pipe.query_async(&mut connection).await }).await?;
        Ok(replies
            .into_iter()
            .map(|reply| reply.ids.first().map(|pending| u32::try_from(pending.times_delivered).unwrap_or(u32::MAX)))
            .collect())
    }

    /// `XACK <stream> <group> <ids>`, in commands of at most [`IDS_PER_COMMAND`] ids, one
    /// round trip.
    pub(crate) async fn ack(&self, ids: &[Arc<str>]) -> Result<(), CommandError> {
        let mut pipe = redis::pipe();
        for chunk in ids.chunks(IDS_PER_COMMAND) {
            pipe.cmd("XACK").arg(&self.key).arg(&self.config.group).arg(as_strs(chunk)).ignore();
        }
        self.run("XACK", |mut connection| async move { pipe.query_async::<()>(&mut connection).await }).await
    }

    /// Resets the idle time of those of `ids` this consumer still owns (`XCLAIM ... 0 <id>
    /// JUSTID`, which leaves the delivery count alone), so no other consumer takes them over
    /// while this one works; returns the ids another consumer owns now (taken over while this
    /// one could not renew), which must not be taken back: that consumer is working on them.
    /// The owner check and the claim run in one script, so nothing can change in between.
    pub(crate) async fn renew(&self, ids: &[Arc<str>]) -> Result<Vec<Arc<str>>, CommandError> {
        let mut lost = Vec::new();
        for chunk in ids.chunks(IDS_PER_COMMAND) {
            let mut invocation = RENEW_SCRIPT.prepare_invoke();
            invocation.key(&self.key).arg(&self.config.group).arg(&self.config.consumer).arg(as_strs(chunk));
            let kept: Vec<String> = self
                .run("XCLAIM", |mut connection| async move { invocation.invoke_async(&mut connection).await })
                .await?;
            let kept: std::collections::HashSet<&str> = kept.iter().map(String::as_str).collect();
            lost.extend(chunk.iter().filter(|id| !kept.contains(&***id)).cloned());
        }
        Ok(lost)
    }

    /// Appends each condemned entry to the dead-letter stream, then, only once every append
    /// succeeded, acknowledges them: an entry is never acknowledged without its dead letter
    /// stored. (A `MULTI` would not do: Redis does not roll a transaction back when one of
    /// its commands fails, so the `XACK` would go through after a failed `XADD`.) A crash
    /// between the two leaves the entries pending: they are dead-lettered again, a duplicate
    /// dead letter, never a lost one.
    ///
    /// A dead letter holds the entry's own fields (in field-name order), then `dead_id`
    /// (the entry's id), `dead_reason` and `dead_deliveries`.
    pub(crate) async fn dead_letter(&self, condemned: &[Condemned]) -> Result<(), CommandError> {
        if condemned.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for Condemned { entry, reason, deliveries, .. } in condemned {
            let mut fields: Vec<(&String, &Value)> = entry.map.iter().collect();
            fields.sort_by_key(|(field, _)| *field);
            let command = pipe.cmd("XADD").arg(&self.dead_key).arg("*");
            for (field, value) in fields {
                if let Some(bytes) = value_bytes(value) {
                    command.arg(field).arg(bytes);
                }
            }
            command.arg("dead_id").arg(&entry.id).arg("dead_reason").arg(reason).arg("dead_deliveries").arg(deliveries);
        }
        let replies: Vec<Value> =
            self.run("XADD to the dead-letter stream", |mut connection| async move {
                pipe.query_async(&mut connection).await
            })
            .await?;
        if let Some(Value::ServerError(error)) = replies.iter().find(|reply| matches!(reply, Value::ServerError(_))) {
            let reason = format!("XADD to the dead-letter stream {} failed: {error:?}", self.dead_key);
            return Err(CommandError::Redis(reason));
        }
        let ids: Vec<&str> = condemned.iter().map(|condemned| condemned.entry.id.as_str()).collect();
        let mut ack = redis::pipe();
        ack.cmd("XACK").arg(&self.key).arg(&self.config.group).arg(ids).ignore();
        self.run("XACK", |mut connection| async move { ack.query_async::<()>(&mut connection).await }).await
    }
}

/// Claims again (resets the idle time of) each id of `ARGV[3..]` only while consumer
/// `ARGV[2]` of group `ARGV[1]` still owns it in stream `KEYS[1]`; returns the ids claimed.
static RENEW_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(
        r"
local kept = {}
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
",
    )
});

fn is_no_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

fn as_strs(ids: &[Arc<str>]) -> Vec<&str> {
    ids.iter().map(|id| &**id).collect()
}

/// A stream field's value as sent: Redis keeps them as strings.
fn value_bytes(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
