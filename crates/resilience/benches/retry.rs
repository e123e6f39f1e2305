//! What the retry layer costs when nothing fails: one call answered at the first attempt,
//! through our `Retry` and through tower's `Retry` with an equivalent policy, over the same
//! no-op service, in the same run.
//!
//! ```text
//! cargo bench -p harvester-resilience --bench retry
//! ```
//!
//! Functions of the group `retry_first_success` (ns per call: `poll_ready`, `call`, one poll
//! of the response future, drop):
//! - `ours/no_budget` vs `tower/no_budget`: 3 attempts, no budget. tower's policy clones the
//!   request and never retries a success, as ours.
//! - `ours/budget` vs `tower/tps_budget`: with the default budget (20 % + 10/s over 10 s).
//!   Ours deposits for every call (one clock read and a CAS); tower's policy deposits into a
//!   `TpsBudget` on success, as tower's docs do (a mutex and a clock read).
//!
//! After criterion's report, the bench prints the median of each function's samples and the
//! ratio ours / tower. Timings are short on purpose (2 shared cores).

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use harvester_resilience::retry::{BudgetConfig, RetryConfig, RetryLayer};
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, service_fn};

/// tower's policy equivalent to ours: retry errors up to `attempts` in all, never a success.
#[derive(Clone)]
struct Attempts {
    left: u32,
    budget: Option<Arc<TpsBudget>>,
}

impl<Req: Clone, Res, E> Policy<Req, Res, E> for Attempts {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                if let Some(budget) = &self.budget {
                    budget.deposit();
                }
                None
            }
            Err(_) if self.left > 1 && self.budget.as_ref().is_none_or(|budget| budget.withdraw()) => {
                self.left -= 1;
                Some(ready(()))
            }
            Err(_) => None,
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// One call, driven by hand: the no-op service answers at the first poll.
fn call_once<S: Service<u64>>(service: &mut S, request: u64) -> Option<S::Response> {
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => return None,
    }
    match pin!(service.call(request)).poll(&mut cx) {
        Poll::Ready(Ok(response)) => Some(response),
        _ => None,
    }
}

/// Median ns per call of each function's samples, for the ratios.
#[derive(Default)]
struct Medians(Mutex<Vec<(&'static str, Vec<f64>)>>);

impl Medians {
    fn record(&self, id: &'static str, iters: u64, elapsed: Duration) {
        let ns = elapsed.as_nanos() as f64 / iters as f64;
        let mut all = self.0.lock().expect("no test panics holding the lock");
        match all.iter_mut().find(|(name, _)| *name == id) {
            Some((_, samples)) => samples.push(ns),
            None => all.push((id, vec![ns])),
        }
    }

    fn median(&self, id: &str) -> f64 {
        let all = self.0.lock().expect("no test panics holding the lock");
        let mut samples = all.iter().find(|(name, _)| *name == id).map(|(_, s)| s.clone()).unwrap_or_default();
        samples.sort_by(f64::total_cmp);
        samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
    }
}

fn bench<S: Service<u64>>(c: &mut Criterion, medians: &Medians, id: &'static str, mut service: S) {
    c.bench_function(&format!("retry_first_success/{id}"), |b| {
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

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50)
        .configure_from_args();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let _context = runtime.enter();
    let medians = Medians::default();
    let noop = service_fn(|request: u64| ready(Ok::<_, Infallible>(request)));

    let without_budget =
        RetryConfig { budget: BudgetConfig { enabled: false, ..BudgetConfig::default() }, ..RetryConfig::default() };
    bench(&mut c, &medians, "ours/no_budget", RetryLayer::new(&without_budget).expect("valid config").layer(noop));
    bench(&mut c, &medians, "tower/no_budget", tower::retry::Retry::new(Attempts { left: 3, budget: None }, noop));
    bench(&mut c, &medians, "ours/budget", RetryLayer::new(&RetryConfig::default()).expect("valid config").layer(noop));
    let tps = Some(Arc::new(TpsBudget::default()));
    bench(&mut c, &medians, "tower/tps_budget", tower::retry::Retry::new(Attempts { left: 3, budget: tps }, noop));
    c.final_summary();

    println!("\nretry_first_success, median ns per call (ratio ours / tower):");
    for (ours, tower) in [("ours/no_budget", "tower/no_budget"), ("ours/budget", "tower/tps_budget")] {
        let (a, b) = (medians.median(ours), medians.median(tower));
        println!("  {ours:<16} {a:7.1} ns   {tower:<18} {b:7.1} ns   ratio {:.2}", a / b);
    }
}
