//! What the benches of this crate share: driving a call by hand, keeping each function's
//! samples so the ratio against the anchor can be printed after the run, and printing the
//! figures in the form `scripts/bench.sh` collects.

#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::Service;

// The figure protocol is shared by every bench of the workspace.
#[path = "../../../../benches/support/figures.rs"]
mod figures;
// Each bench uses a different part (as for the rest of this module).
#[allow(unused_imports)]
pub use figures::{criterion_dir, mean_ns, print_figure, print_skipped};

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
