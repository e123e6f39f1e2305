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
use crate::health::learning::Report;
use crate::health::sites::kind_group;
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
    /// The target host refused this proxy (403, captcha page…). Bars the proxy from
    /// that host only, for `retry_after` when given, else for a growing cooldown, and
    /// counts against the proxy at that host (and, a little, everywhere).
    Ban {
        /// How long the host asked us to stay away.
        retry_after: Option<Duration>,
    },
    /// The target host said this proxy sent too much (429). Bars the proxy from that host
    /// like a ban, and teaches the pool the host's per-proxy rate tolerance when the
    /// host had accepted the proxy before; does not count against the proxy elsewhere.
    RateLimited {
        /// How long the host asked us to stay away.
        retry_after: Option<Duration>,
    },
    /// Abandoned for a faster proxy (a hedged attempt won) after this long: counts as an
    /// attempt that did not deliver in time and extends the proxy's run of attempts without
    /// an answer (so a proxy that loses every race is ejected), but leaves its success
    /// window alone.
    Slow,
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

    /// The target host rate-limited the proxy (429).
    pub fn rate_limited(latency: Duration, retry_after: Option<Duration>) -> Self {
        Outcome { kind: OutcomeKind::RateLimited { retry_after }, latency }
    }

    /// The request was abandoned after `latency` because another proxy answered first.
    pub fn slow(latency: Duration) -> Self {
        Outcome { kind: OutcomeKind::Slow, latency }
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
    /// Where the proxy sat in the snapshot it was picked from.
    slot: u32,
    generation: u64,
}

impl Lease {
    pub(crate) fn new(member: Arc<Member>, host: Option<Arc<str>>, slot: u32, generation: u64) -> Self {
        Lease { member, host, slot, generation }
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
        let health = &*self.member.health;
        let host = self.host.as_deref();
        let group = kind_group(self.member.proxy.meta().kind);
        let site = host.map(|host| (host, core.evidence.site(host, group, now, &core.config)));
        let expected = site.as_ref().map_or(1.0, |(_, (_, expected))| *expected);
        let recorded = health.record(&outcome, host, expected, now, &core.config, &core.ejections);
        let report = Report {
            outcome: &outcome,
            host: site.map(|(host, (site, _))| (host, site)),
            target: recorded.target,
            answered: recorded.answered,
            health,
            group,
            slot: self.slot,
            generation: self.generation,
        };
        core.evidence.learn(&report, now, &core.config);
        let effect = recorded.effect;
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
