//! Specifications of the stream processor: conservation, backpressure, timeouts, retries,
//! run-time scaling, abort and drop.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::processor::{ConfigError, ErrorPolicy, Outcome, SendError, SinkRetry, Stage, StreamProcessor};
use harvester_pipeline::{DeadLetter, Sink, SinkError};
use proptest::prelude::*;
use tokio::sync::Semaphore;

/// Keeps everything written, in memory; clones share the store.
#[derive(Clone)]
struct MemorySink<T> {
    records: Arc<Mutex<Vec<T>>>,
    /// When set, each write waits for a permit (a sink that blocks until released).
    gate: Option<Arc<Semaphore>>,
}

impl<T> MemorySink<T> {
    fn new() -> Self {
        MemorySink { records: Arc::new(Mutex::new(Vec::new())), gate: None }
    }

    fn gated(gate: Arc<Semaphore>) -> Self {
        MemorySink { records: Arc::new(Mutex::new(Vec::new())), gate: Some(gate) }
    }

    fn taken(&self) -> Vec<T>
    where
        T: Clone,
    {
        self.records.lock().expect("memory sink lock").clone()
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Sink<T> for MemorySink<T> {
    fn name(&self) -> &str {
        "memory"
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        if let Some(gate) = &self.gate {
            gate.acquire().await.map_err(|_| SinkError::new("memory", "gate closed"))?.forget();
        }
        self.records.lock().expect("memory sink lock").extend_from_slice(batch);
        Ok(())
    }
}

async fn keep(n: u64) -> Outcome<u64> {
    Outcome::Keep(n)
}

#[tokio::test]
async fn build_names_the_bad_field() {
    let no_stages = StreamProcessor::<u64>::builder().sink(MemorySink::new()).build().err();
    assert_eq!(no_stages, Some(ConfigError::NoStages));
    let zero_workers =
        StreamProcessor::builder().stage(Stage::new("validate", keep).workers(0)).sink(MemorySink::new()).build().err();
    assert_eq!(zero_workers, Some(ConfigError::ZeroWorkers { stage: "validate".into() }));
    let zero_queue =
        StreamProcessor::builder().stage(Stage::new("a", keep)).queue_size(0).sink(MemorySink::new()).build();
    assert_eq!(zero_queue.err(), Some(ConfigError::ZeroQueueSize));
    let no_sink = StreamProcessor::builder().stage(Stage::new("a", keep)).build().err();
    assert_eq!(no_sink, Some(ConfigError::NoSink));
    assert!(ConfigError::ZeroQueueSize.to_string().contains("queue_size"));
}

/// Per-record behaviour chosen by the property test: 0 keep, 1 drop, 2 error.
fn outcome_of(n: u64, plan: &[u8]) -> Outcome<u64> {
    match plan[n as usize % plan.len()] {
        0 => Outcome::Keep(n),
        1 => Outcome::Drop,
        _ => Outcome::Error(n, format!("record {n} failed")),
    }
}

async fn run_conservation(records: u64, plan: Vec<u8>, workers: usize, queue: usize, stop_after: Option<u64>) {
    let plan = Arc::new(plan);
    let output = MemorySink::new();
    let dead = MemorySink::<DeadLetter<u64>>::new();
    let first = plan.clone();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("first", move |n: u64| {
                let plan = first.clone();
                async move { outcome_of(n, &plan) }
            })
            .workers(workers)
            .on_error(ErrorPolicy::Retry { max_attempts: 2, backoff: Duration::from_millis(1) }),
        )
        .stage(Stage::new("second", keep).workers(workers).on_error(ErrorPolicy::Drop))
        .queue_size(queue)
        .batch_size(4)
        .sink(output.clone())
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    let (reached, stop) = tokio::sync::oneshot::channel();
    let producer = tokio::spawn(async move {
        let mut reached = Some(reached);
        let mut accepted = 0u64;
        for n in 0..records {
            if stop_after == Some(n)
                && let Some(reached) = reached.take()
            {
                let _ = reached.send(());
            }
            if sender.send(n).await.is_err() {
                break;
            }
            accepted += 1;
        }
        accepted
    });
    // With `stop_after`, shutdown races the producer: later sends are refused, none is lost.
    let (report, accepted) = if stop_after.is_some_and(|stop_at| stop_at < records) {
        let _ = stop.await;
        let report = processor.shutdown(Duration::from_secs(60)).await;
        (report, producer.await.expect("producer"))
    } else {
        let accepted = producer.await.expect("producer");
        (processor.shutdown(Duration::from_secs(60)).await, accepted)
    };

    let written = output.taken();
    let dead_letters: Vec<u64> = dead.taken().into_iter().map(|letter| letter.record).collect();
    assert_eq!(report.received, accepted);
    assert_eq!(report.in_flight_at_end, 0);
    assert_eq!(report.received, report.output + report.dropped + report.dead_lettered);
    assert_eq!(written.len() as u64, report.output);
    assert_eq!(dead_letters.len() as u64, report.dead_lettered);
    let mut seen = HashSet::new();
    for n in written.iter().chain(&dead_letters) {
        assert!(seen.insert(*n), "record {n} left twice");
    }
    for n in 0..accepted {
        let expected_out = plan[n as usize % plan.len()] == 0;
        let expected_dead = plan[n as usize % plan.len()] == 2;
        assert_eq!(written.contains(&n), expected_out, "record {n}");
        assert_eq!(dead_letters.contains(&n), expected_dead, "record {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn every_record_leaves_as_output_dropped_or_dead_letter(
        records in 0u64..200,
        plan in proptest::collection::vec(0u8..3, 1..16),
        workers in 1usize..=4,
        queue in 1usize..=16,
        stop_after in proptest::option::of(0u64..200),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(run_conservation(records, plan, workers, queue, stop_after));
    }
}

#[tokio::test(start_paused = true)]
async fn send_waits_when_queues_are_full_and_never_exceeds_capacity() {
    let gate = Arc::new(Semaphore::new(0));
    let output = MemorySink::gated(gate.clone());
    let (queue, workers, batch) = (2usize, 1usize, 3usize);
    let processor = StreamProcessor::builder()
        .stage(Stage::new("only", keep).workers(workers))
        .queue_size(queue)
        .batch_size(batch)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let accepted = Arc::new(AtomicUsize::new(0));
    let sender = processor.sender();
    let counter = accepted.clone();
    let producer = tokio::spawn(async move {
        for n in 0..100u64 {
            sender.send(n).await.expect("open");
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Queues: stage + sink (the dead-letter queue holds none); plus a record per worker and a batch.
    let bound = 2 * queue + workers + batch;
    let held = accepted.load(Ordering::SeqCst);
    assert!(held <= bound, "accepted {held} > {bound}");
    assert!(held > 0);
    assert!(!producer.is_finished(), "send should be waiting");

    gate.add_permits(1_000);
    producer.await.expect("producer");
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.output, 100);
    assert_eq!(output.taken().len(), 100);
}

#[tokio::test(start_paused = true)]
async fn a_record_that_times_out_is_dead_lettered_with_the_timeout_and_attempts() {
    let dead = MemorySink::<DeadLetter<u64>>::new();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("slow", |n: u64| async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                Outcome::Keep(n)
            })
            .timeout(Duration::from_secs(1))
            .on_error(ErrorPolicy::Retry { max_attempts: 3, backoff: Duration::from_millis(100) }),
        )
        .sink(MemorySink::new())
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send(7).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(60)).await;

    let letters = dead.taken();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].record, letters[0].attempts, letters[0].stage.as_str()), (7, 3, "slow"));
    assert!(letters[0].error.starts_with("timed out after"), "{}", letters[0].error);
    assert_eq!((report.stages[0].timed_out, report.stages[0].retried, report.dead_lettered), (3, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_record_is_retried_until_it_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let output = MemorySink::new();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("flaky", move |n: u64| {
                let attempt = counter.fetch_add(1, Ordering::SeqCst);
                async move { if attempt < 2 { Outcome::Error(n, "flaky".into()) } else { Outcome::Keep(n) } }
            })
            .on_error(ErrorPolicy::Retry { max_attempts: 5, backoff: Duration::from_millis(10) }),
        )
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send(1).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(10)).await;

    assert_eq!(output.taken(), vec![1]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!((report.stages[0].retried, report.stages[0].failed, report.dead_lettered), (2, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_workers_at_run_time_keeps_every_record() {
    let output = MemorySink::new();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("work", |n: u64| async move {
                tokio::task::yield_now().await;
                Outcome::Keep(n)
            })
            .workers(2),
        )
        .queue_size(8)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for (n, workers) in (0..2_000u64).zip([1usize, 4, 2, 8, 1].into_iter().cycle()) {
        sender.send(n).await.expect("open");
        if n % 100 == 0 {
            processor.set_workers("work", workers).expect("known stage");
        }
    }
    assert!(processor.set_workers("nope", 1).is_err());
    assert!(processor.set_workers("work", 0).is_err());
    processor.set_workers("work", 3).expect("known stage");
    assert!(processor.metrics().stages[0].workers >= 3);
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(30)).await;

    let mut written = output.taken();
    written.sort_unstable();
    assert_eq!(written, (0..2_000).collect::<Vec<_>>());
    assert_eq!(report.output, 2_000);
}

#[tokio::test(start_paused = true)]
async fn abort_reports_what_was_in_flight() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", |n: u64| async move {
            std::future::pending::<()>().await;
            Outcome::Keep(n)
        }))
        .queue_size(10)
        .sink(MemorySink::new())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..5 {
        sender.send(n).await.expect("open");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(processor.metrics().stages[0].in_flight, 1);
    let report = processor.abort().await;

    assert_eq!((report.received, report.output, report.in_flight_at_end), (5, 0, 5));
    assert!(sender.send(6).await.is_err(), "no input after abort");
}

#[tokio::test(start_paused = true)]
async fn shutdown_past_its_deadline_aborts_and_reports_in_flight() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", |n: u64| async move {
            std::future::pending::<()>().await;
            Outcome::Keep(n)
        }))
        .sink(MemorySink::new())
        .build()
        .expect("valid configuration");
    processor.sender().send(1).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(1)).await;
    assert!(report.deadline_exceeded);
    assert_eq!(report.in_flight_at_end, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_processor_does_not_hang() {
    let started = Arc::new(AtomicUsize::new(0));
    let counter = started.clone();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", move |n: u64| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                std::future::pending::<()>().await;
                Outcome::Keep(n)
            }
        }))
        .sink(MemorySink::new())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    sender.send(1).await.expect("open");
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(processor);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    // The input queue is gone with the workers.
    assert!(sender.send(2).await.is_err());
}

/// Refuses every write.
struct BrokenSink;

#[async_trait]
impl Sink<u64> for BrokenSink {
    fn name(&self) -> &str {
        "broken"
    }

    async fn write(&self, _batch: &[u64]) -> Result<(), SinkError> {
        Err(SinkError::new("broken", "disk full"))
    }
}

#[tokio::test(start_paused = true)]
async fn records_the_sink_refuses_are_dead_lettered_after_retries() {
    let dead = MemorySink::<DeadLetter<u64>>::new();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", keep))
        .sink_retry(SinkRetry { max_attempts: 3, backoff: Duration::from_millis(10) })
        .sink(BrokenSink)
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..3 {
        sender.send(n).await.expect("open");
    }
    let report = processor.shutdown(Duration::from_secs(10)).await;

    let letters = dead.taken();
    assert_eq!((report.output, report.dead_lettered, report.in_flight_at_end), (0, 3, 0));
    assert!(letters.iter().all(|l| l.stage == "broken" && l.attempts == 3 && l.error.contains("disk full")));
}

#[tokio::test(start_paused = true)]
async fn try_send_rejects_and_counts_when_the_first_queue_is_full() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", |n: u64| async move {
            std::future::pending::<()>().await;
            Outcome::Keep(n)
        }))
        .queue_size(2)
        .sink(MemorySink::new())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    sender.try_send(0).expect("room");
    tokio::time::sleep(Duration::from_millis(1)).await; // the worker takes record 0 and hangs
    sender.try_send(1).expect("room");
    sender.try_send(2).expect("room");
    assert!(matches!(sender.try_send(3), Err(SendError::Full(3))));
    let report = processor.abort().await;
    assert_eq!((report.received, report.rejected, report.in_flight_at_end), (3, 1, 3));
}

#[tokio::test(start_paused = true)]
async fn a_fed_stream_is_processed_completely() {
    let output = MemorySink::new();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", keep).workers(3))
        .queue_size(4)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let report = processor.run_stream(futures::stream::iter(0..500u64), Duration::from_secs(10)).await;
    assert_eq!((report.received, report.output), (500, 500));
    assert_eq!(output.taken().len(), 500);
}

#[tokio::test(start_paused = true)]
async fn a_stream_fed_in_the_background_is_drained_by_shutdown() {
    let output = MemorySink::new();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", keep).workers(2))
        .queue_size(3)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.feed(futures::stream::iter(0..50u64));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!((report.received, report.output, report.in_flight_at_end), (50, 50, 0));
}
