//! What the benches of this crate share: driving a call by hand, keeping each function's
//! samples so the ratio against the anchor can be printed after the run, and printing the
//! figures in the form `scripts/bench.sh` collects.

#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::Service;

/// One call driven by hand: `poll_ready`, `call`, one poll of the response future. The
/// services benched here answer at the first poll; `None` if one does not.
pub fn call_once<S: Service<R>, R>(service: &mut S, request: R) -> Option<Result<S::Response, S::Error>> {
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(e)) => return Some(Err(e)),
        Poll::Pending => return None,
    }
    match pin!(service.call(request)).poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => None,
    }
}

/// Each function's ns-per-iteration samples, for medians after criterion's report.
#[derive(Default)]
pub struct Medians(Mutex<Vec<(&'static str, Vec<f64>)>>);

impl Medians {
    /// Records one sample of `iters` iterations taking `elapsed`.
    pub fn record(&self, id: &'static str, iters: u64, elapsed: Duration) {
        let ns = elapsed.as_nanos() as f64 / iters as f64;
        let mut all = self.0.lock().expect("no bench panics holding the lock");
        match all.iter_mut().find(|(name, _)| *name == id) {
            Some((_, samples)) => samples.push(ns),
            None => all.push((id, vec![ns])),
        }
    }

    /// The median sample of `id`, NaN if it has none.
    pub fn median(&self, id: &str) -> f64 {
        let all = self.0.lock().expect("no bench panics holding the lock");
        let mut samples = all.iter().find(|(name, _)| *name == id).map(|(_, s)| s.clone()).unwrap_or_default();
        samples.sort_by(f64::total_cmp);
        samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

/// True when the service answers `request` successfully at the first poll.
#[inline]
pub fn answers_at_once<S: Service<R>, R>(service: &mut S, request: R) -> bool {
    matches!(call_once(service, request), Some(Ok(_)))
}

/// Criterion with the short timings every bench here uses (2 shared cores).
pub fn quick_criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50)
        .configure_from_args()
}

/// Benches `call_once` of `service` with `u64` requests under `name`, recording each
/// sample's ns per call under `id` for the medians printed after the run.
pub fn bench_calls<S: Service<u64>>(
    c: &mut Criterion,
    medians: &Medians,
    name: &str,
    id: &'static str,
    mut service: S,
) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters {
                black_box(call_once(&mut service, black_box(i)));
            }
            let elapsed = start.elapsed();
            medians.record(id, iters, elapsed);
            elapsed
        })
    });
}

/// Where criterion wrote its estimates: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`,
/// else `<target>/criterion` next to this executable (`<target>/<profile>/deps/<bench>`).
pub fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(home.into());
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(target).join("criterion"));
    }
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.parent()?.join("criterion"))
}

/// Mean ns of `group/function` from its `new/estimates.json`.
pub fn mean_ns(dir: &Path, group: &str, function: &str) -> Option<f64> {
    let path = dir.join(group.replace('/', "_")).join(function).join("new/estimates.json");
    let json = std::fs::read_to_string(path).ok()?;
    let mean = &json[json.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find(|ch: char| !(ch.is_ascii_digit() || matches!(ch, '.' | 'e' | 'E' | '-' | '+')))?;
    value[..end].parse().ok()
}

/// Prints one figure as the line `scripts/bench.sh` collects into `target/bench/figures.md`:
/// `FIGURE<TAB>group<TAB>case<TAB>ours<TAB>anchor name<TAB>anchor<TAB>unit<TAB>target`.
///
/// `ours` and the anchor are in `unit` (figures in a unit ending in `/s` are better higher,
/// all others lower); `anchor` is the same-run figure ours is compared with. `target` is
/// DESIGN.md's: `<=N` or `>=N` for `ours` itself, `ratio<=N` or `ratio>=N` for ours / anchor,
/// `-` for none. Prints nothing for a figure that was not measured (NaN).
pub fn print_figure(group: &str, case: &str, ours: f64, anchor: Option<(&str, f64)>, unit: &str, target: &str) {
    if !ours.is_finite() {
        return;
    }
    let (anchor_name, anchor) = match anchor {
        Some((name, value)) if value.is_finite() => (name, value.to_string()),
        _ => ("-", "-".to_owned()),
    };
    println!("FIGURE\t{group}\t{case}\t{ours}\t{anchor_name}\t{anchor}\t{unit}\t{target}");
}

/// Tells `scripts/bench.sh` that the figures of `group` were not measured, and why.
pub fn print_skipped(group: &str, reason: &str) {
    println!("SKIPPED\t{group}\t{reason}");
}

/// A metrics recorder whose counters and gauges are plain atomics, as a real exporter's
/// would be: the cheapest live recorder, to price metric emission.
pub struct AtomicRecorder;

impl Recorder for AtomicRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicU64::new(0)))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}
