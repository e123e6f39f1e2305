//! A real pipeline stage, scaled by the driver (feature `pipeline`): it gains workers under a
//! burst, returns to its minimum when idle, and loses no record on the way.

#![cfg(feature = "pipeline")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harvester_pipeline::processor::{Stage, StageOutcome, StreamProcessor};
use harvester_pipeline::{Sink, SinkError};
use harvester_scaler::{
    Actuator, Behavior, Driver, DriverConfig, Hpa, HpaConfig, MetricSource, MetricSpec, StageMetrics, StageWorkers,
    Timestamp, TokioWallClock,
};
use tokio::sync::watch;

const BURST: u32 = 1_200;

/// Keeps every record and publishes how many it has.
#[derive(Clone)]
struct Collect {
    records: Arc<Mutex<Vec<u32>>>,
    count: Arc<watch::Sender<usize>>,
}

#[async_trait]
impl Sink<u32> for Collect {
    fn name(&self) -> &str {
        "collect"
    }

    async fn write(&self, batch: &[u32]) -> Result<(), SinkError> {
        let mut records = self.records.lock().map_err(|_| SinkError::new("collect", "poisoned"))?;
        records.extend_from_slice(batch);
        self.count.send_replace(records.len());
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn burst_gains_workers_then_the_stage_returns_to_its_minimum_losing_nothing() {
    // Given a stage taking 100 ms a record with one worker, and an HPA keeping its busy share
    // at 0.5 (Kubernetes' default behaviour: fast up, 300 s window down)
    let (count, mut counted) = watch::channel(0);
    let sink = Collect { records: Arc::default(), count: Arc::new(count) };
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("work", |n: u32| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                StageOutcome::Keep(n)
            })
            .workers(1),
        )
        .queue_size(8)
        .batch_size(16)
        .sink(sink.clone())
        .build()
        .expect("valid processor");
    let control = processor.stage_control("work").expect("the stage exists");
    let hpa = Hpa::new(HpaConfig {
        min_replicas: 1,
        max_replicas: 8,
        behavior: Some(Behavior::default()),
        ..HpaConfig::new([MetricSpec::value(StageMetrics::BUSY, 0.5)])
    })
    .expect("valid config");
    let driver = Driver::spawn_with_clock(
        DriverConfig { interval: Duration::from_secs(5), ..DriverConfig::default() },
        hpa,
        StageMetrics::new(control.clone()),
        StageWorkers::new(control.clone()),
        TokioWallClock::starting_at(Timestamp::from_unix_secs(1_700_000_000)),
    )
    .expect("valid driver");

    // When a burst of records arrives (120 s of work for one worker)
    let sender = processor.sender();
    let feeding = tokio::spawn(async move {
        for n in 0..BURST {
            sender.send(n).await.map_err(|_| "processor closed")?;
        }
        Ok::<(), &'static str>(())
    });
    counted.wait_for(|n| *n >= BURST as usize).await.expect("the sink reports");
    feeding.await.expect("no panic").expect("every record sent");

    // Then the stage gained workers while the burst lasted
    let peak = driver.history().iter().map(|d| d.replicas_after()).max().unwrap_or(0);
    assert!(peak >= 4, "peak {peak}: {:?}", driver.history());
    // And, idle for longer than the scale-down window (the paused clock jumps ahead), the
    // driver has set it back to one worker
    tokio::time::sleep(Duration::from_secs(400)).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    assert_eq!(history.last().map(|d| d.replicas_after()), Some(1));
    // and the surplus workers, idle on the empty queue, have retired
    assert_eq!(control.workers().expect("running"), 1);

    // And every record came out once, none dropped or dead-lettered
    let report = processor.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        (report.received, report.output, report.dropped, report.dead_lettered, report.in_flight_at_end),
        (u64::from(BURST), u64::from(BURST), 0, 0, 0)
    );
    let mut records = sink.records.lock().expect("sink lock").clone();
    records.sort_unstable();
    assert_eq!(records, (0..BURST).collect::<Vec<_>>());
}

#[tokio::test(start_paused = true)]
async fn busy_share_is_measured_over_the_last_interval() {
    // Given one worker kept busy by a steady supply of 1 s records
    let processor = StreamProcessor::builder()
        .stage(
            Stage::new("slow", |n: u32| async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                StageOutcome::Keep(n)
            })
            .workers(1),
        )
        .queue_size(1)
        .sink(Collect { records: Arc::default(), count: Arc::new(watch::channel(0).0) })
        .build()
        .expect("valid processor");
    let control = processor.stage_control("slow").expect("the stage exists");
    let sender = processor.sender();
    let feeding = tokio::spawn(async move {
        for n in 0..100 {
            if sender.send(n).await.is_err() {
                break;
            }
        }
    });
    let mut metrics = StageMetrics::new(control.clone());
    let t0 = Timestamp::from_unix_secs(0);
    // The first sample has no interval: no busy reading
    let first = metrics.sample(1, t0).await.expect("readable");
    assert_eq!(first.value(StageMetrics::BUSY), None);
    // Ten seconds later the worker has been busy all along
    tokio::time::sleep(Duration::from_secs(10)).await;
    let second = metrics.sample(1, t0 + Duration::from_secs(10)).await.expect("readable");
    let busy = second.value(StageMetrics::BUSY).expect("a busy reading");
    assert!((0.9..=1.0).contains(&busy), "{busy}");
    // And the actuator reports the count it set, not the workers still retiring
    let workers = StageWorkers::new(control);
    workers.apply(3).await.expect("applied");
    assert_eq!(workers.current().await.expect("current"), 3);
    assert!(workers.apply(0).await.is_err());
    feeding.abort();
    drop(processor);
}

#[tokio::test(start_paused = true)]
async fn zero_workers_is_refused_and_recorded_as_actuator_failed() {
    // Given an idle stage with one worker and an HPA allowed to go to zero (on the queue depth,
    // a whole-target reading; no stabilisation window)
    let processor = StreamProcessor::builder()
        .stage(Stage::new("idle", |n: u32| async move { StageOutcome::Keep(n) }).workers(1))
        .sink(Collect { records: Arc::default(), count: Arc::new(watch::channel(0).0) })
        .build()
        .expect("valid processor");
    let control = processor.stage_control("idle").expect("the stage exists");
    let hpa = Hpa::new(HpaConfig {
        min_replicas: 0,
        downscale_stabilization: Duration::ZERO,
        ..HpaConfig::new([MetricSpec::value(StageMetrics::QUEUE_DEPTH, 10.0)])
    })
    .expect("valid config");
    let driver = Driver::spawn_with_clock(
        DriverConfig { interval: Duration::from_secs(5), ..DriverConfig::default() },
        hpa,
        StageMetrics::new(control.clone()),
        StageWorkers::new(control.clone()),
        TokioWallClock::starting_at(Timestamp::from_unix_secs(1_700_000_000)),
    )
    .expect("valid driver");
    // When the HPA asks for 0 workers
    tokio::time::sleep(Duration::from_secs(11)).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then the driver records the refusal, and the stage keeps its worker
    let refused = history.iter().find(|d| d.recommendation().is_some_and(|r| r.replicas == 0)).expect("0 asked for");
    assert!(matches!(refused.outcome, harvester_scaler::RoundOutcome::ActuatorFailed { .. }), "{refused:?}");
    assert_eq!(refused.replicas_after(), 1);
    assert_eq!(control.workers().expect("running"), 1);
    drop(processor);
}
