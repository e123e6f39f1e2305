//! Invariants of every engine under arbitrary configurations and samples, bad numbers
//! included (NaN, ±∞, negative, huge): no panic, and every recommendation within the engine's
//! `[min, max]` — except the HPA's documented hold of a target at zero replicas.

use std::time::Duration;

use harvester_scaler::{
    Behavior, CostCap, CostConfig, Engine, ForecastModel, Hpa, HpaConfig, MetricSpec, PodReading, PodState, Predictive,
    PredictiveConfig, ReactiveConfig, ReactiveScaler, Reason, Sample, ScalingPolicy, ScalingRules, ScheduleConfig,
    ScheduleWindow, Scheduled, SelectPolicy, TimeOfDay, Timestamp, Tolerance,
};
use proptest::prelude::*;

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0..2_000.0f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -1_000.0..0.0f64,
        1 => Just(1e300),
        1 => Just(f64::MIN_POSITIVE),
    ]
}

fn pod() -> impl Strategy<Value = PodReading> {
    (proptest::option::of(number()), proptest::option::of(number()), 0u8..6).prop_map(|(value, request, state)| {
        let state = match state {
            0 => PodState::Unready,
            1 => PodState::Ignored,
            _ => PodState::Ready,
        };
        PodReading { value, request, state }
    })
}

fn sample(max_replicas: u32) -> impl Strategy<Value = Sample> {
    (
        0..=max_replicas + 3,
        proptest::option::of(0..=max_replicas + 3),
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(number()),
        proptest::option::of(proptest::collection::vec(pod(), 0..6)),
    )
        .prop_map(|(replicas, ready, load, queue, memory, cpu)| {
            let mut sample = Sample::new(replicas);
            sample.ready_replicas = ready;
            for (name, value) in [("load", load), ("queue_depth", queue), ("memory", memory)] {
                if let Some(value) = value {
                    sample = sample.with_value(name, value);
                }
            }
            match cpu {
                Some(pods) => sample.with_pods("cpu", pods),
                None => sample,
            }
        })
}

/// Seconds between samples; sometimes backwards (a caller's clock may step back).
fn steps() -> impl Strategy<Value = Vec<i64>> {
    proptest::collection::vec(-30i64..120, 1..40)
}

fn times(steps: &[i64]) -> Vec<Timestamp> {
    let mut now: i64 = 1_700_000_000;
    steps
        .iter()
        .map(|step| {
            now = (now + step).max(0);
            Timestamp::from_unix_secs(now as u64)
        })
        .collect()
}

fn rules() -> impl Strategy<Value = Option<ScalingRules>> {
    let policy = (any::<bool>(), 1u32..300, 1u64..200).prop_map(|(pods, value, period)| {
        let period = Duration::from_secs(period);
        if pods { ScalingPolicy::pods(value, period) } else { ScalingPolicy::percent(value, period) }
    });
    let select = prop_oneof![Just(SelectPolicy::Max), Just(SelectPolicy::Min), Just(SelectPolicy::Disabled)];
    proptest::option::of(
        (select, proptest::option::of(0u64..900), proptest::option::of(proptest::collection::vec(policy, 1..4)))
            .prop_map(|(select, window, policies)| ScalingRules {
                stabilization_window: window.map(Duration::from_secs),
                select_policy: select,
                policies,
            }),
    )
}

fn hpa_config() -> impl Strategy<Value = HpaConfig> {
    (0u32..5, 1u32..30, 0.0..0.5f64, 0.0..0.5f64, 1u32..150, proptest::option::of((rules(), rules()))).prop_map(
        |(min, span, up, down, percent, behavior)| HpaConfig {
            min_replicas: min,
            max_replicas: min.max(1) + span,
            metrics: vec![
                MetricSpec::average_value("load", 100.0),
                MetricSpec::utilization("cpu", percent),
                MetricSpec::value("queue_depth", 50.0),
            ],
            tolerance: Tolerance { scale_up: up, scale_down: down },
            downscale_stabilization: Duration::from_secs(300),
            behavior: behavior.map(|(scale_up, scale_down)| Behavior { scale_up, scale_down }),
        },
    )
}

/// The invariant, with the HPA's one exception.
fn within(engine: &dyn Engine, sample: &Sample, replicas: u32, reason: &Reason) -> bool {
    engine.replica_range().contains(&replicas)
        || (sample.replicas == 0 && replicas == 0 && *reason == Reason::ScalingDisabled)
}

fn check(engine: &mut dyn Engine, samples: &[Sample], steps: &[i64]) -> Result<(), TestCaseError> {
    for (sample, now) in samples.iter().zip(times(steps)) {
        let recommendation = engine.recommend(sample, now);
        prop_assert!(
            within(engine, sample, recommendation.replicas, &recommendation.reason),
            "{recommendation:?} outside {:?} for {sample:?}",
            engine.replica_range()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hpa_stays_within_bounds(
        config in hpa_config(),
        samples in proptest::collection::vec(sample(40), 1..40),
        steps in steps(),
    ) {
        let mut hpa = Hpa::new(config).expect("generated configs are valid");
        check(&mut hpa, &samples, &steps)?;
    }

    #[test]
    fn predictive_stays_within_bounds(
        config in hpa_config(),
        holt in any::<bool>(),
        samples in proptest::collection::vec(sample(40), 1..40),
        steps in steps(),
    ) {
        let model = if holt { ForecastModel::HOLT } else { ForecastModel::LinearTrend };
        let predictive = PredictiveConfig { min_samples: 3, min_confidence: 0.0, ..PredictiveConfig::new("load", 100.0) }
            .with_model(model);
        let mut engine = Predictive::new(config, predictive).expect("generated configs are valid");
        check(&mut engine, &samples, &steps)?;
    }

    #[test]
    fn reactive_scheduled_and_capped_stay_within_bounds(
        min in 0u32..5,
        span in 0u32..20,
        window_min in 0u32..40,
        budget in proptest::option::of(1.0..20.0f64),
        samples in proptest::collection::vec(sample(30), 1..40),
        steps in steps(),
    ) {
        let reactive = ReactiveConfig { min_replicas: min, max_replicas: min.max(1) + span, ..ReactiveConfig::default() };
        let window = ScheduleWindow::new(
            "w",
            TimeOfDay::new(22, 0).expect("valid time"),
            TimeOfDay::new(6, 0).expect("valid time"),
            window_min,
        );
        let scheduled = Scheduled::new(
            ScheduleConfig { utc_offset_minutes: 90, windows: vec![window] },
            ReactiveScaler::new(reactive).expect("generated configs are valid"),
        )
        .expect("valid schedule");
        let cost = CostConfig { cost_per_replica_hour: 1.0, max_cost_per_hour: budget };
        let mut engine = CostCap::new(cost, scheduled).expect("valid cost");
        check(&mut engine, &samples, &steps)?;
    }
}
