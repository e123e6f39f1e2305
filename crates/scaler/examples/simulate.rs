//! Replays load traces through every engine and draws replicas against load.
//!
//! ```text
//! cargo run -p harvester-scaler --example simulate [OUT_DIR]     # default: target/scaler-sim
//! ```
//!
//! Three traces — a burst, a ramp up and down, a daily sine — run through the reactive scaler,
//! the HPA (without and with a behaviour), the predictive HPA (linear trend and Holt), a
//! scheduled HPA and a cost-capped HPA. The world is simple on purpose: one round every 15 s
//! (the HPA's sync period), a replica serves 100 records/s, replicas start at once, load beyond
//! capacity waits in a queue. Engines see `load` (records/s arriving), `cpu` (load ÷ capacity,
//! at most 1) and `queue_depth`; the HPA-based ones target 80 records/s per replica.
//!
//! For each trace it writes one SVG (every engine's replicas, and the load as the replicas it
//! needs at 80 per replica) and prints, per engine: peak replicas; time to scale up (from the
//! load's rise until 90 % of the replicas the peak load needs); time to return (from the load's
//! return to its baseline until replicas are back at their level before the rise); time under
//! capacity; and replica-hours.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harvester_scaler::{
    Behavior, CostCap, CostConfig, Engine, ForecastModel, Hpa, HpaConfig, MetricSpec, Predictive, PredictiveConfig,
    ReactiveConfig, ReactiveScaler, Sample, ScalingPolicy, ScalingRules, ScheduleConfig, ScheduleWindow, Scheduled,
    TimeOfDay, Timestamp, Weekday,
};
use plotters::prelude::*;

/// One round every 15 s.
const STEP: u64 = 15;
/// Records per second one replica serves.
const CAPACITY: f64 = 100.0;
/// Records per second the HPA-based engines aim at per replica.
const TARGET: f64 = 80.0;
/// 2024-01-01 00:00 UTC, a Monday: the schedule's windows are in UTC.
const START: u64 = 1_704_067_200;
const MAX_REPLICAS: u32 = 40;

struct Trace {
    name: &'static str,
    /// Length in seconds.
    length: u64,
    /// Records per second at a time in seconds.
    load: fn(f64) -> f64,
    /// When the load starts to rise above its baseline.
    rise: u64,
    /// When it is back at its baseline.
    back: u64,
}

fn traces() -> Vec<Trace> {
    vec![
        Trace {
            name: "burst",
            length: 2 * 3_600,
            load: |t| if (1_800.0..3_000.0).contains(&t) { 2_400.0 } else { 300.0 },
            rise: 1_800,
            back: 3_000,
        },
        Trace {
            name: "ramp",
            length: 2 * 3_600,
            load: |t| {
                let minutes = t / 60.0;
                match minutes {
                    m if m < 20.0 => 300.0,
                    m if m < 80.0 => 300.0 + (m - 20.0) / 60.0 * 2_700.0,
                    m if m < 110.0 => 3_000.0 - (m - 80.0) / 30.0 * 2_700.0,
                    _ => 300.0,
                }
            },
            rise: 20 * 60,
            back: 110 * 60,
        },
        Trace {
            // Trough at 01:00 UTC, peak at 13:00, an hour of settling before the day starts.
            name: "daily",
            length: 27 * 3_600,
            load: |t| 1_100.0 - 900.0 * (std::f64::consts::TAU * (t - 3_600.0) / 86_400.0).cos(),
            rise: 3_600,
            back: 25 * 3_600,
        },
    ]
}

fn hpa_config() -> HpaConfig {
    HpaConfig { max_replicas: MAX_REPLICAS, ..HpaConfig::new([MetricSpec::average_value("load", TARGET)]) }
}

fn hpa() -> Result<Hpa, Box<dyn Error>> {
    Ok(Hpa::new(hpa_config())?)
}

/// An engine under test, by name.
type Named = (&'static str, Box<dyn Engine>);

fn engines() -> Result<Vec<Named>, Box<dyn Error>> {
    let reactive = ReactiveScaler::new(ReactiveConfig { max_replicas: MAX_REPLICAS, ..ReactiveConfig::default() })?;
    let behavior = Behavior::default().with_scale_down(
        ScalingRules::default()
            .with_window(Duration::from_secs(120))
            .with_policies([ScalingPolicy::percent(10, Duration::from_secs(60))]),
    );
    let hpa_behavior = Hpa::new(HpaConfig { behavior: Some(behavior), ..hpa_config() })?;
    // Five minutes ahead rather than the default two: at 40 replicas, two minutes of this ramp
    // is less than the HPA's 10 % tolerance band, and the forecast would change nothing.
    let ahead = PredictiveConfig { horizon: Duration::from_secs(300), ..PredictiveConfig::new("load", TARGET) };
    let linear = Predictive::new(hpa_config(), ahead.clone())?;
    let holt = Predictive::new(hpa_config(), ahead.with_model(ForecastModel::HOLT))?;
    let office = ScheduleWindow::new("office hours", TimeOfDay::new(7, 0)?, TimeOfDay::new(19, 0)?, 20).on([
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ]);
    let scheduled = Scheduled::new(ScheduleConfig { utc_offset_minutes: 0, windows: vec![office] }, hpa()?)?;
    let capped = CostCap::new(CostConfig { cost_per_replica_hour: 0.0464, max_cost_per_hour: Some(1.0) }, hpa()?)?;
    Ok(vec![
        ("reactive", Box::new(reactive)),
        ("hpa", Box::new(hpa()?)),
        ("hpa+behavior", Box::new(hpa_behavior)),
        ("predictive-linear", Box::new(linear)),
        ("predictive-holt", Box::new(holt)),
        ("scheduled", Box::new(scheduled)),
        ("cost-capped", Box::new(capped)),
    ])
}

/// One engine's replicas over one trace, one entry per round.
struct Run {
    engine: &'static str,
    replicas: Vec<u32>,
    under_capacity_rounds: usize,
}

fn simulate(trace: &Trace, engine: &'static str, mut scaler: Box<dyn Engine>) -> Run {
    let mut replicas = 2;
    let mut queue = 0.0_f64;
    let mut run = Run { engine, replicas: Vec::new(), under_capacity_rounds: 0 };
    for t in (0..trace.length).step_by(STEP as usize) {
        let load = (trace.load)(t as f64);
        let capacity = f64::from(replicas) * CAPACITY;
        queue = (queue + (load - capacity) * STEP as f64).max(0.0);
        let cpu = if capacity > 0.0 { (load / capacity).min(1.0) } else { 1.0 };
        if load > capacity {
            run.under_capacity_rounds += 1;
        }
        let sample =
            Sample::new(replicas).with_value("load", load).with_value("cpu", cpu).with_value("queue_depth", queue);
        replicas = scaler.recommend(&sample, Timestamp::from_unix_secs(START + t)).replicas;
        run.replicas.push(replicas);
    }
    run
}

fn round_of(seconds: u64) -> usize {
    (seconds / STEP) as usize
}

fn minutes(rounds: usize) -> String {
    format!("{:.1} min", (rounds as u64 * STEP) as f64 / 60.0)
}

fn summary(trace: &Trace, run: &Run) -> String {
    let peak = run.replicas.iter().copied().max().unwrap_or(0);
    let rise = round_of(trace.rise);
    let baseline = if rise == 0 { 2 } else { run.replicas[rise - 1] };
    // One goal for every engine: 90 % of the replicas the peak load needs at the target.
    let peak_load = (0..trace.length).step_by(STEP as usize).map(|t| (trace.load)(t as f64)).fold(0.0, f64::max);
    let goal = (0.9 * peak_load / TARGET).ceil() as u32;
    let up = run.replicas[rise..].iter().position(|r| *r >= goal).map_or("never".to_owned(), minutes);
    let back = round_of(trace.back).min(run.replicas.len());
    let last = run.replicas.last().copied().unwrap_or(0);
    let down =
        run.replicas[back..].iter().position(|r| *r <= baseline).map_or(format!("never (ends at {last})"), minutes);
    let replica_hours: f64 = run.replicas.iter().map(|r| f64::from(*r) * STEP as f64 / 3_600.0).sum();
    format!(
        "  {:<18} peak {:>2} | {goal} replicas after {:>9} | back to {:>2} after {:>17} | under capacity {:>8} | {:>6.1} replica-h",
        run.engine,
        peak,
        up,
        baseline,
        down,
        minutes(run.under_capacity_rounds),
        replica_hours
    )
}

/// Replicas as a step line: a point where each count starts and where it ends.
fn steps(run: &Run, unit: f64) -> Vec<(f64, f64)> {
    let x = |round: usize| (round as u64 * STEP) as f64 / unit;
    let mut points = Vec::new();
    let mut previous = None;
    for (round, replicas) in run.replicas.iter().enumerate() {
        if previous != Some(*replicas) {
            if let Some(previous) = previous {
                points.push((x(round), f64::from(previous)));
            }
            points.push((x(round), f64::from(*replicas)));
            previous = Some(*replicas);
        }
    }
    if let Some(previous) = previous {
        points.push((x(run.replicas.len()), f64::from(previous)));
    }
    points
}

/// One panel per engine (lines on one chart would hide each other where engines agree), each
/// with the load drawn as the replicas it needs.
fn draw(trace: &Trace, runs: &[Run], path: &Path) -> Result<(), Box<dyn Error>> {
    let hours = trace.length > 6 * 3_600;
    let (unit, unit_name) = if hours { (3_600.0, "hours") } else { (60.0, "minutes") };
    let x_end = trace.length as f64 / unit;
    // A point a minute is plenty for a smooth load line, and keeps the daily chart small.
    let needed: Vec<(f64, f64)> =
        (0..trace.length).step_by(60).map(|t| (t as f64 / unit, (trace.load)(t as f64) / TARGET)).collect();
    let root = SVGBackend::new(path, (1_400, 1_300)).into_drawing_area();
    root.fill(&WHITE)?;
    let title =
        format!("{}: replicas (colour) against the load as replicas needed at {TARGET}/s each (black)", trace.name);
    let root = root.titled(&title, ("sans-serif", 22))?;
    let rows = runs.len().div_ceil(2);
    for (index, (panel, run)) in root.split_evenly((rows, 2)).iter().zip(runs).enumerate() {
        let color = Palette99::pick(index).to_rgba();
        let mut chart = ChartBuilder::on(panel)
            .caption(run.engine, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..x_end, 0.0..f64::from(MAX_REPLICAS) + 2.0)?;
        chart.configure_mesh().x_desc(unit_name).y_desc("replicas").light_line_style(WHITE.mix(0.0)).draw()?;
        chart.draw_series(LineSeries::new(needed.iter().copied(), BLACK.stroke_width(2)))?;
        chart.draw_series(LineSeries::new(steps(run, unit), color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args().nth(1).map_or_else(|| PathBuf::from("target/scaler-sim"), PathBuf::from);
    std::fs::create_dir_all(&out)?;
    for trace in traces() {
        let runs: Vec<Run> = engines()?.into_iter().map(|(name, engine)| simulate(&trace, name, engine)).collect();
        let path = out.join(format!("{}.svg", trace.name));
        draw(&trace, &runs, &path)?;
        println!("{} -> {}", trace.name, path.display());
        for run in &runs {
            println!("{}", summary(&trace, run));
        }
    }
    Ok(())
}
