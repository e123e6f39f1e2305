//! The ready sinks (memory, callback, JSONL) and the batching sink: when batches are
//! written, what a failing write leads to, and that nothing is lost or reordered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::batch::{BatchConfig, BatchSink, RetryConfig};
use harvester_pipeline::sinks::{CallbackSink, FsyncPolicy, JsonlSink, MemorySink};
use harvester_pipeline::{DeadLetter, Sink, SinkError};
use tokio::time::Instant;

// ---------------------------------------------------------------- test support

/// Remembers every attempted write with the (paused) time it happened, and fails the first
/// `failures` attempts.
struct RecordingSink<T> {
    start: Instant,
    failures: Mutex<u32>,
    attempts: Mutex<Vec<Duration>>,
    batches: Mutex<Vec<(Duration, Vec<T>)>>,
}

impl<T> RecordingSink<T> {
    fn new(failures: u32) -> Arc<Self> {
        Arc::new(RecordingSink {
            start: Instant::now(),
            failures: Mutex::new(failures),
            attempts: Mutex::new(Vec::new()),
            batches: Mutex::new(Vec::new()),
        })
    }

    fn batches(&self) -> Vec<(Duration, Vec<T>)>
    where
        T: Clone,
    {
        self.batches.lock().expect("not poisoned").clone()
    }

    fn attempts(&self) -> Vec<Duration> {
        self.attempts.lock().expect("not poisoned").clone()
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Sink<T> for RecordingSink<T> {
    fn name(&self) -> &str {
        "recording"
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        let now = self.start.elapsed();
        self.attempts.lock().expect("not poisoned").push(now);
        let mut failures = self.failures.lock().expect("not poisoned");
        if *failures > 0 {
            *failures -= 1;
            return Err(SinkError::new("recording", "disk on fire"));
        }
        self.batches.lock().expect("not poisoned").push((now, batch.to_vec()));
        Ok(())
    }
}

fn config(max_records: usize, max_wait_ms: u64) -> BatchConfig {
    BatchConfig { max_records, max_wait: Duration::from_millis(max_wait_ms), ..BatchConfig::default() }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn sizes<T>(batches: &[(Duration, Vec<T>)]) -> Vec<usize> {
    batches.iter().map(|(_, b)| b.len()).collect()
}

// ---------------------------------------------------------------- memory and callback

#[tokio::test]
async fn memory_sink_keeps_batches_in_order() {
    let sink = MemorySink::new("memory");
    sink.write(&[1, 2]).await.expect("memory never fails");
    sink.write(&[3]).await.expect("memory never fails");
    sink.flush().await.expect("memory never fails");

    assert_eq!(sink.records(), vec![1, 2, 3]);
    assert_eq!(sink.len(), 3);
    assert_eq!(sink.flushes(), 1);
    assert_eq!(sink.take(), vec![1, 2, 3]);
    assert!(sink.is_empty());
}

#[tokio::test]
async fn callback_sink_hands_each_batch_to_the_closure_and_returns_its_error() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in_callback = seen.clone();
    let sink = CallbackSink::new("callback", move |batch: &[u32]| {
        let seen = seen_in_callback.clone();
        Box::pin(async move {
            if batch.contains(&13) {
                return Err(SinkError::new("callback", "unlucky"));
            }
            seen.lock().expect("not poisoned").push(batch.to_vec());
            Ok(())
        })
    });

    sink.write(&[1, 2]).await.expect("accepted");
    let err = sink.write(&[13]).await.expect_err("refused");

    assert_eq!(*seen.lock().expect("not poisoned"), vec![vec![1, 2]]);
    assert_eq!(err, SinkError::new("callback", "unlucky"));
    assert_eq!(sink.name(), "callback");
}

// ---------------------------------------------------------------- jsonl

#[tokio::test]
async fn jsonl_sink_appends_one_object_per_line_across_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");

    for policy in [FsyncPolicy::EveryBatch, FsyncPolicy::OnFlush, FsyncPolicy::Never] {
        let sink = JsonlSink::open(&path, policy).await.expect("opens");
        sink.write(&[serde_json::json!({"id": 1, "title": "mug\nblue"}), serde_json::json!({"id": 2})])
            .await
            .expect("writes");
        sink.flush().await.expect("flushes");
    }

    let text = std::fs::read_to_string(&path).expect("readable");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("each line is one JSON object")).collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[0]["title"], "mug\nblue");
    assert_eq!(lines[5]["id"], 2);
}

#[tokio::test]
async fn jsonl_sink_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("missing-dir").join("out.jsonl");

    let err = JsonlSink::<u32>::open(&path, FsyncPolicy::Never).await.expect_err("no such directory");

    assert!(err.message.contains(&path.display().to_string()), "{err}");
}

#[tokio::test]
async fn jsonl_sink_writes_nothing_of_a_batch_that_cannot_be_serialized() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out.jsonl");
    let sink = JsonlSink::open(&path, FsyncPolicy::EveryBatch).await.expect("opens").with_name("archive");
    let good = BTreeMap::from([(vec![], 1)]);
    let bad = BTreeMap::from([(vec![1u8], 2)]); // JSON keys must be strings

    let err = sink.write(&[BTreeMap::new(), good, bad]).await.expect_err("a key is not a string");

    assert_eq!(err.sink, "archive");
    assert!(err.message.contains("record 1"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).expect("readable"), "");
}

// ---------------------------------------------------------------- batch: when a batch is written

#[tokio::test(start_paused = true)]
async fn batch_is_written_when_it_reaches_max_records() {
    let out = RecordingSink::new(0);
    let batch = BatchSink::builder(out.clone(), config(3, 1_000)).spawn().expect("valid");

    for i in 0..7u32 {
        batch.push(i).await.expect("running");
    }
    tokio::time::sleep(ms(1)).await;

    let written = out.batches();
    assert_eq!(written, vec![(ms(0), vec![0, 1, 2]), (ms(0), vec![3, 4, 5])]);
    batch.close().await.expect("closes");
}

#[tokio::test(start_paused = true)]
async fn batch_is_written_before_a_record_would_push_it_past_max_bytes() {
    let out = RecordingSink::new(0);
    let config = BatchConfig { max_bytes: 10, ..config(100, 1_000) };
    let batch = BatchSink::builder(out.clone(), config).size_with(|s: &String| s.len()).spawn().expect("valid");

    for s in ["aaaa", "bbbb", "cccc", "dddddddddddd", "ee"] {
        batch.push(s.to_owned()).await.expect("running");
    }
    let report = batch.close().await.expect("closes");

    let written: Vec<Vec<String>> = out.batches().into_iter().map(|(_, b)| b).collect();
    // 4 + 4 fit; 4 more would make 12. The 12-byte record is alone and over the limit.
    assert_eq!(written, vec![vec!["aaaa", "bbbb"], vec!["cccc"], vec!["dddddddddddd"], vec!["ee"]]);
    assert_eq!(report.batches, 4);
}

#[tokio::test(start_paused = true)]
async fn default_size_is_the_json_length() {
    let out = RecordingSink::new(0);
    let config = BatchConfig { max_bytes: 14, ..config(100, 1_000) };
    let batch = BatchSink::builder(out.clone(), config).spawn().expect("valid");

    for s in ["abcde", "fghij", "k"] {
        batch.push(s.to_owned()).await.expect("running"); // "abcde" is 7 bytes of JSON
    }
    batch.close().await.expect("closes");

    assert_eq!(sizes(&out.batches()), vec![2, 1]);
}

#[tokio::test(start_paused = true)]
async fn batch_is_written_max_wait_after_its_first_record() {
    let out = RecordingSink::new(0);
    let batch = BatchSink::builder(out.clone(), config(100, 1_000)).spawn().expect("valid");

    batch.push(1u32).await.expect("running");
    tokio::time::sleep(ms(600)).await;
    batch.push(2).await.expect("running"); // a later record does not extend the wait
    tokio::time::sleep(ms(399)).await;
    assert!(out.batches().is_empty());
    tokio::time::sleep(ms(2)).await;

    assert_eq!(out.batches(), vec![(ms(1_000), vec![1, 2])]);
    batch.close().await.expect("closes");
}

#[tokio::test(start_paused = true)]
async fn max_wait_starts_at_the_first_record_not_at_the_last_write() {
    let out = RecordingSink::new(0);
    let batch = BatchSink::builder(out.clone(), config(2, 1_000)).spawn().expect("valid");

    tokio::time::sleep(ms(300)).await;
    batch.push(1u32).await.expect("running");
    batch.push(2).await.expect("running"); // full: written at 300 ms
    tokio::time::sleep(ms(600)).await;
    batch.push(3).await.expect("running"); // first of the next batch, at 900 ms
    tokio::time::sleep(ms(1_500)).await;

    assert_eq!(out.batches(), vec![(ms(300), vec![1, 2]), (ms(1_900), vec![3])]);
    batch.close().await.expect("closes");
}

#[tokio::test(start_paused = true)]
async fn an_idle_batch_sink_writes_nothing() {
    let out = RecordingSink::<u32>::new(0);
    let batch = BatchSink::builder(out.clone(), config(2, 1_000)).spawn().expect("valid");

    tokio::time::sleep(ms(10_000)).await;

    assert!(out.attempts().is_empty());
    assert_eq!(batch.close().await.expect("closes").batches, 0);
}

// ---------------------------------------------------------------- batch: shutdown

#[tokio::test(start_paused = true)]
async fn close_writes_the_partial_batch_and_flushes_the_inner_sink() {
    let out = Arc::new(MemorySink::new("out"));
    let batch = BatchSink::builder(out.clone(), config(100, 60_000)).spawn().expect("valid");

    batch.push(1u32).await.expect("running");
    batch.push(2).await.expect("running");
    let report = batch.close().await.expect("closes");

    assert_eq!(out.records(), vec![1, 2]);
    assert_eq!(out.flushes(), 1);
    assert_eq!((report.written, report.batches, report.lost), (2, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_the_batch_sink_still_writes_the_partial_batch() {
    let out = Arc::new(MemorySink::new("out"));
    let batch = BatchSink::builder(out.clone(), config(100, 60_000)).spawn().expect("valid");

    batch.push(1u32).await.expect("running");
    drop(batch);
    tokio::time::sleep(ms(1)).await;

    assert_eq!(out.records(), vec![1]);
    assert_eq!(out.flushes(), 1);
}

#[tokio::test(start_paused = true)]
async fn flush_through_the_sink_trait_writes_the_partial_batch() {
    let out = Arc::new(MemorySink::new("out"));
    let batch = BatchSink::builder(out.clone(), config(100, 60_000)).spawn().expect("valid");

    Sink::write(&batch, &[1u32, 2, 3]).await.expect("pushed");
    Sink::flush(&batch).await.expect("flushed");

    assert_eq!(out.records(), vec![1, 2, 3]);
    assert_eq!(out.flushes(), 1);
    assert_eq!(Sink::<u32>::name(&batch), "out");
    batch.close().await.expect("closes");
}

// ---------------------------------------------------------------- batch: failures

#[tokio::test(start_paused = true)]
async fn a_failing_write_is_retried_with_backoff_then_succeeds() {
    let out = RecordingSink::new(2);
    let config = BatchConfig {
        retry: RetryConfig { max_attempts: 5, base_delay: ms(100), max_delay: ms(10_000) },
        ..config(2, 1_000)
    };
    let batch = BatchSink::builder(out.clone(), config).spawn().expect("valid");

    batch.push(1u32).await.expect("running");
    batch.push(2).await.expect("running");
    tokio::time::sleep(ms(150)).await;
    let live = batch.stats();
    assert_eq!((live.written, live.failed_attempts), (0, 2), "two attempts failed, the third waits");
    let report = batch.close().await.expect("closes");

    assert_eq!(out.attempts(), vec![ms(0), ms(100), ms(300)]);
    assert_eq!(out.batches(), vec![(ms(300), vec![1, 2])]);
    assert_eq!((report.written, report.failed_attempts, report.dead_lettered), (2, 2, 0));
}

#[tokio::test(start_paused = true)]
async fn a_batch_failing_every_attempt_is_dead_lettered_record_by_record() {
    let out = RecordingSink::new(u32::MAX);
    let dead = Arc::new(MemorySink::<DeadLetter<u32>>::new("dead"));
    let config = BatchConfig {
        retry: RetryConfig { max_attempts: 3, base_delay: ms(100), max_delay: ms(150) },
        ..config(2, 1_000)
    };
    let batch = BatchSink::builder(out.clone(), config).dead_letter(dead.clone()).spawn().expect("valid");

    batch.push(7u32).await.expect("running");
    batch.push(8).await.expect("running");
    let report = batch.close().await.expect("closes");

    assert_eq!(out.attempts(), vec![ms(0), ms(100), ms(250)], "backoff doubles, capped at max");
    let letters = dead.records();
    assert_eq!(letters.iter().map(|l| l.record).collect::<Vec<_>>(), vec![7, 8]);
    assert!(letters.iter().all(|l| l.stage == "recording" && l.attempts == 3 && l.error.contains("disk on fire")));
    assert_eq!(dead.flushes(), 1);
    assert_eq!((report.written, report.dead_lettered, report.lost, report.failed_attempts), (0, 2, 0, 3));
}

#[tokio::test(start_paused = true)]
async fn without_a_dead_letter_sink_a_failed_batch_is_counted_as_lost() {
    let out = RecordingSink::new(u32::MAX);
    let config = BatchConfig { retry: RetryConfig { max_attempts: 1, ..RetryConfig::default() }, ..config(10, 1_000) };
    let batch = BatchSink::builder(out.clone(), config).spawn().expect("valid");

    batch.push(1u32).await.expect("running");
    let report = batch.close().await.expect("closes");

    assert_eq!((report.lost, report.failed_attempts), (1, 1));
}

// ---------------------------------------------------------------- batch: conservation and order

#[tokio::test(start_paused = true)]
async fn every_record_is_written_once_in_push_order() {
    let out = RecordingSink::new(0);
    let config = BatchConfig { channel_capacity: 16, ..config(1_000, 1_000) };
    let batch = BatchSink::builder(out.clone(), config).spawn().expect("valid");

    for i in 0..2_500u32 {
        batch.push(i).await.expect("running");
    }
    let report = batch.close().await.expect("closes");

    let batches = out.batches();
    assert_eq!(sizes(&batches), vec![1_000, 1_000, 500]);
    let all: Vec<u32> = batches.into_iter().flat_map(|(_, b)| b).collect();
    assert_eq!(all, (0..2_500).collect::<Vec<_>>());
    assert_eq!(report.written, 2_500);
}

// ---------------------------------------------------------------- batch: configuration

#[test]
fn default_config_is_valid_and_matches_the_documented_values() {
    let config = BatchConfig::default();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!((config.max_records, config.max_wait), (1_000, Duration::from_secs(1)));
}

#[test]
fn validate_names_the_offending_field() {
    let cases = [
        (BatchConfig { max_records: 0, ..BatchConfig::default() }, "max_records"),
        (BatchConfig { max_bytes: 0, ..BatchConfig::default() }, "max_bytes"),
        (BatchConfig { max_wait: Duration::ZERO, ..BatchConfig::default() }, "max_wait"),
        (BatchConfig { channel_capacity: 0, ..BatchConfig::default() }, "channel_capacity"),
        (
            BatchConfig { retry: RetryConfig { max_attempts: 0, ..RetryConfig::default() }, ..BatchConfig::default() },
            "retry.max_attempts",
        ),
        (
            BatchConfig {
                retry: RetryConfig { base_delay: ms(2), max_delay: ms(1), max_attempts: 2 },
                ..BatchConfig::default()
            },
            "retry.base_delay",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().expect_err(field);
        assert_eq!(err.field, field);
        assert!(err.to_string().contains(field));
    }
}

#[tokio::test]
async fn spawn_refuses_an_invalid_config() {
    let out = Arc::new(MemorySink::<u32>::new("out"));
    let err =
        BatchSink::builder(out, BatchConfig { max_records: 0, ..BatchConfig::default() }).spawn().expect_err("refused");
    assert_eq!(err.field, "max_records");
}

#[test]
fn config_reads_from_json_with_human_durations_and_defaults() {
    let config: BatchConfig =
        serde_json::from_str(r#"{"max_wait": "30s", "retry": {"base": "250ms"}}"#).expect("valid JSON config");
    assert_eq!(config.max_wait, Duration::from_secs(30));
    assert_eq!(config.retry.base_delay, ms(250), "the old field name `base` still loads");
    let renamed: BatchConfig =
        serde_json::from_str(r#"{"retry": {"max_attempts": 2, "base_delay": "1s", "max_delay": "2s"}}"#)
            .expect("valid JSON config");
    assert_eq!(
        (renamed.retry.max_attempts, renamed.retry.base_delay, renamed.retry.max_delay),
        (2, ms(1_000), ms(2_000))
    );
    assert_eq!(config.max_records, 1_000);
    assert!(serde_json::from_str::<BatchConfig>(r#"{"max_wiat": "1s"}"#).is_err(), "unknown fields are refused");
}
