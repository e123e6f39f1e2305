//! What the benches of this crate share: driving a call by hand, short criterion timings,
//! and the figures in the form `scripts/bench.sh` collects.

#![allow(dead_code)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::Criterion;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use tower::Service;

// The figure protocol is shared by every bench of the workspace.
#[path = "../../../../benches/support/figures.rs"]
mod figures;
// Each bench uses a different part (as for the rest of this module).
#[allow(unused_imports)]
pub use figures::{Estimate, begin_run, criterion_dir, mean_ns, print_figure, print_skipped};

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

/// Benches `call_once` of `service` with `u64` requests as `group/function`, so that its
/// mean can be read back with [`mean_ns`] after criterion's report.
pub fn bench_calls<S: Service<u64>>(c: &mut Criterion, group: &str, function: &str, mut service: S) {
    let mut group = c.benchmark_group(group);
    group.bench_function(function, |b| {
        let mut i = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(call_once(&mut service, black_box(i)))
        })
    });
    group.finish();
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
