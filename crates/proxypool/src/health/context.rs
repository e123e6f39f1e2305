//! The pool-wide side of health: what every proxy's health needs from its pool (config,
//! clock, ejection bookkeeping, the evidence learnt across proxies, the randomness
//! balancers draw from), and the one place an outcome is recorded, announced and logged.
//!
//! It sits below the snapshot, the balancers and the leases, which all point at it; it
//! points at none of them.

use std::sync::Arc;

use tokio::sync::broadcast;

use super::learning::{Context, PoolEvidence, Report};
use super::sites::kind_group;
use super::{
    Effect, EjectionTracker, Fades, HealthEvent, HealthEventKind, HotTable, Outcome, ProbeResult, ProxyHealth,
};
use crate::clock::{Clock, Nanos, nanos_to_duration};
use crate::config::PoolConfig;
use crate::proxy::{Proxy, ProxyId};
use crate::random::RandomSource;

/// Health events held for a subscriber that falls behind; beyond, it loses the oldest
/// (and learns how many from `RecvError::Lagged`). Events are rare (ejections, bans).
const HEALTH_EVENTS_BUFFERED: usize = 1024;

/// Where a recorded outcome's proxy sat when it was picked, for the per-site leaders.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Picked {
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

/// What every proxy's health shares with its pool; one per pool.
#[derive(Debug)]
pub(crate) struct HealthContext {
    config: PoolConfig,
    clock: Clock,
    ejections: EjectionTracker,
    events: broadcast::Sender<HealthEvent>,
    evidence: PoolEvidence,
    random: RandomSource,
    hot: HotTable,
}

impl HealthContext {
    pub(crate) fn new(config: PoolConfig, seed: Option<u64>) -> HealthContext {
        let (events, _) = broadcast::channel(HEALTH_EVENTS_BUFFERED);
        HealthContext {
            config,
            clock: Clock::new(),
            ejections: EjectionTracker::default(),
            events,
            evidence: PoolEvidence::default(),
            random: RandomSource::new(seed),
            hot: HotTable::default(),
        }
    }

    /// A fresh health for a proxy joining the pool, on a line of the pool's dense table.
    pub(crate) fn new_health(&self) -> ProxyHealth {
        ProxyHealth::new(self.hot.take())
    }

    #[inline]
    pub(crate) fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The pool clock.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        self.clock.now()
    }

    #[inline]
    pub(crate) fn random(&self) -> &RandomSource {
        &self.random
    }

    #[inline]
    pub(crate) fn ejections(&self) -> &EjectionTracker {
        &self.ejections
    }

    #[inline]
    pub(crate) fn evidence(&self) -> &PoolEvidence {
        &self.evidence
    }

    /// Whether too few proxies are healthy for ejections to count (panic mode).
    #[inline]
    pub(crate) fn in_panic(&self, now: Nanos) -> bool {
        self.ejections.in_panic(now, &self.config.ejection)
    }

    #[inline]
    pub(crate) fn fades(&self) -> Fades {
        Fades::of(&self.config)
    }

    /// What the estimates of one pick share, for a request to `host`.
    pub(crate) fn estimates<'a>(&'a self, host: Option<&'a str>, now: Nanos) -> Context<'a> {
        Context::new(&self.evidence, host.map(|h| (h, None)), now, &self.config)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    /// Records how a request through `proxy` went: its health, what its site learns, and
    /// the decision it led to (announced to subscribers and logged).
    pub(crate) fn record(
        &self,
        proxy: &Proxy,
        health: &ProxyHealth,
        host: Option<&Arc<str>>,
        picked: Picked,
        outcome: Outcome,
    ) {
        let now = self.clock.now();
        let group = kind_group(proxy.meta().kind);
        let site = host.map(|host| (&**host, self.evidence.site(host, group, now, &self.config)));
        let expected = site.as_ref().map_or(1.0, |(_, (_, expected))| *expected);
        if let Some((_, (stats, _))) = &site {
            let success = matches!(outcome.kind(), super::OutcomeKind::Success);
            stats.record_spend(group, success, proxy.meta().cost_per_request);
        }
        let recorded = health.record(&outcome, host.map(|h| &**h), expected, now, &self.config, &self.ejections);
        let report = Report {
            outcome: &outcome,
            host: site.map(|(host, (site, _))| (host, site)),
            target: recorded.target,
            answered: recorded.answered,
            health,
            group,
            slot: picked.slot,
            generation: picked.generation,
        };
        self.evidence.learn(&report, now, &self.config);
        let effect = recorded.effect;
        self.announce(proxy.id(), effect, host, now);
        match effect {
            Effect::None => {}
            Effect::Ejected { until } => tracing::info!(
                proxy = %proxy.id(),
                for_secs = (until.saturating_sub(now)) as f64 / 1e9,
                "proxy ejected as an outlier"
            ),
            Effect::Banned { until } => tracing::debug!(
                proxy = %proxy.id(),
                host = host.map_or("*", |h| &**h),
                for_secs = (until.saturating_sub(now)) as f64 / 1e9,
                "proxy banned by target host"
            ),
        }
    }

    /// Records an active probe of `proxy`; true when it brought the proxy back.
    pub(crate) fn record_probe(&self, proxy: &Proxy, health: &ProxyHealth, result: ProbeResult) -> bool {
        let now = self.clock.now();
        let (restored, effect) = health.record_probe(result, now, &self.config, &self.ejections);
        if restored {
            tracing::info!(proxy = %proxy.id(), "proxy back in rotation after a successful probe");
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(HealthEvent { proxy: proxy.id().clone(), kind: HealthEventKind::Restored });
            }
        }
        self.announce(proxy.id(), effect, None, now);
        restored
    }

    /// Tells the subscribers, if any, what this pool decided about `proxy`. A report
    /// that decided nothing (nearly all of them) returns at once: the channel is only
    /// touched for an ejection or a ban.
    #[inline]
    fn announce(&self, proxy: &ProxyId, effect: Effect, host: Option<&Arc<str>>, now: Nanos) {
        if effect == Effect::None || self.events.receiver_count() == 0 {
            return;
        }
        let kind = match effect {
            Effect::None => return,
            Effect::Ejected { until } => HealthEventKind::Ejected { duration: nanos_to_duration(until - now) },
            Effect::Banned { until } => {
                HealthEventKind::Banned { host: host.cloned(), duration: nanos_to_duration(until - now) }
            }
        };
        // Err only when every subscriber has gone since the check: nobody to tell.
        let _ = self.events.send(HealthEvent { proxy: proxy.clone(), kind });
    }
}
