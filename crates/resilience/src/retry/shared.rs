//! What every clone of a retry service and every attempt of its calls read: the settings
//! fixed by the layer and the policies.

use std::sync::Arc;
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
