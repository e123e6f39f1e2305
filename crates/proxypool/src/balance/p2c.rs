use super::{Balancer, Candidates, random_below};

/// Power of two choices: sample two distinct candidates at random and take the one with
/// the lower peak EWMA latency × (in-flight + 1), Finagle's and Envoy's load measure.
///
/// O(1) per pick: when a sample is ineligible it tries a few fresh pairs, and only then
/// falls back to the first eligible candidate from a random position.
#[derive(Debug, Default)]
pub struct PowerOfTwoChoices;

/// Fresh pairs drawn before falling back to a scan.
const PAIRS: usize = 3;

impl PowerOfTwoChoices {
    /// The balancer.
    pub fn new() -> Self {
        PowerOfTwoChoices
    }

    /// The load estimate the choice compares; lower is better.
    pub fn cost(c: &Candidates<'_>, i: usize) -> f64 {
        c.peak_latency(i) * f64::from(c.health(i).in_flight() + 1)
    }

    /// Of two eligible candidates, the one with the lower cost (fewer in flight on a tie).
    pub fn better(c: &Candidates<'_>, a: usize, b: usize) -> usize {
        let (ca, cb) = (Self::cost(c, a), Self::cost(c, b));
        if cb < ca || (cb == ca && c.health(b).in_flight() < c.health(a).in_flight()) { b } else { a }
    }
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
