//! Predictive scaling: ahead of the HPA on a ramp, the HPA itself on noise.

use std::time::Duration;

use harvester_scaler::{
    Engine, ForecastModel, Hpa, HpaConfig, MetricSpec, Predictive, PredictiveConfig, Reason, Sample, Timestamp,
};

const ROUND: u64 = 15;

fn at(round: u64) -> Timestamp {
    Timestamp::from_unix_secs(1_700_000_000 + round * ROUND)
}

fn hpa_config() -> HpaConfig {
    HpaConfig { max_replicas: 100, ..HpaConfig::new([MetricSpec::average_value("load", 100.0)]) }
}

fn predictive(model: ForecastModel) -> Predictive {
    Predictive::new(hpa_config(), PredictiveConfig::new("load", 100.0).with_model(model)).expect("valid config")
}

/// Runs `engine` over `loads`, one round each, applying every recommendation.
fn replay(engine: &mut dyn Engine, loads: &[f64]) -> Vec<u32> {
    let mut replicas = 2;
    loads
        .iter()
        .enumerate()
        .map(|(round, load)| {
            replicas = engine.recommend(&Sample::new(replicas).with_value("load", *load), at(round as u64)).replicas;
            replicas
        })
        .collect()
}

fn first_round_reaching(replicas: &[u32], level: u32) -> Option<usize> {
    replicas.iter().position(|r| *r >= level)
}

#[test]
fn forecast_on_a_linear_ramp_runs_ahead_of_the_hpa() {
    // Given demand climbing 60 per round (4 per second) from 200 to 4 400
    let loads: Vec<f64> = (0..71).map(|round| 200.0 + 60.0 * round as f64).collect();
    for model in [ForecastModel::LinearTrend, ForecastModel::HOLT] {
        let mut hpa = Hpa::new(hpa_config()).expect("valid config");
        let mut ahead = predictive(model);
        // When both follow it
        let reactive = replay(&mut hpa, &loads);
        let predicted = replay(&mut ahead, &loads);
        // Then prediction is never behind, ahead once it has its six readings, and reaches 30
        // replicas earlier: 2 minutes at 4/s is 480 more demand, about 5 replicas.
        for (round, (r, p)) in reactive.iter().zip(&predicted).enumerate() {
            assert!(p >= r, "{model:?} round {round}: predictive {p} < reactive {r}");
        }
        assert!(predicted[10] >= reactive[10] + 4, "{model:?}: {predicted:?} vs {reactive:?}");
        let (r30, p30) = (first_round_reaching(&reactive, 30), first_round_reaching(&predicted, 30));
        assert!(p30 < r30, "{model:?}: predictive reaches 30 at {p30:?}, reactive at {r30:?}");
        let forecast = ahead.forecast().expect("a forecast");
        assert!(forecast.used && forecast.confidence > 0.99, "{model:?}: {forecast:?}");
    }
}

#[test]
fn prediction_sets_the_reason_when_it_decides() {
    let mut engine = predictive(ForecastModel::LinearTrend);
    let mut last = None;
    for round in 0..8u64 {
        let load = 400.0 + 100.0 * round as f64;
        let replicas = (load / 100.0).ceil() as u32;
        last = Some(engine.recommend(&Sample::new(replicas).with_value("load", load), at(round)));
    }
    // 1 100 now, +100 per 15 s: 1 900 in 2 minutes → 19 replicas; ×2 allows 22.
    let last = last.expect("eight rounds");
    assert_eq!(last.replicas, 19);
    assert!(
        matches!(last.reason, Reason::Predicted { forecast, confidence } if (forecast - 1_900.0).abs() < 1e-6 && confidence > 0.999)
    );
}

/// A fixed pseudo-random sequence in `-1..1` (a linear congruential generator, so the test
/// needs no random crate and never changes).
fn noise(count: usize) -> Vec<f64> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn poor_fit_on_noise_falls_back_to_the_hpa() {
    // Given demand around 800 with ±300 of noise and no trend
    let loads: Vec<f64> = noise(80).into_iter().map(|n| 800.0 + 300.0 * n).collect();
    for model in [ForecastModel::LinearTrend, ForecastModel::HOLT] {
        let mut hpa = Hpa::new(hpa_config()).expect("valid config");
        let mut engine = predictive(model);
        let mut replicas = 8;
        for (round, load) in loads.iter().enumerate() {
            // When both see the same samples
            let sample = Sample::new(replicas).with_value("load", *load);
            let reactive = hpa.recommend(&sample, at(round as u64));
            let predicted = engine.recommend(&sample, at(round as u64));
            // Then the forecast is never confident enough, and the answer is the HPA's
            assert_eq!(predicted.replicas, reactive.replicas, "{model:?} round {round}: {predicted:?}");
            assert_eq!(predicted.reason, reactive.reason, "{model:?} round {round}");
            // (before its sixth reading, because it has none yet; after, because the fit is
            // poor: 80 readings at one per 15 s never leave the 10-minute window short of six)
            let min_samples = engine.config().min_samples;
            if round + 1 < min_samples {
                assert!(engine.forecast().is_none(), "{model:?} round {round}: a forecast from {} readings", round + 1);
                assert!(predicted.message.contains("no forecast yet"), "{}", predicted.message);
            } else {
                let forecast = engine.forecast().unwrap_or_else(|| panic!("{model:?} round {round}: no forecast"));
                assert!(!forecast.used && forecast.confidence < 0.8, "{model:?} round {round}: {forecast:?}");
                assert!(predicted.message.contains("forecast not used"), "{}", predicted.message);
            }
            replicas = reactive.replicas;
        }
    }
}

#[test]
fn no_forecast_before_enough_readings() {
    let mut engine = predictive(ForecastModel::LinearTrend);
    for round in 0..5u64 {
        let recommendation =
            engine.recommend(&Sample::new(4).with_value("load", 400.0 + 200.0 * round as f64), at(round));
        assert!(engine.forecast().is_none());
        assert!(recommendation.message.contains("no forecast yet"), "{}", recommendation.message);
    }
    engine.recommend(&Sample::new(4).with_value("load", 1_400.0), at(5));
    assert!(engine.forecast().is_some_and(|f| f.used));
}

#[test]
fn old_readings_leave_the_window() {
    let config = PredictiveConfig { window: Duration::from_secs(60), ..PredictiveConfig::new("load", 100.0) };
    let mut engine = Predictive::new(hpa_config(), config).expect("valid config");
    for round in 0..20u64 {
        engine.recommend(&Sample::new(4).with_value("load", 400.0), at(round));
    }
    // 60 s at 15 s rounds: the readings of the last 60 s, the edge included — five of them,
    // fewer than the six a forecast needs.
    assert!(engine.forecast().is_none());
}

#[test]
fn invalid_configuration_names_the_field() {
    let refused = |config| Predictive::new(hpa_config(), config).expect_err("refused").field;
    assert_eq!(refused(PredictiveConfig::new("", 1.0)), "predictive.demand_metric");
    assert_eq!(refused(PredictiveConfig::new("load", 0.0)), "predictive.target_per_replica");
    assert_eq!(
        refused(PredictiveConfig::new("load", 1.0).with_model(ForecastModel::Holt { alpha: 0.0, beta: 0.5 })),
        "predictive.model.alpha"
    );
    assert_eq!(
        refused(PredictiveConfig { min_confidence: 1.5, ..PredictiveConfig::new("load", 1.0) }),
        "predictive.min_confidence"
    );
}
