//! The world a simulation runs in: proxies of three kinds, each with a cost, a latency and
//! a way of failing, and sites that accept them or not.
//!
//! A world is drawn from a seed. The seed moves every share and rate a little (the mix of
//! kinds and faults, each site's acceptance, the rate limit), so that several seeds are
//! several worlds, not one world replayed: a balancer tuned to one set of constants does
//! not pass them all.

use std::time::Duration;

use harvester_proxypool::{Proxy, ProxyKind, ProxyMeta};

use super::rng::SimRng;

/// What a world is drawn from.
#[derive(Clone, Debug)]
pub struct WorldConfig {
    /// Seeds the world and every draw of the run.
    pub seed: u64,
    /// Proxies in the fleet.
    pub proxies: usize,
    /// Virtual time the run lasts.
    pub duration: Duration,
    /// When the shifting site changes which kind of proxy it bans.
    pub regime_change: Duration,
    /// Requests in flight at once (workers).
    pub concurrency: usize,
    /// Attempts per URL, each through a proxy the URL has not tried, as the collect job does.
    pub attempts_per_url: u32,
    /// How long an attempt may take before it counts as timed out.
    pub attempt_timeout: Duration,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            seed: 1,
            proxies: 200,
            duration: Duration::from_secs(600),
            regime_change: Duration::from_secs(300),
            concurrency: 64,
            attempts_per_url: 5,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// How a proxy fails, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Works.
    Healthy,
    /// Connection refused, at once.
    Dead,
    /// Accepts and never answers: every attempt times out.
    Hanging,
    /// Often fails (refused or timed out), otherwise works.
    Flaky,
    /// Works, several times slower than its kind, sometimes too slow.
    Slow,
    /// Its address is on every site's block list: every site bans it.
    BannedEverywhere,
}

impl Class {
    /// Every class, in a fixed order.
    pub const ALL: [Class; 6] =
        [Class::Healthy, Class::Dead, Class::Hanging, Class::Flaky, Class::Slow, Class::BannedEverywhere];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Healthy => "healthy",
            Class::Dead => "dead",
            Class::Hanging => "hanging",
            Class::Flaky => "flaky",
            Class::Slow => "slow",
            Class::BannedEverywhere => "banned-everywhere",
        }
    }
}

/// One proxy of the world.
#[derive(Clone, Debug)]
pub struct SimProxy {
    /// Its id in the pool (`p000`, `p001`, …).
    pub id: String,
    /// Residential, datacenter or mobile.
    pub kind: ProxyKind,
    /// How it fails.
    pub class: Class,
    /// Price per request.
    pub cost: f64,
    /// Median seconds of an answered request through it.
    pub latency: f64,
    /// Probability that an attempt through it gets any answer from the site.
    pub delivers: f64,
    /// Probability that each site accepts it, before and after the regime change.
    pub accepts: Vec<[f64; 2]>,
}

/// A per-proxy rate limit of a site: more than `requests` within `window` seconds and the
/// site answers 429 for `penalty` seconds.
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    /// Requests allowed per proxy within the window.
    pub requests: usize,
    /// The window, seconds.
    pub window: f64,
    /// How long it answers 429 once crossed, seconds (its Retry-After).
    pub penalty: f64,
}

/// One site of the world.
#[derive(Clone, Debug)]
pub struct SimSite {
    /// Host name.
    pub host: String,
    /// Share of the URLs that go there (relative).
    pub weight: f64,
    /// A factor on every proxy's latency there.
    pub latency: f64,
    /// Its per-proxy rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// True for the site whose acceptance changes at the regime change.
    pub shifts: bool,
}

/// A whole world: the fleet and the sites.
#[derive(Clone, Debug)]
pub struct World {
    /// What it was drawn from.
    pub config: WorldConfig,
    /// The fleet.
    pub proxies: Vec<SimProxy>,
    /// The sites.
    pub sites: Vec<SimSite>,
}

/// Acceptance by kind (residential, datacenter, mobile) before and after the change, and
/// the share of proxies a site has flagged individually.
struct SiteShape {
    host: &'static str,
    before: [f64; 3],
    after: [f64; 3],
    flagged: f64,
    latency: f64,
    rate_limited: bool,
}

const SHAPES: [SiteShape; 6] = [
    SiteShape {
        host: "open.example",
        before: [0.97, 0.97, 0.97],
        after: [0.97, 0.97, 0.97],
        flagged: 0.05,
        latency: 1.0,
        rate_limited: false,
    },
    // Bans datacenter addresses.
    SiteShape {
        host: "shop.example",
        before: [0.92, 0.12, 0.95],
        after: [0.92, 0.12, 0.95],
        flagged: 0.1,
        latency: 1.2,
        rate_limited: false,
    },
    // Strong anti-bot: only mobile is reliably let through.
    SiteShape {
        host: "strict.example",
        before: [0.6, 0.05, 0.85],
        after: [0.6, 0.05, 0.85],
        flagged: 0.3,
        latency: 1.5,
        rate_limited: false,
    },
    // Bans by request rate per proxy.
    SiteShape {
        host: "ratelimited.example",
        before: [0.96, 0.96, 0.96],
        after: [0.96, 0.96, 0.96],
        flagged: 0.05,
        latency: 0.8,
        rate_limited: true,
    },
    // Bans datacenter, then halfway through residential instead.
    SiteShape {
        host: "shifting.example",
        before: [0.95, 0.1, 0.9],
        after: [0.1, 0.95, 0.9],
        flagged: 0.1,
        latency: 1.0,
        rate_limited: false,
    },
    SiteShape {
        host: "news.example",
        before: [0.95, 0.8, 0.95],
        after: [0.95, 0.8, 0.95],
        flagged: 0.1,
        latency: 0.9,
        rate_limited: false,
    },
];

/// Cost per request and median latency (seconds) by kind: residential, datacenter, mobile.
const KIND_COST: [f64; 3] = [0.002, 0.0002, 0.004];
const KIND_LATENCY: [f64; 3] = [0.5, 0.15, 0.8];

impl World {
    /// Draws a world from `config`.
    pub fn generate(config: WorldConfig) -> World {
        let mut rng = SimRng::new(config.seed);
        // Each seed moves the mix: ±30 % on each share, then normalised.
        let mut jitter = |base: f64| base * rng.between(0.7, 1.3);
        let kinds = normalise([jitter(0.35), jitter(0.5), jitter(0.15)]);
        let classes = normalise([
            jitter(0.6),  // healthy
            jitter(0.08), // dead
            jitter(0.04), // hanging
            jitter(0.1),  // flaky
            jitter(0.1),  // slow
            jitter(0.08), // banned everywhere
        ]);
        let sites: Vec<SimSite> = SHAPES
            .iter()
            .map(|shape| SimSite {
                host: shape.host.to_owned(),
                weight: 1.0,
                latency: shape.latency,
                rate_limit: shape.rate_limited.then(|| RateLimit {
                    requests: 3 + rng.below(6),
                    window: 10.0,
                    penalty: 30.0,
                }),
                shifts: shape.before != shape.after,
            })
            .collect();
        let site_bases: Vec<([f64; 3], [f64; 3])> = SHAPES
            .iter()
            .map(|shape| {
                let mut nudge = |p: f64| (p + rng.between(-0.05, 0.05)).clamp(0.01, 0.99);
                (shape.before.map(&mut nudge), shape.after.map(&mut nudge))
            })
            .collect();
        let proxies = (0..config.proxies)
            .map(|n| {
                let kind = ProxyKind::ALL[pick(&mut rng, &kinds)];
                let k = kind as usize;
                let class = Class::ALL[pick(&mut rng, &classes)];
                let mut latency = KIND_LATENCY[k] * rng.lognormal(0.3);
                let delivers = match class {
                    Class::Dead | Class::Hanging => 0.0,
                    Class::Flaky => rng.between(0.3, 0.7),
                    Class::Slow => {
                        latency *= rng.between(4.0, 8.0);
                        0.95
                    }
                    Class::Healthy | Class::BannedEverywhere => rng.between(0.97, 1.0),
                };
                let accepts = SHAPES
                    .iter()
                    .zip(&site_bases)
                    .map(|(shape, (before, after))| {
                        if class == Class::BannedEverywhere {
                            return [0.0, 0.0];
                        }
                        let flag = if rng.chance(shape.flagged) { rng.between(0.1, 0.5) } else { 1.0 };
                        [before[k] * flag, after[k] * flag]
                    })
                    .collect();
                SimProxy {
                    id: format!("p{n:04}"),
                    kind,
                    class,
                    cost: KIND_COST[k] * rng.between(0.8, 1.2),
                    latency,
                    delivers,
                    accepts,
                }
            })
            .collect();
        World { config, proxies, sites }
    }

    /// The fleet as a proxy list for a pool: `http://10.a.b.c:3128` (never contacted) with
    /// its id, kind and cost.
    pub fn proxy_list(&self) -> Vec<Proxy> {
        self.proxies
            .iter()
            .enumerate()
            .filter_map(|(n, p)| {
                let meta = ProxyMeta {
                    id: Some(p.id.clone()),
                    kind: Some(p.kind),
                    cost_per_request: p.cost,
                    ..ProxyMeta::default()
                };
                let url = format!("http://10.{}.{}.{}:3128", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                Proxy::with_meta(&url, meta).ok()
            })
            .collect()
    }

    /// Which regime holds at `secs` of virtual time: 0 before the change, 1 after.
    pub fn regime(&self, secs: f64) -> usize {
        usize::from(secs >= self.config.regime_change.as_secs_f64())
    }

    /// The probability that an attempt through proxy `p` succeeds at site `s` in
    /// `regime`, rate limits aside.
    pub fn true_success(&self, p: usize, s: usize, regime: usize) -> f64 {
        let proxy = &self.proxies[p];
        proxy.delivers * proxy.accepts[s][regime.min(1)]
    }

    /// The index of the site with `host`.
    pub fn site_of(&self, host: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.host == host)
    }

    /// The index of the proxy with `id`.
    pub fn proxy_of(&self, id: &str) -> Option<usize> {
        let n: usize = id.strip_prefix('p')?.parse().ok()?;
        (n < self.proxies.len() && self.proxies[n].id == id).then_some(n)
    }
}

fn normalise<const N: usize>(shares: [f64; N]) -> [f64; N] {
    let total: f64 = shares.iter().sum();
    shares.map(|s| s / total)
}

/// An index drawn with probabilities `shares` (summing to 1).
fn pick(rng: &mut SimRng, shares: &[f64]) -> usize {
    let mut u = rng.unit();
    for (i, &share) in shares.iter().enumerate() {
        if u < share {
            return i;
        }
        u -= share;
    }
    shares.len() - 1
}
