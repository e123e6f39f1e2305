//! Specifications of the stream processor: conservation, backpressure, timeouts, retries,
//! run-time scaling, abort and drop.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{gated_stage, keep, memory};
use harvester_pipeline::processor::{
    BuildError, ErrorPolicy, Overflow, ProcessorError, SendError, SinkRetry, Stage, StageOutcome, StreamProcessor,
};
use harvester_pipeline::sinks::MemorySink;
use harvester_pipeline::{DeadLetter, Sink, SinkError};
use proptest::prelude::*;
use tokio::sync::Semaphore;

/// A sink whose writes each wait for a permit: it blocks until the test releases it.
struct Gated {
    inner: Arc<MemorySink<u64>>,
    gate: Arc<Semaphore>,
}

#[async_trait]
impl Sink<u64> for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    async fn write(&self, batch: &[u64]) -> Result<(), SinkError> {
        self.gate.acquire().await.map_err(|_| SinkError::new("gated", "gate closed"))?.forget();
        self.inner.write(batch).await
    }
}

#[tokio::test]
async fn build_names_the_bad_field() {
    let no_stages = StreamProcessor::<u64>::builder().sink(memory()).build().err();
    assert_eq!(no_stages, Some(BuildError::NoStages));
    let zero_workers =
        StreamProcessor::builder().stage(Stage::new("validate", keep).workers(0)).sink(memory()).build().err();
    assert_eq!(zero_workers.as_ref().and_then(BuildError::field), Some("stage \"validate\": workers"));
    let zero_queue = StreamProcessor::builder().stage(Stage::new("a", keep)).queue_size(0).sink(memory()).build();
    let zero_queue = zero_queue.err().expect("refused");
    assert_eq!(zero_queue.field(), Some("queue_size"));
    assert!(zero_queue.to_string().starts_with("queue_size: 0 is out of range"), "{zero_queue}");
    let no_sink = StreamProcessor::builder().stage(Stage::new("a", keep)).build().err();
    assert_eq!(no_sink, Some(BuildError::NoSink));
}

/// Per-record behaviour chosen by the property test: 0 keep, 1 drop, 2 error.
fn outcome_of(n: u64, plan: &[u8]) -> StageOutcome<u64> {
    match plan[n as usize % plan.len()] {
        0 => StageOutcome::Keep(n),
        1 => StageOutcome::Drop,
        _ => StageOutcome::Error(n, format!("record {n} failed")),
    }
}

async fn run_conservation(
    records: u64,
    plan: Vec<u8>,
    workers: usize,
    queue: usize,
    stop_after: Option<u64>,
    ordered: bool,
) {
    let plan = Arc::new(plan);
    let output = memory();
    let dead = memory::<DeadLetter<u64>>();
    let first = plan.clone();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("first", move |n: u64| {
                let plan = first.clone();
                async move { outcome_of(n, &plan) }
            })
            .workers(workers)
            .on_error(ErrorPolicy::Retry { max_attempts: 2, base_delay: Duration::from_millis(1) }),
        )
        .stage(Stage::new("second", keep).workers(workers).on_error(ErrorPolicy::Drop))
        .queue_size(queue)
        .batch_size(4)
        .sink(output.clone())
        .dead_letter(dead.clone());
    let processor = if ordered { processor.ordered() } else { processor }.build().expect("valid configuration");
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

    let written = output.records();
    let dead_letters: Vec<u64> = dead.records().into_iter().map(|letter| letter.record).collect();
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
    if ordered {
        assert!(written.windows(2).all(|pair| pair[0] < pair[1]), "out of order: {written:?}");
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
        ordered in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(run_conservation(records, plan, workers, queue, stop_after, ordered));
    }
}

/// Sends 20 000 records into two stages feeding a sink that blocks; returns how many `send`
/// accepted before it had to wait, and checks none is lost once the sink is released.
async fn accepted_while_the_sink_blocks(queue: usize, workers: usize, batch: usize) -> usize {
    let gate = Arc::new(Semaphore::new(0));
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("first", keep).workers(workers))
        .stage(Stage::new("second", keep).workers(workers))
        .queue_size(queue)
        .batch_size(batch)
        .sink(Gated { inner: output.clone(), gate: gate.clone() })
        .build()
        .expect("valid configuration");
    let accepted = Arc::new(AtomicUsize::new(0));
    let sender = processor.sender();
    let counter = accepted.clone();
    let producer = tokio::spawn(async move {
        for n in 0..20_000u64 {
            sender.send(n).await.expect("open");
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!producer.is_finished(), "send should be waiting");
    let held = accepted.load(Ordering::SeqCst);

    gate.add_permits(40_000);
    producer.await.expect("producer");
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.output, 20_000);
    let mut written = output.records();
    written.sort_unstable();
    assert_eq!(written, (0..20_000).collect::<Vec<u64>>());
    held
}

#[tokio::test(start_paused = true)]
async fn a_blocked_sink_bounds_what_the_pipeline_holds() {
    // Documented bound: a queue per stage and one before the sink, a run per worker, and
    // what the sink task holds (a batch, or one run if runs are longer).
    for (queue, workers, batch) in [(2, 1, 3), (5, 2, 1), (100, 3, 10), (1_000, 1, 50), (4_000, 2, 50)] {
        let run = (queue / 4).clamp(1, 256);
        let stages = 2;
        let bound = (stages + 1) * queue + stages * workers * run + batch.max(run);
        let held = accepted_while_the_sink_blocks(queue, workers, batch).await;
        assert!(held <= bound, "queue {queue}, workers {workers}, batch {batch}: held {held} > {bound}");
        assert!(held >= queue, "queue {queue}: only {held} accepted before waiting");
    }
}

#[tokio::test(start_paused = true)]
async fn a_record_that_times_out_is_dead_lettered_with_the_timeout_and_attempts() {
    let dead = memory::<DeadLetter<u64>>();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("slow", |n: u64| async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                StageOutcome::Keep(n)
            })
            .timeout(Duration::from_secs(1))
            .on_error(ErrorPolicy::Retry { max_attempts: 3, base_delay: Duration::from_millis(100) }),
        )
        .sink(memory())
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send(7).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(60)).await;

    let letters = dead.records();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].record, letters[0].attempts, letters[0].stage.as_str()), (7, 3, "slow"));
    assert!(letters[0].error.starts_with("timed out after"), "{}", letters[0].error);
    assert_eq!((report.stages[0].timed_out, report.stages[0].retried, report.dead_lettered), (3, 2, 1));
}

#[tokio::test(start_paused = true)]
async fn a_failing_record_is_retried_until_it_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("flaky", move |n: u64| {
                let attempt = counter.fetch_add(1, Ordering::SeqCst);
                async move { if attempt < 2 { StageOutcome::Error(n, "flaky".into()) } else { StageOutcome::Keep(n) } }
            })
            .on_error(ErrorPolicy::Retry { max_attempts: 5, base_delay: Duration::from_millis(10) }),
        )
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send(1).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(10)).await;

    assert_eq!(output.records(), vec![1]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!((report.stages[0].retried, report.stages[0].failed, report.dead_lettered), (2, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_workers_at_run_time_keeps_every_record() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("work", |n: u64| async move {
                tokio::task::yield_now().await;
                StageOutcome::Keep(n)
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

    let mut written = output.records();
    written.sort_unstable();
    assert_eq!(written, (0..2_000).collect::<Vec<_>>());
    assert_eq!(report.output, 2_000);
}

#[tokio::test(start_paused = true)]
async fn abort_reports_what_was_in_flight() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", |n: u64| async move {
            std::future::pending::<()>().await;
            StageOutcome::Keep(n)
        }))
        .queue_size(10)
        .sink(memory())
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
            StageOutcome::Keep(n)
        }))
        .sink(memory())
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
                StageOutcome::Keep(n)
            }
        }))
        .sink(memory())
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
    let dead = memory::<DeadLetter<u64>>();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", keep))
        .sink_retry(SinkRetry { max_attempts: 3, base_delay: Duration::from_millis(10) })
        .sink(BrokenSink)
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..3 {
        sender.send(n).await.expect("open");
    }
    let report = processor.shutdown(Duration::from_secs(10)).await;

    let letters = dead.records();
    assert_eq!((report.output, report.dead_lettered, report.in_flight_at_end), (0, 3, 0));
    assert!(letters.iter().all(|l| l.stage == "broken" && l.attempts == 3 && l.error.contains("disk full")));
}

#[tokio::test(start_paused = true)]
async fn try_send_rejects_and_counts_when_the_first_queue_is_full() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("stuck", |n: u64| async move {
            std::future::pending::<()>().await;
            StageOutcome::Keep(n)
        }))
        .queue_size(2)
        .sink(memory())
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
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("pass", keep).workers(3))
        .queue_size(4)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let report = processor.run_stream(futures::stream::iter(0..500u64), Duration::from_secs(10)).await;
    assert_eq!((report.received, report.output), (500, 500));
    assert_eq!(output.records().len(), 500);
}

#[tokio::test(start_paused = true)]
async fn a_stream_fed_in_the_background_is_drained_by_shutdown() {
    let output = memory();
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

/// A handler that takes longer for some records than others, so parallel workers finish out
/// of order: record n waits (n * 7 % 5) ms, every 10th is dropped, every 15th fails.
async fn uneven(n: u64) -> StageOutcome<u64> {
    tokio::time::sleep(Duration::from_millis(n * 7 % 5)).await;
    match n {
        n if n.is_multiple_of(10) => StageOutcome::Drop,
        n if n.is_multiple_of(15) => StageOutcome::Error(n, "unparseable".into()),
        n => StageOutcome::Keep(n),
    }
}

#[tokio::test(start_paused = true)]
async fn ordered_mode_keeps_input_order_with_parallel_workers() {
    let output = memory();
    let dead = memory::<DeadLetter<u64>>();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("uneven", uneven).workers(4))
        .stage(
            Stage::new("also_uneven", |n: u64| async move {
                tokio::time::sleep(Duration::from_millis(n % 3)).await;
                StageOutcome::Keep(n)
            })
            .workers(3),
        )
        .queue_size(8)
        .batch_size(16)
        .ordered()
        .sink(output.clone())
        .dead_letter(dead.clone())
        .build()
        .expect("valid configuration");
    let report = processor.run_stream(futures::stream::iter(0..1_000u64), Duration::from_secs(60)).await;

    let expected: Vec<u64> = (0..1_000).filter(|n| n % 10 != 0 && n % 15 != 0).collect();
    assert_eq!(output.records(), expected);
    assert_eq!(report.dead_lettered, dead.len() as u64);
    assert_eq!(report.received, report.output + report.dropped + report.dead_lettered);
}

#[tokio::test(start_paused = true)]
async fn without_ordered_mode_parallel_workers_do_reorder() {
    // The counterpart of the test above: it shows that test's workload really reorders.
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("uneven", uneven).workers(4))
        .queue_size(8)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.run_stream(futures::stream::iter(0..1_000u64), Duration::from_secs(60)).await;
    let written = output.records();
    assert!(written.windows(2).any(|pair| pair[0] > pair[1]));
}

#[tokio::test(start_paused = true)]
async fn ordered_mode_bounds_how_far_input_runs_ahead_of_a_slow_record() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("head_is_slow", |n: u64| async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                StageOutcome::Keep(n)
            })
            .workers(2),
        )
        .queue_size(100)
        .ordered_window(5)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..5 {
        sender.send(n).await.expect("room in the window");
    }
    // Records 1..5 are done but wait for record 0: the window is full.
    let sixth = tokio::time::timeout(Duration::from_secs(1), sender.send(5)).await;
    assert!(sixth.is_err(), "the sixth record must wait for the window");
    assert!(output.is_empty());

    sender.send(5).await.expect("room once record 0 is out");
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(60)).await;
    assert_eq!(output.records(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(report.output, 6);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_send_does_not_stall_ordered_output() {
    let output = memory();
    let gate = Arc::new(Semaphore::new(0));
    let processor = StreamProcessor::builder()
        .stage(gated_stage(gate.clone()))
        .queue_size(1)
        .ordered()
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    sender.send(0).await.expect("room"); // taken by the worker, which waits at the gate
    tokio::time::sleep(Duration::from_millis(1)).await;
    sender.send(1).await.expect("room"); // fills the queue
    let cancelled = tokio::time::timeout(Duration::from_secs(1), sender.send(2)).await;
    assert!(cancelled.is_err(), "the queue is full, so this send waits and is cancelled");

    gate.add_permits(10);
    sender.send(3).await.expect("room");
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(output.records(), vec![0, 1, 3]);
    assert_eq!((report.received, report.output, report.in_flight_at_end), (3, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn a_slow_stage_passes_each_record_on_as_soon_as_it_is_done() {
    // Micro-batching must not hold finished records back: with a handler that waits 1 s per
    // record, record 0 reaches the sink after 1 s, not after the whole run.
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let started = tokio::time::Instant::now();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("slow", |n: u64| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            StageOutcome::Keep(n)
        }))
        .queue_size(64)
        .sink(harvester_pipeline::sinks::CallbackSink::new("arrivals", move |batch: &[u64]| {
            let mut seen = seen.lock().expect("arrivals lock");
            seen.extend(batch.iter().map(|n| (*n, started.elapsed())));
            Box::pin(async { Ok(()) })
        }))
        .build()
        .expect("valid configuration");
    processor.sender().send_all((0..8).collect()).await.expect("open");
    processor.shutdown(Duration::from_secs(60)).await;
    let arrivals = arrivals.lock().expect("arrivals lock").clone();
    assert_eq!(arrivals.len(), 8);
    for (n, at) in arrivals {
        assert!(at < Duration::from_secs(n + 1) + Duration::from_millis(500), "record {n} arrived at {at:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn send_all_delivers_every_record_through_a_small_queue() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("a", keep).workers(2))
        .stage(Stage::new("b", keep))
        .queue_size(3)
        .ordered()
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send_all((0..1_000).collect()).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(60)).await;
    assert_eq!(output.records(), (0..1_000).collect::<Vec<u64>>());
    assert_eq!(report.output, 1_000);
}

#[tokio::test(start_paused = true)]
async fn a_fed_stream_in_drop_newest_mode_counts_what_it_drops() {
    let gate = Arc::new(Semaphore::new(0));
    let processor = StreamProcessor::builder()
        .stage(gated_stage(gate.clone()))
        .queue_size(4)
        .overflow(Overflow::DropNewest)
        .sink(memory())
        .build()
        .expect("valid configuration");
    processor.feed(futures::stream::iter(0..100u64));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = processor.metrics();
    assert_eq!(before.received + before.rejected, 100, "every record is accepted or counted as rejected");
    assert!(before.rejected >= 90, "only a queue and a run fit: {before:?}");

    gate.add_permits(1_000);
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.output, report.received);
    assert_eq!(report.received + report.rejected, 100);
}

#[tokio::test(start_paused = true)]
async fn stage_control_reads_metrics_and_sets_workers_until_the_processor_stops() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("parse", |n: u64| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            StageOutcome::Keep(n)
        }))
        .sink(memory())
        .build()
        .expect("valid configuration");
    let control = processor.stage_control("parse").expect("stage exists");
    assert_eq!(control.name(), "parse");
    assert!(matches!(processor.stage_control("nope"), Err(ProcessorError::UnknownStage(_))));
    assert!(matches!(control.set_workers(0), Err(ProcessorError::WorkersOutOfRange { workers: 0, .. })));
    assert!(matches!(control.set_workers(usize::MAX), Err(ProcessorError::WorkersOutOfRange { .. })));

    control.set_workers(4).expect("running");
    processor.sender().send_all((0..40).collect()).await.expect("open");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let snapshot = control.snapshot().expect("running");
    assert_eq!(snapshot.workers, 4);
    assert_eq!(snapshot.ok, 40);
    // 40 records of 10 ms each over 4 workers.
    assert!(snapshot.busy >= Duration::from_millis(400), "busy {:?}", snapshot.busy);

    processor.shutdown(Duration::from_secs(10)).await;
    assert!(matches!(control.set_workers(2), Err(ProcessorError::Stopped(_))));
    assert!(matches!(control.snapshot(), Err(ProcessorError::Stopped(_))));
}

#[test]
fn stage_and_sink_counters_reach_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        // Handles are registered when the processor is built, so only the build needs the recorder.
        let processor = metrics::with_local_recorder(&recorder, || {
            StreamProcessor::builder()
                .stage(Stage::new("evens", |n: u64| async move {
                    if n.is_multiple_of(2) { StageOutcome::Keep(n) } else { StageOutcome::Drop }
                }))
                .batch_size(5)
                .sink(memory())
                .build()
                .expect("valid configuration")
        });
        processor.sender().send_all((0..20).collect()).await.expect("open");
        let report = processor.shutdown(Duration::from_secs(10)).await;
        assert_eq!(report.sink.written, 10);
        assert_eq!(report.sink.batches, 2);
    });

    let counters: std::collections::HashMap<(String, String), u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| {
            let label = key.key().labels().next().map(|l| l.value().to_owned()).unwrap_or_default();
            match value {
                DebugValue::Counter(n) => Some(((key.key().name().to_owned(), label), n)),
                _ => None,
            }
        })
        .collect();
    let get = |name: &str, label: &str| counters.get(&(name.to_owned(), label.to_owned())).copied();
    assert_eq!(get("pipeline_stage_received_total", "evens"), Some(20));
    assert_eq!(get("pipeline_stage_ok_total", "evens"), Some(10));
    assert_eq!(get("pipeline_stage_dropped_total", "evens"), Some(10));
    assert_eq!(get("pipeline_sink_records_written_total", "memory"), Some(10));
    assert_eq!(get("pipeline_sink_batches_written_total", "memory"), Some(2));
}
