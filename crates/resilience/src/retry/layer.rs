//! The retry layer: validated settings and policies, cheap to clone.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::backoff::Backoff;
use super::budget::RetryBudget;
use super::config::RetryConfig;
use super::policy::{DefaultErrorPolicy, NeverRetryResponses, SameRequest};
use super::service::Retry;
use super::shared::{Calls, RetryMetrics, Settings, Shared};
use crate::error::ConfigError;

/// Wraps services in [`Retry`].
///
/// Built from a [`RetryConfig`]; the policies, a custom backoff and a shared budget are set
/// with the methods below. The retry budget is created here, once: every service this layer
/// wraps, and every clone of those, draws on it.
#[derive(Clone)]
#[must_use = "a layer does nothing until it wraps a service"]
pub struct RetryLayer<R = NeverRetryResponses, E = DefaultErrorPolicy, P = SameRequest> {
    settings: Settings,
    response_policy: R,
    error_policy: E,
    prepare: P,
}

impl RetryLayer {
    /// A layer retrying every error but the pointless ones (see
    /// [`decide_by_default`](super::decide_by_default)) and no response, or the first
    /// field of `config` that is out of range.
    pub fn new(config: RetryConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self::from_valid(&config))
    }

    fn from_valid(config: &RetryConfig) -> Self {
        let budget = config.budget.enabled.then(|| Arc::new(RetryBudget::from_valid(&config.budget)));
        RetryLayer {
            settings: Settings {
                name: Arc::from(config.name.as_str()),
                max_attempts: config.max_attempts,
                backoff: config.to_backoff(),
                attempt_timeout: config.attempt_timeout,
                max_retry_after: config.max_retry_after,
                budget,
                metrics: RetryMetrics::register(&config.name),
            },
            response_policy: NeverRetryResponses,
            error_policy: DefaultErrorPolicy,
            prepare: SameRequest,
        }
    }
}

impl Default for RetryLayer {
    /// [`RetryConfig::default`]: 3 attempts, exponential backoff from 100 ms to 10 s with
    /// full jitter, a budget of 20 % of calls plus 10 retries a second.
    fn default() -> Self {
        Self::from_valid(&RetryConfig::default())
    }
}

impl<R, E, P> RetryLayer<R, E, P> {
    /// Decide on successful responses with `policy`: a [`RetryOnStatus`](super::RetryOnStatus)
    /// or any `Fn(&Res) -> Decision`.
    pub fn retry_on_response<R2>(self, policy: R2) -> RetryLayer<R2, E, P> {
        RetryLayer {
            settings: self.settings,
            response_policy: policy,
            error_policy: self.error_policy,
            prepare: self.prepare,
        }
    }

    /// Decide on errors with `policy`, any `Fn(&BoxError) -> Decision`, instead of
    /// [`decide_by_default`](super::decide_by_default).
    pub fn retry_on_error<E2>(self, policy: E2) -> RetryLayer<R, E2, P> {
        RetryLayer {
            settings: self.settings,
            response_policy: self.response_policy,
            error_policy: policy,
            prepare: self.prepare,
        }
    }

    /// Edit the request before each retry with `prepare` (see [`PrepareRetry`](super::PrepareRetry)), e.g. to
    /// carry the proxy the last attempt went through so that the next one avoids it.
    pub fn prepare_retry<P2>(self, prepare: P2) -> RetryLayer<R, E, P2> {
        RetryLayer {
            settings: self.settings,
            response_policy: self.response_policy,
            error_policy: self.error_policy,
            prepare,
        }
    }

    /// Replace the configured backoff, e.g. with [`Backoff::custom`].
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Draw on `budget` instead of the layer's own, e.g. one budget for several layers
    /// that call the same upstream.
    pub fn budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.settings.budget = Some(budget);
        self
    }

    /// The budget this layer's services draw on, if any.
    pub fn retry_budget(&self) -> Option<&Arc<RetryBudget>> {
        self.settings.budget.as_ref()
    }
}

impl<S: Clone, R: Clone, E: Clone, P: Clone> Layer<S> for RetryLayer<R, E, P> {
    type Service = Retry<S, R, E, P>;

    fn layer(&self, inner: S) -> Self::Service {
        let shared = Shared {
            settings: self.settings.clone(),
            response_policy: self.response_policy.clone(),
            error_policy: self.error_policy.clone(),
            prepare: self.prepare.clone(),
        };
        let calls = Arc::new(Calls::new(shared, &inner));
        Retry::from_calls(inner, calls)
    }
}

impl<R, E, P> fmt::Debug for RetryLayer<R, E, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("name", &self.name)
            .field("max_attempts", &self.max_attempts)
            .field("backoff", &self.backoff)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_retry_after", &self.max_retry_after)
            .field("budget", &self.budget)
            .finish()
    }
}
