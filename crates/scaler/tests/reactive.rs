//! The seed's reactive scaler: thresholds, doubling and halving, cooldown, bounds, missing
//! metrics.

use std::time::Duration;

use harvester_scaler::{Bound, Engine, ReactiveConfig, ReactiveScaler, Reason, Sample, Timestamp};

fn at(secs: u64) -> Timestamp {
    Timestamp::from_unix_secs(1_700_000_000 + secs)
}

fn scaler() -> ReactiveScaler {
    ReactiveScaler::new(ReactiveConfig { min_replicas: 1, max_replicas: 8, ..ReactiveConfig::default() })
        .expect("valid config")
}

fn busy(replicas: u32) -> Sample {
    Sample::new(replicas).with_value("cpu", 0.9).with_value("queue_depth", 50.0)
}

fn idle(replicas: u32) -> Sample {
    Sample::new(replicas).with_value("cpu", 0.1).with_value("queue_depth", 10.0)
}

#[test]
fn cooldown_holds_every_change_for_its_duration() {
    // Given a 60 s cooldown
    let mut scaler = scaler();
    // When cpu stays high, replicas double once a minute, never in between
    assert_eq!(scaler.recommend(&busy(2), at(0)).replicas, 4);
    let held = scaler.recommend(&busy(4), at(30));
    assert_eq!((held.replicas, held.reason), (4, Reason::Cooldown { remaining: Duration::from_secs(30) }));
    assert_eq!(scaler.recommend(&busy(4), at(59)).replicas, 4);
    assert_eq!(scaler.recommend(&busy(4), at(60)).replicas, 8);
    // And a scale-down waits out the cooldown of the last scale-up too
    assert!(matches!(scaler.recommend(&idle(8), at(100)).reason, Reason::Cooldown { .. }));
    assert_eq!(scaler.recommend(&idle(8), at(120)).replicas, 4);
    assert_eq!(scaler.recommend(&idle(4), at(180)).replicas, 2);
    assert_eq!(scaler.recommend(&idle(2), at(240)).replicas, 1);
    // Then the minimum holds without starting a cooldown
    let floor = scaler.recommend(&idle(1), at(300));
    assert_eq!((floor.replicas, floor.reason), (1, Reason::Clamped { bound: Bound::Min }));
    assert_eq!(scaler.recommend(&busy(1), at(301)).replicas, 2);
}

#[test]
fn change_not_applied_starts_no_cooldown() {
    // Given a 60 s cooldown and a change 2 -> 4 the actuator failed to make
    let mut scaler = scaler();
    assert_eq!(scaler.recommend(&busy(2), at(0)).replicas, 4);
    // When 2 still run 15 s later, the change is asked for again, not held by a cooldown
    let retried = scaler.recommend(&busy(2), at(15));
    assert_eq!((retried.replicas, retried.reason), (4, Reason::AboveTarget { metric: "cpu".into() }));
    // Then once 4 run, the cooldown counts from the change that was made
    let held = scaler.recommend(&busy(4), at(30));
    assert_eq!((held.replicas, held.reason), (4, Reason::Cooldown { remaining: Duration::from_secs(45) }));
}

#[test]
fn doubling_stops_at_the_maximum() {
    let mut scaler = scaler();
    let capped = scaler.recommend(&busy(5), at(0));
    assert_eq!((capped.replicas, capped.reason), (8, Reason::Clamped { bound: Bound::Max }));
    let at_max = scaler.recommend(&busy(8), at(600));
    assert_eq!((at_max.replicas, at_max.reason), (8, Reason::Clamped { bound: Bound::Max }));
}

#[test]
fn any_metric_above_scales_up_every_metric_below_scales_down() {
    let mut scaler = scaler();
    let queue = Sample::new(2).with_value("cpu", 0.1).with_value("queue_depth", 5_000.0);
    assert_eq!(scaler.recommend(&queue, at(0)).reason, Reason::AboveTarget { metric: "queue_depth".into() });
    let mut scaler = scaler_without_cooldown();
    // cpu low but the queue between its thresholds: steady
    let between = Sample::new(4).with_value("cpu", 0.1).with_value("queue_depth", 500.0);
    assert_eq!(scaler.recommend(&between, at(0)).reason, Reason::Steady);
    // memory is not reported: it is not watched, the rest decide
    assert_eq!(scaler.recommend(&idle(4), at(1)).replicas, 2);
}

fn scaler_without_cooldown() -> ReactiveScaler {
    ReactiveScaler::new(ReactiveConfig { cooldown: Duration::ZERO, ..ReactiveConfig::default() }).expect("valid config")
}

#[test]
fn unreadable_metric_blocks_scale_down_but_not_scale_up() {
    let mut scaler = scaler_without_cooldown();
    let broken = idle(4).with_value("memory", f64::NAN);
    let held = scaler.recommend(&broken, at(0));
    assert_eq!((held.replicas, held.reason), (4, Reason::MetricsMissing { missing: 1, of: 3 }));
    let broken_but_busy = busy(4).with_value("memory", -1.0);
    assert_eq!(scaler.recommend(&broken_but_busy, at(1)).replicas, 8);
    assert!(matches!(scaler.recommend(&Sample::new(4), at(2)).reason, Reason::MetricsMissing { .. }));
}

#[test]
fn replicas_outside_the_bounds_come_back_at_once() {
    let mut scaler = scaler();
    assert_eq!(scaler.recommend(&idle(0), at(0)).replicas, 1);
    assert_eq!(scaler.recommend(&idle(20), at(1)).replicas, 8);
}

#[test]
fn invalid_configuration_names_the_field() {
    let refused = |config| ReactiveScaler::new(config).expect_err("refused").field;
    assert_eq!(refused(ReactiveConfig { max_replicas: 0, ..ReactiveConfig::default() }), "reactive.max_replicas");
    assert_eq!(
        refused(ReactiveConfig { scale_down_threshold: 0.9, ..ReactiveConfig::default() }),
        "reactive.scale_down_threshold"
    );
    assert_eq!(
        refused(ReactiveConfig { queue_up_threshold: f64::INFINITY, ..ReactiveConfig::default() }),
        "reactive.queue_up_threshold"
    );
}
