use super::{Balancer, Candidates, random_below};

/// Power of two choices: sample two distinct candidates at random and take the one with
/// the lower peak EWMA latency × (in-flight + 1), Finagle's and Envoy's load measure.
///
/// O(1) per pick: when a sample is ineligible it tries a few fresh pairs, and only then
/// falls back to the first eligible candidate from a random position.
///
/// Comparing costs needs neither the clock nor `exp`: both peaks decay from the same
/// `now`, so their order is the order of their log keys (see
/// [`Candidates::peak_key`]). A proxy without a latency sample costs nothing while idle,
/// so each new proxy is tried, but as much as the worst while it has a request in flight
/// (Finagle's penalty), so a proxy nobody has heard from cannot take every request.
#[derive(Debug, Default)]
pub struct PowerOfTwoChoices;

/// Fresh pairs drawn before falling back to a scan.
const PAIRS: usize = 3;

impl PowerOfTwoChoices {
    /// The balancer.
    pub fn new() -> Self {
        PowerOfTwoChoices
    }

    /// The load estimate the choice compares, in seconds: the decayed peak EWMA ×
    /// (in-flight + 1). Infinite for a proxy without a sample that has a request in
    /// flight. Reads the clock: for reports; picks compare [`Self::better`] instead.
    pub fn cost(c: &Candidates<'_>, i: usize) -> f64 {
        let in_flight = c.health(i).in_flight();
        if c.peak_key(i) == f64::NEG_INFINITY {
            return if in_flight == 0 { 0.0 } else { f64::INFINITY };
        }
        c.peak_latency(i) * f64::from(in_flight + 1)
    }

    /// Of two eligible candidates, the one with the lower cost (fewer in flight on a tie).
    #[inline]
    pub fn better(c: &Candidates<'_>, a: usize, b: usize) -> usize {
        let (fa, fb) = (c.health(a).in_flight(), c.health(b).in_flight());
        let (ka, kb) = (log_cost(c.peak_key(a), fa), log_cost(c.peak_key(b), fb));
        if kb < ka || (kb == ka && fb < fa) { b } else { a }
    }
}

/// `ln(cost) + now / τ`: the peak key plus `ln(in_flight + 1)`, which keeps the order
/// of the costs. The logarithm is skipped for the common idle case.
#[inline]
fn log_cost(key: f64, in_flight: u32) -> f64 {
    if key == f64::NEG_INFINITY {
        return if in_flight == 0 { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    if in_flight == 0 { key } else { key + f64::from(in_flight + 1).ln() }
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
        for _ in 0..PAIRS {
            let a = random_below(n);
            let mut b = random_below(n - 1);
            if b >= a {
                b += 1;
            }
            match (c.is_eligible(a), c.is_eligible(b)) {
                (true, true) => return Some(Self::better(c, a, b)),
                (true, false) => return Some(a),
                (false, true) => return Some(b),
                (false, false) => {}
            }
        }
        let start = random_below(n);
        (start..n).chain(0..start).find(|&i| c.is_eligible(i))
    }
}
