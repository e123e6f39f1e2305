//! Leases and outcomes.
//!
//! A [`Lease`] is one request's hold on one proxy. It counts as in flight from
//! `acquire` until the lease is dropped, whatever ends it: a report, an early return, a
//! panic or a cancelled future. [`Lease::report`] tells the pool how the request went,
//! and that [`Outcome`] feeds passive health, ejection and per-host bans.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::health::Effect;
use crate::pool::Member;
use crate::proxy::{Proxy, ProxyId};

/// How a request through a proxy ended, and how long it took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    kind: OutcomeKind,
    latency: Duration,
}

/// The kinds of [`Outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutcomeKind {
    /// The target answered through the proxy.
    Success,
    /// The proxy failed: refused or reset connection, proxy error, handshake failure.
    /// Counts towards ejection.
    NetworkFailure,
    /// No answer in time. Counts towards ejection and weighs on latency.
    Timeout,
    /// The target host refused this proxy (403, 429, captcha page…). Bars the proxy from
    /// that host only, for `retry_after` when given, else for a growing cooldown.
    Ban {
        /// How long the host asked us to stay away.
        retry_after: Option<Duration>,
    },
}

impl Outcome {
    /// The target answered.
    pub fn success(latency: Duration) -> Self {
        Outcome { kind: OutcomeKind::Success, latency }
    }

    /// The proxy failed at the network level.
    pub fn network_failure(latency: Duration) -> Self {
        Outcome { kind: OutcomeKind::NetworkFailure, latency }
    }

    /// The request timed out after `latency`.
    pub fn timeout(latency: Duration) -> Self {
        Outcome { kind: OutcomeKind::Timeout, latency }
    }

    /// The target host banned the proxy.
    pub fn ban(latency: Duration, retry_after: Option<Duration>) -> Self {
        Outcome { kind: OutcomeKind::Ban { retry_after }, latency }
    }

    /// What happened.
    pub fn kind(&self) -> OutcomeKind {
        self.kind
    }

    /// How long it took.
    pub fn latency(&self) -> Duration {
        self.latency
    }
}

/// One request's hold on a proxy; see the [module docs](self).
///
/// Removing the proxy from the pool while it is leased is safe: the lease keeps what it
/// needs alive, and its report no longer affects the pool's ejection count.
#[must_use = "a lease holds an in-flight place on its proxy until dropped; report how the request went"]
pub struct Lease {
    member: Arc<Member>,
    host: Option<Arc<str>>,
}

impl Lease {
    pub(crate) fn new(member: Arc<Member>, host: Option<Arc<str>>) -> Self {
        Lease { member, host }
    }

    /// The leased proxy.
    pub fn proxy(&self) -> &Proxy {
        &self.member.proxy
    }

    /// The leased proxy, shared.
    pub fn proxy_arc(&self) -> &Arc<Proxy> {
        &self.member.proxy
    }

    /// The leased proxy's id.
    pub fn id(&self) -> &ProxyId {
        self.member.proxy.id()
    }

    /// The target host the lease was taken for.
    pub fn target_host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Reports how the request went and releases the lease.
    pub fn report(self, outcome: Outcome) {
        let core = &self.member.core;
        let now = core.clock.now();
        let effect = self.member.health.record(&outcome, self.host.as_deref(), now, &core.config, &core.ejections);
        core.announce(self.id(), effect, self.host.as_ref(), now);
        match effect {
            Effect::None => {}
            Effect::Ejected { until } => tracing::info!(
                proxy = %self.id(),
                for_secs = (until.saturating_sub(now)) as f64 / 1e9,
                "proxy ejected as an outlier"
            ),
            Effect::Banned { until } => tracing::debug!(
                proxy = %self.id(),
                host = self.host.as_deref().unwrap_or("*"),
                for_secs = (until.saturating_sub(now)) as f64 / 1e9,
                "proxy banned by target host"
            ),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.member.health.end();
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("proxy", self.id()).field("target_host", &self.host).finish()
    }
}
