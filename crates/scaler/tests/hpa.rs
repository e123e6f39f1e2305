//! The HPA against traces whose answers were worked out by hand from the Kubernetes rules
//! (pkg/controller/podautoscaler: horizontal.go, replica_calculator.go). Each case says how.
//!
//! Unless a case says otherwise the metric is `load`, a whole-target reading with an
//! average-value target of 100 per replica (Kubernetes' object metric with an `AverageValue`
//! target): ratio = load ÷ (100 × replicas running); outside the tolerance band the proposal is
//! ⌈load ÷ 100⌉. Rounds are 15 s apart unless the times say otherwise; "current" is what runs
//! when the round samples.

use std::time::Duration;

use harvester_scaler::{
    Behavior, Bound, Direction, Engine, Hpa, HpaConfig, MetricSpec, PodReading, Reason, Sample, ScalingPolicy,
    ScalingRules, SelectPolicy, Timestamp, Tolerance,
};

const T0: u64 = 1_700_000_000;

struct Step {
    at: u64,
    sample: Sample,
    expect: u32,
    reason: Option<Reason>,
}

/// A round at `at` s, `current` replicas running, `load` in the sample.
fn load(at: u64, current: u32, load: f64, expect: u32) -> Step {
    Step { at, sample: Sample::new(current).with_value("load", load), expect, reason: None }
}

impl Step {
    fn because(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }
}

struct Case {
    name: &'static str,
    config: HpaConfig,
    steps: Vec<Step>,
}

fn run(case: Case) {
    let mut hpa = Hpa::new(case.config).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    for (index, step) in case.steps.into_iter().enumerate() {
        let got = hpa.recommend(&step.sample, Timestamp::from_unix_secs(T0 + step.at));
        assert_eq!(got.replicas, step.expect, "{}: round {index} (t = {} s): {got:?}", case.name, step.at);
        if let Some(reason) = step.reason {
            assert_eq!(got.reason, reason, "{}: round {index} (t = {} s): {got:?}", case.name, step.at);
        }
    }
}

fn load_config() -> HpaConfig {
    HpaConfig { max_replicas: 100, ..HpaConfig::new([MetricSpec::average_value("load", 100.0)]) }
}

/// Behaviour with every default but an immediate scale-down (window 0), so that the tolerance
/// and the policies show without the 5-minute wait.
fn prompt_down() -> Behavior {
    Behavior::default().with_scale_down(ScalingRules::default().with_window(Duration::ZERO))
}

fn up_rate() -> Reason {
    Reason::RateLimited { direction: Direction::Up }
}

fn above_load() -> Reason {
    Reason::AboveTarget { metric: "load".into() }
}

#[test]
fn tolerance_band_holds_replicas() {
    run(Case {
        // 10 replicas. 1100 / 1000 = 1.1 ≤ 1 + 0.1 (the band includes its bounds): hold. 900 /
        // 1000 = 0.9 ≥ 1 - 0.1: hold. 1050: hold. 1101 / 1000 = 1.101 > 1.1: ⌈11.01⌉ = 12; no
        // behaviour, so the window max is max(12, earlier 10s) = 12 and the ×2 limit is 20.
        name: "default tolerance 0.1, bounds included",
        config: load_config(),
        steps: vec![
            load(0, 10, 1100.0, 10).because(Reason::Steady),
            load(15, 10, 900.0, 10).because(Reason::Steady),
            load(30, 10, 1050.0, 10),
            load(45, 10, 1101.0, 12).because(above_load()),
        ],
    });
    run(Case {
        // Up 0.05, down 0.2, scale-down window 0. 1040 / 1000 = 1.04 ≤ 1.05: hold. 1060: 1.06 >
        // 1.05: ⌈10.6⌉ = 11 (policies allow max(10 + 4, 10 × 2) = 20). 900 / 1100 = 0.818 ≥ 0.8:
        // hold. 870 / 1100 = 0.791 < 0.8: ⌈8.7⌉ = 9 (100 % per 15 s allows down to 0, min 1).
        name: "separate up and down tolerances (Kubernetes 1.33)",
        config: HpaConfig {
            tolerance: Tolerance { scale_up: 0.05, scale_down: 0.2 },
            behavior: Some(prompt_down()),
            ..load_config()
        },
        steps: vec![
            load(0, 10, 1040.0, 10),
            load(15, 10, 1060.0, 11),
            load(30, 11, 900.0, 11).because(Reason::Steady),
            load(45, 11, 870.0, 9).because(Reason::BelowTarget),
        ],
    });
}

#[test]
fn scale_down_waits_out_its_window() {
    run(Case {
        // 10 replicas, load 300: proposal ⌈3⌉ = 3. The first round records the 10 found as a
        // recommendation; without a behaviour the highest recommendation of the last 300 s wins,
        // and one exactly 300 s old still counts (Go: !rec.Before(now - 300 s)). So 10 holds
        // through t = 300, and at 315 the 10 recorded at 0 has aged out: 3.
        name: "no behaviour: 300 s, the edge included",
        config: load_config(),
        steps: vec![
            load(0, 10, 300.0, 10).because(Reason::Stabilized { direction: Direction::Down }),
            load(15, 10, 300.0, 10),
            load(285, 10, 300.0, 10),
            load(300, 10, 300.0, 10),
            load(315, 10, 300.0, 3).because(Reason::BelowTarget),
        ],
    });
    run(Case {
        // Same trace with the default behaviour: the scale-down window (300 s) only counts
        // recommendations strictly younger than 300 s (Go: rec.After(now - 300 s)), so at t = 300
        // the initial 10 is out: the window's highest is 3, and 100 % per 15 s allows it.
        name: "default behaviour: 300 s, the edge excluded",
        config: HpaConfig { behavior: Some(Behavior::default()), ..load_config() },
        steps: vec![
            load(0, 10, 300.0, 10).because(Reason::Stabilized { direction: Direction::Down }),
            load(15, 10, 300.0, 10),
            load(285, 10, 300.0, 10),
            load(300, 10, 300.0, 3).because(Reason::BelowTarget),
        ],
    });
    run(Case {
        // A spike inside the window sets a new high: 8 replicas, load 800 at t = 0 (on target),
        // 1200 at t = 60 (⌈12⌉ = 12, ×2 allows 16), then 300 from t = 75 (proposal 3). The
        // window's highest is 12 until the 12 recorded at t = 60 is older than 300 s: at t = 360
        // it is exactly 300 s old and still counts; at 375 the highest left is 3 (t = 75).
        name: "no behaviour: the highest recommendation of the window",
        config: load_config(),
        steps: vec![
            load(0, 8, 800.0, 8),
            load(60, 8, 1200.0, 12),
            load(75, 12, 300.0, 12),
            load(360, 12, 300.0, 12),
            load(375, 12, 300.0, 3),
        ],
    });
}

#[test]
fn policies_pods_against_percent_under_max_and_min() {
    let up = |select| HpaConfig {
        behavior: Some(Behavior::default().with_scale_up(ScalingRules::select(select).with_policies([
            ScalingPolicy::pods(4, Duration::from_secs(60)),
            ScalingPolicy::percent(50, Duration::from_secs(60)),
        ]))),
        ..load_config()
    };
    run(Case {
        // Load 5000 asks for 50. Each 60 s period allows start + 4 pods or ⌈start × 1.5⌉; Max takes
        // the larger. Start 2: max(6, 3) = 6 (Pods). At t = 15 the +4 made at 0 is inside the
        // period: start = 6 - 4 = 2, limit 6, hold. At 60 that event is 60 s old, out (Go:
        // After(now - 60 s)): start 6: max(10, 9) = 10 (Pods). 120: max(14, 15) = 15 (Percent).
        // 180: max(19, ⌈22.5⌉ = 23) = 23.
        name: "scale up, Max: Pods while small, Percent once large",
        config: up(SelectPolicy::Max),
        steps: vec![
            load(0, 2, 5000.0, 6).because(up_rate()),
            load(15, 6, 5000.0, 6).because(up_rate()),
            load(60, 6, 5000.0, 10),
            load(120, 10, 5000.0, 15),
            load(180, 15, 5000.0, 23),
        ],
    });
    run(Case {
        // Min takes the smaller: start 2: min(6, 3) = 3 (Percent). 60: min(7, ⌈4.5⌉ = 5) = 5. 120:
        // min(9, ⌈7.5⌉ = 8) = 8. 180: min(12, 12) = 12.
        name: "scale up, Min: the smaller allowance",
        config: up(SelectPolicy::Min),
        steps: vec![
            load(0, 2, 5000.0, 3),
            load(60, 3, 5000.0, 5),
            load(120, 5, 5000.0, 8),
            load(180, 8, 5000.0, 12).because(up_rate()),
        ],
    });
    let down = |select| HpaConfig {
        behavior: Some(Behavior::default().with_scale_down(
            ScalingRules::select(select).with_window(Duration::ZERO).with_policies([
                ScalingPolicy::pods(2, Duration::from_secs(60)),
                ScalingPolicy::percent(50, Duration::from_secs(60)),
            ]),
        )),
        ..load_config()
    };
    run(Case {
        // Load 100 asks for 1. Down, a period allows start - 2 pods or ⌊start × 0.5⌋ (truncated);
        // Max (the largest change) takes the lower floor. Start 20: min(18, 10) = 10. At 15 the -10
        // of t = 0 is inside the period: start 20 again, floor 10: hold. 60: start 10: min(8, 5) = 5.
        // 120: min(3, ⌊2.5⌋ = 2) = 2. 180: min(0, 1) = 0, below min_replicas: 1.
        name: "scale down, Max: the largest change",
        config: down(SelectPolicy::Max),
        steps: vec![
            load(0, 20, 100.0, 10).because(Reason::RateLimited { direction: Direction::Down }),
            load(15, 10, 100.0, 10),
            load(60, 10, 100.0, 5),
            load(120, 5, 100.0, 2),
            load(180, 2, 100.0, 1).because(Reason::BelowTarget),
        ],
    });
    run(Case {
        // Min (the smallest change) takes the higher floor: 20: max(18, 10) = 18; 60: max(16, 9) =
        // 16; 120: max(14, 8) = 14; 180: max(12, 7) = 12.
        name: "scale down, Min: the smallest change",
        config: down(SelectPolicy::Min),
        steps: vec![
            load(0, 20, 100.0, 18),
            load(60, 18, 100.0, 16),
            load(120, 16, 100.0, 14),
            load(180, 14, 100.0, 12),
        ],
    });
}

#[test]
fn change_not_applied_leaves_no_scale_event() {
    let config =
        HpaConfig {
            behavior: Some(Behavior::default().with_scale_up(
                ScalingRules::default().with_policies([ScalingPolicy::pods(4, Duration::from_secs(60))]),
            )),
            ..load_config()
        };
    run(Case {
        // Kubernetes stores a scale event only after the scale update succeeded. Load 1000 asks
        // for 10; Pods 4 per 60 s allows 2 + 4 = 6. At 15 s still 2 run (the actuator failed):
        // no event, start 2, 6 again. At 30 s the 6 run: the change of t = 15 counts, start
        // 6 - 4 = 2, limit 6: hold. At 75 s that event is 60 s old, out: start 6, 10.
        name: "an unapplied change does not use up the policy",
        config,
        steps: vec![
            load(0, 2, 1000.0, 6).because(up_rate()),
            load(15, 2, 1000.0, 6).because(up_rate()),
            load(30, 6, 1000.0, 6).because(up_rate()),
            load(75, 6, 1000.0, 10).because(above_load()),
        ],
    });
}

#[test]
fn disabled_direction_never_moves() {
    run(Case {
        // Scale-down disabled (window 0): load 100 on 10 replicas asks for 1, the limit is the
        // current count: 10 stays. Load 2000 asks for 20: scale-up defaults allow max(10 + 4,
        // 10 × 2) = 20. Back to 100: 20 stays.
        name: "scale down disabled",
        config: HpaConfig {
            behavior: Some(
                Behavior::default()
                    .with_scale_down(ScalingRules::select(SelectPolicy::Disabled).with_window(Duration::ZERO)),
            ),
            ..load_config()
        },
        steps: vec![
            load(0, 10, 100.0, 10).because(Reason::DirectionDisabled { direction: Direction::Down }),
            load(15, 10, 2000.0, 20).because(above_load()),
            load(30, 20, 100.0, 20).because(Reason::DirectionDisabled { direction: Direction::Down }),
        ],
    });
    run(Case {
        // Scale-up disabled: load 2000 on 5 replicas asks for 20: 5 stays. Load 100 asks for 1:
        // the scale-down (window 0, 100 % per 15 s) goes to 1.
        name: "scale up disabled",
        config: HpaConfig {
            behavior: Some(prompt_down().with_scale_up(ScalingRules::select(SelectPolicy::Disabled))),
            ..load_config()
        },
        steps: vec![
            load(0, 5, 2000.0, 5).because(Reason::DirectionDisabled { direction: Direction::Up }),
            load(15, 5, 100.0, 1),
        ],
    });
}

#[test]
fn bounds_clamp_and_bring_replicas_back() {
    run(Case {
        // min 2, max 6, no behaviour. t = 0: 1 running, below min: 2, metrics not consulted
        // (the 1 is still recorded as the first recommendation). 15: 8 running, above max: 6.
        // 30: 4 running, load 10000 asks for 100; the window max is 100, the ×2 rule allows 8,
        // max is lower: 6. 45: 6 running, load 100 asks for 1, but the window holds 100 (t = 30):
        // 6. 345: the 100 of t = 30 is 315 s old, out; the 1 of t = 45 is exactly 300 s old, in:
        // 1, below min: 2.
        name: "min and max",
        config: HpaConfig { min_replicas: 2, max_replicas: 6, ..load_config() },
        steps: vec![
            load(0, 1, 500.0, 2).because(Reason::Clamped { bound: Bound::Min }),
            load(15, 8, 500.0, 6).because(Reason::Clamped { bound: Bound::Max }),
            load(30, 4, 10_000.0, 6).because(Reason::Clamped { bound: Bound::Max }),
            load(45, 6, 100.0, 6),
            load(345, 6, 100.0, 2).because(Reason::Clamped { bound: Bound::Min }),
        ],
    });
    run(Case {
        // Kubernetes leaves a target at zero replicas alone when min > 0 (someone scaled it to
        // zero by hand): no recommendation but 0, whatever the load.
        name: "zero replicas means autoscaling is off",
        config: load_config(),
        steps: vec![load(0, 0, 5000.0, 0).because(Reason::ScalingDisabled)],
    });
}

#[test]
fn no_behaviour_scale_up_is_limited_to_double_or_four() {
    run(Case {
        // Load 10000 asks for 100 (max 100). The limit is max(2 × current, 4): 1 → 4 → 8 → 16 →
        // 32 → 64, then 128 > max, so max is the bound and 100 is within it.
        name: "×2, at least 4",
        config: load_config(),
        steps: vec![
            load(0, 1, 10_000.0, 4).because(up_rate()),
            load(15, 4, 10_000.0, 8),
            load(30, 8, 10_000.0, 16),
            load(45, 16, 10_000.0, 32),
            load(60, 32, 10_000.0, 64).because(up_rate()),
            load(75, 64, 10_000.0, 100).because(above_load()),
        ],
    });
}

#[test]
fn missing_metrics_block_scale_down_but_not_scale_up() {
    let config = HpaConfig {
        metrics: vec![MetricSpec::average_value("load", 100.0), MetricSpec::value("queue", 50.0)],
        max_replicas: 20,
        behavior: Some(prompt_down()),
        ..HpaConfig::default()
    };
    let only_load = |at, current, value, expect| load(at, current, value, expect);
    let both = |at, current, load: f64, queue: f64, expect| Step {
        at,
        sample: Sample::new(current).with_value("load", load).with_value("queue", queue),
        expect,
        reason: None,
    };
    run(Case {
        // load: average value 100; queue: a whole-target value with target 50, proposal
        // ⌈(queue ÷ 50) × ready⌉. t = 0: load 800 on 4 asks for 8, queue missing; 1 of 2 invalid,
        // but 8 ≥ 4 so Kubernetes proceeds: 8 (policies allow 8). 15: load 200 on 8 asks for 2,
        // queue missing: a scale-down with a metric missing is refused: 8. 30: both missing: 8.
        // 45: queue 100 on 8 ready: ⌈2 × 8⌉ = 16, load asks 2: max 16 (the +4 of t = 0 is out
        // of the 15 s period: start 8, allows 16). 60: load NaN (a bad value is missing), queue
        // 25: ⌈0.5 × 16⌉ = 8 < 16 with one missing: 16.
        name: "Kubernetes' rule: all missing, or some missing and the rest scale down",
        config,
        steps: vec![
            only_load(0, 4, 800.0, 8).because(above_load()),
            only_load(15, 8, 200.0, 8).because(Reason::MetricsMissing { missing: 1, of: 2 }),
            Step {
                at: 30,
                sample: Sample::new(8),
                expect: 8,
                reason: Some(Reason::MetricsMissing { missing: 2, of: 2 }),
            },
            both(45, 8, 200.0, 100.0, 16).because(Reason::AboveTarget { metric: "queue".into() }),
            both(60, 16, f64::NAN, 25.0, 16).because(Reason::MetricsMissing { missing: 1, of: 2 }),
        ],
    });
}

/// Per-replica readings against requests of 1.0 each.
fn cpu(values: &[Option<f64>]) -> Vec<PodReading> {
    values
        .iter()
        .map(|v| match v {
            Some(v) => PodReading::ready(*v).with_request(1.0),
            None => PodReading::missing().with_request(1.0),
        })
        .collect()
}

fn utilization(target: u32) -> HpaConfig {
    HpaConfig {
        max_replicas: 20,
        behavior: Some(prompt_down()),
        ..HpaConfig::new([MetricSpec::utilization("cpu", target)])
    }
}

fn pods(at: u64, current: u32, pods: Vec<PodReading>, expect: u32) -> Step {
    Step { at, sample: Sample::new(current).with_pods("cpu", pods), expect, reason: None }
}

#[test]
fn utilization_follows_the_replica_calculator() {
    run(Case {
        // Target 50 %. Four replicas at 0.2 of 1.0: Σ 0.8 / Σ 4.0 = 20 % → 0.4 → ⌈0.4 × 4⌉ = 2.
        name: "utilization is Σ usage ÷ Σ requests",
        config: utilization(50),
        steps: vec![pods(0, 4, cpu(&[Some(0.2), Some(0.2), Some(0.2), Some(0.2)]), 2)],
    });
    run(Case {
        // Three at 0.2 and one missing: 0.6 / 3.0 = 20 % → 0.4, a scale-down, so the missing one
        // counts as using max(100, 50) % of its request: 1.6 / 4.0 = 40 % → 0.8, outside the
        // band, same direction: ⌈0.8 × 4⌉ = 4 — no scale-down.
        name: "a missing replica counts as busy on a scale-down",
        config: utilization(50),
        steps: vec![pods(0, 4, cpu(&[Some(0.2), Some(0.2), Some(0.2), None]), 4)],
    });
    run(Case {
        // Two at 0.9 and two missing: 90 % → 1.8, a scale-up, so the missing ones count as idle:
        // 1.8 / 4.0 = 45 % → 0.9 < 1: the direction would flip, so replicas stay.
        name: "a missing replica counts as idle on a scale-up; a flip holds",
        config: utilization(50),
        steps: vec![pods(0, 4, cpu(&[Some(0.9), Some(0.9), None, None]), 4)],
    });
    let starting = vec![
        PodReading::ready(1.0).with_request(1.0),
        PodReading::ready(1.0).with_request(1.0),
        PodReading::unready().with_request(1.0),
        PodReading::unready().with_request(1.0),
    ];
    run(Case {
        // Two ready at 100 % (ratio 2.0) while two start: on a scale-up the unready ones count as
        // idle: 2.0 / 4.0 = 50 % → 1.0, inside the band: hold at 4 until they report.
        name: "starting replicas damp a scale-up",
        config: utilization(50),
        steps: vec![pods(0, 4, starting, 4)],
    });
    run(Case {
        // Target 100 %, one replica at 1.1009 of 1.0: read as 1101 milli (rounded up), 110100 /
        // 1000 = 110.1 truncated to 110 % → ratio 1.1, inside the band: hold. At 1.111: 111 % →
        // ⌈1.11⌉ = 2.
        name: "utilization is a whole percentage",
        config: utilization(100),
        steps: vec![
            pods(0, 1, vec![PodReading::ready(1.1009).with_request(1.0)], 1),
            pods(15, 1, vec![PodReading::ready(1.111).with_request(1.0)], 2),
        ],
    });
    run(Case {
        // A replica without a request makes a utilisation metric invalid (Kubernetes: "missing
        // request"); it is the only metric, so nothing changes.
        name: "a missing request invalidates the metric",
        config: utilization(50),
        steps: vec![
            pods(0, 2, vec![PodReading::ready(0.9), PodReading::ready(0.9).with_request(1.0)], 2)
                .because(Reason::MetricsMissing { missing: 1, of: 1 }),
        ],
    });
}

#[test]
fn invalid_configurations_name_the_field() {
    let refused = |config: HpaConfig| Hpa::new(config).expect_err("refused").field;
    assert_eq!(refused(HpaConfig::default()), "hpa.metrics");
    assert_eq!(refused(HpaConfig { max_replicas: 0, ..load_config() }), "hpa.max_replicas");
    assert_eq!(refused(HpaConfig::new([MetricSpec::utilization("cpu", 0)])), "hpa.metrics[0].target");
    assert_eq!(refused(HpaConfig::new([MetricSpec::value("q", f64::NAN)])), "hpa.metrics[0].target");
    assert_eq!(refused(HpaConfig { tolerance: Tolerance::both(-0.1), ..load_config() }), "hpa.tolerance.scale_up");
    let bad_period = Behavior::default()
        .with_scale_up(ScalingRules::default().with_policies([ScalingPolicy::pods(1, Duration::from_secs(3_600))]));
    assert_eq!(
        refused(HpaConfig { behavior: Some(bad_period), ..load_config() }),
        "hpa.behavior.scale_up.policies[0].period"
    );
    let no_policy = Behavior::default().with_scale_down(ScalingRules::default().with_policies([]));
    assert_eq!(refused(HpaConfig { behavior: Some(no_policy), ..load_config() }), "hpa.behavior.scale_down.policies");
}

#[test]
fn min_zero_needs_a_whole_target_metric() {
    // Kubernetes (validateMetrics) refuses minReplicas 0 without an object or external metric:
    // per-replica readings are empty at zero replicas, so nothing would ever scale back up.
    let per_replica = HpaConfig { min_replicas: 0, ..utilization(50) };
    assert_eq!(per_replica.validate().expect_err("refused").field, "hpa.min_replicas");
    // With a whole-target metric beside it, zero is allowed and left again: a queue of 300 at
    // 100 per replica asks for ⌈300 / 100⌉ = 3 while the cpu readings are empty.
    let mut config = HpaConfig { min_replicas: 0, ..utilization(50) };
    config.metrics.push(MetricSpec::value("queue_depth", 100.0));
    let mut hpa = Hpa::new(config).expect("valid config");
    let at_zero = Sample::new(0).with_pods("cpu", []).with_value("queue_depth", 300.0);
    assert_eq!(hpa.recommend(&at_zero, Timestamp::from_unix_secs(T0)).replicas, 3);
}

#[test]
fn extreme_policies_loads_and_times_do_not_panic() {
    // Given policies of u32::MAX pods and percent, the largest replica range, tiny targets
    let rules = ScalingRules::default().with_policies([
        ScalingPolicy::pods(u32::MAX, Duration::from_secs(1)),
        ScalingPolicy::percent(u32::MAX, Duration::from_secs(1_800)),
    ]);
    let config = HpaConfig {
        min_replicas: 0,
        max_replicas: i32::MAX as u32,
        behavior: Some(Behavior::default().with_scale_up(rules.clone()).with_scale_down(rules)),
        ..HpaConfig::new([MetricSpec::value("load", 0.001), MetricSpec::average_value("q", 0.001)])
    };
    let mut hpa = Hpa::new(config).expect("valid config");
    // When loads swing between nothing and 1e300, each recommendation applied
    let mut replicas = 1;
    for (second, load) in [9e12, 0.0, 9e12, 0.0, 1e300, 9e12].into_iter().enumerate() {
        let sample = Sample::new(replicas).with_value("load", load).with_value("q", load);
        replicas = hpa.recommend(&sample, Timestamp::from_unix_secs(T0 + second as u64)).replicas;
        assert!(replicas <= i32::MAX as u32);
    }
    // And time jumps to the far future, then back to the epoch with u32::MAX replicas running
    hpa.recommend(&Sample::new(replicas).with_value("load", 1.0), Timestamp::from_unix(Duration::MAX));
    let back = hpa.recommend(&Sample::new(u32::MAX).with_value("load", 1.0), Timestamp::EPOCH);
    // Then nothing panicked, and replicas above the maximum are brought back to it
    assert_eq!(back.replicas, i32::MAX as u32);
}

#[test]
fn configuration_reads_from_json() {
    let config: HpaConfig = serde_json::from_str(
        r#"{
            "min_replicas": 2, "max_replicas": 30,
            "metrics": [{"name": "cpu", "target": {"utilization": 70}}, {"name": "queue", "target": {"average_value": 50.0}}],
            "tolerance": {"scale_up": 0.05},
            "behavior": {"scale_down": {"stabilization_window": "1m", "select_policy": "min",
                                         "policies": [{"kind": "pods", "value": 1, "period": "30s"}]}}
        }"#,
    )
    .expect("valid json");
    config.validate().expect("valid config");
    assert_eq!(config.tolerance, Tolerance { scale_up: 0.05, scale_down: 0.1 });
    assert_eq!(config.downscale_stabilization, Duration::from_secs(300));
    let down = config.behavior.and_then(|b| b.scale_down).expect("scale_down rules");
    assert_eq!(down.stabilization_window, Some(Duration::from_secs(60)));
    assert_eq!(down.policies, Some(vec![ScalingPolicy::pods(1, Duration::from_secs(30))]));
}
