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

#[path = "support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;

use harvester_resilience::retry::{BudgetConfig, RetryConfig, RetryLayer};
use support::{Medians, bench_calls, print_figure, quick_criterion};
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
    let mut c = quick_criterion();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a runtime");
    let _context = runtime.enter();
    let medians = Medians::default();
    let noop = service_fn(|request: u64| ready(Ok::<_, Infallible>(request)));

    let without_budget =
        RetryConfig { budget: BudgetConfig { enabled: false, ..BudgetConfig::default() }, ..RetryConfig::default() };
    bench_calls(
        &mut c,
        &medians,
        "retry_first_success/ours/no_budget",
        "ours/no_budget",
        RetryLayer::new(without_budget).expect("valid config").layer(noop),
    );
    bench_calls(
        &mut c,
        &medians,
        "retry_first_success/tower/no_budget",
        "tower/no_budget",
        tower::retry::Retry::new(Attempts { left: 3, budget: None }, noop),
    );
    bench_calls(
        &mut c,
        &medians,
        "retry_first_success/ours/budget",
        "ours/budget",
        RetryLayer::new(RetryConfig::default()).expect("valid config").layer(noop),
    );
    let tps = Some(Arc::new(TpsBudget::default()));
    bench_calls(
        &mut c,
        &medians,
        "retry_first_success/tower/tps_budget",
        "tower/tps_budget",
        tower::retry::Retry::new(Attempts { left: 3, budget: tps }, noop),
    );
    c.final_summary();

    println!("\nretry_first_success, median ns per call (ratio ours / tower):");
    for (ours, tower) in [("ours/no_budget", "tower/no_budget"), ("ours/budget", "tower/tps_budget")] {
        let (a, b) = (medians.median(ours), medians.median(tower));
        println!("  {ours:<16} {a:7.1} ns   {tower:<18} {b:7.1} ns   ratio {:.2}", a / b);
    }
    for (ours, tower) in [("ours/no_budget", "tower/no_budget"), ("ours/budget", "tower/tps_budget")] {
        print_figure(
            "retry_first_success",
            ours,
            medians.median(ours),
            Some((tower, medians.median(tower))),
            "ns",
            "-",
        );
    }
}
