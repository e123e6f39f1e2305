//! Every numeric setting of the stream processor and of the batch sink at its extremes (0,
//! 1, huge, the type's maximum; `Duration::MAX`): refused with a typed error naming the
//! setting, or accepted and then moving records under a paused clock without a panic and
//! without losing one silently. A sink that panics costs its batch a retry, never the
//! writer task and what it held.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use common::memory;
use harvester_pipeline::batch::{BatchConfig, BatchSink, RetryConfig};
use harvester_pipeline::processor::{ErrorPolicy, SinkRetry, Stage, StageOutcome, StreamProcessor};
use harvester_pipeline::sink::{DeadLetter, Sink, SinkError};
use harvester_pipeline::sinks::MemorySink;
use proptest::prelude::*;

// This crate's own extremes, not the shared tables of harvester-testbed: with their moderate
// counts (20, 56 workers per stage) some cases of the processor property take minutes in a
// debug build.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::from_nanos(1)),
        Just(Duration::from_millis(10)),
        Just(Duration::from_secs(86_400)),
        Just(Duration::from_secs(u64::MAX)),
        Just(Duration::MAX),
    ]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(3), Just(1 << 20), Just(u32::MAX)]
}

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0), Just(1), Just(4), Just(1 << 40), Just(usize::MAX)]
}

/// Keeps records, fails every third one.
async fn flaky(n: u64) -> StageOutcome<u64> {
    if n.is_multiple_of(3) { StageOutcome::Error(n, format!("record {n} failed")) } else { StageOutcome::Keep(n) }
}

/// A sink whose first `failures` writes panic, then a memory sink.
struct Panicky<T> {
    failures: AtomicU32,
    inner: MemorySink<T>,
}

impl<T> Panicky<T> {
    fn new(failures: u32) -> Arc<Panicky<T>> {
        Arc::new(Panicky { failures: AtomicU32::new(failures), inner: MemorySink::new("panicky") })
    }
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Sink<T> for Panicky<T> {
    fn name(&self) -> &str {
        "panicky"
    }

    async fn write(&self, batch: &[T]) -> Result<(), SinkError> {
        if self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            panic!("the sink's driver fell over");
        }
        self.inner.write(batch).await
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn processor(
        (queue, batch, window, workers) in (size(), size(), proptest::option::of(size()), size()),
        (timeout, attempts, base_delay) in (proptest::option::of(duration()), count(), duration()),
        (sink_attempts, sink_base_delay) in (count(), duration()),
    ) {
        let report = harvester_testbed::support::extremes::paused_runtime().block_on(async move {
            let mut stage = Stage::new("flaky", flaky)
                .workers(workers)
                .on_error(ErrorPolicy::Retry { max_attempts: attempts, base_delay });
            if let Some(timeout) = timeout {
                stage = stage.timeout(timeout);
            }
            let mut builder = StreamProcessor::builder()
                .stage(stage)
                .queue_size(queue)
                .batch_size(batch)
                .sink_retry(SinkRetry { max_attempts: sink_attempts, base_delay: sink_base_delay })
                .sink(memory::<u64>());
            if let Some(window) = window {
                builder = builder.ordered_window(window);
            }
            let processor = builder.build()?;
            Ok(processor.run_stream(futures::stream::iter(0..12u64), Duration::from_secs(400 * 86_400)).await)
        });
        match report {
            Ok(report) => {
                prop_assert_eq!(report.received, 12);
                prop_assert_eq!(report.received, report.output + report.dropped + report.dead_lettered + report.in_flight_at_end);
                prop_assert!(report.deadline_exceeded || report.in_flight_at_end == 0, "{report:?}");
            }
            Err(e) => {
                let e: harvester_pipeline::processor::BuildError = e;
                prop_assert!(e.field().is_some(), "{e}");
            }
        }
    }

    #[test]
    fn batch_sink(
        (max_records, max_bytes, channel_capacity) in (size(), size(), size()),
        max_wait in duration(),
        (attempts, base, max) in (count(), duration(), duration()),
    ) {
        let config = BatchConfig {
            max_records,
            max_bytes,
            max_wait,
            channel_capacity,
            retry: RetryConfig { max_attempts: attempts, base_delay: base, max_delay: max },
        };
        let valid = config.validate();
        let outcome = harvester_testbed::support::extremes::paused_runtime().block_on(async move {
            let inner = Panicky::<u64>::new(1);
            let dead = Arc::new(MemorySink::<DeadLetter<u64>>::new("dead"));
            let batch = BatchSink::builder(inner.clone(), config).dead_letter(dead.clone()).spawn()?;
            for n in 0..3u64 {
                batch.push(n).await.map_err(|_| "push refused").expect("the batch sink runs");
            }
            let report = batch.close().await.map_err(|_| "task failed").expect("the batch sink ends cleanly");
            Ok((report, inner.inner.records().len(), dead.records().len()))
        });
        match outcome {
            Ok((report, written, dead)) => {
                prop_assert!(valid.is_ok());
                prop_assert_eq!(written + dead, 3, "{:?}", report);
                prop_assert_eq!(report.lost, 0);
            }
            Err(e) => {
                let e: harvester_pipeline::batch::ConfigError = e;
                prop_assert_eq!(valid, Err(e));
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_batch_size_the_allocator_cannot_give_is_refused_by_build_not_a_dead_task() {
    for batch in [usize::MAX, 1 << 40] {
        let built = StreamProcessor::builder().stage(Stage::new("a", flaky)).batch_size(batch).sink(memory()).build();
        assert_eq!(built.err().as_ref().and_then(|e| e.field()), Some("batch_size"));
    }
}

#[test]
fn batch_settings_that_would_overflow_a_clock_or_a_channel_are_refused() {
    let refused = |config: BatchConfig| config.validate().map_err(|e| e.field.into_owned());
    assert_eq!(refused(BatchConfig { max_wait: Duration::MAX, ..BatchConfig::default() }), Err("max_wait".to_owned()));
    assert_eq!(
        refused(BatchConfig { channel_capacity: 1 << 62, ..BatchConfig::default() }),
        Err("channel_capacity".to_owned())
    );
    assert_eq!(
        refused(BatchConfig { max_records: usize::MAX, ..BatchConfig::default() }),
        Err("max_records".to_owned())
    );
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_panics_costs_its_batch_a_retry_not_the_writer() {
    let sink = Panicky::<u64>::new(2);
    let processor = StreamProcessor::builder()
        .stage(Stage::new("a", common::keep))
        .sink_retry(SinkRetry { max_attempts: 3, base_delay: Duration::from_millis(10) })
        .sink(sink.clone())
        .build()
        .expect("valid configuration");
    let report = processor.run_stream(futures::stream::iter(0..50u64), Duration::from_secs(60)).await;
    assert_eq!(sink.inner.records().len(), 50, "{report:?}");
    assert_eq!((report.output, report.in_flight_at_end), (50, 0));
    assert_eq!(report.sink.failed_attempts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_batch_sink_whose_sink_always_panics_dead_letters_everything() {
    let sink = Panicky::<u64>::new(u32::MAX);
    let dead = Arc::new(MemorySink::<DeadLetter<u64>>::new("dead"));
    let config =
        BatchConfig { retry: RetryConfig { max_attempts: 2, ..RetryConfig::default() }, ..BatchConfig::default() };
    let batch = BatchSink::builder(sink.clone(), config).dead_letter(dead.clone()).spawn().expect("valid config");
    for n in 0..5u64 {
        batch.push(n).await.expect("the batch sink runs after a panic");
    }
    let report = batch.close().await.expect("the task survives its sink's panics");
    assert_eq!((report.written, report.dead_lettered, report.lost), (0, 5, 0));
    let letters = dead.records();
    assert!(letters.iter().all(|l| l.error.contains("write panicked: the sink's driver fell over")), "{letters:?}");
}
