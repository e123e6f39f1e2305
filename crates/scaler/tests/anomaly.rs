//! The anomaly detector on synthetic series with known anomalies: steady noise of many
//! shapes raises nothing, a step is caught within `confirm` samples with the right
//! severity, one spike is not an anomaly, a slow drift becomes the new normal, and a
//! signal that gets better is not an alarm.

use harvester_scaler::anomaly::{AnomalyConfig, AnomalyEvent, Detector, Severity, Signal};
use proptest::prelude::*;

/// splitmix64: a small, seedable generator, so that every failing series can be replayed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let (u, v) = (self.next().max(f64::MIN_POSITIVE), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// The share of `n` requests failing, each with probability `p`.
    fn failures(&mut self, n: u32, p: f64) -> f64 {
        (0..n).filter(|_| self.next() < p).count() as f64 / f64::from(n)
    }
}

fn detector() -> Detector {
    Detector::new(AnomalyConfig::default()).expect("default settings are valid")
}

/// Feeds `series` and returns every event.
fn events(detector: &mut Detector, signal: Signal, series: impl IntoIterator<Item = f64>) -> Vec<AnomalyEvent> {
    series.into_iter().filter_map(|value| detector.observe(signal, value)).collect()
}

/// A steady series of `signal` around `level`, `samples` long.
fn steady(noise: &mut Noise, signal: Signal, level: f64, spread: f64, samples: usize) -> Vec<f64> {
    (0..samples)
        .map(|_| match signal {
            Signal::ErrorRate => noise.failures(100, level),
            _ => (level * (1.0 + spread * noise.gaussian())).max(0.0),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// 3 000 samples of steady noise — Gaussian around any level with up to 20 % relative
    /// noise, or the failure share of 100 requests at any rate from 0 to 30 % — raise nothing.
    #[test]
    fn steady_noise_raises_nothing(
        seed in any::<u64>(),
        signal in prop::sample::select(Signal::ALL.to_vec()),
        level in prop_oneof![Just(0.0), 0.001f64..0.3, 1.0f64..1e9],
        spread in 0.0f64..0.2,
    ) {
        let mut noise = Noise(seed);
        let level = if signal == Signal::ErrorRate { level.min(0.3) } else { level };
        let series = steady(&mut noise, signal, level, spread, 3_000);
        let raised = events(&mut detector(), signal, series);
        prop_assert!(raised.is_empty(), "{:?}", raised.first());
    }

    /// After a steady minute, a step up to 4× the level or more (and far beyond the noise)
    /// is caught within `confirm` samples, and at 12× it is critical.
    #[test]
    fn a_step_is_caught_within_confirm_samples(
        seed in any::<u64>(),
        signal in prop::sample::select(vec![Signal::Latency, Signal::QueueDepth, Signal::Memory]),
        level in 1.0f64..1e6,
        factor in 4.0f64..50.0,
    ) {
        let mut noise = Noise(seed);
        let mut detector = detector();
        let before = steady(&mut noise, signal, level.max(signal_floor(signal)), 0.05, 60);
        prop_assert!(events(&mut detector, signal, before).is_empty());
        let after = steady(&mut noise, signal, level.max(signal_floor(signal)) * factor, 0.05, 10);
        let raised = events(&mut detector, signal, after);
        let first = raised.first().expect("the step is caught");
        let confirm = detector.config().confirm as u64;
        prop_assert_eq!(first.sample, 60 + confirm, "caught on the {}th sample after the step", first.sample - 60);
        if factor >= 12.0 {
            prop_assert_eq!(detector.severity(signal), Severity::Critical);
        } else {
            prop_assert!(detector.severity(signal) >= Severity::Warning);
        }
    }
}

/// A level large enough that the signal's absolute floor does not hide a 4× step.
fn signal_floor(signal: Signal) -> f64 {
    match signal {
        Signal::ErrorRate => 0.01,
        Signal::Latency => 0.05,
        Signal::QueueDepth => 100.0,
        _ => 256.0 * 1024.0 * 1024.0,
    }
}

#[test]
fn an_error_rate_that_jumps_is_critical_and_comes_back_to_normal() {
    let mut noise = Noise(7);
    let mut detector = detector();
    assert!(events(&mut detector, Signal::ErrorRate, steady(&mut noise, Signal::ErrorRate, 0.02, 0.0, 60)).is_empty());
    let raised = events(&mut detector, Signal::ErrorRate, steady(&mut noise, Signal::ErrorRate, 0.6, 0.0, 5));
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!((raised[0].previous, raised[0].severity), (Severity::Normal, Severity::Critical));
    assert_eq!(raised[0].sample, 60 + detector.config().confirm as u64);
    // Back to 2 %: normal again after `confirm` samples.
    let back = events(&mut detector, Signal::ErrorRate, steady(&mut noise, Signal::ErrorRate, 0.02, 0.0, 5));
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!((back[0].previous, back[0].severity), (Severity::Critical, Severity::Normal));
}

#[test]
fn one_spike_is_not_an_anomaly_and_does_not_move_the_baseline() {
    let mut detector = detector();
    let mut series: Vec<f64> = (0..60).map(|i| 0.200 + 0.002 * f64::from(i % 3)).collect();
    series.push(5.0);
    series.extend((0..30).map(|i| 0.200 + 0.002 * f64::from(i % 3)));
    assert!(events(&mut detector, Signal::Latency, series).is_empty());
    // Two in a row are not either; three in a row (`confirm`) are.
    assert!(events(&mut detector, Signal::Latency, [5.0, 5.0]).is_empty());
    let raised = events(&mut detector, Signal::Latency, [5.0]);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].severity, Severity::Critical);
}

#[test]
fn a_slow_drift_becomes_the_new_normal_and_getting_better_is_no_alarm() {
    let mut detector = detector();
    // Memory growing 0.1 % a sample for ten minutes: a cache warming, not a leak burst.
    let drift: Vec<f64> = (0..600).map(|i| 200e6 * 1.001f64.powi(i)).collect();
    assert!(events(&mut detector, Signal::Memory, drift).is_empty());
    // A queue that empties, and an error rate that falls to zero.
    let draining: Vec<f64> = (0..60).map(|_| 800.0).chain((0..30).map(|_| 0.0)).collect();
    assert!(events(&mut detector, Signal::QueueDepth, draining).is_empty());
    let healing: Vec<f64> = (0..60).map(|i| 0.10 + 0.01 * f64::from(i % 4)).chain((0..30).map(|_| 0.0)).collect();
    assert!(events(&mut detector, Signal::ErrorRate, healing).is_empty());
}

#[test]
fn missing_values_are_ignored() {
    let mut detector = detector();
    for value in [f64::NAN, f64::INFINITY, -1.0] {
        assert!(detector.observe(Signal::Latency, value).is_none());
    }
    assert_eq!(detector.severity(Signal::Latency), Severity::Normal);
}
