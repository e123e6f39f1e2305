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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::redis_streams::{Delivery, RedisConnection, RedisStreamSource, RunningSource, StreamConfig};
use harvester_redis::redis::{self, Script};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::input::{self, InputError, Target};
use crate::records::{Line, Status};
use crate::work::{Assignment, Receipt, Work, WorkError};

/// The consumer group every collector of a queue joins.
const GROUP: &str = "collectors";
/// URLs sent to Redis per enqueue script call.
const ENQUEUE_BATCH: usize = 500;
/// Entries read per round trip when exporting.
const EXPORT_PAGE: usize = 1_000;
/// Results written per completion script call.
const COMPLETE_BATCH: usize = 256;
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

    /// URLs waiting or held. When Redis cannot tell how many wait (no `lag`), every URL
    /// neither done nor dead is counted: the depth never reads as a huge number that would
    /// scale collectors to their maximum.
    pub fn depth(&self) -> u64 {
        if self.waiting == UNKNOWN_LAG {
            self.enqueued.saturating_sub(self.done.saturating_add(self.dead)).max(self.pending)
        } else {
            self.waiting.saturating_add(self.pending)
        }
    }
}

/// `waiting` when Redis cannot compute the group's lag: never drained.
const UNKNOWN_LAG: u64 = u64::MAX;

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

    /// Loads the URL list at `path`: every line is checked first (a bad one is refused with
    /// its number before anything is sent), then the URLs go in, in order, in batches,
    /// each once per queue. The file is read line by line, twice; memory stays bounded.
    pub async fn enqueue(&self, path: &Path) -> Result<Enqueued, QueueError> {
        let mut lines = 0u64;
        let mut check = UrlLines::open(path).await?;
        while check.next().await?.is_some() {
            lines += 1;
        }
        if lines == 0 {
            return Err(InputError::NoUrls { path: path.to_owned() }.into());
        }
        let mut urls = UrlLines::open(path).await?;
        let mut batch = Vec::with_capacity(ENQUEUE_BATCH);
        let mut added = 0;
        loop {
            let target = urls.next().await?;
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
        Ok(Enqueued { added, already_queued: lines - added })
    }

    /// Adds `batch` (each URL unless already seen by the queue); returns how many went in.
    async fn push(&self, batch: &[Target]) -> Result<u64, QueueError> {
        let keys = self.keys.clone();
        let args: Vec<(String, String)> = batch
            .iter()
            .map(|target| (target.url.to_string(), serde_json::json!({ "url": &*target.url }).to_string()))
            .collect();
        self.redis
            .run(|mut connection| async move {
                let mut call = ENQUEUE.key(&keys.urls);
                call.key(&keys.seen);
                for (url, data) in &args {
                    call.arg(url).arg(data);
                }
                call.invoke_async(&mut connection).await
            })
            .await
            .map_err(|e| QueueError::Redis(e.to_string()))
    }

    /// Where the queue stands now.
    pub async fn status(&self) -> Result<QueueStatus, QueueError> {
        let keys = self.keys.clone();
        let (enqueued, done, dead, groups): (u64, u64, u64, redis::Value) = self
            .redis
            .run(|mut connection| async move {
                redis::pipe()
                    .cmd("SCARD")
                    .arg(&keys.seen)
                    .cmd("HLEN")
                    .arg(&keys.done)
                    .cmd("XLEN")
                    .arg(&keys.dead)
                    .add_command(status_groups(&keys.urls))
                    .query_async(&mut connection)
                    .await
            })
            .await
            .map_err(|e| QueueError::Redis(e.to_string()))?;
        let (waiting, pending) = group_backlog(&groups, enqueued);
        Ok(QueueStatus { enqueued, done, dead, waiting, pending })
    }

    /// Writes one line per URL to `out` (atomically: a temporary file renamed over it):
    /// every result, then a failed line for each dead URL without one.
    pub async fn export(&self, out: &Path) -> Result<Exported, QueueError> {
        if self.status().await?.enqueued == 0 {
            // A typo in the name or the wrong Redis: do not write an empty file over `out`.
            return Err(QueueError::Empty { name: self.name.as_str().to_owned() });
        }
        let output = |source| QueueError::Output { path: out.to_owned(), source };
        let temporary = temporary_beside(out);
        let file = tokio::fs::File::create(&temporary).await.map_err(output)?;
        let mut writer = tokio::io::BufWriter::new(file);
        let mut lines = 0;
        let mut after = "-".to_owned();
        loop {
            let page = self.range(&self.keys.results, &after).await?;
            let Some(last) = page.last() else { break };
            after = format!("({}", last.id);
            for entry in &page {
                if let Some(line) = entry.get::<Vec<u8>>("line") {
                    writer.write_all(&line).await.map_err(output)?;
                    writer.write_all(b"\n").await.map_err(output)?;
                    lines += 1;
                }
            }
        }
        let mut dead = 0;
        after = "-".to_owned();
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
            for ((url, reason), done) in urls.iter().zip(done) {
                if !done {
                    let line = dead_line(url, reason);
                    writer.write_all(&line).await.map_err(output)?;
                    writer.write_all(b"\n").await.map_err(output)?;
                    dead += 1;
                }
            }
        }
        writer.flush().await.map_err(output)?;
        let file = writer.into_inner();
        file.sync_all().await.map_err(output)?;
        drop(file);
        tokio::fs::rename(&temporary, out).await.map_err(output)?;
        let status = self.status().await?;
        let written = lines + dead;
        Ok(Exported { lines: written, dead, unfinished: status.enqueued.saturating_sub(written) })
    }

    /// Up to a page of `key`'s entries after `after` (`-`, or `(id`).
    async fn range(&self, key: &str, after: &str) -> Result<Vec<redis::streams::StreamId>, QueueError> {
        let (key, after) = (key.to_owned(), after.to_owned());
        let reply: redis::streams::StreamRangeReply = self
            .redis
            .run(|mut connection| async move {
                redis::cmd("XRANGE")
                    .arg(&key)
                    .arg(&after)
                    .arg("+")
                    .arg("COUNT")
                    .arg(EXPORT_PAGE)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .map_err(|e| QueueError::Redis(e.to_string()))?;
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
            read_count: settings.concurrency.clamp(1, 100),
            block: Duration::from_millis(500),
            visibility_timeout: settings.claim_idle,
            max_deliveries: settings.max_deliveries,
            ..StreamConfig::new(self.keys.stream.clone(), GROUP, settings.consumer.clone())
        };
        let source = RedisStreamSource::<QueuedUrl>::new(self.redis.clone(), config)
            .map_err(|e| QueueError::Config(format!("--queue: {e}")))?;
        let (inbox, deliveries) = mpsc::channel(settings.concurrency.max(1));
        let source = source.spawn(inbox).map_err(|e| QueueError::Config(format!("--queue: {e}")))?;
        let (completions, unsent) = mpsc::unbounded_channel();
        let completer = tokio::spawn(complete(self.redis.clone(), self.keys.clone(), unsent));
        Ok(QueueWork {
            queue: self.clone(),
            deliveries: Some(deliveries),
            source: Some(source),
            completions: Some(completions),
            completer: Some(completer),
            follow: settings.follow,
            poll: tokio::time::interval(POLL_EVERY),
            depth_label: format!("work-{}", self.name.as_str()),
        })
    }
}

/// `XINFO GROUPS` of the stream (an empty reply when the stream does not exist yet).
fn status_groups(stream: &str) -> redis::Cmd {
    let mut command = redis::cmd("EVAL");
    command.arg(XINFO_GROUPS).arg(1).arg(stream);
    command
}

/// Returns `XINFO GROUPS` of `KEYS[1]`, or nothing when the stream does not exist.
const XINFO_GROUPS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
return redis.call('XINFO', 'GROUPS', KEYS[1])
";

/// The collectors' group's URLs not yet read (`lag`) and held (`pending`). Before any
/// collector joined, every enqueued URL is waiting.
fn group_backlog(groups: &redis::Value, enqueued: u64) -> (u64, u64) {
    let redis::Value::Array(groups) = groups else { return (enqueued, 0) };
    for group in groups {
        let fields: Vec<(String, redis::Value)> = match group {
            redis::Value::Array(items) => items
                .chunks(2)
                .filter_map(|pair| match pair {
                    [name, value] => redis::from_redis_value_ref::<String>(name).ok().map(|n| (n, value.clone())),
                    _ => None,
                })
                .collect(),
            redis::Value::Map(items) => items
                .iter()
                .filter_map(|(name, value)| {
                    redis::from_redis_value_ref::<String>(name).ok().map(|n| (n, value.clone()))
                })
                .collect(),
            _ => continue,
        };
        let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, value)| value);
        let is_ours =
            field("name").and_then(|v| redis::from_redis_value_ref::<String>(v).ok()).as_deref() == Some(GROUP);
        if !is_ours {
            continue;
        }
        let number = |name: &str| field(name).and_then(|v| redis::from_redis_value_ref::<u64>(v).ok());
        let pending = number("pending").unwrap_or(0);
        // `lag` is nil when Redis cannot tell (entries deleted): then count as waiting
        // whatever is neither done, dead nor pending, which the caller cannot see here;
        // err on the side of "not drained".
        let waiting = number("lag").unwrap_or(UNKNOWN_LAG);
        return (waiting, pending);
    }
    (enqueued, 0)
}

/// A queued URL, as its stream entry's `data` field holds it.
#[derive(Debug, Clone, Deserialize)]
struct QueuedUrl {
    url: String,
}

/// The export's line of a dead URL.
fn dead_line(url: &str, reason: &str) -> Vec<u8> {
    let line = Line {
        url: url.to_owned(),
        status: Status::Failed,
        http_status: None,
        proxy: None,
        attempts: 0,
        elapsed_ms: 0,
        record: None,
        error: Some(format!("dead: {reason}")),
    };
    serde_json::to_vec(&line).unwrap_or_default()
}

/// `path` with `.part` appended, in the same directory (so a rename replaces atomically).
fn temporary_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".part");
    path.with_file_name(name)
}

/// The URLs of a list, read line by line (repeats included); a bad line is refused with
/// its number.
struct UrlLines {
    path: PathBuf,
    lines: tokio::io::Lines<BufReader<tokio::fs::File>>,
    number: usize,
}

impl UrlLines {
    async fn open(path: &Path) -> Result<UrlLines, QueueError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|source| InputError::Unreadable { path: path.to_owned(), source })?;
        Ok(UrlLines { path: path.to_owned(), lines: BufReader::new(file).lines(), number: 0 })
    }

    async fn next(&mut self) -> Result<Option<Target>, QueueError> {
        let path = &self.path;
        while let Some(line) =
            self.lines.next_line().await.map_err(|source| InputError::Unreadable { path: path.clone(), source })?
        {
            self.number += 1;
            match input::parse_line(&line) {
                Ok(Some(target)) => return Ok(Some(target)),
                Ok(None) => {}
                Err(reason) => {
                    return Err(InputError::BadUrl { path: path.clone(), line: self.number, reason }.into());
                }
            }
        }
        Ok(None)
    }
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
async fn complete(redis: RedisConnection, keys: Arc<Keys>, mut completions: mpsc::UnboundedReceiver<Completion>) {
    let mut batch = Vec::with_capacity(COMPLETE_BATCH);
    while completions.recv_many(&mut batch, COMPLETE_BATCH).await > 0 {
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
                Ok(_) => break,
                Err(error) => {
                    failures += 1;
                    let wait = Duration::from_millis(100 * 2u64.pow(failures.min(6))).min(Duration::from_secs(5));
                    tracing::warn!(%error, ?wait, urls = batch.len(), "queue: cannot write results to Redis; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        for completion in batch.drain(..) {
            completion.delivery.ack();
        }
    }
}

/// Settles a queued URL: its final line goes to the results, then its entry is
/// acknowledged.
struct QueueReceipt {
    url: String,
    delivery: Delivery<()>,
    completions: mpsc::UnboundedSender<Completion>,
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
        let _ = self.completions.send(completion);
    }
}

/// A collector's share of a queue: the URLs it is handed, until the queue is drained.
pub struct QueueWork {
    queue: Queue,
    deliveries: Option<mpsc::Receiver<Delivery<QueuedUrl>>>,
    source: Option<RunningSource>,
    completions: Option<mpsc::UnboundedSender<Completion>>,
    completer: Option<JoinHandle<()>>,
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
        if delivery.deliveries() > 1 && self.queue.done(std::iter::once(url.as_str())).await.ok()? == [true] {
            // A collector wrote its result and died before acknowledging it.
            delivery.ack();
            return None;
        }
        let delivery = delivery.map(|_| ());
        match Target::parse(&url) {
            Ok(target) => Some(Assignment {
                target,
                receipt: Some(Arc::new(QueueReceipt { url, delivery, completions: completions.clone() })),
            }),
            Err(reason) => {
                let line = Line {
                    url: url.clone(),
                    status: Status::Failed,
                    http_status: None,
                    proxy: None,
                    attempts: 0,
                    elapsed_ms: 0,
                    record: None,
                    error: Some(format!("bad url: {reason}")),
                };
                let line = serde_json::to_vec(&line).unwrap_or_default();
                let _ = completions.send(Completion { url, line, delivery });
                None
            }
        }
    }
}

#[async_trait]
impl Work for QueueWork {
    async fn next(&mut self) -> Result<Option<Assignment>, WorkError> {
        loop {
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

    async fn finish(&mut self) {
        // Stop reading; what was read and not taken goes back to the queue.
        if let Some(source) = self.source.as_mut() {
            source.stop().await;
        }
        self.deliveries = None;
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
    use redis::Value;

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
    fn every_key_of_a_queue_shares_its_hash_tag() {
        let keys = Keys::of("harvester:", &QueueName::parse("shop").expect("valid"));
        for key in [&keys.urls, &keys.dead, &keys.seen, &keys.done, &keys.results] {
            assert!(key.starts_with("harvester:collect:{shop}:"), "{key}");
        }
        assert_eq!(keys.stream, "collect:{shop}:urls");
        // The stream source's dead-letter stream is `<stream>:dead`, in the same slot.
        assert_eq!(keys.dead, format!("harvester:{}:dead", keys.stream));
    }

    fn group(name: &str, pending: i64, lag: Value) -> Value {
        Value::Array(vec![
            Value::BulkString(b"name".to_vec()),
            Value::BulkString(name.as_bytes().to_vec()),
            Value::BulkString(b"pending".to_vec()),
            Value::Int(pending),
            Value::BulkString(b"lag".to_vec()),
            lag,
        ])
    }

    #[test]
    fn the_backlog_is_the_collectors_groups_lag_and_pending() {
        let groups = Value::Array(vec![group("others", 9, Value::Int(9)), group(GROUP, 3, Value::Int(5))]);
        assert_eq!(group_backlog(&groups, 100), (5, 3));
        // Before any collector joined, everything enqueued waits.
        assert_eq!(group_backlog(&Value::Array(vec![]), 100), (100, 0));
        // Redis cannot tell the lag: never taken for drained.
        let unknown = Value::Array(vec![group(GROUP, 2, Value::Nil)]);
        let (waiting, pending) = group_backlog(&unknown, 10);
        let status = QueueStatus { enqueued: 10, done: 5, dead: 1, waiting, pending };
        assert!(!status.drained());
        // The depth is then what is neither done nor dead, never a huge number.
        assert_eq!(status.depth(), 4);
    }
}
