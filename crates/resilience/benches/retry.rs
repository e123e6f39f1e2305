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
//! - `ours_no_budget` vs `tower_no_budget`: 3 attempts, no budget. tower's policy clones the
//!   request and never retries a success, as ours.
//! - `ours_budget` vs `tower_tps_budget`: with the default budget (20 % + 10/s over 10 s).
//!   Ours deposits for every call (one clock read and a CAS); tower's policy deposits into a
//!   `TpsBudget` on success, as tower's docs do (a mutex and a clock read).
//!
//! After criterion's report, the bench prints this run's means (with their confidence
//! intervals) against tower's. Timings are short on purpose (2 shared cores).

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

use harvester_resilience::retry::{BudgetConfig, RetryConfig, RetryLayer};
use support::{begin_run, bench_calls, criterion_dir, mean_ns, print_figure, quick_criterion};
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, service_fn};

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

fn main() {
    begin_run();
    let mut c = quick_criterion();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let _context = runtime.enter();
    let noop = service_fn(|request: u64| ready(Ok::<_, Infallible>(request)));

    let without_budget =
        RetryConfig { budget: BudgetConfig { enabled: false, ..BudgetConfig::default() }, ..RetryConfig::default() };
    bench_calls(
        &mut c,
        "retry_first_success",
        "ours_no_budget",
        RetryLayer::new(without_budget).expect("valid config").layer(noop),
    );
    bench_calls(
        &mut c,
        "retry_first_success",
        "tower_no_budget",
        tower::retry::Retry::new(Attempts { left: 3, budget: None }, noop),
    );
    bench_calls(
        &mut c,
        "retry_first_success",
        "ours_budget",
        RetryLayer::new(RetryConfig::default()).expect("valid config").layer(noop),
    );
    let tps = Some(Arc::new(TpsBudget::default()));
    bench_calls(
        &mut c,
        "retry_first_success",
        "tower_tps_budget",
        tower::retry::Retry::new(Attempts { left: 3, budget: tps }, noop),
    );
    c.final_summary();

    let Some(dir) = criterion_dir() else { return };
    let mean = |function| mean_ns(&dir, "retry_first_success", function);
    for (ours, tower) in [("ours_no_budget", "tower_no_budget"), ("ours_budget", "tower_tps_budget")] {
        print_figure("retry_first_success", ours, mean(ours), mean(tower).map(|e| (tower, e)), "ns", "-");
    }
}
