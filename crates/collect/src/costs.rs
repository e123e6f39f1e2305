//! What the run cost: each proxy's `cost_per_request` times the requests sent through it
//! (hedges and failures included), per provider, per kind of proxy and per site, against the
//! URLs collected; and, from those measured figures, which proxies to prefer where.
//!
//! The figures come from the pool's exact accounts ([`ProxyPool::site_spending`] per site
//! and kind, [`ProxyPool::stats`] per proxy) and the output's tally of collected URLs per
//! site. A recommendation is made only from enough evidence: both sides of a comparison
//! sent at least [`MIN_REQUESTS`] requests at the site, and the cheaper one is at least
//! [`MIN_RATIO`] times cheaper per success.

use std::collections::BTreeMap;

use harvester_proxypool::{PoolStats, ProxyKind, ProxyPool};
use serde::Serialize;

use crate::output::Counts;

/// Requests a kind or provider must have sent for its cost per success to be compared.
pub const MIN_REQUESTS: u64 = 20;
/// How much cheaper per success one option must be to be recommended over another.
pub const MIN_RATIO: f64 = 1.5;

/// Spending of one slice of the requests (a provider, a kind, a site, a kind at a site).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Spend {
    /// Requests sent.
    pub requests: u64,
    /// Of them, answered with a success (a page, not a ban or a failure).
    pub successes: u64,
    /// Their cost: the sum of their proxies' `cost_per_request`.
    pub cost: f64,
    /// `cost / requests`.
    pub cost_per_request: Option<f64>,
    /// `cost / successes`.
    pub cost_per_success: Option<f64>,
}

impl Spend {
    fn add(&mut self, requests: u64, successes: u64, cost: f64) {
        self.requests += requests;
        self.successes += successes;
        self.cost += cost;
        self.cost_per_request = per(self.cost, self.requests);
        self.cost_per_success = per(self.cost, self.successes);
    }
}

fn per(cost: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| cost / count as f64)
}

/// One site's spending and what it bought.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SiteCosts {
    /// Every request to the site.
    #[serde(flatten)]
    pub spend: Spend,
    /// URLs of the site collected (ok lines).
    pub ok_urls: u64,
    /// `cost / ok_urls`: what one collected URL of this site cost.
    pub cost_per_ok_url: Option<f64>,
    /// By kind of proxy (`residential`, `datacenter`, `mobile`, `unknown`).
    pub by_kind: BTreeMap<String, Spend>,
}

/// The run's costs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Costs {
    /// Every request.
    pub total: Spend,
    /// URLs collected.
    pub ok_urls: u64,
    /// `cost / ok_urls`.
    pub cost_per_ok_url: Option<f64>,
    /// By provider (`unknown` for proxies without one).
    pub by_provider: BTreeMap<String, Spend>,
    /// By kind of proxy.
    pub by_kind: BTreeMap<String, Spend>,
    /// By target host.
    pub by_site: BTreeMap<String, SiteCosts>,
    /// What the figures say to do, in words.
    pub recommendations: Vec<String>,
}

/// The name of a kind in the report.
fn kind_name(kind: Option<ProxyKind>) -> String {
    match kind {
        Some(ProxyKind::Residential) => "residential",
        Some(ProxyKind::Datacenter) => "datacenter",
        Some(ProxyKind::Mobile) => "mobile",
        _ => "unknown",
    }
    .to_owned()
}

impl Costs {
    /// The costs of the run so far: `pool`'s accounts (`stats`, its statistics, already
    /// read by the caller), `counts`' collected URLs.
    pub fn of(pool: &ProxyPool, stats: &PoolStats, counts: &Counts) -> Costs {
        let mut costs = Costs { ok_urls: counts.ok, ..Costs::default() };
        let proxies: BTreeMap<String, _> =
            pool.proxies().into_iter().map(|proxy| (proxy.id().as_str().to_owned(), proxy)).collect();
        for stats in &stats.proxies {
            let Some(proxy) = proxies.get(stats.id.as_str()) else { continue };
            let cost = proxy.meta().cost_per_request * stats.requests as f64;
            let provider = proxy.meta().provider.clone().unwrap_or_else(|| "unknown".to_owned());
            costs.by_provider.entry(provider).or_default().add(stats.requests, stats.successes, cost);
            costs.total.add(stats.requests, stats.successes, cost);
        }
        for row in pool.site_spending() {
            let kind = kind_name(row.kind);
            costs.by_kind.entry(kind.clone()).or_default().add(row.requests, row.successes, row.cost);
            let site = costs.by_site.entry(row.host).or_default();
            site.spend.add(row.requests, row.successes, row.cost);
            site.by_kind.entry(kind).or_default().add(row.requests, row.successes, row.cost);
        }
        for (host, site) in &mut costs.by_site {
            site.ok_urls = counts.ok_by_host.get(host).copied().unwrap_or(0);
            site.cost_per_ok_url = per(site.spend.cost, site.ok_urls);
        }
        costs.cost_per_ok_url = per(costs.total.cost, costs.ok_urls);
        costs.recommendations = recommend(&costs);
        costs
    }
}

/// Recommendations from measured figures: per site, the kinds of proxy compared by cost
/// per success; across the run, the providers.
fn recommend(costs: &Costs) -> Vec<String> {
    let mut said = Vec::new();
    for (host, site) in &costs.by_site {
        said.extend(compare(&format!("for {host}, "), "proxies", &site.by_kind));
    }
    // Providers are named as they are: "across every site, acme cost …".
    said.extend(compare("across every site, ", "", &costs.by_provider));
    said
}

/// Compares the options of `spends` that sent enough requests: the cheapest per success
/// against each dearer one, and any that paid without a single success.
fn compare(prefix: &str, noun: &str, spends: &BTreeMap<String, Spend>) -> Vec<String> {
    let noun = if noun.is_empty() { String::new() } else { format!(" {noun}") };
    let tried: Vec<(&String, &Spend)> = spends.iter().filter(|(_, spend)| spend.requests >= MIN_REQUESTS).collect();
    let mut said = Vec::new();
    let paying: Vec<(&String, f64)> =
        tried.iter().filter_map(|(name, spend)| spend.cost_per_success.map(|per| (*name, per))).collect();
    let Some(&(best, best_cost)) = paying.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else { return said };
    for &(name, cost) in &paying {
        if name != best && best_cost > 0.0 && cost / best_cost >= MIN_RATIO {
            said.push(format!(
                "{prefix}{best}{noun} cost {:.1}x less per success than {name}{noun} ({best_cost:.6} vs {cost:.6})",
                cost / best_cost
            ));
        } else if name != best && best_cost == 0.0 && cost > 0.0 {
            said.push(format!("{prefix}{best}{noun} succeed at no cost; {name}{noun} cost {cost:.6} per success"));
        }
    }
    for (name, spend) in &tried {
        if spend.successes == 0 && spend.cost > 0.0 {
            said.push(format!(
                "{prefix}{name}{noun} cost {:.6} over {} requests without one success: leave them out",
                spend.cost, spend.requests
            ));
        }
    }
    said
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(requests: u64, successes: u64, cost: f64) -> Spend {
        let mut spend = Spend::default();
        spend.add(requests, successes, cost);
        spend
    }

    #[test]
    fn the_cheaper_kind_per_success_is_recommended_with_its_ratio() {
        let kinds = BTreeMap::from([
            ("residential".to_owned(), spend(100, 95, 0.40)),
            ("datacenter".to_owned(), spend(100, 10, 0.05)),
            ("mobile".to_owned(), spend(5, 5, 0.001)),
        ]);
        let said = compare("for shop.example, ", "proxies", &kinds);
        // 0.40 / 95 = 0.00421 against 0.05 / 10 = 0.005: 1.19x, not enough to say; mobile
        // sent too few requests to be compared.
        assert!(said.is_empty(), "{said:?}");
        let kinds = BTreeMap::from([
            ("residential".to_owned(), spend(100, 95, 0.40)),
            ("datacenter".to_owned(), spend(200, 20, 0.30)),
            ("unknown".to_owned(), spend(40, 0, 0.02)),
        ]);
        let said = compare("for shop.example, ", "proxies", &kinds);
        assert_eq!(
            said,
            vec![
                "for shop.example, residential proxies cost 3.6x less per success than datacenter proxies (0.004211 vs 0.015000)"
                    .to_owned(),
                "for shop.example, unknown proxies cost 0.020000 over 40 requests without one success: leave them out"
                    .to_owned(),
            ]
        );
    }
}
