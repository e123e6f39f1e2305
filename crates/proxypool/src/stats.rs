//! Point-in-time reports of the pool and each proxy, for logs, metrics, reports and the
//! scaler. They carry ids and redacted URLs, never credentials.

use std::time::Duration;

use serde::Serialize;

use crate::clock::{Nanos, nanos_to_duration};
use crate::health::HealthContext;
use crate::health::ProxyHealth;
use crate::proxy::{Proxy, ProxyId, ProxyKind};

/// One proxy's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyStats {
    /// The proxy's id.
    pub id: ProxyId,
    /// `scheme://host:port`, credentials shown as `***`.
    pub url: String,
    /// Region, if known.
    pub region: Option<String>,
    /// Provider, if known.
    pub provider: Option<String>,
    /// Kind, if known.
    pub kind: Option<ProxyKind>,
    /// Requests in flight now.
    pub in_flight: u32,
    /// Outcomes reported.
    pub requests: u64,
    /// Of which successes.
    pub successes: u64,
    /// Of which network failures.
    pub failures: u64,
    /// Of which timeouts.
    pub timeouts: u64,
    /// Of which bans (429s included).
    pub bans: u64,
    /// Of which abandoned for a faster proxy (a hedged attempt won).
    pub slow: u64,
    /// Share of attempts that got an answer at all (any answer, bans included), from the
    /// fading evidence; `None` before any.
    pub answer_share: Option<f64>,
    /// False from joining the pool, and from each ejection, until the next success: on
    /// probation, the default balancer sends it one request at a time.
    pub proven: bool,
    /// Success rate over the recent window.
    pub success_rate: Option<f64>,
    /// Latency EWMA.
    #[serde(with = "humantime_serde")]
    pub latency: Option<Duration>,
    /// The quality score in [0, 1].
    pub quality: f64,
    /// Network failures and timeouts in a row.
    pub consecutive_failures: u32,
    /// Time until the running ejection ends; `None` when in rotation.
    #[serde(with = "humantime_serde")]
    pub ejected_for: Option<Duration>,
    /// Ejections so far.
    pub times_ejected: u32,
    /// Hosts that ban this proxy now.
    pub bans_active: Vec<HostBan>,
}

/// A running ban of one proxy by one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostBan {
    /// The host; `*` for a ban reported without a host, which bars every host.
    pub host: String,
    /// Time until the ban ends.
    #[serde(with = "humantime_serde")]
    pub remaining: Duration,
    /// Bans in a row from this host.
    pub streak: u32,
}

impl ProxyStats {
    pub(crate) fn read(proxy: &Proxy, health: &ProxyHealth, ctx: &HealthContext, now: Nanos) -> ProxyStats {
        let [requests, successes, failures, timeouts, bans, slow] = health.counters();
        let (answered, failed) = health.transport(now, ctx.config().evidence.half_life.as_secs_f64() * 1e9);
        let meta = proxy.meta();
        ProxyStats {
            id: proxy.id().clone(),
            url: proxy.to_string(),
            region: meta.region.clone(),
            provider: meta.provider.clone(),
            kind: meta.kind,
            in_flight: health.in_flight(),
            requests,
            successes,
            failures,
            timeouts,
            bans,
            slow,
            answer_share: (answered + failed > 0.0).then(|| answered / (answered + failed)),
            proven: health.is_proven(),
            success_rate: health.success_rate(),
            latency: health.latency(),
            quality: health.quality(&ctx.config().health),
            consecutive_failures: health.consecutive_failures(),
            ejected_for: health.ejected_until(|| now).map(|until| nanos_to_duration(until - now)),
            times_ejected: health.times_ejected(),
            bans_active: health
                .active_bans(now)
                .into_iter()
                .map(|b| HostBan {
                    host: if b.host.is_empty() { "*".to_owned() } else { b.host },
                    remaining: nanos_to_duration(b.until - now),
                    streak: b.streak,
                })
                .collect(),
        }
    }
}

/// What the requests through one kind of proxy cost at one site: every request sent
/// (hedges and failures included) since the pool first heard of the site.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteSpend {
    /// The target host.
    pub host: String,
    /// The proxies' kind; `None` for proxies without one.
    pub kind: Option<ProxyKind>,
    /// Requests sent.
    pub requests: u64,
    /// Of them, answered with a success.
    pub successes: u64,
    /// The sum of their proxies' `cost_per_request`.
    pub cost: f64,
}

/// The whole pool's state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PoolStats {
    /// Proxies in the pool.
    pub size: usize,
    /// Proxies not ejected.
    pub healthy: usize,
    /// Proxies ejected now.
    pub ejected: usize,
    /// Proxies banned by at least one host now.
    pub banned_somewhere: usize,
    /// Requests in flight over all proxies.
    pub in_flight: u64,
    /// Outcomes reported over all proxies.
    pub requests: u64,
    /// True when too few proxies are healthy and ejections are ignored.
    pub panic: bool,
    /// Changes with every add, remove or update.
    pub generation: u64,
    /// Every proxy, in pool order.
    pub proxies: Vec<ProxyStats>,
}

impl PoolStats {
    pub(crate) fn summarise(proxies: Vec<ProxyStats>, panic: bool, generation: u64) -> PoolStats {
        let ejected = proxies.iter().filter(|p| p.ejected_for.is_some()).count();
        PoolStats {
            size: proxies.len(),
            healthy: proxies.len() - ejected,
            ejected,
            banned_somewhere: proxies.iter().filter(|p| !p.bans_active.is_empty()).count(),
            in_flight: proxies.iter().map(|p| u64::from(p.in_flight)).sum(),
            requests: proxies.iter().map(|p| p.requests).sum(),
            panic,
            generation,
            proxies,
        }
    }
}
