//! One run: a real [`ProxyPool`] with one balancer, driven through a world in virtual time.
//!
//! `concurrency` workers each collect URLs one after another: a URL goes to a site drawn
//! by weight and gets up to `attempts_per_url` attempts, each through a proxy it has not
//! tried (falling back to any, as the collect job's client does). An attempt leases a
//! proxy from the pool, the world decides what happens and how long it takes, and the
//! lease is held for that long and reported then, so in-flight counts, probation and
//! overdue requests are real. When the pool has no proxy for a request the worker waits
//! a quarter of a second and asks again (ten times at most, then the URL fails).
//!
//! Time is tokio's paused clock, advanced from event to event: a ten-minute run takes well
//! under a second, and the same seed gives the same run.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use harvester_proxypool::{
    Balancer, Lease, Outcome, OutcomeKind, PoolConfig, ProxyId, ProxyPool, RequestContext, Requirements,
};

use super::rng::SimRng;
use super::world::{Class, World};

/// Seconds per timeline bucket.
pub const BUCKET_SECS: f64 = 10.0;
/// Waits for a proxy before a URL fails.
const MAX_WAITS: u32 = 10;
const WAIT_SECS: f64 = 0.25;

/// What the world knows that the pool does not: which proxies each rate-limited site is
/// refusing now, and how many requests each proxy sent there lately. Shared with the
/// [`Oracle`](super::Oracle).
#[derive(Debug)]
pub struct Truth {
    world: Arc<World>,
    now: f64,
    /// Request times per (proxy, site) within the site's window, for rate-limited sites.
    recent: Vec<VecDeque<f64>>,
    /// Until when each (proxy, site) is answered 429.
    penalty_until: Vec<f64>,
}

impl Truth {
    fn new(world: Arc<World>) -> Truth {
        let cells = world.proxies.len() * world.sites.len();
        Truth { world, now: 0.0, recent: vec![VecDeque::new(); cells], penalty_until: vec![0.0; cells] }
    }

    fn cell(&self, p: usize, s: usize) -> usize {
        p * self.world.sites.len() + s
    }

    /// The world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The probability that an attempt through proxy `p` at site `s` sent now succeeds,
    /// the site's rate limit included.
    pub fn success_now(&self, p: usize, s: usize) -> f64 {
        if let Some(limit) = self.world.sites[s].rate_limit {
            let cell = self.cell(p, s);
            let recent = self.recent[cell].iter().filter(|&&t| t > self.now - limit.window).count();
            if self.penalty_until[cell] > self.now || recent >= limit.requests {
                return 0.0;
            }
        }
        self.world.true_success(p, s, self.world.regime(self.now))
    }

    /// Counts a request of proxy `p` at site `s` now; true when the site rate-limits it.
    fn rate_limited(&mut self, p: usize, s: usize) -> bool {
        let Some(limit) = self.world.sites[s].rate_limit else { return false };
        let cell = self.cell(p, s);
        let now = self.now;
        let window = &mut self.recent[cell];
        while window.front().is_some_and(|&t| t <= now - limit.window) {
            window.pop_front();
        }
        window.push_back(now);
        if self.penalty_until[cell] > now {
            return true;
        }
        if window.len() > limit.requests {
            self.penalty_until[cell] = now + limit.penalty;
            return true;
        }
        false
    }
}

/// Counts over a run, or over one bucket of it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    /// Attempts sent.
    pub attempts: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which banned (403).
    pub bans: u64,
    /// Of which rate-limited (429).
    pub rate_limited: u64,
    /// Of which refused connections.
    pub failures: u64,
    /// Of which timed out.
    pub timeouts: u64,
    /// Times the pool had no proxy for a request.
    pub no_proxy: u64,
    /// URLs collected.
    pub urls_ok: u64,
    /// URLs that failed every attempt (or found no proxy).
    pub urls_failed: u64,
    /// Money spent: every attempt that reached a proxy costs that proxy's price.
    pub cost: f64,
}

impl Tally {
    /// Successes per attempt.
    pub fn attempt_success(&self) -> f64 {
        if self.attempts == 0 { 0.0 } else { self.successes as f64 / self.attempts as f64 }
    }

    /// Money per URL collected.
    pub fn cost_per_url(&self) -> f64 {
        if self.urls_ok == 0 { f64::INFINITY } else { self.cost / self.urls_ok as f64 }
    }

    /// Attempts per URL collected.
    pub fn attempts_per_url(&self) -> f64 {
        if self.urls_ok == 0 { f64::INFINITY } else { self.attempts as f64 / self.urls_ok as f64 }
    }
}

/// One balancer's run through one world.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The balancer's name.
    pub name: String,
    /// The world's seed.
    pub seed: u64,
    /// Over the whole run.
    pub total: Tally,
    /// Virtual seconds.
    pub seconds: f64,
    /// Per site, over the whole run.
    pub sites: Vec<Tally>,
    /// The sites' host names, in the order of `sites`.
    pub hosts: Vec<String>,
    /// Attempts by the class of the proxy they went through, in [`Class::ALL`] order.
    pub classes: Vec<Tally>,
    /// Attempts per site by the kind of the proxy they went through, in
    /// [`ProxyKind::ALL`](harvester_proxypool::ProxyKind::ALL) order.
    pub kinds: Vec<[Tally; 3]>,
    /// Per [`BUCKET_SECS`] of virtual time, per site.
    pub timeline: Vec<Vec<Tally>>,
    /// When the regime changed, seconds.
    pub regime_change: f64,
    /// The site that shifts, if any.
    pub shifting_site: Option<usize>,
}

impl RunResult {
    /// Successful attempts per virtual second.
    pub fn successes_per_sec(&self) -> f64 {
        self.total.successes as f64 / self.seconds
    }

    /// Attempt success at the shifting site per bucket (`None` for a bucket without attempts).
    pub fn shifting_series(&self) -> Vec<Option<f64>> {
        let Some(site) = self.shifting_site else { return Vec::new() };
        self.timeline
            .iter()
            .map(|bucket| bucket.get(site).filter(|t| t.attempts > 0).map(Tally::attempt_success))
            .collect()
    }

    /// Attempt success at the shifting site over `buckets` buckets from bucket `from`.
    fn shifting_success(&self, from: usize, buckets: usize) -> Option<f64> {
        let site = self.shifting_site?;
        let t = self.timeline.get(from..from + buckets)?.iter().fold(Tally::default(), |mut acc, b| {
            acc.attempts += b[site].attempts;
            acc.successes += b[site].successes;
            acc
        });
        (t.attempts > 0).then(|| t.attempt_success())
    }

    /// Seconds after the regime change until the shifting site's attempt success over a
    /// sliding window of `window` seconds is back within 5 % of what it was over the
    /// `baseline` seconds before the change (counted to the end of that window); `None`
    /// if it never is.
    pub fn recovery_secs(&self, window: f64, baseline: f64) -> Option<f64> {
        let buckets = |secs: f64| (secs / BUCKET_SECS).round().max(1.0) as usize;
        let (window, baseline) = (buckets(window), buckets(baseline));
        let change = (self.regime_change / BUCKET_SECS).round() as usize;
        let before = self.shifting_success(change.checked_sub(baseline)?, baseline)?;
        (change..self.timeline.len().saturating_sub(window - 1))
            .find(|&from| self.shifting_success(from, window).is_some_and(|now| now >= 0.95 * before))
            .map(|from| (from + window - change) as f64 * BUCKET_SECS)
    }
}

/// What the balancer of a run is.
pub enum Chooser {
    /// A balancer of the pool, on the default pool config.
    Balancer(Box<dyn Balancer>),
    /// A balancer of the pool, on a pool config of your own.
    Configured(Box<dyn Balancer>, Box<PoolConfig>),
    /// The oracle, made once the world's truth exists.
    Oracle,
}

struct Url {
    site: usize,
    attempts: u32,
    waits: u32,
    tried: Vec<ProxyId>,
}

struct Pending {
    lease: Lease,
    outcome: Outcome,
    proxy: usize,
}

struct Worker {
    url: Option<Url>,
    pending: Option<Pending>,
}

/// Runs `chooser` through `world`, named `name`, on a runtime of its own with a paused
/// clock. Fails only when that runtime cannot be made.
pub fn simulate(world: Arc<World>, name: &str, chooser: Chooser) -> std::io::Result<RunResult> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    runtime.block_on(run(world, name, chooser))
}

async fn run(world: Arc<World>, name: &str, chooser: Chooser) -> std::io::Result<RunResult> {
    let truth = Arc::new(Mutex::new(Truth::new(world.clone())));
    let (balancer, config): (Box<dyn Balancer>, PoolConfig) = match chooser {
        Chooser::Balancer(b) => (b, PoolConfig::default()),
        Chooser::Configured(b, config) => (b, *config),
        Chooser::Oracle => (Box::new(super::Oracle::new(truth.clone())), PoolConfig::default()),
    };
    let seed = world.config.seed;
    let pool = ProxyPool::builder()
        .config(config)
        .balancer(balancer)
        .seed(seed.wrapping_mul(31).wrapping_add(7))
        .build()
        .map_err(std::io::Error::other)?;
    pool.extend(world.proxy_list()).map_err(std::io::Error::other)?;
    let mut sim = Sim {
        world: world.clone(),
        truth,
        pool,
        rng: SimRng::new(seed ^ 0xabcd),
        total: Tally::default(),
        sites: vec![Tally::default(); world.sites.len()],
        classes: vec![Tally::default(); Class::ALL.len()],
        kinds: vec![[Tally::default(); 3]; world.sites.len()],
        timeline: Vec::new(),
        now: 0.0,
    };
    let end = world.config.duration.as_secs_f64();
    let mut workers: Vec<Worker> = (0..world.config.concurrency).map(|_| Worker { url: None, pending: None }).collect();
    let mut events: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    for (n, worker) in workers.iter_mut().enumerate() {
        let delay = sim.step(worker);
        events.push(Reverse((to_nanos(delay), n)));
    }
    let mut clock = 0u64;
    while let Some(Reverse((at, n))) = events.pop() {
        if at > clock {
            tokio::time::advance(Duration::from_nanos(at - clock)).await;
            clock = at;
        }
        sim.now = at as f64 / 1e9;
        if sim.now >= end {
            break;
        }
        let delay = sim.step(&mut workers[n]);
        events.push(Reverse((at + to_nanos(delay), n)));
    }
    let shifting_site = world.sites.iter().position(|s| s.shifts);
    Ok(RunResult {
        name: name.to_owned(),
        seed,
        total: sim.total,
        seconds: end,
        sites: sim.sites,
        hosts: world.sites.iter().map(|s| s.host.clone()).collect(),
        classes: sim.classes,
        kinds: sim.kinds,
        timeline: sim.timeline,
        regime_change: world.config.regime_change.as_secs_f64(),
        shifting_site,
    })
}

fn to_nanos(secs: f64) -> u64 {
    (secs.max(1e-6) * 1e9) as u64
}

struct Sim {
    world: Arc<World>,
    truth: Arc<Mutex<Truth>>,
    pool: ProxyPool,
    rng: SimRng,
    total: Tally,
    sites: Vec<Tally>,
    classes: Vec<Tally>,
    kinds: Vec<[Tally; 3]>,
    timeline: Vec<Vec<Tally>>,
    now: f64,
}

impl Sim {
    /// Settles the worker's attempt in flight, if any, and starts its next one; returns
    /// the seconds until it next needs attention.
    fn step(&mut self, worker: &mut Worker) -> f64 {
        self.truth.lock().unwrap_or_else(PoisonError::into_inner).now = self.now;
        if let Some(Pending { lease, outcome, proxy }) = worker.pending.take() {
            lease.report(outcome);
            let Some(url) = worker.url.as_mut() else { return 0.0 };
            let success = outcome.kind() == OutcomeKind::Success;
            let class = Class::ALL.iter().position(|&c| c == self.world.proxies[proxy].class).unwrap_or(0);
            self.classes[class].attempts += 1;
            self.classes[class].successes += u64::from(success);
            let kind = &mut self.kinds[url.site][self.world.proxies[proxy].kind as usize];
            kind.attempts += 1;
            kind.successes += u64::from(success);
            self.count(url.site, |t| {
                t.attempts += 1;
                match outcome.kind() {
                    OutcomeKind::Success => t.successes += 1,
                    OutcomeKind::Ban { .. } => t.bans += 1,
                    OutcomeKind::RateLimited { .. } => t.rate_limited += 1,
                    OutcomeKind::NetworkFailure => t.failures += 1,
                    _ => t.timeouts += 1,
                }
            });
            if outcome.kind() != OutcomeKind::NetworkFailure {
                let cost = self.world.proxies[proxy].cost;
                self.count(url.site, |t| t.cost += cost);
            }
            if success {
                let site = url.site;
                worker.url = None;
                self.count(site, |t| t.urls_ok += 1);
            } else if url.attempts >= self.world.config.attempts_per_url {
                let site = url.site;
                worker.url = None;
                self.count(site, |t| t.urls_failed += 1);
            }
        }
        let url = worker.url.get_or_insert_with(|| Url {
            site: self.rng.below(self.world.sites.len()),
            attempts: 0,
            waits: 0,
            tried: Vec::new(),
        });
        let host = self.world.sites[url.site].host.clone();
        let lease = match self.lease(&host, &url.tried) {
            Some(lease) => lease,
            None => {
                self.count(url.site, |t| t.no_proxy += 1);
                url.waits += 1;
                if url.waits >= MAX_WAITS {
                    let site = url.site;
                    worker.url = None;
                    self.count(site, |t| t.urls_failed += 1);
                }
                return WAIT_SECS;
            }
        };
        // The pool holds exactly the world's proxies.
        let Some(proxy) = self.world.proxy_of(lease.id().as_str()) else { return WAIT_SECS };
        url.attempts += 1;
        url.tried.push(lease.id().clone());
        let (outcome, secs) = self.attempt(proxy, url.site);
        worker.pending = Some(Pending { lease, outcome, proxy });
        secs
    }

    /// A lease for `host`, avoiding the proxies tried; any proxy when all were.
    fn lease(&self, host: &str, tried: &[ProxyId]) -> Option<Lease> {
        let fresh = RequestContext::new().target_host(host).avoiding(tried.iter().cloned());
        self.pool.acquire(&Requirements::ANY, &fresh).ok().or_else(|| {
            let any = RequestContext::new().target_host(host);
            (!tried.is_empty()).then(|| self.pool.acquire(&Requirements::ANY, &any).ok()).flatten()
        })
    }

    /// What the world does with an attempt through proxy `p` at site `s` sent now.
    fn attempt(&mut self, p: usize, s: usize) -> (Outcome, f64) {
        let timeout = self.world.config.attempt_timeout.as_secs_f64();
        let proxy = self.world.proxies[p].clone();
        let regime = self.world.regime(self.now);
        let timed_out = |secs: f64| (Outcome::timeout(Duration::from_secs_f64(secs)), secs);
        match proxy.class {
            Class::Dead => {
                let secs = self.rng.between(0.005, 0.05);
                return (Outcome::network_failure(Duration::from_secs_f64(secs)), secs);
            }
            Class::Hanging => return timed_out(timeout),
            _ => {}
        }
        if !self.rng.chance(proxy.delivers) {
            if proxy.class == Class::Flaky && self.rng.chance(0.7) {
                let secs = self.rng.between(0.05, 0.5);
                return (Outcome::network_failure(Duration::from_secs_f64(secs)), secs);
            }
            return timed_out(timeout);
        }
        let secs = proxy.latency * self.world.sites[s].latency * self.rng.lognormal(0.35);
        if secs >= timeout {
            return timed_out(timeout);
        }
        let latency = Duration::from_secs_f64(secs);
        let mut truth = self.truth.lock().unwrap_or_else(PoisonError::into_inner);
        if truth.rate_limited(p, s) {
            let penalty = self.world.sites[s].rate_limit.map(|l| Duration::from_secs_f64(l.penalty));
            return (Outcome::rate_limited(latency, penalty), secs);
        }
        drop(truth);
        if self.rng.chance(proxy.accepts[s][regime]) {
            (Outcome::success(latency), secs)
        } else {
            (Outcome::ban(latency, None), secs)
        }
    }

    /// Adds to the run's, the site's and the current bucket's tallies.
    fn count(&mut self, site: usize, add: impl Fn(&mut Tally)) {
        add(&mut self.total);
        add(&mut self.sites[site]);
        let bucket = (self.now / BUCKET_SECS) as usize;
        while self.timeline.len() <= bucket {
            self.timeline.push(vec![Tally::default(); self.world.sites.len()]);
        }
        add(&mut self.timeline[bucket][site]);
    }
}
