//! The driver loop under a paused tokio clock: rounds at the interval, decisions applied and
//! remembered, failures recorded, stop.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use harvester_scaler::{
    Actuator, ActuatorError, Behavior, Driver, DriverConfig, Hpa, HpaConfig, MetricSource, MetricSpec, RoundOutcome,
    Sample, ScalingPolicy, ScalingRules, SourceError, Timestamp, TokioWallClock,
};
use tokio::sync::mpsc;

const ANCHOR: Timestamp = Timestamp::from_unix_secs(1_700_000_000);

/// Reads `load` from a script, one entry per round (a negative entry: the source fails), and
/// tells the test each time it is read.
struct Script {
    loads: Vec<f64>,
    round: usize,
    read: mpsc::UnboundedSender<Timestamp>,
}

#[async_trait]
impl MetricSource for Script {
    async fn sample(&mut self, replicas: u32, now: Timestamp) -> Result<Sample, SourceError> {
        let load = self.loads.get(self.round).copied().unwrap_or(100.0 * f64::from(replicas));
        self.round += 1;
        // The test may have stopped listening; the round goes on.
        let _ = self.read.send(now);
        if load < 0.0 {
            return Err(SourceError::new("script", "exporter down"));
        }
        Ok(Sample::new(replicas).with_value("load", load))
    }
}

/// Remembers what it applied; can be told to fail.
#[derive(Clone, Default)]
struct Recorder {
    replicas: Arc<AtomicU32>,
    applied: Arc<Mutex<Vec<u32>>>,
    failing: Arc<AtomicBool>,
}

impl Recorder {
    fn at(replicas: u32) -> Self {
        let recorder = Recorder::default();
        recorder.replicas.store(replicas, Ordering::SeqCst);
        recorder
    }

    fn applied(&self) -> Vec<u32> {
        self.applied.lock().expect("recorder lock").clone()
    }
}

#[async_trait]
impl Actuator for Recorder {
    async fn current(&self) -> Result<u32, ActuatorError> {
        Ok(self.replicas.load(Ordering::SeqCst))
    }

    async fn apply(&self, replicas: u32) -> Result<(), ActuatorError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ActuatorError::new("recorder", "refused"));
        }
        self.replicas.store(replicas, Ordering::SeqCst);
        self.applied.lock().expect("recorder lock").push(replicas);
        Ok(())
    }
}

fn hpa() -> Hpa {
    Hpa::new(HpaConfig { max_replicas: 50, ..HpaConfig::new([MetricSpec::average_value("load", 100.0)]) })
        .expect("valid config")
}

fn start(config: DriverConfig, loads: Vec<f64>, actuator: Recorder) -> (Driver, mpsc::UnboundedReceiver<Timestamp>) {
    start_with(config, hpa(), loads, actuator)
}

fn start_with(
    config: DriverConfig,
    engine: Hpa,
    loads: Vec<f64>,
    actuator: Recorder,
) -> (Driver, mpsc::UnboundedReceiver<Timestamp>) {
    let (read, reads) = mpsc::unbounded_channel();
    let source = Script { loads, round: 0, read };
    let driver = Driver::spawn_with_clock(config, engine, source, actuator, TokioWallClock::starting_at(ANCHOR))
        .expect("valid config");
    (driver, reads)
}

async fn wait_for_reads(reads: &mut mpsc::UnboundedReceiver<Timestamp>, count: usize) -> Vec<Timestamp> {
    let mut seen = Vec::new();
    for _ in 0..count {
        seen.push(reads.recv().await.expect("the driver reads its source"));
    }
    seen
}

fn secs(at: Timestamp) -> u64 {
    at.saturating_since(ANCHOR).as_secs()
}

#[tokio::test(start_paused = true)]
async fn driver_applies_recommendations_and_keeps_history() {
    // Given 2 replicas and load 400, 800, 800, 1600, then a failing source
    let actuator = Recorder::at(2);
    let (driver, mut reads) =
        start(DriverConfig::default(), vec![400.0, 800.0, 800.0, 1_600.0, -1.0], actuator.clone());
    // When three rounds have read their metrics, the history is readable while running
    let first = wait_for_reads(&mut reads, 3).await;
    assert!(driver.history().len() >= 2 && driver.rounds() >= 2, "{:?}", driver.history());
    let rest = wait_for_reads(&mut reads, 2).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then rounds came every 15 s from the start
    let times: Vec<u64> = first.into_iter().chain(rest).map(secs).collect();
    assert_eq!(times, [0, 15, 30, 45, 60]);
    // And each decision is remembered: 2 -> 4 -> 8, 8 on target, -> 16, then no sample
    let after: Vec<u32> = history.iter().map(|d| d.replicas_after()).collect();
    assert_eq!(after, [4, 8, 8, 16, 16]);
    assert!(matches!(history[2].outcome, RoundOutcome::Unchanged { .. }));
    assert!(matches!(&history[4].outcome, RoundOutcome::NoSample { error } if error.contains("exporter down")));
    assert_eq!(history.iter().map(|d| secs(d.at)).collect::<Vec<_>>(), [0, 15, 30, 45, 60]);
    // And the actuator applied exactly the changes
    assert_eq!(actuator.applied(), [4, 8, 16]);
}

#[tokio::test(start_paused = true)]
async fn history_keeps_only_the_last_decisions() {
    let config = DriverConfig { interval: Duration::from_secs(10), history: 3, ..DriverConfig::default() };
    let (driver, mut reads) = start(config, Vec::new(), Recorder::at(4));
    wait_for_reads(&mut reads, 6).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    assert_eq!(history.iter().map(|d| secs(d.at)).collect::<Vec<_>>(), [30, 40, 50]);
}

#[tokio::test(start_paused = true)]
async fn actuator_failure_is_recorded_and_retried() {
    // Given an actuator that refuses at first
    let actuator = Recorder::at(2);
    actuator.failing.store(true, Ordering::SeqCst);
    let (driver, mut reads) = start(DriverConfig::default(), vec![400.0; 10], actuator.clone());
    wait_for_reads(&mut reads, 2).await;
    // When it recovers
    actuator.failing.store(false, Ordering::SeqCst);
    wait_for_reads(&mut reads, 2).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then the refused rounds are recorded and a later round applies the same decision
    assert!(
        matches!(&history[0].outcome, RoundOutcome::ActuatorFailed { recommendation, .. } if recommendation.replicas == 4)
    );
    assert!(history.iter().any(|d| matches!(d.outcome, RoundOutcome::Applied { .. })));
    assert_eq!(actuator.applied(), [4]);
}

#[tokio::test(start_paused = true)]
async fn change_refused_by_the_actuator_is_retried_in_full() {
    // Given an HPA allowed 4 more replicas a minute, load asking for 10 of 2, and an actuator
    // that refuses the first change
    let hpa =
        Hpa::new(HpaConfig {
            max_replicas: 50,
            behavior: Some(Behavior::default().with_scale_up(
                ScalingRules::default().with_policies([ScalingPolicy::pods(4, Duration::from_secs(60))]),
            )),
            ..HpaConfig::new([MetricSpec::average_value("load", 100.0)])
        })
        .expect("valid config");
    let actuator = Recorder::at(2);
    actuator.failing.store(true, Ordering::SeqCst);
    let (driver, mut reads) = start_with(DriverConfig::default(), hpa, vec![1_000.0; 10], actuator.clone());
    wait_for_reads(&mut reads, 1).await;
    // When it accepts the retries
    actuator.failing.store(false, Ordering::SeqCst);
    wait_for_reads(&mut reads, 2).await;
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then the round at 15 s makes the whole 2 -> 6 (the refused change used up none of the 4
    // a minute), and the round at 30 s holds 6 (the change made at 15 s did)
    assert!(
        matches!(&history[0].outcome, RoundOutcome::ActuatorFailed { recommendation, .. } if recommendation.replicas == 6)
    );
    assert_eq!(history.iter().map(|d| d.replicas_after()).collect::<Vec<_>>(), [2, 6, 6]);
    assert_eq!(actuator.applied(), [6]);
}

/// A source that never answers.
struct Hung;

#[async_trait]
impl MetricSource for Hung {
    async fn sample(&mut self, _replicas: u32, _now: Timestamp) -> Result<Sample, SourceError> {
        std::future::pending().await
    }
}

/// An actuator whose changes never finish.
struct HungApply;

#[async_trait]
impl Actuator for HungApply {
    async fn current(&self) -> Result<u32, ActuatorError> {
        Ok(2)
    }

    async fn apply(&self, _replicas: u32) -> Result<(), ActuatorError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn hung_source_is_abandoned_at_the_round_timeout() {
    // Given a source that never answers and rounds bounded to 5 s
    let config = DriverConfig { round_timeout: Some(Duration::from_secs(5)), ..DriverConfig::default() };
    let driver = Driver::spawn_with_clock(config, hpa(), Hung, Recorder::at(2), TokioWallClock::starting_at(ANCHOR))
        .expect("valid config");
    // When stop is called in the middle of the second round
    tokio::time::sleep(Duration::from_secs(16)).await;
    let asked = tokio::time::Instant::now();
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then it returns once that round times out, and each round is recorded as failed
    assert_eq!(asked.elapsed(), Duration::from_secs(4));
    assert_eq!(history.iter().map(|d| secs(d.at)).collect::<Vec<_>>(), [0, 15]);
    for decision in &history {
        assert!(
            matches!(&decision.outcome, RoundOutcome::NoSample { error } if error.contains("metric source: no answer within the round timeout (5s)")),
            "{decision:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hung_apply_is_recorded_as_actuator_failed_after_the_interval() {
    // Given an actuator whose changes never finish, and the default timeout (the interval)
    let (read, _reads) = mpsc::unbounded_channel();
    let source = Script { loads: vec![400.0], round: 0, read };
    let driver = Driver::spawn_with_clock(
        DriverConfig::default(),
        hpa(),
        source,
        HungApply,
        TokioWallClock::starting_at(ANCHOR),
    )
    .expect("valid config");
    // When the first round's change (2 -> 4) hangs
    tokio::time::sleep(Duration::from_secs(1)).await;
    let asked = tokio::time::Instant::now();
    let history = driver.stop().await.expect("the loop ran to the end");
    // Then stop returns when the round gives up on it, 15 s after it began
    assert_eq!(asked.elapsed(), Duration::from_secs(14));
    assert_eq!(history.len(), 1);
    assert!(
        matches!(&history[0].outcome, RoundOutcome::ActuatorFailed { recommendation, error }
            if recommendation.replicas == 4 && error.contains("no answer within the round timeout (15s)")),
        "{history:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_longest_interval_runs_rounds_and_a_longer_one_is_refused() {
    // Given an interval of a day, the longest accepted
    let config = DriverConfig { interval: Duration::from_secs(86_400), history: 1, ..DriverConfig::default() };
    let (driver, mut reads) = start(config, Vec::new(), Recorder::at(2));
    // When the first round has run and an hour goes by
    wait_for_reads(&mut reads, 1).await;
    tokio::time::sleep(Duration::from_secs(3_600)).await;
    // Then it is recorded and no second round came
    assert_eq!(driver.rounds(), 1);
    assert_eq!(driver.stop().await.expect("the loop ran to the end").len(), 1);
    // And an interval no deadline can follow is refused by name
    let endless = DriverConfig { interval: Duration::MAX, ..DriverConfig::default() };
    assert_eq!(endless.validate().expect_err("refused").field, "driver.interval");
}

/// A source that panics at its second sample.
struct Faulty {
    round: u32,
}

#[async_trait]
impl MetricSource for Faulty {
    async fn sample(&mut self, replicas: u32, _now: Timestamp) -> Result<Sample, SourceError> {
        self.round += 1;
        assert!(self.round < 2, "exporter client bug");
        Ok(Sample::new(replicas).with_value("load", 100.0))
    }
}

#[tokio::test(start_paused = true)]
async fn a_loop_that_dies_says_so_instead_of_looking_idle() {
    // Given a driver whose source panics in the second round
    let driver = Driver::spawn_with_clock(
        DriverConfig::default(),
        hpa(),
        Faulty { round: 0 },
        Recorder::at(1),
        TokioWallClock::starting_at(ANCHOR),
    )
    .expect("valid config");
    // When that round has come and gone
    tokio::time::sleep(Duration::from_secs(20)).await;
    // Then the driver is not running, says why, and stopping it is an error carrying the history
    assert!(!driver.is_running());
    assert!(driver.failure().is_some_and(|why| why.contains("exporter client bug")), "{:?}", driver.failure());
    let failed = driver.stop().await.expect_err("the loop died");
    assert!(failed.reason.contains("exporter client bug"));
    assert_eq!(failed.history.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn stopped_driver_makes_no_more_rounds() {
    let (driver, mut reads) = start(DriverConfig::default(), Vec::new(), Recorder::at(3));
    wait_for_reads(&mut reads, 1).await;
    let rounds = driver.stop().await.expect("the loop ran to the end").len();
    tokio::time::advance(Duration::from_secs(600)).await;
    // The source was dropped with the loop: the channel is closed, with nothing more in it.
    assert_eq!(reads.recv().await, None);
    assert_eq!(rounds, 1);
}

#[test]
fn invalid_configuration_names_the_field() {
    let zero = DriverConfig { interval: Duration::ZERO, ..DriverConfig::default() };
    assert_eq!(zero.validate().expect_err("refused").field, "driver.interval");
    let none = DriverConfig { history: 0, ..DriverConfig::default() };
    assert_eq!(none.validate().expect_err("refused").field, "driver.history");
    let no_time = DriverConfig { round_timeout: Some(Duration::ZERO), ..DriverConfig::default() };
    assert_eq!(no_time.validate().expect_err("refused").field, "driver.round_timeout");
}

#[test]
fn configuration_reads_from_json() {
    let config: DriverConfig =
        serde_json::from_str(r#"{"interval": "10s", "round_timeout": "3s"}"#).expect("valid json");
    assert_eq!(
        config,
        DriverConfig { interval: Duration::from_secs(10), round_timeout: Some(Duration::from_secs(3)), history: 1_000 }
    );
    let default: DriverConfig = serde_json::from_str("{}").expect("valid json");
    assert_eq!(default.round_timeout, None);
}

#[test]
fn timestamps_read_and_write_as_rfc3339() {
    let json = serde_json::to_string(&ANCHOR).expect("serializable");
    assert_eq!(json, r#""2023-11-14T22:13:20Z""#);
    assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("readable"), ANCHOR);
}
