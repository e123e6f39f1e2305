//! Every numeric setting of every configuration, at its extremes (0, 1, the type's maximum;
//! NaN, ±∞ and huge for floats; `i32::MIN` for the offset; `Duration::MAX`): refused with a
//! typed error naming the field, or accepted and then working, samples far apart included,
//! without a panic (proptest reports a panic as a failure).

use std::time::Duration;

use harvester_scaler::{
    Behavior, CostCap, CostConfig, DriverConfig, Engine, ForecastModel, Hpa, HpaConfig, MetricSpec, Predictive,
    PredictiveConfig, ReactiveConfig, ReactiveScaler, Sample, ScalingPolicy, ScalingRules, ScheduleConfig,
    ScheduleWindow, Scheduled, TimeOfDay, Timestamp, Tolerance,
};
use harvester_testbed::support::extremes::{count, duration, float, size};
use proptest::prelude::*;

/// Recommends at moments near and far apart, with good and bad readings.
fn exercise(engine: &mut dyn Engine) {
    let moments = [0, 15, 30, 1_700_000_000, 1_700_000_015, u64::MAX / 2, u64::MAX - 1];
    for (n, secs) in moments.into_iter().enumerate() {
        let value = [50.0, f64::NAN, 1e308, 0.0, 5_000.0, f64::INFINITY, 10.0][n];
        let sample = Sample::new(3)
            .with_value("load", value)
            .with_value("cpu", value)
            .with_value("memory", value)
            .with_value("queue_depth", value);
        let recommendation = engine.recommend(&sample, Timestamp::from_unix_secs(secs));
        let _ = (recommendation.replicas, recommendation.reason);
    }
}

fn hpa(min: u32, max: u32, target: f64, tolerance: f64, window: Duration) -> HpaConfig {
    HpaConfig {
        min_replicas: min,
        max_replicas: max,
        tolerance: Tolerance { scale_up: tolerance, scale_down: tolerance },
        downscale_stabilization: window,
        ..HpaConfig::new([MetricSpec::average_value("load", target), MetricSpec::value("queue_depth", target)])
    }
}

/// A target that always looks busy.
struct Busy;

#[async_trait::async_trait]
impl harvester_scaler::MetricSource for Busy {
    async fn sample(&mut self, replicas: u32, _now: Timestamp) -> Result<Sample, harvester_scaler::SourceError> {
        Ok(Sample::new(replicas).with_value("cpu", 0.9))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn reactive(
        (min, max) in (count(), count()),
        (up, down, queue_up, queue_down) in (float(), float(), float(), float()),
        cooldown in duration(),
    ) {
        let config = ReactiveConfig {
            min_replicas: min,
            max_replicas: max,
            scale_up_threshold: up,
            scale_down_threshold: down,
            queue_up_threshold: queue_up,
            queue_down_threshold: queue_down,
            cooldown,
            ..ReactiveConfig::default()
        };
        match ReactiveScaler::new(config) {
            Ok(mut engine) => exercise(&mut engine),
            Err(e) => prop_assert!(e.field.starts_with("reactive."), "{e}"),
        }
    }

    #[test]
    fn hpa_and_its_behaviour(
        (min, max) in (count(), count()),
        (target, tolerance) in (float(), float()),
        window in duration(),
        (rule_window, period, value) in (proptest::option::of(duration()), duration(), count()),
    ) {
        let rules = ScalingRules { stabilization_window: rule_window, ..ScalingRules::default() }
            .with_policies([ScalingPolicy::pods(value, period), ScalingPolicy::percent(value, period)]);
        let config = HpaConfig {
            behavior: Some(Behavior { scale_up: Some(rules.clone()), scale_down: Some(rules) }),
            ..hpa(min, max, target, tolerance, window)
        };
        match Hpa::new(config.clone()) {
            Ok(mut engine) => exercise(&mut engine),
            Err(e) => prop_assert!(e.field.starts_with("hpa."), "{e}"),
        }
        match Hpa::new(HpaConfig { behavior: None, ..config }) {
            Ok(mut engine) => exercise(&mut engine),
            Err(e) => prop_assert!(e.field.starts_with("hpa."), "{e}"),
        }
    }

    #[test]
    fn predictive(
        (target, confidence) in (float(), float()),
        (window, horizon) in (duration(), duration()),
        min_samples in size(),
        holt in any::<bool>(),
    ) {
        let model = if holt { ForecastModel::HOLT } else { ForecastModel::LinearTrend };
        let config = PredictiveConfig {
            window,
            horizon,
            min_confidence: confidence,
            min_samples,
            ..PredictiveConfig::new("load", target)
        }
        .with_model(model);
        match Predictive::new(hpa(1, 10, 100.0, 0.1, Duration::from_secs(300)), config) {
            Ok(mut engine) => exercise(&mut engine),
            Err(e) => prop_assert!(e.field.starts_with("predict"), "{e}"),
        }
    }

    #[test]
    fn schedule_and_cost(
        offset in prop_oneof![Just(i32::MIN), Just(-1_080), Just(0), Just(1_081), Just(i32::MAX)],
        window_min in count(),
        (per_hour, budget) in (float(), proptest::option::of(float())),
    ) {
        let window = ScheduleWindow::new(
            "night",
            TimeOfDay::new(22, 0).expect("valid time"),
            TimeOfDay::new(6, 0).expect("valid time"),
            window_min,
        );
        let inner = ReactiveScaler::new(ReactiveConfig::default()).expect("the default is valid");
        let scheduled = match Scheduled::new(ScheduleConfig { utc_offset_minutes: offset, windows: vec![window] }, inner) {
            Ok(scheduled) => scheduled,
            Err(e) => {
                prop_assert!(e.field.starts_with("schedule."), "{e}");
                return Ok(());
            }
        };
        match CostCap::new(CostConfig { cost_per_replica_hour: per_hour, max_cost_per_hour: budget }, scheduled) {
            Ok(mut engine) => exercise(&mut engine),
            Err(e) => prop_assert!(e.field.starts_with("cost."), "{e}"),
        }
    }

    #[test]
    fn driver(interval in duration(), round_timeout in proptest::option::of(duration()), history in size()) {
        let config = DriverConfig { interval, round_timeout, history };
        if let Err(e) = config.validate() {
            prop_assert!(e.field.starts_with("driver."), "{e}");
        } else {
            // A valid driver config must be one a driver can run on: spawn one on a paused
            // clock, let it run a few rounds, stop it.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let engine = ReactiveScaler::new(ReactiveConfig::default()).expect("the default is valid");
                let limit = harvester_scaler::ConcurrencyLimit::new(4).expect("a valid limit");
                let driver = harvester_scaler::Driver::spawn(config, engine, Busy, limit).expect("validated");
                // A few rounds (an interval of a nanosecond is valid, but a minute of it is
                // sixty billion rounds).
                tokio::time::sleep(interval.saturating_mul(3).min(Duration::from_secs(120))).await;
                driver.stop().await.expect("a valid configuration runs without the loop dying");
            });
        }
    }
}
