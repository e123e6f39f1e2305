use super::{Balancer, Candidates};

/// Power of two choices: sample two distinct eligible candidates at random and take the
/// one with the lower peak EWMA latency × (in-flight + 1), Finagle's and Envoy's load
/// measure, divided by the share of its attempts that got an answer at all.
///
/// O(1) per pick: an ineligible sample is replaced by a fresh one, a few times, and only
/// then does the pick fall back to the first eligible candidate from a random position.
///
/// Comparing costs needs neither the clock nor `exp`: both peaks decay from the same
/// `now`, so their order is the order of their log keys (see
/// [`Candidates::peak_key`]). A proxy without a latency sample costs nothing while idle,
/// so each new proxy is tried, but as much as the worst while it has a request in flight
/// (Finagle's penalty), so a proxy nobody has heard from cannot take every request.
/// Failures and bans leave a slow mark on the peak that fades in seconds; the answer
/// share (from the pool's fading evidence) remembers them for minutes, so a dead proxy
/// back from an ejection does not look like the fastest one.
///
/// Use it for latency and load on a fleet that mostly works; on a dirty fleet, or where
/// sites ban proxies, [`ExpectedSuccess`](super::ExpectedSuccess) chooses better.
#[derive(Debug, Default)]
pub struct PowerOfTwoChoices;

/// Random draws for two eligible samples before falling back to a scan.
const DRAWS: usize = 6;

impl PowerOfTwoChoices {
    /// The balancer.
    pub fn new() -> Self {
        PowerOfTwoChoices
    }

    /// The load estimate the choice compares, in seconds: the decayed peak EWMA ×
    /// (in-flight + 1) ÷ answer share. Infinite for a proxy without a sample that has a
    /// request in flight. Reads the clock: for reports; picks compare [`Self::better`]
    /// instead.
    pub fn cost(c: &Candidates<'_>, i: usize) -> f64 {
        let in_flight = c.health(i).in_flight();
        if c.peak_key(i) == f64::NEG_INFINITY {
            return if in_flight == 0 { 0.0 } else { f64::INFINITY };
        }
        c.peak_latency(i) * f64::from(in_flight + 1) / answer_share(c, i)
    }

    /// Of two eligible candidates, the one with the lower cost (fewer in flight on a tie).
    #[inline]
    pub fn better(c: &Candidates<'_>, a: usize, b: usize) -> usize {
        let (fa, fb) = (c.health(a).in_flight(), c.health(b).in_flight());
        let (ka, kb) = (log_cost(c, a, fa), log_cost(c, b, fb));
        if kb < ka || (kb == ka && fb < fa) { b } else { a }
    }
}

/// The share of the proxy's attempts that got an answer, from its fading counts as
/// stored (their ratio does not depend on when it is read), with one of each as a prior.
#[inline]
fn answer_share(c: &Candidates<'_>, i: usize) -> f64 {
    let (answered, failed) = c.health(i).transport_raw();
    (answered + 1.0) / (answered + failed + 2.0)
}

/// `ln(cost) + now / τ`: the peak key plus `ln(in_flight + 1) − ln(answer share)`, which
/// keeps the order of the costs.
#[inline]
fn log_cost(c: &Candidates<'_>, i: usize, in_flight: u32) -> f64 {
    let key = c.peak_key(i);
    if key == f64::NEG_INFINITY {
        return if in_flight == 0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    let load = if in_flight == 0 { 0.0 } else { f64::from(in_flight + 1).ln() };
    key + load - answer_share(c, i).ln()
}

impl Balancer for PowerOfTwoChoices {
    fn name(&self) -> &'static str {
        "p2c"
    }

    #[inline]
    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let n = c.len();
        match n {
            0 => return None,
            1 => return c.is_eligible(0).then_some(0),
            _ => {}
        }
        let mut first = None;
        for _ in 0..DRAWS {
            match first {
                None => {
                    let i = c.random_below(n);
                    if c.is_eligible(i) {
                        first = Some(i);
                    }
                }
                Some(a) => {
                    // Drawn from the others, so the two are always distinct.
                    let mut b = c.random_below(n - 1);
                    if b >= a {
                        b += 1;
                    }
                    if c.is_eligible(b) {
                        return Some(Self::better(c, a, b));
                    }
                }
            }
        }
        // Most candidates are ineligible: the one found, or the first from a random start.
        if first.is_some() {
            return first;
        }
        let start = c.random_below(n);
        (start..n).chain(0..start).find(|&i| c.is_eligible(i))
    }
}
