//! A simulator for proxy selection (feature `sim`): a real
//! [`ProxyPool`](harvester_proxypool::ProxyPool) with each balancer in turn, driven in
//! virtual time through a world of proxies and sites drawn from a seed, next to an
//! [`Oracle`] that knows every proxy's true success at every site.
//!
//! The world ([`World::generate`]): 200 proxies by default, residential, datacenter and
//! mobile, each with its kind's cost and latency; some dead, hanging, flaky, slow or on
//! every site's block list. Six sites: one open to all, one banning datacenter addresses,
//! a strict one that lets mostly mobile through, one banning any proxy that sends more
//! than a few requests in ten seconds (429 for 30 s), one that switches halfway from
//! banning datacenter to banning residential addresses, and a lenient one.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use harvester_proxypool::balance::{ExpectedSuccess, RoundRobin};
//! use harvester_testbed::sim::{Chooser, World, WorldConfig, simulate};
//!
//! let world = Arc::new(World::generate(WorldConfig { duration: Duration::from_secs(60), ..WorldConfig::default() }));
//! let rr = simulate(world.clone(), "round_robin", Chooser::Balancer(Box::new(RoundRobin::new())))?;
//! let learned = simulate(world.clone(), "expected_success", Chooser::Balancer(Box::new(ExpectedSuccess::new())))?;
//! let oracle = simulate(world, "oracle", Chooser::Oracle)?;
//! assert!(learned.total.attempt_success() > rr.total.attempt_success());
//! assert!(oracle.total.attempt_success() > rr.total.attempt_success());
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`compare`] runs every contender over several seeds; [`Comparison::table`] and
//! [`chart`] report it. `cargo run --release --example select` runs it from the command
//! line.

mod chart;
mod oracle;
mod rng;
mod run;
mod world;

use std::sync::Arc;

use harvester_proxypool::balance::{
    AdaptiveQuality, ExpectedSuccess, LeastConnections, LeastLatency, Objective, PowerOfTwoChoices, RoundRobin,
    SmoothWeightedRoundRobin,
};

pub use chart::chart;
pub use oracle::Oracle;
pub use rng::SimRng;
pub use run::{BUCKET_SECS, Chooser, RunResult, Tally, Truth, simulate};
pub use world::{Class, RateLimit, SimProxy, SimSite, World, WorldConfig};

/// The name of the reference every ratio is taken against.
pub const ORACLE: &str = "oracle";
/// The name of the naive baseline.
pub const ROUND_ROBIN: &str = "round_robin";
/// The name of the pool's default balancer.
pub const DEFAULT: &str = "expected_success";

/// One contender of a comparison: its name, and how to make its chooser afresh for each
/// world.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    /// The name in tables and charts.
    pub name: &'static str,
    /// Makes the chooser.
    pub make: fn() -> Chooser,
}

impl Contender {
    /// A contender named `name`.
    pub const fn new(name: &'static str, make: fn() -> Chooser) -> Contender {
        Contender { name, make }
    }
}

/// Every balancer of the pool worth comparing (sticky needs session keys, so it is left
/// out), the default's other objectives, and the oracle.
pub fn contenders() -> Vec<Contender> {
    vec![
        Contender::new(ORACLE, || Chooser::Oracle),
        Contender::new(ROUND_ROBIN, || Chooser::Balancer(Box::new(RoundRobin::new()))),
        Contender::new("weighted", || Chooser::Balancer(Box::new(SmoothWeightedRoundRobin::new()))),
        Contender::new("least_connections", || Chooser::Balancer(Box::new(LeastConnections::new()))),
        Contender::new("least_latency", || Chooser::Balancer(Box::new(LeastLatency::new()))),
        Contender::new("p2c", || Chooser::Balancer(Box::new(PowerOfTwoChoices::new()))),
        Contender::new("adaptive_quality", || Chooser::Balancer(Box::new(AdaptiveQuality::new()))),
        Contender::new(DEFAULT, || Chooser::Balancer(Box::new(ExpectedSuccess::new()))),
        Contender::new("expected_success/success_only", || {
            Chooser::Balancer(Box::new(ExpectedSuccess::new().objective(Objective::Success)))
        }),
        Contender::new("expected_success/cost_per_success", || {
            Chooser::Balancer(Box::new(ExpectedSuccess::new().objective(Objective::CostPerSuccess)))
        }),
    ]
}

/// Every run of a comparison.
#[derive(Clone, Debug)]
pub struct Comparison {
    /// One per contender per seed.
    pub runs: Vec<RunResult>,
}

/// One contender over every seed, as ratios to the references of the same seed
/// (averaged over seeds), with the worst seed's where a target is a floor or a ceiling.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// The contender.
    pub name: String,
    /// Successes per attempt.
    pub attempt_success: f64,
    /// Attempt success ÷ the oracle's (mean, and lowest seed).
    pub vs_oracle: (f64, f64),
    /// Share of the gap from round robin to the oracle closed (mean, and lowest seed).
    pub gap_closed: (f64, f64),
    /// Successes per virtual second ÷ the oracle's (mean, and lowest seed).
    pub throughput_vs_oracle: (f64, f64),
    /// Cost per URL collected ÷ round robin's (mean, and highest seed).
    pub cost_vs_round_robin: (f64, f64),
    /// Attempts per URL collected.
    pub attempts_per_url: f64,
    /// Seconds to recover at the shifting site (slowest seed), `None` if some seed never did.
    pub recovery_secs: Option<f64>,
}

/// The sliding window recovery is measured over, seconds.
pub const RECOVERY_WINDOW: f64 = 30.0;
/// The window before the change that recovery is measured against, seconds.
pub const RECOVERY_BASELINE: f64 = 60.0;

/// Runs every contender of `contenders` through the worlds of `seeds` drawn from `config`.
pub fn compare(config: &WorldConfig, seeds: &[u64], contenders: &[Contender]) -> std::io::Result<Comparison> {
    let mut runs = Vec::new();
    for &seed in seeds {
        let world = Arc::new(World::generate(WorldConfig { seed, ..config.clone() }));
        for contender in contenders {
            runs.push(simulate(world.clone(), contender.name, (contender.make)())?);
        }
    }
    Ok(Comparison { runs })
}

/// One contender's figures on one seed, against the references of that seed.
#[derive(Clone, Copy, Debug)]
struct SeedFigures {
    attempt_success: f64,
    vs_oracle: f64,
    gap_closed: f64,
    throughput_vs_oracle: f64,
    cost_vs_round_robin: f64,
    attempts_per_url: f64,
    recovery_secs: Option<f64>,
}

impl Comparison {
    /// The seeds, in the order run.
    pub fn seeds(&self) -> Vec<u64> {
        let mut seeds: Vec<u64> = Vec::new();
        for run in &self.runs {
            if !seeds.contains(&run.seed) {
                seeds.push(run.seed);
            }
        }
        seeds
    }

    /// The contenders, in the order run.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for run in &self.runs {
            if !names.contains(&run.name) {
                names.push(run.name.clone());
            }
        }
        names
    }

    /// The run of `name` on `seed`.
    pub fn run(&self, name: &str, seed: u64) -> Option<&RunResult> {
        self.runs.iter().find(|r| r.name == name && r.seed == seed)
    }

    /// `name` over every seed; `None` when it, the oracle or round robin was not run.
    pub fn summary(&self, name: &str) -> Option<Summary> {
        let seeds = self.seeds();
        let mut per_seed = Vec::new();
        for &seed in &seeds {
            let (me, oracle, rr) = (self.run(name, seed)?, self.run(ORACLE, seed)?, self.run(ROUND_ROBIN, seed)?);
            let (s, o, r) = (me.total.attempt_success(), oracle.total.attempt_success(), rr.total.attempt_success());
            per_seed.push(SeedFigures {
                attempt_success: s,
                vs_oracle: s / o,
                gap_closed: if (o - r).abs() > 1e-9 { (s - r) / (o - r) } else { 1.0 },
                throughput_vs_oracle: me.successes_per_sec() / oracle.successes_per_sec(),
                cost_vs_round_robin: me.total.cost_per_url() / rr.total.cost_per_url(),
                attempts_per_url: me.total.attempts_per_url(),
                recovery_secs: me.recovery_secs(RECOVERY_WINDOW, RECOVERY_BASELINE),
            });
        }
        let n = per_seed.len() as f64;
        let mean = |f: fn(&SeedFigures) -> f64| per_seed.iter().map(f).sum::<f64>() / n;
        let min = |f: fn(&SeedFigures) -> f64| per_seed.iter().map(f).fold(f64::INFINITY, f64::min);
        let max = |f: fn(&SeedFigures) -> f64| per_seed.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let recovery = per_seed.iter().map(|p| p.recovery_secs).try_fold(0.0f64, |worst, r| r.map(|r| worst.max(r)));
        Some(Summary {
            name: name.to_owned(),
            attempt_success: mean(|p| p.attempt_success),
            vs_oracle: (mean(|p| p.vs_oracle), min(|p| p.vs_oracle)),
            gap_closed: (mean(|p| p.gap_closed), min(|p| p.gap_closed)),
            throughput_vs_oracle: (mean(|p| p.throughput_vs_oracle), min(|p| p.throughput_vs_oracle)),
            cost_vs_round_robin: (mean(|p| p.cost_vs_round_robin), max(|p| p.cost_vs_round_robin)),
            attempts_per_url: mean(|p| p.attempts_per_url),
            recovery_secs: recovery,
        })
    }

    /// Every contender's summary, in the order run.
    pub fn summaries(&self) -> Vec<Summary> {
        self.names().iter().filter_map(|name| self.summary(name)).collect()
    }

    /// A Markdown table of the runs on `seed`: a row per contender, its cells from `cells`.
    fn seed_table(&self, seed: u64, headers: &[String], cells: impl Fn(&RunResult) -> Vec<String>) -> String {
        let mut out = format!("| balancer | {} |\n|---|{}\n", headers.join(" | "), "---|".repeat(headers.len()));
        for run in self.runs.iter().filter(|r| r.seed == seed) {
            out.push_str(&format!("| {} | {} |\n", run.name, cells(run).join(" | ")));
        }
        out
    }

    /// The sites' host names on `seed`.
    fn hosts(&self, seed: u64) -> Vec<String> {
        self.runs.iter().find(|r| r.seed == seed).map(|r| r.hosts.clone()).unwrap_or_default()
    }

    /// Attempt success per site and contender on `seed`, as a Markdown table.
    pub fn per_site_table(&self, seed: u64) -> String {
        self.seed_table(seed, &self.hosts(seed), |run| {
            run.sites.iter().map(|site| format!("{:.3}", site.attempt_success())).collect()
        })
    }

    /// Where each contender's attempts went on `seed`: the share of attempts through
    /// proxies of each class, as a Markdown table.
    pub fn per_class_table(&self, seed: u64) -> String {
        let headers: Vec<String> = Class::ALL.iter().map(|c| c.as_str().to_owned()).collect();
        self.seed_table(seed, &headers, |run| {
            let total = run.total.attempts.max(1) as f64;
            run.classes.iter().map(|t| format!("{:.1} %", 100.0 * t.attempts as f64 / total)).collect()
        })
    }

    /// Per site, the share of each contender's attempts by kind (residential / datacenter
    /// / mobile) on `seed`, with the cost per URL there.
    pub fn per_kind_table(&self, seed: u64) -> String {
        let headers: Vec<String> =
            self.hosts(seed).iter().map(|host| format!("{host}: res/dc/mob %, cost per URL")).collect();
        self.seed_table(seed, &headers, |run| {
            run.kinds
                .iter()
                .zip(&run.sites)
                .map(|(kinds, site)| {
                    let total = kinds.iter().map(|k| k.attempts).sum::<u64>().max(1) as f64;
                    let share = |k: usize| 100.0 * kinds[k].attempts as f64 / total;
                    format!("{:.0}/{:.0}/{:.0}, {:.5}", share(0), share(1), share(2), site.cost_per_url())
                })
                .collect()
        })
    }

    /// Seconds each contender took to recover at the shifting site, per seed.
    pub fn recovery_table(&self) -> String {
        let mut out = String::from("| balancer |");
        for seed in self.seeds() {
            out.push_str(&format!(" seed {seed} |"));
        }
        out.push('\n');
        for name in self.names() {
            out.push_str(&format!("| {name} |"));
            for seed in self.seeds() {
                let r = self.run(&name, seed).and_then(|r| r.recovery_secs(RECOVERY_WINDOW, RECOVERY_BASELINE));
                out.push_str(&r.map_or(" never |".to_owned(), |r| format!(" {r:.0} |")));
            }
            out.push('\n');
        }
        out
    }

    /// The summaries as a Markdown table.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| balancer | attempt success | ÷ oracle (worst seed) | RR→oracle gap closed (worst) | successes/s ÷ oracle (worst) | cost per URL ÷ RR (worst) | attempts per URL | recovery after the shift (slowest) |\n\
             |---|---|---|---|---|---|---|---|\n",
        );
        for s in self.summaries() {
            let recovery = s.recovery_secs.map_or("never".to_owned(), |r| format!("{r:.0} s"));
            out.push_str(&format!(
                "| {} | {:.3} | {:.3} ({:.3}) | {:.2} ({:.2}) | {:.3} ({:.3}) | {:.2} ({:.2}) | {:.2} | {} |\n",
                s.name,
                s.attempt_success,
                s.vs_oracle.0,
                s.vs_oracle.1,
                s.gap_closed.0,
                s.gap_closed.1,
                s.throughput_vs_oracle.0,
                s.throughput_vs_oracle.1,
                s.cost_vs_round_robin.0,
                s.cost_vs_round_robin.1,
                s.attempts_per_url,
                recovery,
            ));
        }
        out
    }
}
