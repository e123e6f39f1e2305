//! Redis Streams in and out of the pipeline, against a real redis-server on loopback and
//! a real Redis Cluster of three masters (the tests written for both run as
//! `<test>::standalone` and `<test>::cluster`):
//! every record produced is stored and acknowledged; a crashed consumer's entries are
//! taken over after the visibility timeout (and a live one's are not); poison entries end
//! in the dead-letter stream; the sink appends a batch in one transaction and trims; a
//! Redis outage is survived and consumption resumes after the restart.
//!
//! Run with `cargo test --features redis --test redis_streams` (or `scripts/test.sh`).

#![cfg(feature = "redis")]

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use harvester::pipeline::processor::{ErrorPolicy, SinkRetry, Stage, StreamProcessor};
use harvester::pipeline::redis_streams::{
    AckingSink, Delivery, RedisConfig, RedisConnection, RedisStreamSink, RedisStreamSource, RunningSource,
    StreamConfig, StreamSinkConfig,
};
use harvester::pipeline::sinks::{CallbackSink, MemorySink};
use harvester::pipeline::{DeadLetter, Sink, SinkError, StageOutcome};
use harvester_redis::Connection;
use harvester_testbed::on_standalone_and_cluster;
use harvester_testbed::support::{Redis, RedisDeployment, RedisKind, RedisServer, eventually};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const PREFIX: &str = "test:";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Job {
    n: u64,
}

fn config(redis: &impl RedisServer) -> RedisConfig {
    RedisConfig {
        url: redis.url(),
        cluster: redis.is_cluster(),
        key_prefix: PREFIX.into(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_millis(500),
        ..Default::default()
    }
}

async fn connect(redis: &impl RedisServer) -> RedisConnection {
    RedisConnection::connect(&config(redis)).await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

/// A connection of its own for looking at what the source and sink left in Redis.
async fn admin(redis: &impl RedisServer) -> Connection {
    connect(redis).await.dedicated().await.unwrap_or_else(|e| panic!("{e}\n{}", redis.logs()))
}

/// A consumer that reacts fast: short blocks and backoffs.
fn stream_config(stream: &str, consumer: &str) -> StreamConfig {
    StreamConfig {
        block: Duration::from_millis(200),
        read_count: 200,
        retry_base_delay: Duration::from_millis(20),
        retry_max_delay: Duration::from_millis(300),
        ..StreamConfig::new(stream, "workers", consumer)
    }
}

async fn produce(connection: &RedisConnection, stream: &str, numbers: std::ops::Range<u64>) {
    let sink = RedisStreamSink::<Job>::new(connection.clone(), StreamSinkConfig::new(stream)).expect("valid config");
    let jobs: Vec<Job> = numbers.map(|n| Job { n }).collect();
    for batch in jobs.chunks(500) {
        sink.write(batch).await.expect("Redis is up");
    }
}

/// Entries of `stream` read by the group but not acknowledged.
async fn pending(admin: &mut Connection, stream: &str) -> u64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(format!("{PREFIX}{stream}"))
        .arg("workers")
        .query_async(admin)
        .await
        .expect("XPENDING");
    match reply {
        redis::Value::Array(items) => {
            items.first().and_then(|count| redis::from_redis_value_ref(count).ok()).unwrap_or(0)
        }
        other => panic!("unexpected XPENDING reply {other:?}"),
    }
}

async fn stream_len(admin: &mut Connection, key: &str) -> u64 {
    redis::cmd("XLEN").arg(format!("{PREFIX}{key}")).query_async(admin).await.expect("XLEN")
}

/// Every entry of `key`, each as its fields.
async fn entries(admin: &mut Connection, key: &str) -> Vec<HashMap<String, String>> {
    let reply: redis::streams::StreamRangeReply =
        redis::cmd("XRANGE").arg(format!("{PREFIX}{key}")).arg("-").arg("+").query_async(admin).await.expect("XRANGE");
    reply
        .ids
        .into_iter()
        .map(|entry| {
            entry
                .map
                .iter()
                .map(|(field, value)| (field.clone(), redis::from_redis_value_ref(value).expect("a string field")))
                .collect()
        })
        .collect()
}

/// `calls` of `cmdstat_<command>` in `INFO commandstats`, summed over every node.
async fn command_calls(redis: &impl RedisServer, command: &str) -> u64 {
    let mut calls = 0;
    for url in redis.node_urls() {
        let client = redis::Client::open(url).expect("valid URL");
        let mut node = client.get_multiplexed_async_connection().await.expect("a node connection");
        let info: String = redis::cmd("INFO").arg("commandstats").query_async(&mut node).await.expect("INFO");
        calls += harvester_testbed::support::command_calls(&info, command);
    }
    calls
}

/// A pass-through stage, a memory sink behind an acking sink, and a source feeding them.
async fn consume_into_memory(
    connection: &RedisConnection,
    config: StreamConfig,
) -> (StreamProcessor<Delivery<Job>>, RunningSource, Arc<MemorySink<Job>>) {
    let stored = Arc::new(MemorySink::new("stored"));
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", Delivery::handler(|job: Job| async move { StageOutcome::Keep(job) })).workers(2))
        .batch_size(100)
        .sink(AckingSink::new(stored.clone()))
        .build()
        .expect("valid processor");
    let source = RedisStreamSource::<Job>::new(connection.clone(), config)
        .expect("valid config")
        .spawn(processor.sender())
        .expect("inside a runtime");
    (processor, source, stored)
}

fn numbers(stored: &MemorySink<Job>) -> Vec<u64> {
    let mut numbers: Vec<u64> = stored.records().iter().map(|job| job.n).collect();
    numbers.sort_unstable();
    numbers
}

async fn every_produced_record_is_stored_once_and_acknowledged(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    produce(&connection, "jobs", 0..3_000).await;

    let (processor, mut source, stored) = consume_into_memory(&connection, stream_config("jobs", "c1")).await;
    eventually(Duration::from_secs(30), "3000 records stored and acknowledged", || {
        let (stored, stats) = (stored.len(), source.stats());
        async move { stored >= 3_000 && stats.acked_records >= 3_000 }
    })
    .await;
    source.stop().await;
    let report = processor.shutdown(Duration::from_secs(5)).await;
    let stats = source.finish(Duration::from_secs(5)).await;

    assert_eq!(numbers(&stored), (0..3_000).collect::<Vec<_>>(), "each record exactly once, without a crash");
    assert_eq!(pending(&mut admin, "jobs").await, 0, "every entry acknowledged");
    assert_eq!((stats.read, stats.delivered, stats.acked_records), (3_000, 3_000, 3_000), "{stats:?}");
    assert_eq!((stats.abandoned, stats.in_flight, stats.reclaimed, stats.dead_lettered), (0, 0, 0, 0), "{stats:?}");
    assert_eq!((report.received, report.output, report.in_flight_at_end), (3_000, 3_000, 0));
}

async fn a_crashed_consumers_entries_are_taken_over_after_the_visibility_timeout(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    let visibility = Duration::from_millis(500);
    produce(&connection, "crash", 0..300).await;

    // Consumer A reads everything, but its sink never finishes a write.
    let stuck = CallbackSink::new("stuck", |_: &[Job]| Box::pin(futures::future::pending::<Result<(), SinkError>>()));
    let processor_a = StreamProcessor::builder()
        .stage(Stage::new("pass", Delivery::handler(|job: Job| async move { StageOutcome::Keep(job) })))
        .sink(AckingSink::new(stuck))
        .build()
        .expect("valid processor");
    let config_a = StreamConfig { visibility_timeout: visibility, ..stream_config("crash", "a") };
    let source_a = RedisStreamSource::<Job>::new(connection.clone(), config_a)
        .expect("valid config")
        .spawn(processor_a.sender())
        .expect("inside a runtime");
    eventually(Duration::from_secs(10), "A holds all 300 entries", || {
        let delivered = source_a.stats().delivered;
        async move { delivered == 300 }
    })
    .await;

    // Consumer B runs beside the live A: A renews its leases, so B takes nothing.
    let deliveries_seen = Arc::new(AtomicU32::new(0));
    let seen = deliveries_seen.clone();
    let stored = Arc::new(MemorySink::new("stored-by-b"));
    let processor_b = StreamProcessor::builder()
        .stage(Stage::new("note", move |delivery: Delivery<Job>| {
            seen.fetch_max(delivery.deliveries(), Ordering::Relaxed);
            async move { StageOutcome::Keep(delivery) }
        }))
        .sink(AckingSink::new(stored.clone()))
        .build()
        .expect("valid processor");
    let config_b = StreamConfig { visibility_timeout: visibility, ..stream_config("crash", "b") };
    let mut source_b = RedisStreamSource::<Job>::new(connection.clone(), config_b)
        .expect("valid config")
        .spawn(processor_b.sender())
        .expect("inside a runtime");
    // B reclaims every half visibility timeout, the first time at once: its fourth round
    // starts at least 1.5 visibility timeouts after A held every entry, when any of them
    // would be idle past the timeout had A not renewed it. Watch B complete that round.
    eventually(Duration::from_secs(10), "B completes four reclaim rounds", || {
        let rounds = source_b.stats().reclaim_rounds;
        async move { rounds >= 4 }
    })
    .await;
    assert_eq!(source_b.stats().reclaimed, 0, "a live consumer's entries are not taken: {:?}", source_b.stats());
    assert!(stored.is_empty());

    // A crashes: no more renewals, no acknowledgements.
    source_a.abort().await;
    let _ = processor_a.abort().await;

    eventually(Duration::from_secs(15), "B stores all 300 records A held", || {
        let stored = stored.len();
        async move { stored >= 300 }
    })
    .await;
    eventually(Duration::from_secs(5), "B acknowledges them", || {
        let acked = source_b.stats().acked_records;
        async move { acked >= 300 }
    })
    .await;
    source_b.stop().await;
    processor_b.shutdown(Duration::from_secs(5)).await;
    let stats = source_b.finish(Duration::from_secs(5)).await;

    assert_eq!(numbers(&stored), (0..300).collect::<Vec<_>>());
    assert_eq!(stats.reclaimed, 300, "{stats:?}");
    assert_eq!(deliveries_seen.load(Ordering::Relaxed), 2, "taken over once: the second delivery");
    assert_eq!(pending(&mut admin, "crash").await, 0);
}

async fn poison_entries_reach_the_dead_letter_stream_after_the_delivery_limit(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    produce(&connection, "poison", 0..5).await;
    let _: String = redis::cmd("XADD")
        .arg(format!("{PREFIX}poison"))
        .arg("*")
        .arg("data")
        .arg("not json")
        .query_async(&mut admin)
        .await
        .expect("XADD");
    let _: String = redis::cmd("XADD")
        .arg(format!("{PREFIX}poison"))
        .arg("*")
        .arg("payload")
        .arg("{}")
        .query_async(&mut admin)
        .await
        .expect("XADD");

    // Every attempt fails, and the dead-letter sink refuses too: nothing can store them.
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    let refusing = CallbackSink::new("refusing", |_: &[DeadLetter<Job>]| {
        Box::pin(async { Err(SinkError::new("refusing", "no room for dead letters")) })
    });
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new(
                "fail",
                Delivery::handler(move |job: Job| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    async move { StageOutcome::Error(job, "always fails".into()) }
                }),
            )
            .on_error(ErrorPolicy::DeadLetter),
        )
        .sink(AckingSink::new(MemorySink::<Job>::new("never")))
        .dead_letter(AckingSink::new(refusing))
        .sink_retry(SinkRetry { max_attempts: 1, base_delay: Duration::from_millis(10) })
        .build()
        .expect("valid processor");
    let config = StreamConfig {
        visibility_timeout: Duration::from_millis(300),
        max_deliveries: 2,
        ..stream_config("poison", "p")
    };
    let mut source = RedisStreamSource::<Job>::new(connection.clone(), config)
        .expect("valid config")
        .spawn(processor.sender())
        .expect("inside a runtime");

    eventually(Duration::from_secs(15), "all 7 entries in the dead-letter stream", || {
        let mut admin = admin.clone();
        async move { stream_len(&mut admin, "poison:dead").await >= 7 }
    })
    .await;
    source.stop().await;
    processor.shutdown(Duration::from_secs(5)).await;
    let stats = source.finish(Duration::from_secs(5)).await;

    let dead = entries(&mut admin, "poison:dead").await;
    assert_eq!(dead.len(), 7);
    let (undecodable, overdelivered): (Vec<_>, Vec<_>) =
        dead.iter().partition(|letter| letter["dead_reason"].starts_with("cannot decode"));
    assert_eq!(undecodable.len(), 2, "{dead:?}");
    assert!(undecodable.iter().all(|letter| letter["dead_deliveries"] == "1"), "dead-lettered at once: {dead:?}");
    assert!(undecodable.iter().any(|letter| letter.get("data").map(String::as_str) == Some("not json")));
    assert!(undecodable.iter().any(|letter| letter.get("payload").map(String::as_str) == Some("{}")));
    assert_eq!(overdelivered.len(), 5, "{dead:?}");
    for letter in &overdelivered {
        assert_eq!(letter["dead_deliveries"], "3", "{letter:?}");
        assert!(letter["dead_reason"].contains("max_deliveries is 2"), "{letter:?}");
        let job: Job = serde_json::from_str(&letter["data"]).expect("the original record is kept");
        assert!(job.n < 5);
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 10, "each poison record was tried on both of its deliveries");
    assert_eq!((stats.dead_lettered, stats.undecodable), (7, 2), "{stats:?}");
    assert_eq!(pending(&mut admin, "poison").await, 0, "dead-lettered entries are acknowledged");
}

async fn dropped_and_dead_lettered_records_are_acknowledged_once_settled(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let admin = admin(&redis).await;
    produce(&connection, "settle", 0..10).await;

    let stored = Arc::new(MemorySink::<Job>::new("stored"));
    let failed = Arc::new(MemorySink::<DeadLetter<Job>>::new("failed"));
    let processor = StreamProcessor::builder()
        .stage(Stage::new(
            "sort",
            Delivery::handler(|job: Job| async move {
                match job.n % 3 {
                    0 => StageOutcome::Drop,
                    1 => StageOutcome::Error(job, "odd one out".into()),
                    _ => StageOutcome::Keep(job),
                }
            }),
        ))
        .sink(AckingSink::new(stored.clone()))
        .dead_letter(AckingSink::new(failed.clone()))
        .build()
        .expect("valid processor");
    let mut source = RedisStreamSource::<Job>::new(connection.clone(), stream_config("settle", "s"))
        .expect("valid config")
        .spawn(processor.sender())
        .expect("inside a runtime");

    eventually(Duration::from_secs(10), "all 10 entries acknowledged", || {
        let mut admin = admin.clone();
        let acked = source.stats().acked_records;
        async move { acked == 10 && pending(&mut admin, "settle").await == 0 }
    })
    .await;
    source.stop().await;
    processor.shutdown(Duration::from_secs(5)).await;
    let stats = source.finish(Duration::from_secs(5)).await;

    assert_eq!(numbers(&stored), vec![2, 5, 8]);
    let mut dead: Vec<u64> = failed.records().iter().map(|letter| letter.record.n).collect();
    dead.sort_unstable();
    assert_eq!(dead, vec![1, 4, 7]);
    assert_eq!((stats.delivered, stats.acked_records, stats.abandoned), (10, 10, 0), "{stats:?}");
}

/// A record whose serialization always fails.
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused"))
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum Mixed {
    Job(Job),
    Bad(Unserializable),
}

async fn the_sink_appends_a_batch_in_one_transaction_and_trims_the_stream(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    let config = StreamSinkConfig { max_len: Some(100), ..StreamSinkConfig::new("out") };
    let sink = RedisStreamSink::<Job>::new(connection.clone(), config).expect("valid config");
    let (xadd_before, exec_before) = (command_calls(&redis, "xadd").await, command_calls(&redis, "exec").await);

    let jobs: Vec<Job> = (0..1_000).map(|n| Job { n }).collect();
    for batch in jobs.chunks(250) {
        sink.write(batch).await.expect("Redis is up");
    }

    assert_eq!(command_calls(&redis, "xadd").await - xadd_before, 1_000);
    assert_eq!(command_calls(&redis, "exec").await - exec_before, 4, "one transaction per batch");
    let len = stream_len(&mut admin, "out").await;
    // `MAXLEN ~` trims whole nodes (100 entries by default): at least 100 are kept.
    assert!((100..250).contains(&len), "XLEN {len}");
    let last = entries(&mut admin, "out").await.pop().expect("entries");
    assert_eq!(serde_json::from_str::<Job>(&last["data"]).expect("JSON"), Job { n: 999 });

    let mixed = RedisStreamSink::<Mixed>::new(connection, StreamSinkConfig::new("mixed")).expect("valid config");
    let error = mixed.write(&[Mixed::Job(Job { n: 1 }), Mixed::Bad(Unserializable)]).await.expect_err("refused");
    assert!(error.message.contains("record 1"), "{error}");
    assert_eq!(stream_len(&mut admin, "mixed").await, 0, "nothing of a failed batch is appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumption_survives_a_redis_outage_and_resumes_after_the_restart() {
    let mut redis = Redis::start();
    let connection = connect(&redis).await;
    produce(&connection, "outage", 0..200).await;
    let (processor, mut source, stored) = consume_into_memory(&connection, stream_config("outage", "o")).await;
    eventually(Duration::from_secs(10), "the first 200 records stored", || {
        let stored = stored.len();
        async move { stored >= 200 }
    })
    .await;

    redis.stop();
    let sink = RedisStreamSink::<Job>::new(connection.clone(), StreamSinkConfig::new("outage")).expect("valid config");
    assert!(sink.write(&[Job { n: 1_000 }]).await.is_err(), "the sink reports the outage");
    eventually(Duration::from_secs(10), "the source notices the outage", || {
        let errors = source.stats().errors;
        async move { errors > 0 }
    })
    .await;
    assert!(source.is_reading(), "the source keeps trying");

    redis.restart();
    // The restarted Redis is empty; the sink's first writes may still meet the old
    // connection, so write until one goes through.
    let jobs: Vec<Job> = (200..400).map(|n| Job { n }).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(error) = sink.write(&jobs).await {
        assert!(Instant::now() < deadline, "Redis is back, yet: {error}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(20), "the records written after the restart are stored", || {
        let have: BTreeSet<u64> = stored.records().iter().map(|job| job.n).collect();
        async move { (0..400).all(|n| have.contains(&n)) }
    })
    .await;
    assert!(source.is_reading());
    source.stop().await;
    let report = processor.shutdown(Duration::from_secs(5)).await;
    let stats = source.finish(Duration::from_secs(5)).await;

    assert!(stats.errors > 0, "{stats:?}");
    assert_eq!(report.in_flight_at_end, 0);
    assert!(!report.deadline_exceeded);
}

async fn an_entry_whose_dead_letter_cannot_be_stored_stays_pending(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    // The dead-letter key holds a string: every XADD to it fails (WRONGTYPE).
    let _: () =
        redis::cmd("SET").arg(format!("{PREFIX}broken:dead")).arg("oops").query_async(&mut admin).await.expect("SET");
    let _: String = redis::cmd("XADD")
        .arg(format!("{PREFIX}broken"))
        .arg("*")
        .arg("data")
        .arg("not json")
        .query_async(&mut admin)
        .await
        .expect("XADD");
    let (processor, mut source, _stored) = consume_into_memory(&connection, stream_config("broken", "c")).await;
    eventually(Duration::from_secs(10), "the failed dead letter is counted", || {
        let errors = source.stats().errors;
        async move { errors >= 1 }
    })
    .await;
    source.stop().await;
    processor.shutdown(Duration::from_secs(2)).await;
    let stats = source.finish(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut admin, "broken").await, 1, "acknowledged without its dead letter: {stats:?}");
    assert_eq!(stats.dead_lettered, 0);
}

async fn renewing_a_lease_never_takes_an_entry_back_from_the_consumer_that_took_it_over(kind: RedisKind) {
    let redis = RedisDeployment::start(kind).await;
    let connection = connect(&redis).await;
    let mut admin = admin(&redis).await;
    produce(&connection, "taken", 0..1).await;
    // Consumer A holds the entry for good (its sink never finishes).
    let stuck = CallbackSink::new("stuck", |_: &[Job]| Box::pin(futures::future::pending::<Result<(), SinkError>>()));
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", Delivery::handler(|job: Job| async move { StageOutcome::Keep(job) })))
        .sink(AckingSink::new(stuck))
        .build()
        .expect("valid processor");
    let config = StreamConfig { visibility_timeout: Duration::from_millis(600), ..stream_config("taken", "a") };
    let source = RedisStreamSource::<Job>::new(connection.clone(), config)
        .expect("valid")
        .spawn(processor.sender())
        .expect("spawned");
    eventually(Duration::from_secs(5), "A holds the entry", || {
        let delivered = source.stats().delivered;
        async move { delivered == 1 }
    })
    .await;
    // B takes it over, as its XAUTOCLAIM would after A failed to renew for a while.
    let ids: Vec<String> = redis::cmd("XRANGE")
        .arg(format!("{PREFIX}taken"))
        .arg("-")
        .arg("+")
        .query_async::<redis::streams::StreamRangeReply>(&mut admin)
        .await
        .expect("XRANGE")
        .ids
        .into_iter()
        .map(|entry| entry.id)
        .collect();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(format!("{PREFIX}taken"))
        .arg("workers")
        .arg("b")
        .arg(0)
        .arg(&ids[0])
        .arg("JUSTID")
        .query_async(&mut admin)
        .await
        .expect("XCLAIM");
    // Two of A's renewal rounds (every 200 ms) later, the second of them begun after the
    // takeover, B still owns it.
    let rounds_before = source.stats().renewal_rounds;
    eventually(Duration::from_secs(10), "A completes two renewal rounds after the takeover", || {
        let rounds = source.stats().renewal_rounds;
        async move { rounds >= rounds_before + 2 }
    })
    .await;
    let owners: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
        .arg(format!("{PREFIX}taken"))
        .arg("workers")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut admin)
        .await
        .expect("XPENDING");
    let _ = source.abort().await;
    let _ = processor.abort().await;
    assert_eq!(owners[0].1, "b", "A's renewal took the entry back: {owners:?}");
}

on_standalone_and_cluster!(
    every_produced_record_is_stored_once_and_acknowledged,
    a_crashed_consumers_entries_are_taken_over_after_the_visibility_timeout,
    poison_entries_reach_the_dead_letter_stream_after_the_delivery_limit,
    dropped_and_dead_lettered_records_are_acknowledged_once_settled,
    the_sink_appends_a_batch_in_one_transaction_and_trims_the_stream,
    an_entry_whose_dead_letter_cannot_be_stored_stays_pending,
    renewing_a_lease_never_takes_an_entry_back_from_the_consumer_that_took_it_over,
);
