//! A work queue shared by many collectors on many machines, on Redis Streams (feature
//! `redis`).
//!
//! ```sh
//! collect enqueue --redis redis://10.0.0.5:6379 --queue shop --urls urls.txt
//! collect --redis redis://10.0.0.5:6379 --queue shop --proxies proxies.txt --out part.jsonl   # on each machine
//! collect export --redis redis://10.0.0.5:6379 --queue shop --out shop.jsonl
//! ```
//!
//! - [`Queue::enqueue`] streams a URL list into the queue's stream, each URL once per queue
//!   (a URL already queued, by this list or an earlier one, is left out).
//! - A collector takes URLs through the queue's one consumer group ([`Queue::work`], a
//!   [`Work`]): harvester-pipeline's `RedisStreamSource`, which renews the leases of the URLs
//!   it holds, takes over (`XAUTOCLAIM`) the URLs of a collector that stopped renewing them
//!   for `claim_idle`, and moves a URL delivered more than `max_deliveries` times (one that
//!   keeps killing collectors) to the dead stream with its reason. A collector ends when the
//!   queue is drained: nothing left to read and nothing pending in any collector's hands.
//!   It holds its fetches and one URL read ahead; on a stop it stops reading at once and
//!   hands back what it read and did not start, as new entries (a stop is not a failed
//!   delivery). While Redis does not take its results, it takes no new URL.
//! - A URL is acknowledged only after its **final** line is synced to the collector's
//!   `--out` and written to the queue's results: one script adds the line to the results
//!   stream if the URL has none yet (`HSETNX` on the done hash), then the entry is
//!   acknowledged (`XACK`). A crash between the two refetches the URL; its second line is
//!   not added.
//! - [`Queue::export`] writes one line per URL: every result, then a failed line for each
//!   dead URL with no result.
//!
//! **What is guaranteed**: every URL is fetched at least once (a URL held by a collector
//! that dies is taken over; a collector that sees Redis go away retries until it is back),
//! and the export holds exactly one line per URL that was enqueued and is final. Redis must
//! keep what it was told: run it with `appendonly yes` (a Redis restarted empty has lost the
//! queue). Keys (after the connection's prefix): `collect:{NAME}:urls` (the stream),
//! `:urls:dead`, `:seen`, `:done`, `:results`; the `{NAME}` hash tag puts them in one slot
//! of a Redis Cluster.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::redis_streams::{Delivery, RedisConnection, RedisStreamSource, RunningSource, StreamConfig};
use harvester_redis::redis::{self, Script};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::input::{InputError, Target};
use crate::records::Line;
use crate::url_file::UrlFile;
use crate::work::{Assignment, Receipt, Work, WorkError};

/// The longest wait for Redis to answer a queue command: the commands carry whole lines
/// (a page's text each), far more than the rate limit's small scripts.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// The consumer group every collector of a queue joins.
const GROUP: &str = "collectors";
/// URLs sent to Redis per enqueue script call.
const ENQUEUE_BATCH: usize = 500;
/// Entries read per round trip when exporting (a line holds a page's text: tens of KB).
const EXPORT_PAGE: usize = 100;
/// Results written per completion script call, at most…
const COMPLETE_BATCH: usize = 256;
/// …and at most this many bytes of lines (one line may exceed it alone).
const COMPLETE_BYTES: usize = 1 << 20;
/// How often an idle collector asks whether the queue is drained (and samples its depth).
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Longest a finishing collector waits for Redis to take its last results.
const FINISH_DEADLINE: Duration = Duration::from_secs(30);

/// Why a queue command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue name cannot be a key.
    #[error("--queue {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The URL list was refused.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The URL list could not be read to its end (it changed after it was checked).
    #[error(transparent)]
    List(WorkError),
    /// Redis refused or did not answer.
    #[error("--redis: {0}")]
    Redis(String),
    /// The export could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Config(String),
    /// The queue holds no URL: never enqueued on this Redis (or under this name).
    #[error("queue {name:?} has no URLs on this Redis (was `collect enqueue` run with this --redis and --queue?)")]
    Empty {
        /// The queue's name.
        name: String,
    },
}

/// A queue's name: 1 to 64 letters, digits, `.`, `_` or `-`, so that it is one key part
/// and its own hash tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueName(String);

impl QueueName {
    /// Checks `name`.
    pub fn parse(name: &str) -> Result<QueueName, QueueError> {
        let bad = |reason| QueueError::BadName { name: name.to_owned(), reason };
        if name.is_empty() || name.len() > 64 {
            return Err(bad("a queue name has 1 to 64 characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
            return Err(bad("a queue name has only letters, digits, '.', '_' and '-'"));
        }
        Ok(QueueName(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a collector takes part in a queue.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// This collector's name in the consumer group: unique among running collectors.
    pub consumer: String,
    /// A URL held this long by a collector that stopped renewing it is taken over.
    pub claim_idle: Duration,
    /// Deliveries a URL may have; one more sends it to the dead stream.
    pub max_deliveries: u32,
    /// Keep waiting for new URLs when the queue is drained, instead of ending.
    pub follow: bool,
    /// URLs taken at once (the run's concurrency): no more are held than can start.
    pub concurrency: usize,
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// URLs added to the queue.
    pub added: u64,
    /// URLs of the list already in the queue (or repeated in the list), left out.
    pub already_queued: u64,
}

/// Where a queue stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// URLs ever enqueued.
    pub enqueued: u64,
    /// URLs with a final result.
    pub done: u64,
    /// URLs in the dead stream.
    pub dead: u64,
    /// URLs not yet taken by any collector.
    pub waiting: u64,
    /// URLs taken and not yet acknowledged.
    pub pending: u64,
}

impl QueueStatus {
    /// Whether no URL is waiting or held: what is not done is dead.
    pub fn drained(&self) -> bool {
        self.waiting == 0 && self.pending == 0
    }

    /// URLs waiting or held: the queue's depth.
    pub fn depth(&self) -> u64 {
        self.waiting.saturating_add(self.pending)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    /// Lines written.
    pub lines: u64,
    /// Of them, failed lines of dead URLs.
    pub dead: u64,
    /// Enqueued URLs with no final line yet (still waiting or held).
    pub unfinished: u64,
}

/// A queue on one Redis.
#[derive(Debug, Clone)]
pub struct Queue {
    redis: RedisConnection,
    name: QueueName,
    keys: Arc<Keys>,
}

/// The queue's keys. Every one carries the hash tag `{NAME}`: one slot on a cluster, so
/// that each script and transaction touches one slot.
#[derive(Debug)]
struct Keys {
    /// The stream, without the connection's prefix (the source adds it).
    stream: String,
    /// The same, prefixed.
    urls: String,
    dead: String,
    seen: String,
    done: String,
    results: String,
}

impl Keys {
    fn of(prefix: &str, name: &QueueName) -> Keys {
        let base = format!("collect:{{{}}}", name.as_str());
        let stream = format!("{base}:urls");
        let prefixed = |suffix: &str| format!("{prefix}{base}:{suffix}");
        Keys {
            urls: format!("{prefix}{stream}"),
            dead: prefixed("urls:dead"),
            seen: prefixed("seen"),
            done: prefixed("done"),
            results: prefixed("results"),
            stream,
        }
    }
}

impl Queue {
    /// The queue `name` on `redis`. Nothing is sent yet.
    pub fn new(redis: RedisConnection, name: QueueName) -> Queue {
        let keys = Arc::new(Keys::of(redis.key_prefix(), &name));
        Queue { redis, name, keys }
    }

    /// The queue's name.
    pub fn name(&self) -> &QueueName {
        &self.name
    }

    /// Loads the URL list at `path`, read as `--urls` is ([`UrlFile`]): every line is
    /// checked first (a bad one is refused with its number before anything is sent), then
    /// the URLs go in, in order, in batches, each once per queue. Memory stays bounded.
    pub async fn enqueue(&self, path: &Path) -> Result<Enqueued, QueueError> {
        let mut urls = UrlFile::open(path)?;
        let lines = urls.urls() + urls.duplicates();
        let mut batch = Vec::with_capacity(ENQUEUE_BATCH);
        let mut added = 0;
        loop {
            let target = urls.next().await.map_err(QueueError::List)?.map(|assignment| assignment.target);
            let end = target.is_none();
            batch.extend(target);
            if batch.len() == ENQUEUE_BATCH || (end && !batch.is_empty()) {
                added += self.push(&batch).await?;
                batch.clear();
            }
            if end {
                break;
            }
        }
        Ok(Enqueued { added, already_queued: lines.saturating_sub(added) })
    }

    /// Adds `batch` (each URL unless already seen by the queue); returns how many went in.
    /// Retried a few times: the script is idempotent (a URL seen is not added again).
    async fn push(&self, batch: &[Target]) -> Result<u64, QueueError> {
        let args: Vec<(String, String)> = batch
            .iter()
            .map(|target| (target.url.to_string(), serde_json::json!({ "url": &*target.url }).to_string()))
            .collect();
        retried(|| {
            let (keys, args) = (self.keys.clone(), args.clone());
            self.redis.run(move |mut connection| async move {
                let mut call = ENQUEUE.key(&keys.urls);
                call.key(&keys.seen);
                for (url, data) in &args {
                    call.arg(url).arg(data);
                }
                call.invoke_async(&mut connection).await
            })
        })
        .await
    }

    /// Where the queue stands now.
    pub async fn status(&self) -> Result<QueueStatus, QueueError> {
        let keys = self.keys.clone();
        let (enqueued, done, dead, (pending, lag, any)): (u64, u64, u64, (i64, i64, i64)) = self
            .redis
            .run(|mut connection| async move {
                let (enqueued, done, dead): (u64, u64, u64) = redis::pipe()
                    .cmd("SCARD")
                    .arg(&keys.seen)
                    .cmd("HLEN")
                    .arg(&keys.done)
                    .cmd("XLEN")
                    .arg(&keys.dead)
                    .query_async(&mut connection)
                    .await?;
                let mut backlog = BACKLOG.key(&keys.urls);
                backlog.arg(GROUP);
                Ok((enqueued, done, dead, backlog.invoke_async(&mut connection).await?))
            })
            .await
            .map_err(|e| QueueError::Redis(e.to_string()))?;
        // No group yet (no collector joined): everything enqueued waits.
        let Ok(pending) = u64::try_from(pending) else {
            return Ok(QueueStatus { enqueued, done, dead, waiting: enqueued, pending: 0 });
        };
        let outstanding = enqueued.saturating_sub(done.saturating_add(dead).saturating_add(pending));
        let waiting = waiting(lag, any, outstanding);
        Ok(QueueStatus { enqueued, done, dead, waiting, pending })
    }

    /// Writes one line per URL to `out` (atomically: a temporary file renamed over it):
    /// every result, then a failed line for each dead URL without one, then the results
    /// that came in meanwhile (collectors may still be running). Results are unique per URL
    /// (one script writes a URL's first result only); a URL dead-lettered twice (a crash
    /// between the dead-letter write and its acknowledgement) is written once, and a dead
    /// URL that got its result after all is written with the result.
    pub async fn export(&self, out: &Path) -> Result<Exported, QueueError> {
        if self.status().await?.enqueued == 0 {
            // A typo in the name or the wrong Redis: do not write an empty file over `out`.
            return Err(QueueError::Empty { name: self.name.as_str().to_owned() });
        }
        let output = |source| QueueError::Output { path: out.to_owned(), source };
        let temporary = temporary_beside(out);
        let file = tokio::fs::File::create(&temporary).await.map_err(output)?;
        let mut writer = tokio::io::BufWriter::new(file);
        let (mut lines, mut results_cursor) = (0, "-".to_owned());
        lines += self.export_results(&mut writer, &mut results_cursor, &HashSet::new(), out).await?;
        // Dead URLs without a result, each once; their set is as large as the dead stream.
        let mut dead_written = HashSet::new();
        let mut after = "-".to_owned();
        loop {
            let page = self.range(&self.keys.dead, &after).await?;
            let Some(last) = page.last() else { break };
            after = format!("({}", last.id);
            let urls: Vec<(String, String)> = page
                .iter()
                .filter_map(|entry| {
                    let data: Vec<u8> = entry.get("data")?;
                    let url = serde_json::from_slice::<QueuedUrl>(&data).ok()?.url;
                    let reason = entry.get::<String>("dead_reason").unwrap_or_default();
                    Some((url, reason))
                })
                .collect();
            let done = self.done(urls.iter().map(|(url, _)| url.as_str())).await?;
            for ((url, reason), done) in urls.into_iter().zip(done) {
                if !done && !dead_written.contains(&url) {
                    writer.write_all(&dead_line(&url, &reason)).await.map_err(output)?;
                    writer.write_all(b"\n").await.map_err(output)?;
                    dead_written.insert(url);
                }
            }
        }
        // Results written while the dead stream was read: a URL found dead above and done
        // now has its dead line already, and keeps it.
        lines += self.export_results(&mut writer, &mut results_cursor, &dead_written, out).await?;
        let dead = dead_written.len() as u64;
        writer.flush().await.map_err(output)?;
        let file = writer.into_inner();
        file.sync_all().await.map_err(output)?;
        drop(file);
        tokio::fs::rename(&temporary, out).await.map_err(output)?;
        if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            // The rename itself is durable once its directory is synced.
            if let Ok(dir) = tokio::fs::File::open(dir).await {
                let _ = dir.sync_all().await;
            }
        }
        let status = self.status().await?;
        let written = lines + dead;
        Ok(Exported { lines: written, dead, unfinished: status.enqueued.saturating_sub(written) })
    }

    /// Writes the results after `cursor` (moving it past them), except those of `skip`;
    /// returns how many lines it wrote.
    async fn export_results(
        &self,
        writer: &mut tokio::io::BufWriter<tokio::fs::File>,
        cursor: &mut String,
        skip: &HashSet<String>,
        out: &Path,
    ) -> Result<u64, QueueError> {
        let output = |source| QueueError::Output { path: out.to_owned(), source };
        let mut lines = 0;
        loop {
            let page = self.range(&self.keys.results, cursor).await?;
            let Some(last) = page.last() else { return Ok(lines) };
            *cursor = format!("({}", last.id);
            for entry in &page {
                let url: Option<String> = entry.get("url");
                if url.as_ref().is_some_and(|url| skip.contains(url)) {
                    continue;
                }
                if let Some(line) = entry.get::<Vec<u8>>("line") {
                    writer.write_all(&line).await.map_err(output)?;
                    writer.write_all(b"\n").await.map_err(output)?;
                    lines += 1;
                }
            }
        }
    }

    /// Up to a page of `key`'s entries after `after` (`-`, or `(id`), retried: a read.
    async fn range(&self, key: &str, after: &str) -> Result<Vec<redis::streams::StreamId>, QueueError> {
        let reply: redis::streams::StreamRangeReply = retried(|| {
            let (key, after) = (key.to_owned(), after.to_owned());
            self.redis.run(|mut connection| async move {
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(&after)
                    .arg("+")
                    .arg("COUNT")
                    .arg(EXPORT_PAGE)
                    .query_async(&mut connection)
                    .await
            })
        })
        .await?;
        Ok(reply.ids)
    }

    /// Whether each URL has a final result.
    async fn done<'a>(&self, urls: impl Iterator<Item = &'a str>) -> Result<Vec<bool>, QueueError> {
        let urls: Vec<String> = urls.map(str::to_owned).collect();
        if urls.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.done.clone();
        let values: Vec<Option<String>> =
            self.redis
                .run(|mut connection| async move {
                    redis::cmd("HMGET").arg(&key).arg(&urls).query_async(&mut connection).await
                })
                .await
                .map_err(|e| QueueError::Redis(e.to_string()))?;
        Ok(values.into_iter().map(|value| value.is_some()).collect())
    }

    /// Joins the queue's consumer group as `settings.consumer`: a [`Work`] handing out the
    /// queue's URLs until it is drained.
    pub fn work(&self, settings: &WorkerSettings) -> Result<QueueWork, QueueError> {
        let config = StreamConfig {
            // One at a time: a collector holds no more URLs than it can start, plus one on
            // its way, so that a stop hands back little (see `stop_taking`).
            read_count: 1,
            block: Duration::from_millis(500),
            visibility_timeout: settings.claim_idle,
            max_deliveries: settings.max_deliveries,
            ..StreamConfig::new(self.keys.stream.clone(), GROUP, settings.consumer.clone())
        };
        let source = RedisStreamSource::<QueuedUrl>::new(self.redis.clone(), config)
            .map_err(|e| QueueError::Config(format!("--queue: {e}")))?;
        // One read ahead: a collector holds its fetches, this one, and the one being read.
        let (inbox, deliveries) = mpsc::channel(1);
        let source = source.spawn(inbox).map_err(|e| QueueError::Config(format!("--queue: {e}")))?;
        let (completions, unsent) = mpsc::unbounded_channel();
        let backlog = Arc::new(AtomicUsize::new(0));
        let completer = tokio::spawn(complete(self.redis.clone(), self.keys.clone(), unsent, backlog.clone()));
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(QueueWork {
            queue: self.clone(),
            deliveries: Some(deliveries),
            source: Some(source),
            completions: Some(completions),
            completer: Some(completer),
            backlog,
            // Results waiting for Redis beyond this stop the taking of new URLs.
            max_backlog: settings.concurrency.max(1) * 2,
            follow: settings.follow,
            poll,
            depth_label: format!("work-{}", self.name.as_str()),
        })
    }
}

/// The collectors' group's URLs held (`pending`), not yet read as Redis counts them
/// (`lag`, -1 when it cannot tell), and whether any entry follows the group's last
/// delivered one (1 or 0): `{pending, lag, any}`; `{-1, -1, -1}` before the group exists.
/// `KEYS`: the stream. `ARGV`: the group. The lag alone cannot be trusted: after an entry
/// is deleted it is nil, and once the group read past the deleted entry Redis counts it
/// again as waiting; "any" is exact.
static BACKLOG: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, -1, -1} end
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local field = {}
  for i = 1, #group, 2 do field[group[i]] = group[i + 1] end
  if field['name'] == ARGV[1] then
    local lag = field['lag']
    if type(lag) ~= 'number' then lag = -1 end
    local any = #redis.call('XRANGE', KEYS[1], '(' .. field['last-delivered-id'], '+', 'COUNT', 1)
    return {field['pending'], lag, any}
  end
end
return {-1, -1, -1}
",
    )
});

/// How many URLs wait, from [`BACKLOG`]'s reply: none when no entry follows the group's
/// last delivered one; Redis' lag when it has one; else what is neither done, dead nor
/// held (at least one).
fn waiting(lag: i64, any: i64, outstanding: u64) -> u64 {
    match (any, u64::try_from(lag)) {
        (0, _) => 0,
        (_, Ok(lag)) if lag > 0 => lag,
        _ => outstanding.max(1),
    }
}

/// `attempt` until it succeeds, at most [`ATTEMPTS`] times, waiting a little longer each
/// time: for the commands that may simply be sent again.
async fn retried<T, F, Fut>(mut attempt: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, harvester_redis::RedisError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tries + 1 >= ATTEMPTS => return Err(QueueError::Redis(error.to_string())),
            Err(error) => {
                tries += 1;
                tracing::warn!(%error, tries, "queue: Redis command failed; trying again");
                tokio::time::sleep(Duration::from_millis(200) * 2u32.pow(tries)).await;
            }
        }
    }
}

/// Tries of a command [`retried`] makes.
const ATTEMPTS: u32 = 5;

/// A queued URL, as its stream entry's `data` field holds it.
#[derive(Debug, Clone, Deserialize)]
struct QueuedUrl {
    url: String,
}

/// The export's line of a dead URL.
fn dead_line(url: &str, reason: &str) -> Vec<u8> {
    serde_json::to_vec(&Line::unfetched(url, format!("dead: {reason}"))).unwrap_or_default()
}

/// `path` with `.part` appended, in the same directory (so a rename replaces atomically).
fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// Adds URLs to the stream, each once per queue. `KEYS`: the stream, the seen set.
/// `ARGV`: per URL, the URL and the entry's `data`. Returns how many went in.
static ENQUEUE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local added = 0
for i = 1, #ARGV, 2 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 1])
    added = added + 1
  end
end
return added
",
    )
});

/// Writes each URL's final line to the results, unless the URL has one already.
/// `KEYS`: the done hash, the results stream. `ARGV`: per URL, the URL and its line.
static COMPLETE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local written = 0
for i = 1, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], '1') == 1 then
    redis.call('XADD', KEYS[2], '*', 'url', ARGV[i], 'line', ARGV[i + 1])
    written = written + 1
  end
end
return written
",
    )
});

/// A URL's final line, on its way to the results, and the entry to acknowledge after.
struct Completion {
    url: String,
    line: Vec<u8>,
    delivery: Delivery<()>,
}

/// Writes final lines to the results in batches, retrying while Redis is away, and
/// acknowledges each URL's entry once its line is in. Ends when every sender is gone and
/// everything sent is written.
async fn complete(
    redis: RedisConnection,
    keys: Arc<Keys>,
    mut completions: mpsc::UnboundedReceiver<Completion>,
    backlog: Arc<AtomicUsize>,
) {
    let mut waiting = Vec::with_capacity(COMPLETE_BATCH);
    while completions.recv_many(&mut waiting, COMPLETE_BATCH).await > 0 {
        // A line holds a page's text: batches are bounded by bytes too.
        while !waiting.is_empty() {
            let mut bytes = 0;
            let take = waiting
                .iter()
                .take_while(|completion| {
                    bytes += completion.line.len() + completion.url.len();
                    bytes <= COMPLETE_BYTES
                })
                .count()
                .max(1);
            let batch: Vec<Completion> = waiting.drain(..take).collect();
            write_results(&redis, &keys, &batch).await;
            backlog.fetch_sub(batch.len(), Ordering::Relaxed);
            for completion in batch {
                completion.delivery.ack();
            }
        }
    }
}

/// Writes `batch`'s lines to the results, retrying until Redis takes them.
async fn write_results(redis: &RedisConnection, keys: &Arc<Keys>, batch: &[Completion]) {
    let mut failures = 0u32;
    loop {
        let keys = keys.clone();
        let args: Vec<(&str, &[u8])> = batch.iter().map(|c| (c.url.as_str(), c.line.as_slice())).collect();
        let written: Result<u64, _> = redis
            .run(|mut connection| async move {
                let mut call = COMPLETE.key(&keys.done);
                call.key(&keys.results);
                for (url, line) in &args {
                    call.arg(*url).arg(*line);
                }
                call.invoke_async(&mut connection).await
            })
            .await;
        match written {
            Ok(_) => return,
            Err(error) => {
                failures += 1;
                metrics::counter!("harvester_queue_result_write_failures_total").increment(1);
                let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(Duration::from_secs(5));
                tracing::warn!(%error, ?wait, urls = batch.len(), "queue: cannot write results to Redis; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Settles a queued URL: its final line goes to the results, then its entry is
/// acknowledged.
struct QueueReceipt {
    url: String,
    delivery: Delivery<()>,
    completions: mpsc::UnboundedSender<Completion>,
    backlog: Arc<AtomicUsize>,
}

impl std::fmt::Debug for QueueReceipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueReceipt").field("url", &self.url).field("entry", &self.delivery.entry_id()).finish()
    }
}

impl Receipt for QueueReceipt {
    fn settle(&self, line: &[u8]) {
        let completion = Completion { url: self.url.clone(), line: line.to_vec(), delivery: self.delivery.clone() };
        // Refused only after the work finished: the entry stays pending, fetched again.
        if self.completions.send(completion).is_ok() {
            self.backlog.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A collector's share of a queue: the URLs it is handed, until the queue is drained.
pub struct QueueWork {
    queue: Queue,
    deliveries: Option<mpsc::Receiver<Delivery<QueuedUrl>>>,
    source: Option<RunningSource>,
    completions: Option<mpsc::UnboundedSender<Completion>>,
    completer: Option<JoinHandle<()>>,
    /// Final lines settled and not yet written to the results.
    backlog: Arc<AtomicUsize>,
    max_backlog: usize,
    follow: bool,
    poll: tokio::time::Interval,
    depth_label: String,
}

impl QueueWork {
    /// Whether the queue is drained; samples its depth into
    /// `processing_queue_depth{queue_name="work-NAME"}` on the way. A Redis that does not
    /// answer is not drained.
    async fn drained(&self) -> bool {
        match self.queue.status().await {
            Ok(status) => {
                let depth = status.depth();
                metrics::gauge!("processing_queue_depth", "queue_name" => self.depth_label.clone()).set(depth as f64);
                status.drained()
            }
            Err(error) => {
                tracing::warn!(%error, "queue: cannot read the queue's state; going on");
                false
            }
        }
    }

    /// The assignment for `delivery`, or `None` when there is nothing to fetch (its URL is
    /// done already, or is not a URL: then its failed line is its result).
    async fn assign(&self, delivery: Delivery<QueuedUrl>) -> Option<Assignment> {
        let completions = self.completions.as_ref()?;
        let url = delivery.record().url.clone();
        // A URL handed out again may have its result already (its collector wrote it and
        // died before acknowledging). If Redis cannot say, it is fetched again: its second
        // line is not added, and a glitch must not cost the URL a delivery.
        if delivery.deliveries() > 1
            && matches!(self.queue.done(std::iter::once(url.as_str())).await.as_deref(), Ok([true]))
        {
            delivery.ack();
            return None;
        }
        let delivery = delivery.map(|_| ());
        match Target::parse(&url) {
            Ok(target) => Some(Assignment {
                target,
                receipt: Some(Arc::new(QueueReceipt {
                    url,
                    delivery,
                    completions: completions.clone(),
                    backlog: self.backlog.clone(),
                })),
            }),
            Err(reason) => {
                let line = serde_json::to_vec(&Line::unfetched(&url, format!("bad url: {reason}"))).unwrap_or_default();
                if completions.send(Completion { url, line, delivery }).is_ok() {
                    self.backlog.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        }
    }

    /// Hands back the URLs read and not started: each is acknowledged and added again as a
    /// new entry in one script, so that it is not counted as a delivery that failed.
    async fn give_back(&self, unstarted: Vec<Delivery<QueuedUrl>>) {
        if unstarted.is_empty() {
            return;
        }
        let entries: Vec<(String, String)> = unstarted
            .iter()
            .map(|delivery| {
                let data = serde_json::json!({ "url": delivery.record().url }).to_string();
                (delivery.entry_id().to_owned(), data)
            })
            .collect();
        let keys = self.queue.keys.clone();
        let given = self
            .queue
            .redis
            .run(|mut connection| async move {
                let mut call = GIVE_BACK.key(&keys.urls);
                call.arg(GROUP);
                for (id, data) in &entries {
                    call.arg(id).arg(data);
                }
                call.invoke_async::<u64>(&mut connection).await
            })
            .await;
        match given {
            Ok(count) => tracing::debug!(count, "queue: URLs not started handed back"),
            // They stay pending: another collector takes them after --claim-idle.
            Err(error) => tracing::warn!(%error, "queue: cannot hand back the URLs not started"),
        }
    }
}

/// Acknowledges entries and adds their URLs again as new entries, if they were still
/// pending (an entry acknowledged meanwhile is left alone). `KEYS`: the stream. `ARGV`: the
/// group, then per entry its id and `data`. Returns how many went back.
static GIVE_BACK: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"
local given = 0
for i = 2, #ARGV, 2 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'data', ARGV[i + 1])
    given = given + 1
  end
end
return given
",
    )
});

#[async_trait]
impl Work for QueueWork {
    async fn next(&mut self) -> Result<Option<Assignment>, WorkError> {
        loop {
            // While Redis does not take the results, no new URL is taken: lines would pile
            // up in memory and the fetches would be paid for nothing.
            if self.backlog.load(Ordering::Relaxed) > self.max_backlog {
                self.poll.tick().await;
                continue;
            }
            let Some(deliveries) = self.deliveries.as_mut() else { return Ok(None) };
            tokio::select! {
                delivery = deliveries.recv() => match delivery {
                    Some(delivery) => {
                        if let Some(assignment) = self.assign(delivery).await {
                            return Ok(Some(assignment));
                        }
                    }
                    None => return Err(WorkError("the queue's reader stopped".to_owned())),
                },
                _ = self.poll.tick() => {
                    // Sampled either way: the depth is what scales collectors.
                    if self.drained().await && !self.follow {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn total(&self) -> Option<u64> {
        None
    }

    fn lists_the_rest_on_stop(&self) -> bool {
        false
    }

    async fn stop_taking(&mut self) {
        // Stop reading (and reclaiming) as soon as the run takes no more URLs; those read
        // and not started go back to the queue as they were.
        if let Some(source) = self.source.as_mut() {
            source.stop().await;
        }
        let mut unstarted = Vec::new();
        if let Some(mut deliveries) = self.deliveries.take() {
            deliveries.close();
            while let Ok(delivery) = deliveries.try_recv() {
                unstarted.push(delivery);
            }
        }
        self.give_back(unstarted).await;
    }

    async fn finish(&mut self) {
        self.stop_taking().await;
        // The last results go in (or, past the deadline, their URLs stay pending).
        self.completions = None;
        if let Some(mut completer) = self.completer.take()
            && tokio::time::timeout(FINISH_DEADLINE, &mut completer).await.is_err()
        {
            tracing::warn!("queue: Redis did not take the last results in time; their URLs will be fetched again");
            completer.abort();
        }
        if let Some(source) = self.source.take() {
            source.finish(FINISH_DEADLINE).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_name_is_one_key_part_and_its_own_hash_tag() {
        for good in ["shop", "shop-2026.12_a", &"q".repeat(64)] {
            assert_eq!(QueueName::parse(good).map(|name| name.as_str().to_owned()).ok().as_deref(), Some(good));
        }
        for bad in ["", "shop:1", "{shop}", "a b", "shop\n", "é", &"q".repeat(65)] {
            let error = QueueName::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
    }

    #[test]
    fn what_waits_is_exact_when_nothing_follows_and_never_zero_when_something_does() {
        // Nothing after the last delivered entry: nothing waits, whatever the lag says.
        assert_eq!(waiting(1, 0, 5), 0);
        assert_eq!(waiting(-1, 0, 5), 0);
        // Something follows: Redis' lag, or, when it cannot tell, the outstanding URLs.
        assert_eq!(waiting(7, 1, 5), 7);
        assert_eq!(waiting(-1, 1, 5), 5);
        assert_eq!(waiting(-1, 1, 0), 1);
        assert_eq!(waiting(0, 1, 0), 1);
    }

    #[test]
    fn every_key_of_a_queue_shares_its_hash_tag() {
        let keys = Keys::of("harvester:", &QueueName::parse("shop").expect("valid"));
        for key in [&keys.urls, &keys.dead, &keys.seen, &keys.done, &keys.results] {
            assert!(key.starts_with("harvester:collect:{shop}:"), "{key}");
        }
        assert_eq!(keys.stream, "collect:{shop}:urls");
        // The stream source's dead-letter stream is `<stream>:dead`, in the same slot.
        assert_eq!(keys.dead, format!("harvester:{}:dead", keys.stream));
    }
}
