//! Scheduled windows (daily, weekly, past midnight, past the week's end, in an offset) and the
//! cost cap.

use std::time::Duration;

use harvester_scaler::{
    Behavior, CostCap, CostConfig, Engine, Hpa, HpaConfig, MetricSpec, ReactiveConfig, ReactiveScaler, Reason, Sample,
    ScalingPolicy, ScalingRules, ScheduleConfig, ScheduleWindow, Scheduled, TimeOfDay, Timestamp, Weekday,
};

/// 2024-01-01 00:00 UTC, a Monday.
const MONDAY: u64 = 1_704_067_200;
const DAY: u64 = 86_400;

fn time(hours: u8, minutes: u8) -> TimeOfDay {
    TimeOfDay::new(hours, minutes).expect("a valid time")
}

/// `day` days after Monday 2024-01-01 (0 = Monday), at `hours:minutes` UTC.
fn utc(day: u64, hours: u64, minutes: u64) -> Timestamp {
    Timestamp::from_unix_secs(MONDAY + day * DAY + hours * 3_600 + minutes * 60)
}

fn active(config: &ScheduleConfig, now: Timestamp) -> Option<(&str, u32)> {
    config.active(now).map(|w| (w.name.as_str(), w.min_replicas))
}

#[test]
fn daily_window_runs_every_day_start_included_end_excluded() {
    let config = ScheduleConfig {
        utc_offset_minutes: 0,
        windows: vec![ScheduleWindow::new("office", time(8, 0), time(18, 0), 5)],
    };
    for day in 0..7 {
        assert_eq!(active(&config, utc(day, 7, 59)), None);
        assert_eq!(active(&config, utc(day, 8, 0)), Some(("office", 5)));
        assert_eq!(active(&config, utc(day, 17, 59)), Some(("office", 5)));
        assert_eq!(active(&config, utc(day, 18, 0)), None);
    }
}

#[test]
fn weekly_window_past_midnight_belongs_to_the_day_it_starts() {
    // Friday 22:00 to 02:00
    let window = ScheduleWindow::new("crawl", time(22, 0), time(2, 0), 6).on([Weekday::Fri]);
    let config = ScheduleConfig { utc_offset_minutes: 0, windows: vec![window] };
    assert_eq!(active(&config, utc(4, 21, 59)), None); // Friday 21:59
    assert_eq!(active(&config, utc(4, 22, 0)), Some(("crawl", 6))); // Friday 22:00
    assert_eq!(active(&config, utc(5, 1, 59)), Some(("crawl", 6))); // Saturday 01:59
    assert_eq!(active(&config, utc(5, 2, 0)), None); // Saturday 02:00
    assert_eq!(active(&config, utc(5, 22, 30)), None); // Saturday evening is not Friday
    assert_eq!(active(&config, utc(3, 23, 0)), None); // nor is Thursday
    assert_eq!(active(&config, utc(11, 23, 0)), Some(("crawl", 6))); // the next Friday
}

#[test]
fn sunday_night_window_wraps_into_monday() {
    let window = ScheduleWindow::new("batch", time(23, 0), time(1, 0), 3).on([Weekday::Sun]);
    let config = ScheduleConfig { utc_offset_minutes: 0, windows: vec![window] };
    assert_eq!(active(&config, utc(6, 23, 30)), Some(("batch", 3))); // Sunday 23:30
    assert_eq!(active(&config, utc(7, 0, 30)), Some(("batch", 3))); // Monday 00:30, next week
    assert_eq!(active(&config, utc(0, 0, 30)), Some(("batch", 3))); // Monday 2024-01-01: 2023-12-31 was a Sunday
    assert_eq!(active(&config, utc(7, 1, 0)), None); // Monday 01:00
    assert_eq!(active(&config, utc(1, 0, 30)), None); // Tuesday 00:30
    assert_eq!(active(&config, utc(6, 22, 59)), None); // Sunday 22:59
}

#[test]
fn offset_moves_the_windows() {
    // 08:00-18:00 at UTC+02:00 is 06:00-16:00 UTC; at UTC-05:00, 13:00-23:00 UTC.
    let window = ScheduleWindow::new("office", time(8, 0), time(18, 0), 5);
    let plus_two = ScheduleConfig { utc_offset_minutes: 120, windows: vec![window.clone()] };
    assert_eq!(active(&plus_two, utc(0, 6, 0)), Some(("office", 5)));
    assert_eq!(active(&plus_two, utc(0, 16, 0)), None);
    let minus_five = ScheduleConfig { utc_offset_minutes: -300, windows: vec![window.clone().on([Weekday::Mon])] };
    // Monday 22:00 local is Tuesday 03:00 UTC.
    assert_eq!(active(&minus_five, utc(1, 3, 0)), None);
    assert_eq!(active(&minus_five, utc(0, 22, 59)), Some(("office", 5)));
    assert_eq!(active(&minus_five, utc(0, 23, 0)), None);
}

#[test]
fn overlapping_windows_take_the_highest_minimum() {
    let config = ScheduleConfig {
        utc_offset_minutes: 0,
        windows: vec![
            ScheduleWindow::new("day", time(0, 0), time(24, 0), 2),
            ScheduleWindow::new("peak", time(12, 0), time(14, 0), 8),
        ],
    };
    assert_eq!(active(&config, utc(2, 13, 0)), Some(("peak", 8)));
    assert_eq!(active(&config, utc(2, 23, 59)), Some(("day", 2)));
}

fn hpa(max_replicas: u32) -> Hpa {
    Hpa::new(HpaConfig { max_replicas, ..HpaConfig::new([MetricSpec::average_value("load", 100.0)]) })
        .expect("valid config")
}

#[test]
fn scheduled_engine_raises_the_minimum_within_the_inner_maximum() {
    let window = ScheduleWindow::new("peak", time(9, 0), time(10, 0), 12);
    let mut engine =
        Scheduled::new(ScheduleConfig { utc_offset_minutes: 0, windows: vec![window] }, hpa(10)).expect("valid config");
    // Outside the window the HPA decides: load 200 on 2 replicas is on target
    assert_eq!(engine.recommend(&Sample::new(2).with_value("load", 200.0), utc(0, 8, 59)).replicas, 2);
    // Inside, at least 12 — capped at the HPA's maximum of 10
    let raised = engine.recommend(&Sample::new(2).with_value("load", 200.0), utc(0, 9, 0));
    assert_eq!(raised.replicas, 10);
    assert_eq!(raised.reason, Reason::Scheduled { window: "peak".into(), min_replicas: 12 });
    // A higher demand than the window's minimum is left to the HPA
    let mut engine = Scheduled::new(
        ScheduleConfig {
            utc_offset_minutes: 0,
            windows: vec![ScheduleWindow::new("peak", time(9, 0), time(10, 0), 3)],
        },
        hpa(50),
    )
    .expect("valid config");
    assert_eq!(engine.recommend(&Sample::new(4).with_value("load", 800.0), utc(0, 9, 30)).replicas, 8);
}

#[test]
fn change_a_window_overrode_leaves_no_scale_event() {
    // Given an HPA that may drop 4 replicas a minute, at once, under a window holding 8 until 10:01
    let hpa = Hpa::new(HpaConfig {
        max_replicas: 20,
        behavior: Some(
            Behavior::default().with_scale_down(
                ScalingRules::default()
                    .with_window(Duration::ZERO)
                    .with_policies([ScalingPolicy::pods(4, Duration::from_secs(60))]),
            ),
        ),
        ..HpaConfig::new([MetricSpec::average_value("load", 100.0)])
    })
    .expect("valid config");
    let window = ScheduleWindow::new("peak", time(10, 0), time(10, 1), 8);
    let mut engine =
        Scheduled::new(ScheduleConfig { utc_offset_minutes: 0, windows: vec![window] }, hpa).expect("valid config");
    // When the HPA asks for 8 -> 4 inside the window, the window holds 8
    let held = engine.recommend(&Sample::new(8).with_value("load", 400.0), utc(0, 10, 0) + Duration::from_secs(30));
    assert_eq!(held.replicas, 8);
    assert_eq!(held.reason, Reason::Scheduled { window: "peak".into(), min_replicas: 8 });
    // Then once the window is over the HPA goes 8 -> 4 at once: the change it never made does
    // not count against its 4 per minute
    let after = engine.recommend(&Sample::new(8).with_value("load", 400.0), utc(0, 10, 1));
    assert_eq!((after.replicas, after.reason), (4, Reason::BelowTarget));
}

#[test]
fn schedule_refuses_empty_windows_and_bad_times() {
    let empty =
        ScheduleConfig { utc_offset_minutes: 0, windows: vec![ScheduleWindow::new("x", time(9, 0), time(9, 0), 1)] };
    assert_eq!(empty.validate().expect_err("refused").field, "schedule.windows[0].end");
    assert!(TimeOfDay::new(24, 1).is_err());
    assert!(TimeOfDay::new(7, 60).is_err());
    let parsed: ScheduleConfig = serde_json::from_str(
        r#"{"utc_offset_minutes": 60, "windows": [{"name": "w", "days": ["sat", "sun"], "start": "22:30", "end": "06:00", "min_replicas": 4}]}"#,
    )
    .expect("valid json");
    assert_eq!(parsed.windows[0].start, time(22, 30));
    assert!(serde_json::from_str::<TimeOfDay>(r#""7h30""#).is_err());
    let far = ScheduleConfig { utc_offset_minutes: 19 * 60, windows: Vec::new() };
    assert_eq!(far.validate().expect_err("refused").field, "schedule.utc_offset_minutes");
}

#[test]
fn cost_cap_limits_replicas_and_reports_cost() {
    // Given 0.5 per replica-hour and a budget of 2.0 per hour: 4 replicas at most
    let config = CostConfig { cost_per_replica_hour: 0.5, max_cost_per_hour: Some(2.0) };
    let mut engine = CostCap::new(config, hpa(20)).expect("valid config");
    assert_eq!(engine.cap(), Some(4));
    assert_eq!(engine.replica_range(), 1..=4);
    // When the HPA asks for 3, the cost is reported and nothing capped
    let cheap = engine.recommend(&Sample::new(3).with_value("load", 300.0), utc(0, 0, 0));
    assert_eq!((cheap.replicas, cheap.cost_per_hour), (3, Some(1.5)));
    assert_ne!(cheap.reason, Reason::CostCapped { max_cost_per_hour: 2.0 });
    // When it asks for 6, the budget caps at 4
    let capped = engine.recommend(&Sample::new(3).with_value("load", 600.0), utc(0, 0, 0) + Duration::from_secs(15));
    assert_eq!((capped.replicas, capped.cost_per_hour), (4, Some(2.0)));
    assert_eq!(capped.reason, Reason::CostCapped { max_cost_per_hour: 2.0 });
    // And a budget below one replica is refused
    let too_small = CostConfig { cost_per_replica_hour: 0.5, max_cost_per_hour: Some(0.4) };
    assert_eq!(CostCap::new(too_small, hpa(20)).expect_err("refused").field, "cost.max_cost_per_hour");
}

#[test]
fn change_the_budget_refused_starts_no_cooldown() {
    // Given a reactive scaler (60 s cooldown) under a budget of 4 replicas, running 4
    let config = CostConfig { cost_per_replica_hour: 0.5, max_cost_per_hour: Some(2.0) };
    let scaler = ReactiveScaler::new(ReactiveConfig::default()).expect("valid config");
    let mut engine = CostCap::new(config, scaler).expect("valid config");
    // When cpu is high, the scaler's 4 -> 8 is capped at 4: nothing changes
    let capped = engine.recommend(&Sample::new(4).with_value("cpu", 0.95), utc(0, 0, 0));
    assert_eq!((capped.replicas, capped.reason), (4, Reason::CostCapped { max_cost_per_hour: 2.0 }));
    // Then when cpu falls 30 s later the scaler halves at once: the change it never made
    // started no cooldown
    let halved = engine.recommend(&Sample::new(4).with_value("cpu", 0.1), utc(0, 0, 0) + Duration::from_secs(30));
    assert_eq!((halved.replicas, halved.reason), (2, Reason::BelowTarget));
}

#[test]
fn cost_without_budget_only_reports() {
    let mut engine = CostCap::new(CostConfig::default(), hpa(20)).expect("valid config");
    let recommendation = engine.recommend(&Sample::new(10).with_value("load", 1_000.0), utc(0, 0, 0));
    assert_eq!(recommendation.replicas, 10);
    let cost = recommendation.cost_per_hour.expect("a cost");
    assert!((cost - 0.464).abs() < 1e-12, "{cost}");
}
