//! What every clone of a retry service and every attempt of its calls read: the settings
//! fixed by the layer and the policies.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::{Counter, Gauge};

use super::backoff::Backoff;
use super::budget::RetryBudget;

/// The part of a retry service shared by its clones and their calls.
pub(super) struct Shared<R, E, P> {
    pub(super) settings: Settings,
    pub(super) response_policy: R,
    pub(super) error_policy: E,
    pub(super) prepare: P,
}

/// What a retry service and its calls hold: the shared part, and a spare of the wrapped
/// service for attempts after the first.
pub(super) struct Calls<S, R, E, P> {
    pub(super) shared: Shared<R, E, P>,
    /// Cloned when a call needs a second attempt, so that a call answered at once clones
    /// nothing. Cloning the wrapped service for every call, in case it failed, took and gave
    /// back a reference for each `Arc` the service holds.
    spare: Mutex<S>,
}

impl<S: Clone, R, E, P> Calls<S, R, E, P> {
    pub(super) fn new(shared: Shared<R, E, P>, service: &S) -> Self {
        Calls { shared, spare: Mutex::new(service.clone()) }
    }

    /// A clone of the wrapped service, not yet polled ready.
    pub(super) fn spare(&self) -> S {
        self.spare.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// What every attempt of every clone reads.
#[derive(Clone)]
pub(super) struct Settings {
    pub(super) name: Arc<str>,
    pub(super) max_attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) attempt_timeout: Option<Duration>,
    pub(super) max_retry_after: Duration,
    pub(super) budget: Option<Arc<RetryBudget>>,
    pub(super) metrics: RetryMetrics,
}

/// Handles registered once, so that counting costs no lookup per call.
#[derive(Clone)]
pub(super) struct RetryMetrics {
    pub(super) attempts: Counter,
    pub(super) retries: Counter,
    pub(super) budget_exhausted: Counter,
    pub(super) budget_tokens: Gauge,
}

impl RetryMetrics {
    pub(super) fn register(name: &str) -> Self {
        metrics::describe_counter!("harvester_retry_attempts_total", "Attempts made, first attempts included.");
        metrics::describe_counter!("harvester_retry_retries_total", "Retries made (attempts after the first).");
        metrics::describe_counter!(
            "harvester_retry_budget_exhausted_total",
            "Retries refused because the retry budget had no token."
        );
        metrics::describe_gauge!("harvester_retry_budget_tokens", "Retry tokens left, as of the last retry.");
        let label = name.to_owned();
        RetryMetrics {
            attempts: metrics::counter!("harvester_retry_attempts_total", "retry" => label.clone()),
            retries: metrics::counter!("harvester_retry_retries_total", "retry" => label.clone()),
            budget_exhausted: metrics::counter!("harvester_retry_budget_exhausted_total", "retry" => label.clone()),
            budget_tokens: metrics::gauge!("harvester_retry_budget_tokens", "retry" => label),
        }
    }
}
