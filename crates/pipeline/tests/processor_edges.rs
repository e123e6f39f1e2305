//! Edge cases of the stream processor: ordered mode against small and huge windows, abort
//! and drop with senders waiting, handler panics, latency of micro-batching, live counters.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{gated_stage, keep, memory};
use harvester_pipeline::processor::{BuildError, Report, SendError, Stage, StageOutcome, StreamProcessor};
use harvester_pipeline::sinks::CallbackSink;
use tokio::sync::Semaphore;

/// A window smaller than a chunk: chunks shrink to fit it, rather than wait for more room
/// than the window will ever have.
#[tokio::test(start_paused = true)]
async fn send_all_completes_with_an_ordered_window_smaller_than_a_chunk() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("a", keep))
        .queue_size(100)
        .ordered_window(8)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let sent = tokio::time::timeout(Duration::from_secs(60), processor.sender().send_all((0..20).collect())).await;
    assert!(sent.is_ok(), "send_all of 20 records with ordered_window(8) hangs forever");
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.output, 20);
}

/// The same through `run_stream`, which sends what its stream has ready as chunks.
#[tokio::test(start_paused = true)]
async fn run_stream_completes_with_a_small_ordered_window() {
    let processor = StreamProcessor::builder()
        .stage(Stage::new("a", keep))
        .queue_size(100)
        .ordered_window(8)
        .sink(memory())
        .build()
        .expect("valid configuration");
    let report = tokio::time::timeout(
        Duration::from_secs(60),
        processor.run_stream(futures::stream::iter(0..20u64), Duration::from_secs(10)),
    )
    .await;
    assert!(report.is_ok(), "run_stream hangs");
}

/// A send waiting for room in the ordered window, and any later send, fail with `Closed`
/// once the processor is aborted.
#[tokio::test(start_paused = true)]
async fn a_send_waiting_for_the_ordered_window_fails_closed_after_abort() {
    let gate = Arc::new(Semaphore::new(0));
    let processor = StreamProcessor::builder()
        .stage(gated_stage(gate.clone()))
        .queue_size(16)
        .ordered_window(4)
        .sink(memory())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..4 {
        sender.send(n).await.expect("room in the window");
    }
    let waiting = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send(4).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _report = processor.abort().await;
    let result = tokio::time::timeout(Duration::from_secs(60), waiting).await;
    assert!(
        matches!(result, Ok(Ok(Err(SendError::Closed(4))))),
        "the waiting send never returns after abort: {result:?}"
    );
    // A new send on a surviving handle hangs as well.
    let later = tokio::time::timeout(Duration::from_secs(60), sender.send(5)).await;
    assert!(matches!(later, Ok(Err(SendError::Closed(5)))), "a send after abort hangs: {later:?}");
}

/// A handler that panics loses its record (counted as dropped), and ordered output goes on
/// past the hole.
#[tokio::test(start_paused = true)]
async fn a_panicking_handler_does_not_stall_ordered_output() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("a", |n: u64| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if n == 3 {
                    panic!("bad record {n}");
                }
                StageOutcome::Keep(n)
            })
            .workers(2),
        )
        .queue_size(4) // default window: 4 × 2 = 8
        .sink(output.clone())
        .ordered()
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    let sent = tokio::time::timeout(Duration::from_secs(60), async {
        for n in 0..40 {
            sender.send(n).await.expect("open");
        }
    })
    .await;
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert!(sent.is_ok(), "input stalled after one panic");
    assert_eq!(output.records(), (0..40).filter(|n| *n != 3).collect::<Vec<u64>>());
    assert_eq!((report.output, report.dropped, report.in_flight_at_end), (39, 1, 0));
}

/// A window larger than a semaphore can count is a configuration error, not a panic.
#[tokio::test]
async fn a_huge_ordered_window_is_refused_by_build_not_a_panic() {
    let built =
        StreamProcessor::builder().stage(Stage::new("a", keep)).ordered_window(usize::MAX).sink(memory()).build();
    assert_eq!(built.err().as_ref().and_then(BuildError::field), Some("ordered_window"));
}

/// Micro-batching passes a finished record on before a later record's handler waits.
#[tokio::test(start_paused = true)]
async fn a_finished_record_is_not_held_behind_a_slow_one() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let started = tokio::time::Instant::now();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("mixed", |n: u64| async move {
            if n == 1 {
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
            StageOutcome::Keep(n)
        }))
        .queue_size(64)
        .sink(CallbackSink::new("arrivals", move |batch: &[u64]| {
            seen.lock().expect("lock").extend(batch.iter().map(|n| (*n, started.elapsed())));
            Box::pin(async { Ok(()) })
        }))
        .build()
        .expect("valid configuration");
    processor.sender().send_all(vec![0, 1]).await.expect("open");
    processor.shutdown(Duration::from_secs(60)).await;
    let arrivals = arrivals.lock().expect("lock").clone();
    let zero = arrivals.iter().find(|(n, _)| *n == 0).expect("record 0 written").1;
    assert!(zero < Duration::from_secs(1), "record 0 (no wait) reached the sink after {zero:?}");
}

/// A stage's `ok` counts records as soon as they are passed on, not at the end of a run: a
/// scaler reading it mid-run sees the stage working.
#[tokio::test(start_paused = true)]
async fn ok_counts_records_as_soon_as_they_are_passed_on() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("slow", |n: u64| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            StageOutcome::Keep(n)
        }))
        .queue_size(64)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send_all((0..10).collect()).await.expect("open");
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let metrics = processor.metrics();
    let slow = &metrics.stages[0];
    let _ = processor.abort().await;
    assert_eq!(metrics.output, 5, "five records written");
    assert!(slow.ok >= metrics.output, "stage ok {} < records already written {}", slow.ok, metrics.output);
}

/// Behind a slow head record, ordered mode holds at most its window and then makes the
/// input wait.
#[tokio::test(start_paused = true)]
async fn ordered_mode_holds_at_most_its_window() {
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("head_is_slow", |n: u64| async move {
                if n == 0 {
                    tokio::time::sleep(Duration::from_secs(1_000)).await;
                }
                StageOutcome::Keep(n)
            })
            .workers(2),
        )
        .queue_size(4)
        .batch_size(1)
        .ordered_window(100)
        .sink(memory())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    let mut accepted = 0u64;
    for n in 0..500 {
        if tokio::time::timeout(Duration::from_secs(1), sender.send(n)).await.is_err() {
            break;
        }
        accepted += 1;
    }
    let held = processor.metrics().received - processor.metrics().output;
    let _ = processor.abort().await;
    // The window bounds what is between the input and the sink, whatever the queues.
    assert!(held <= 100, "held {held} records, window 100 (accepted {accepted})");
    assert!(accepted < 500, "the input must wait once the window is full");
}

/// Sends records `0..count` through `stage` (unordered, queues of 4, a memory sink) and shuts
/// down; returns what reached the sink, sorted, and the report. Fails if the input stalls.
async fn send_through_unordered(stage: Stage<u64>, count: u64) -> (Vec<u64>, Report) {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(stage)
        .queue_size(4)
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    let sent = tokio::time::timeout(Duration::from_secs(60), async {
        for n in 0..count {
            sender.send(n).await.expect("open");
        }
    })
    .await;
    drop(sender);
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert!(sent.is_ok(), "the input stalled");
    let mut records = output.records();
    records.sort_unstable();
    (records, report)
}

/// Without ordered mode, a panic does not stop the other records either: the panicking
/// record is lost (counted as dropped), every other one comes out.
#[tokio::test(start_paused = true)]
async fn unordered_output_keeps_going_after_a_panic() {
    let stage = Stage::new("a", |n: u64| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if n == 3 {
            panic!("bad record {n}");
        }
        StageOutcome::Keep(n)
    });
    let (records, report) = send_through_unordered(stage.workers(2), 40).await;
    assert_eq!(records, (0..40).filter(|n| *n != 3).collect::<Vec<u64>>());
    assert_eq!((report.output, report.dropped, report.dead_lettered, report.in_flight_at_end), (39, 1, 0, 0));
}

/// A handler that panics while it makes its future (before any `.await`, outside the async
/// block) is caught the same way: its record is dropped, the worker goes on, and the stage's
/// counts stay whole.
#[tokio::test(start_paused = true)]
async fn a_handler_that_panics_before_its_future_exists_loses_only_its_record() {
    let stage = Stage::new("a", |n: u64| {
        assert_ne!(n, 5, "bad record {n}");
        async move { StageOutcome::Keep(n) }
    });
    let (records, report) = send_through_unordered(stage, 20).await;
    assert_eq!(records, (0..20).filter(|n| *n != 5).collect::<Vec<u64>>());
    assert_eq!((report.output, report.dropped, report.in_flight_at_end), (19, 1, 0));
    let stage = &report.stages[0];
    assert_eq!((stage.received, stage.ok, stage.dropped, stage.in_flight, stage.queue_depth), (20, 19, 1, 0, 0));
}

/// Without ordered mode, a send waiting for room in the first queue fails with `Closed`
/// once the processor is aborted.
#[tokio::test(start_paused = true)]
async fn a_send_waiting_for_the_first_queue_fails_closed_after_abort() {
    let gate = Arc::new(Semaphore::new(0));
    let processor = StreamProcessor::builder()
        .stage(gated_stage(gate.clone()))
        .queue_size(1)
        .sink(memory())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    sender.send(0).await.expect("room");
    tokio::time::sleep(Duration::from_millis(1)).await;
    sender.send(1).await.expect("room");
    let waiting = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send(2).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _report = processor.abort().await;
    let result = tokio::time::timeout(Duration::from_secs(60), waiting).await;
    assert!(matches!(result, Ok(Ok(Err(SendError::Closed(2))))), "{result:?}");
}

/// Dropping an ordered processor ends a send waiting for the window with `Closed`.
#[tokio::test(start_paused = true)]
async fn a_send_waiting_for_the_ordered_window_fails_closed_after_drop() {
    let gate = Arc::new(Semaphore::new(0));
    let processor = StreamProcessor::builder()
        .stage(gated_stage(gate.clone()))
        .queue_size(16)
        .ordered_window(4)
        .sink(memory())
        .build()
        .expect("valid configuration");
    let sender = processor.sender();
    for n in 0..4 {
        sender.send(n).await.expect("room in the window");
    }
    let waiting = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send(4).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(processor);
    let result = tokio::time::timeout(Duration::from_secs(60), waiting).await;
    assert!(matches!(result, Ok(Ok(Err(SendError::Closed(4))))), "after drop: {result:?}");
}

/// Scaling down an idle stage retires its surplus workers at once, not at their next record.
#[tokio::test(start_paused = true)]
async fn idle_surplus_workers_retire_as_soon_as_the_target_drops() {
    let output = memory();
    let processor = StreamProcessor::builder()
        .stage(Stage::new("a", keep).workers(4))
        .sink(output.clone())
        .build()
        .expect("valid configuration");
    processor.sender().send_all((0..100).collect()).await.expect("open");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(processor.metrics().stages[0].workers, 4);

    processor.set_workers("a", 1).expect("stage exists");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(processor.metrics().stages[0].workers, 1, "idle workers retire without a new record");

    processor.sender().send_all((100..200).collect()).await.expect("open");
    let report = processor.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.output, 200, "the remaining worker takes everything");
}

/// Ready handlers run back to back, but not for longer than tokio's budget: a stage busy
/// with records whose handlers never wait lets the runtime's other tasks run in between, as
/// a task reading a channel does. Without that, a worker with 10 000 such records queued ran
/// them all without giving the thread up once.
#[test]
fn a_run_of_ready_handlers_lets_other_tasks_run() {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
    runtime.block_on(async {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    ticks.fetch_add(1, Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        // What the ticker had counted when each record was handled.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handler = {
            let (ticks, seen) = (ticks.clone(), seen.clone());
            move |n: u64| {
                seen.lock().expect("no panic while held").push(ticks.load(Relaxed));
                async move { StageOutcome::Keep(n) }
            }
        };
        let processor = StreamProcessor::builder()
            .stage(Stage::new("ready", handler))
            .queue_size(10_000)
            .sink(memory())
            .build()
            .expect("valid configuration");
        processor.sender().send_all((0..10_000).collect()).await.expect("open");
        let report = processor.shutdown(Duration::from_secs(10)).await;
        ticker.abort();
        assert_eq!(report.output, 10_000);
        // The worker gives the thread up when tokio's budget runs out (128 units a poll, a
        // unit per 8 records); the scheduler may resume it once more before the other task,
        // so at most twice that.
        let seen = seen.lock().expect("no panic while held");
        let longest = seen.chunk_by(|a, b| a == b).map(<[u64]>::len).max().unwrap_or(0);
        assert!(longest <= 2 * 128 * 8, "{longest} handlers ran back to back without the other task running");
    });
}
