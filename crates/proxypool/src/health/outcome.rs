//! What a pool learns from: the outcome of a request through a leased proxy, and the
//! result of an active probe.

use std::time::Duration;

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

/// The result of one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// The test page came back as it should (2xx/3xx, not a ban page).
    pub success: bool,
    /// The probe got no answer in time (recorded as a timeout, not a network failure).
    pub timed_out: bool,
    /// How long the probe took.
    pub latency: Duration,
}
