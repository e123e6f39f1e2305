use std::fmt;

use super::{Balancer, Candidates};

/// What [`ExpectedSuccess`] optimises once it knows how likely each candidate is to
/// succeed. Cost never outvotes success by more than the balancer's tolerance: it
/// decides among the near-best, or is weighed against success explicitly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Objective {
    /// The most likely to succeed; among the near-best, the least loaded (latency ×
    /// requests in flight). Cost is ignored.
    Success,
    /// The most likely to succeed; among the near-best, the cheapest, then the least
    /// loaded. The default: a user who pays per request gladly trades a success
    /// probability within the tolerance for a cheaper proxy, and no more.
    #[default]
    SuccessThenCost,
    /// The lowest cost per expected success (cost ÷ probability of success); among the
    /// near-best by that, the least loaded. For a budget: a cheap proxy that succeeds half
    /// the time beats one ten times dearer that always does.
    CostPerSuccess,
}

/// The default balancer: sends each request through the proxy most likely to succeed at
/// its target host, learning from every answer.
///
/// For each candidate it looks at, it draws a probability of success from the pool's
/// belief ([`Candidates::success_estimate`]) and the best draw proposes a proxy (Thompson
/// sampling). A proposal the evidence already rates near the best (within `tolerance` of
/// the best expectation) is weighed against every such near-best proxy by the
/// [`Objective`]: by default the cheapest (prices within a quarter of each other count as
/// equal), then the less loaded of two of those at random. Any other proposal is an
/// exploration and goes ahead. Sampling rather than taking the best
/// estimate spreads requests among the near-best proxies instead of herding onto one
/// (which earns rate bans), and keeps trying proxies with little evidence in proportion
/// to how good they might be.
///
/// What it looks at does not depend on the pool's size: every eligible candidate when
/// there are at most `scan_below` of them; otherwise the target host's leaders (the few
/// proxies with the best evidence there, which the pool keeps up to date from reports)
/// and `sample` random eligible candidates.
///
/// A proxy on probation (no success yet since it joined or came back from an ejection,
/// and a request already in flight) gets another request only when nothing else is
/// eligible.
///
/// ```
/// use harvester_proxypool::balance::{ExpectedSuccess, Objective};
/// use harvester_proxypool::ProxyPool;
///
/// let pool = ProxyPool::builder()
///     .balancer(ExpectedSuccess::new().objective(Objective::CostPerSuccess).tolerance(0.1))
///     .seed(7) // reproducible picks, for a simulation
///     .build()?;
/// # Ok::<(), harvester_proxypool::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ExpectedSuccess {
    objective: Objective,
    tolerance: f64,
    sample: usize,
    scan_below: usize,
}

impl Default for ExpectedSuccess {
    fn default() -> Self {
        ExpectedSuccess { objective: Objective::default(), tolerance: 0.1, sample: 8, scan_below: 32 }
    }
}

/// Costs up to this factor of the cheapest near-best candidate's count as equal.
const COST_TIE: f64 = 1.25;

/// Most candidates one pick weighs: `scan_below` at most in a scan, the leaders and
/// `sample` otherwise.
const MAX_WEIGHED: usize = 64;

impl ExpectedSuccess {
    /// Success first, then cost; tolerance 10 %; 8 random candidates beside the leaders;
    /// every candidate weighed when there are at most 32.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to optimise among the likely ones. Default [`Objective::SuccessThenCost`].
    pub fn objective(mut self, objective: Objective) -> Self {
        self.objective = objective;
        self
    }

    /// How far below the best expectation (as a share of it) a proxy still counts as
    /// near-best, in [0, 1]. Default 0.1: in the selection simulator a tolerance of 0.1
    /// costs no measurable success against 0.05 and saves a tenth of the money, because
    /// proxies within it mostly succeed alike. Values outside are clamped.
    pub fn tolerance(mut self, tolerance: f64) -> Self {
        self.tolerance = if tolerance.is_nan() { 0.0 } else { tolerance.clamp(0.0, 1.0) };
        self
    }

    /// Random eligible candidates weighed beside the leaders in a large pool (1..=32).
    /// More explore faster and cost more per pick. Default 8.
    pub fn sample(mut self, candidates: usize) -> Self {
        self.sample = candidates.clamp(1, 32);
        self
    }

    /// Weigh every candidate when there are at most this many (0..=64). Default 32.
    pub fn scan_below(mut self, candidates: usize) -> Self {
        self.scan_below = candidates.min(MAX_WEIGHED);
        self
    }

    fn weigh(&self, c: &Candidates<'_>, i: usize) -> Weighed {
        let estimate = c.success_estimate(i);
        let cost = c.cost(i).max(0.0);
        let (value, expected) = match self.objective {
            Objective::CostPerSuccess => (estimate.sampled / cost.max(1e-12), estimate.expected / cost.max(1e-12)),
            _ => (estimate.sampled, estimate.expected),
        };
        let latency = c.health(i).latency_secs().unwrap_or(0.0);
        let load = latency * f64::from(c.in_flight(i) + 1);
        Weighed { position: i, value, expected, cost, load }
    }

    /// Weighs candidate `i` onto the list (true), or not: already there, ineligible, or on
    /// probation (then kept aside if it is the best such).
    fn consider(&self, c: &Candidates<'_>, list: &mut Shortlist, i: usize) -> bool {
        if list.contains(i) || !c.is_eligible(i) {
            return false;
        }
        let w = self.weigh(c, i);
        if c.on_probation(i) {
            if list.probation.is_none_or(|p| w.value > p.value) {
                list.probation = Some(w);
            }
            return false;
        }
        list.push(w);
        true
    }

    /// Thompson sampling proposes the candidate with the best draw. When the proposal is
    /// a proxy the evidence already rates near the best (its expectation within
    /// `tolerance` of the best expectation), the objective's second criterion chooses
    /// among all such near-best proxies: the cheapest, or the least loaded. When it is
    /// not, the proposal is an exploration (a proxy whose thin evidence might hide the
    /// best of all) and goes ahead as proposed. So exploration happens at Thompson
    /// sampling's rate, and price and load decide only among proxies known to be good
    /// (a cheap proxy barely tried is not chosen for its price because its wide belief
    /// happened to draw high).
    ///
    /// The last word among equals goes to load, by power of two choices: of two of them
    /// drawn at random, the one with the lower latency × requests in flight. Taking the
    /// least loaded of all would send every request to the one fastest proxy whenever
    /// requests come one at a time (herding, which earns rate bans); two choices spread
    /// them and still favour the fast and the idle.
    fn choose(&self, c: &Candidates<'_>, weighed: &mut [Weighed]) -> Option<usize> {
        let proposal = *weighed.iter().max_by(|a, b| a.value.total_cmp(&b.value))?;
        let best_expected = weighed.iter().map(|w| w.expected).fold(f64::NEG_INFINITY, f64::max);
        let floor = best_expected * (1.0 - self.tolerance);
        if proposal.expected < floor {
            return Some(proposal.position);
        }
        let near = partition(weighed, |w| w.expected >= floor);
        let equals = match self.objective {
            Objective::SuccessThenCost => {
                // Prices within a quarter of the cheapest count as the same price.
                let cheapest = near.iter().map(|w| w.cost).fold(f64::INFINITY, f64::min);
                partition(near, |w| w.cost <= cheapest * COST_TIE)
            }
            Objective::Success | Objective::CostPerSuccess => near,
        };
        match equals.len() {
            0 => Some(proposal.position),
            1 => Some(equals[0].position),
            n => {
                let a = c.random_below(n);
                let mut b = c.random_below(n - 1);
                if b >= a {
                    b += 1;
                }
                Some(if equals[b].load < equals[a].load { equals[b].position } else { equals[a].position })
            }
        }
    }
}

/// Moves the items that `keep` to the front and returns them.
fn partition(items: &mut [Weighed], keep: impl Fn(&Weighed) -> bool) -> &mut [Weighed] {
    let mut kept = 0;
    for i in 0..items.len() {
        if keep(&items[i]) {
            items.swap(i, kept);
            kept += 1;
        }
    }
    &mut items[..kept]
}

#[derive(Clone, Copy, Debug)]
struct Weighed {
    position: usize,
    /// What the objective ranks by, from the draw.
    value: f64,
    /// The same from the expectation.
    expected: f64,
    cost: f64,
    load: f64,
}

/// The candidates one pick weighs, without allocating.
struct Shortlist {
    items: [Weighed; MAX_WEIGHED],
    len: usize,
    /// The best candidate on probation, for when nothing else is eligible.
    probation: Option<Weighed>,
}

impl Shortlist {
    fn new() -> Self {
        let nobody = Weighed { position: 0, value: 0.0, expected: 0.0, cost: 0.0, load: 0.0 };
        Shortlist { items: [nobody; MAX_WEIGHED], len: 0, probation: None }
    }

    fn contains(&self, i: usize) -> bool {
        self.items[..self.len].iter().any(|w| w.position == i) || self.probation.is_some_and(|w| w.position == i)
    }

    fn push(&mut self, w: Weighed) {
        if self.len < MAX_WEIGHED {
            self.items[self.len] = w;
            self.len += 1;
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Weighed] {
        &mut self.items[..self.len]
    }
}

impl Balancer for ExpectedSuccess {
    fn name(&self) -> &'static str {
        "expected_success"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        let mut list = Shortlist::new();
        if n <= self.scan_below {
            // From a random start, so that equal candidates take turns rather than the
            // first of them taking every request.
            let start = c.random_below(n);
            for i in (start..n).chain(0..start) {
                self.consider(c, &mut list, i);
            }
        } else {
            for i in c.leaders() {
                self.consider(c, &mut list, i);
            }
            let (mut found, mut draws) = (0, 0);
            while found < self.sample && draws < 4 * self.sample {
                draws += 1;
                if self.consider(c, &mut list, c.random_below(n)) {
                    found += 1;
                }
            }
            if list.len == 0 && list.probation.is_none() {
                // Nearly every candidate is ineligible: the first eligible one from a
                // random start, as a last resort (O(candidates) only in this case).
                let start = c.random_below(n);
                if let Some(i) = (start..n).chain(0..start).find(|&i| self.consider(c, &mut list, i)) {
                    return Some(i);
                }
            }
        }
        let probation = list.probation.map(|w| w.position);
        self.choose(c, list.as_mut_slice()).or(probation)
    }
}

impl fmt::Debug for ExpectedSuccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedSuccess")
            .field("objective", &self.objective)
            .field("tolerance", &self.tolerance)
            .field("sample", &self.sample)
            .field("scan_below", &self.scan_below)
            .finish()
    }
}
