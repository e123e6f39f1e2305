use super::{Balancer, Candidates, min_eligible_by};

/// The seed's adaptive quality selection, kept as the seed wrote it: the eligible
/// candidate with the best composite score
///
/// `0.4 × quality + 0.3 × availability + 0.2 × cost efficiency + 0.1 × recency`
/// `+ 0.2 × success rate at the target host + trend`
///
/// where availability is `1 − in_flight / max_sessions` (or `1 / (1 + in_flight)` without
/// a limit), cost efficiency is `1 − min(cost / cost_baseline, 1)`, recency decays from 1
/// to 0 over 24 h since the last success, and trend is a tenth of the change in success
/// rate over the last ten outcomes (so within ±0.1). The seed's priority multiplier scales
/// every candidate alike, so it cannot change the choice and is left out.
///
/// Measured against an oracle in the selection simulator it chooses no better than round
/// robin: it takes the single best score (herding onto one proxy, which earns rate bans),
/// load and cost can outweigh success at the site, and it scans every candidate. Use
/// [`ExpectedSuccess`](super::ExpectedSuccess); this one is for comparison with the seed.
#[derive(Debug, Clone)]
pub struct AdaptiveQuality {
    cost_baseline: f64,
}

impl Default for AdaptiveQuality {
    fn default() -> Self {
        AdaptiveQuality { cost_baseline: 0.01 }
    }
}

impl AdaptiveQuality {
    /// With the seed's cost baseline of 0.01 per request.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cost per request at or above which cost efficiency is zero. Non-positive or
    /// non-finite values are ignored.
    pub fn cost_baseline(mut self, cost: f64) -> Self {
        if cost.is_finite() && cost > 0.0 {
            self.cost_baseline = cost;
        }
        self
    }

    /// The composite score of candidate `i`; higher is better.
    pub fn score(&self, c: &Candidates<'_>, i: usize) -> f64 {
        let health = c.health(i);
        let meta = c.proxy(i).meta();
        let in_flight = f64::from(c.in_flight(i));
        let availability = match meta.max_sessions {
            Some(max) => (1.0 - in_flight / f64::from(max)).max(0.0),
            None => 1.0 / (1.0 + in_flight),
        };
        let cost = 1.0 - (meta.cost_per_request / self.cost_baseline).min(1.0);
        let recency = c.since_last_success(i).map_or(0.0, |age| (1.0 - age.as_secs_f64() / 86_400.0).max(0.0));
        let site = c.target_success_rate(i).unwrap_or(0.0);
        let trend = health.trend() * 0.1;
        0.4 * c.quality(i) + 0.3 * availability + 0.2 * cost + 0.1 * recency + 0.2 * site + trend
    }
}

impl Balancer for AdaptiveQuality {
    fn name(&self) -> &'static str {
        "adaptive_quality"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        min_eligible_by(c, |i| -self.score(c, i), |_| false)
    }
}
