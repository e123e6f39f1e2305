//! The reference a balancer is measured against: a chooser that knows each proxy's true
//! probability of success at each site, now (rate limits included).

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use harvester_proxypool::Balancer;
use harvester_proxypool::balance::Candidates;

use super::run::Truth;

/// Picks, among the eligible candidates, one of those whose true probability of success
/// at the target host is within 0.02 of the best, at random: the best choice there is,
/// spread over the equally good so that it does not herd. It sees everything the pool
/// filters (ejections, bans, avoided proxies) like any balancer, and scans every
/// candidate, which only a simulation can afford.
pub struct Oracle {
    truth: Arc<Mutex<Truth>>,
}

/// Candidates within this of the best true success count as equally good.
const TIE: f64 = 0.02;

impl Oracle {
    /// An oracle reading `truth`.
    pub fn new(truth: Arc<Mutex<Truth>>) -> Oracle {
        Oracle { truth }
    }
}

impl Balancer for Oracle {
    fn name(&self) -> &'static str {
        "oracle"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let truth = self.truth.lock().unwrap_or_else(PoisonError::into_inner);
        let site = c.target_host().and_then(|host| truth.world().site_of(host));
        let mut scored: Vec<(usize, f64)> = (0..c.len())
            .filter(|&i| c.is_eligible(i))
            .map(|i| {
                let p = truth.world().proxy_of(c.proxy(i).id().as_str());
                let success = match (p, site) {
                    (Some(p), Some(s)) => truth.success_now(p, s),
                    _ => 0.0,
                };
                (i, success)
            })
            .collect();
        let best = scored.iter().map(|&(_, p)| p).fold(f64::NEG_INFINITY, f64::max);
        scored.retain(|&(_, p)| p >= best - TIE);
        if scored.is_empty() {
            return None;
        }
        Some(scored[c.random_below(scored.len())].0)
    }
}

impl fmt::Debug for Oracle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oracle").finish_non_exhaustive()
    }
}
