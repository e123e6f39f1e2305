//! From evidence to an estimate: how likely a request through one proxy is to succeed at
//! one site now.
//!
//! The estimate is the product of two Beta posteriors and two discounts:
//!
//! - **transport**: does the proxy deliver an answer at all (any answer, a ban included)
//!   rather than fail, time out or be abandoned? Starting point: the pool's average.
//! - **acceptance**: does this site accept this proxy? What the site answers proxies of
//!   the same kind now (fading fast: sites change their minds), shifted in log-odds by
//!   how the proxy has fared there against those peers, which starts from its standing
//!   elsewhere (a proxy banned where its kind is welcome is expected to be banned here
//!   too).
//! - **rate pressure**: once a site has rate-limited (429) a proxy it had accepted, the
//!   request count at which it did is that site's tolerance; a proxy nearing it there is
//!   discounted.
//! - **suspicion**: a request in flight far longer than the site's 99th-percentile
//!   latency is evidence before any timeout fires: the proxy's transport is discounted
//!   by how improbable that wait is for a working proxy.
//!
//! Each proxy's evidence lives in its [`ProxyHealth`]; each site's in the pool's
//! [`SiteTable`]; the pool-wide averages here, in [`PoolEvidence`].

use std::sync::Arc;

use super::evidence::{Belief, FadingPair};
use super::latency::LatencyStats;
use super::sites::{KIND_GROUPS, SiteStats, SiteTable};
use super::{Fades, ProxyHealth, TargetView};
use super::{Outcome, OutcomeKind};
use crate::clock::{Nanos, duration_to_nanos};
use crate::config::PoolConfig;

/// The pool-wide evidence: every proxy's transport and acceptance together (the
/// starting point for a proxy the pool knows nothing about), the latency of every
/// answer, and the per-site table.
#[derive(Debug, Default)]
pub(crate) struct PoolEvidence {
    transport: FadingPair,
    acceptance: FadingPair,
    pub(crate) latency: LatencyStats,
    pub(crate) sites: SiteTable,
}

/// One report, as the pool-wide learning needs it.
pub(crate) struct Report<'a> {
    pub(crate) outcome: &'a Outcome,
    pub(crate) host: Option<(&'a str, Arc<SiteStats>)>,
    pub(crate) target: Option<TargetView>,
    /// Whether the host's answer counted as accepting (true) or refusing (false) the
    /// proxy; `None` for no answer, or a 429 from a host that had accepted it.
    pub(crate) answered: Option<bool>,
    pub(crate) health: &'a ProxyHealth,
    pub(crate) group: usize,
    pub(crate) slot: u32,
    pub(crate) generation: u64,
}

/// How often a site accepts proxies of each kind group now: what it answered them
/// lately (fading with the site half-life), shrunk towards what it answered every kind,
/// itself shrunk towards `pool` (the pool's acceptance over every site).
fn group_acceptance(site: &SiteStats, now: Nanos, cfg: &PoolConfig, pool: f64) -> [f64; KIND_GROUPS] {
    let weight = cfg.evidence.prior_weight;
    let groups = site.acceptance(now, cfg.evidence.site_half_life.as_secs_f64() * 1e9);
    let (all_acc, all_refused) = groups.iter().fold((0.0, 0.0), |(a, r), &(ga, gr)| (a + ga, r + gr));
    let site_mean = (all_acc + weight * pool) / (all_acc + all_refused + weight);
    groups.map(|(acc, refused)| (acc + weight * site_mean) / (acc + refused + weight))
}

/// The mean of fading counts with one of each as a prior.
fn mean_of((good, bad): (f64, f64)) -> f64 {
    (good + 1.0) / (good + bad + 2.0)
}

impl PoolEvidence {
    /// The statistics of the site `host` (made on first sight), and how likely it is
    /// now to accept a proxy of kind group `group`.
    pub(crate) fn site(&self, host: &str, group: usize, now: Nanos, cfg: &PoolConfig) -> (Arc<SiteStats>, f64) {
        let site = self.sites.get_or_insert(host, now, cfg.evidence.max_sites);
        let pool = mean_of(self.acceptance.get(now, cfg.evidence.half_life.as_secs_f64() * 1e9));
        let expected = group_acceptance(&site, now, cfg, pool)[group.min(KIND_GROUPS - 1)];
        (site, expected)
    }

    /// Learns from one report: the pool's averages, the site's statistics, and the
    /// site's leaders.
    pub(crate) fn learn(&self, report: &Report<'_>, now: Nanos, cfg: &PoolConfig) {
        let e = &cfg.evidence;
        let fades = Fades::of(cfg);
        let site_half = e.site_half_life.as_secs_f64() * 1e9;
        let window = duration_to_nanos(e.latency_window);
        let secs = report.outcome.latency().as_secs_f64();
        let delivered = matches!(
            report.outcome.kind(),
            OutcomeKind::Success | OutcomeKind::Ban { .. } | OutcomeKind::RateLimited { .. }
        );
        self.transport.add(f64::from(u8::from(delivered)), f64::from(u8::from(!delivered)), now, fades.evidence);
        let answered = report.answered;
        if let Some(accepted) = answered {
            self.acceptance.add(f64::from(u8::from(accepted)), f64::from(u8::from(!accepted)), now, fades.evidence);
        }
        if answered == Some(true) {
            self.latency.record(secs, now, window, e.min_latency_samples);
        }
        let Some((host, site)) = &report.host else { return };
        if let Some(accepted) = answered {
            site.record_answer(report.group, accepted, now, site_half);
        }
        if answered == Some(true) {
            site.latency.record(secs, now, window, e.min_latency_samples);
        }
        if let (OutcomeKind::RateLimited { .. }, Some(target)) = (report.outcome.kind(), report.target) {
            // Only a site that accepted this proxy before tells a rate by refusing it now;
            // one that refuses it from the start is banning the address.
            if target.accepted >= 1.0 {
                site.learn_rate_limit(target.recent, now, e.rate_relax.as_secs_f64() * 1e9);
            }
        }
        let context = Context::new(self, Some((host, Some(site.clone()))), now, cfg);
        let mean = context.estimate(report.health, report.group).expected();
        site.leaders.offer(report.slot, report.group, report.generation, mean);
    }
}

/// What every estimate of one pick shares: the time, the starting points, the site.
pub(crate) struct Context<'a> {
    now: Nanos,
    fades: Fades,
    weight: f64,
    transport_prior: f64,
    acceptance_prior: f64,
    host: Option<&'a str>,
    site: Option<Arc<SiteStats>>,
    /// The starting point for a proxy of each kind group at the site.
    group_priors: [f64; KIND_GROUPS],
    /// Their log-odds.
    group_logits: [f64; KIND_GROUPS],
    tolerance: Option<f64>,
    /// A request out longer than this (nanoseconds) makes its proxy suspect.
    suspect_after: f64,
}

impl<'a> Context<'a> {
    /// The context for picks (or a report) at `host` (with its site statistics when
    /// known, looked up when `None` is passed for them) at `now`.
    pub(crate) fn new(
        pool: &PoolEvidence,
        host: Option<(&'a str, Option<Arc<SiteStats>>)>,
        now: Nanos,
        cfg: &PoolConfig,
    ) -> Context<'a> {
        let e = &cfg.evidence;
        let fades = Fades::of(cfg);
        let weight = e.prior_weight;
        let transport_prior = mean_of(pool.transport.get(now, fades.evidence));
        let acceptance_prior = mean_of(pool.acceptance.get(now, fades.evidence));
        let (host, site) = match host {
            Some((host, Some(site))) => (Some(host), Some(site)),
            Some((host, None)) => (Some(host), pool.sites.get(host)),
            None => (None, None),
        };
        let mut group_priors = [acceptance_prior; KIND_GROUPS];
        let mut tolerance = None;
        let mut p99 = pool.latency.p99_nanos();
        if let Some(site) = &site {
            group_priors = group_acceptance(site, now, cfg, acceptance_prior);
            tolerance = site.rate_tolerance(now, e.rate_relax.as_secs_f64() * 1e9);
            p99 = site.latency.p99_nanos().or(p99);
        }
        let typical = p99.map_or(cfg.health.good_latency.as_secs_f64() * 1e9, |n| n as f64);
        Context {
            now,
            fades,
            weight,
            transport_prior,
            acceptance_prior,
            host,
            site,
            group_priors,
            group_logits: group_priors.map(logit),
            tolerance,
            suspect_after: typical * e.suspect_after,
        }
    }

    /// The site's statistics, when the pool knows the site.
    pub(crate) fn site(&self) -> Option<&SiteStats> {
        self.site.as_deref()
    }

    /// What the pool expects of a request through `health` (a proxy of kind `group`).
    pub(crate) fn estimate(&self, health: &ProxyHealth, group: usize) -> Estimate {
        let now = self.now;
        let w = self.weight;
        let (answered, failed) = health.transport(now, self.fades.evidence);
        let transport = Belief::new(answered, failed, self.transport_prior, w);
        let (acc, predicted) = health.standing(now, self.fades.evidence);
        // Its acceptances elsewhere against what its peers' predicted there: below 1 it
        // lowers the starting point at a new host; above, it never raises it (a proxy
        // good elsewhere is not thereby good here).
        let reputation = ((acc + w) / (predicted + w)).min(1.0);
        let in_flight = f64::from(health.in_flight());
        let (acceptance, pressure) = match self.host {
            Some(host) => {
                let view = health.target_view(host, now, self.fades).unwrap_or_default();
                let group = group.min(KIND_GROUPS - 1);
                let attitude = (self.group_priors[group], self.group_logits[group]);
                let pressure = self.tolerance.map_or(1.0, |tolerance| {
                    // Discounted from 60 % of the tolerance (0.85) through 80 % (0.5) to
                    // nothing much beyond it.
                    let r = (view.recent + in_flight + 1.0) / (0.8 * tolerance);
                    1.0 / (1.0 + r.powi(6))
                });
                (standing_at(&view, attitude, reputation, w), pressure)
            }
            None => (Belief::with_mean(self.acceptance_prior * reputation, predicted + w), 1.0),
        };
        let suspicion = health.stalled_since(now).map_or(1.0, |since| {
            let age = now.saturating_sub(since) as f64;
            if age > self.suspect_after { (self.suspect_after / age).powi(2) } else { 1.0 }
        });
        Estimate { transport, acceptance, pressure, suspicion }
    }
}

/// How likely the site is to accept the proxy now: its attitude to the proxy's kind now,
/// shifted by how this proxy has fared against its peers there.
///
/// In log-odds, `p = attitude + deviation`, where the deviation is the proxy's own
/// acceptance there (its answers, shrunk towards its peers' acceptance at the time of
/// those answers, scaled by its standing elsewhere) minus those peers' acceptance. So a
/// site that turns against a kind turns every proxy of it down at once, while a proxy it
/// singled out stays singled out, and one of the rare proxies a site accepts among a kind
/// it bans is recognised after a few answers, not after hundreds.
fn standing_at(view: &TargetView, (attitude, attitude_logit): (f64, f64), reputation: f64, w: f64) -> Belief {
    let answers = view.accepted + view.refused;
    // Peers' acceptance over this proxy's answers there (the attitude now, without any).
    let peers = clamp_p(if answers > 0.0 { view.expected / answers } else { attitude });
    let own = clamp_p((view.accepted + w * peers * reputation) / (answers + w));
    // logit(own) − logit(peers), in one logarithm.
    let deviation = ((own * (1.0 - peers)) / (peers * (1.0 - own))).ln();
    Belief::with_mean(logistic(attitude_logit + deviation), answers + w)
}

#[inline]
fn clamp_p(p: f64) -> f64 {
    p.clamp(1e-6, 1.0 - 1e-6)
}

/// Log-odds of `p`, kept finite.
#[inline]
fn logit(p: f64) -> f64 {
    let p = clamp_p(p);
    (p / (1.0 - p)).ln()
}

#[inline]
fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + super::evidence::exp(-x))
}

/// The least chance that a proxy broke since its last answer, when one of its requests is
/// overdue.
const BREAK_CHANCE: f64 = 0.05;

/// What the pool expects of one request through one proxy at one site.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Estimate {
    pub(crate) transport: Belief,
    pub(crate) acceptance: Belief,
    /// In (0, 1]: how far the proxy stays under the site's rate tolerance.
    pub(crate) pressure: f64,
    /// In (0, 1]: how plausible its oldest request in flight is for a working proxy.
    pub(crate) suspicion: f64,
}

impl Estimate {
    /// The probability of success, from posterior means.
    pub(crate) fn expected(&self) -> f64 {
        self.combine(self.transport.mean(), self.acceptance.mean())
    }

    /// A Thompson draw of the probability of success, from two standard normals.
    pub(crate) fn draw(&self, z_transport: f64, z_acceptance: f64) -> f64 {
        self.combine(self.transport.draw(z_transport), self.acceptance.draw(z_acceptance))
    }

    fn combine(&self, transport: f64, acceptance: f64) -> f64 {
        // A long wait is a likelihood ratio on "the proxy works": Bayes on the transport.
        // However reliable its record, a proxy can break at any moment, so the record may
        // not explain away a wait the site's latency makes improbable: the chance that it
        // broke is taken as at least BREAK_CHANCE.
        let s = self.suspicion;
        let transport = if s < 1.0 {
            let works = transport.min(1.0 - BREAK_CHANCE);
            works * s / (works * s + 1.0 - works)
        } else {
            transport
        };
        transport * acceptance * self.pressure
    }

    /// How many outcomes' worth of evidence the estimate rests on (priors included).
    pub(crate) fn weight(&self) -> f64 {
        self.transport.weight().min(self.acceptance.weight())
    }
}
