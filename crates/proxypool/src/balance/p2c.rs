use std::cmp::Ordering;

use super::{Balancer, Candidates};
use crate::health::evidence::exp;

/// The peak key of a proxy without a latency sample.
const NO_SAMPLE: f64 = f64::NEG_INFINITY;

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
/// Candidates a search for the second sample looks at, at most: enough to find one when
/// one in a hundred is eligible, while a pick with a single eligible proxy among 100k
/// stays cheap (that one is then taken alone).
const SECOND_SCAN: usize = 512;

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
        let in_flight = c.in_flight(i);
        if c.peak_key(i) == f64::NEG_INFINITY {
            return if in_flight == 0 { 0.0 } else { f64::INFINITY };
        }
        c.peak_latency(i) * f64::from(in_flight + 1) / answer_share(c, i)
    }

    /// With `a` eligible: the better of `a` and a second eligible candidate, or `a` when
    /// it is the only one. The second is drawn at random (`draws` tries), then looked for
    /// from a random position (among [`SECOND_SCAN`] candidates at most): when most of the
    /// pool is ejected or banned, draws miss, and taking `a` alone would give each eligible
    /// proxy an equal share whatever its cost (a hanging proxy among five eligible ones got a fifth of the requests on the
    /// testbed's dirty fleet).
    fn second(c: &Candidates<'_>, a: usize, n: usize, draws: usize) -> Option<usize> {
        for _ in 0..draws {
            let b = other(c.random_below(n - 1), a);
            if c.is_eligible(b) {
                return Some(Self::better(c, a, b));
            }
        }
        match next_eligible(c, n, Some(a), SECOND_SCAN) {
            Some(b) => Some(Self::better(c, a, b)),
            None => Some(a),
        }
    }

    /// Of two eligible candidates, the one with the lower cost (fewer in flight on a tie).
    #[inline]
    pub fn better(c: &Candidates<'_>, a: usize, b: usize) -> usize {
        let (fa, fb) = (c.in_flight(a), c.in_flight(b));
        let (ka, kb) = (c.peak_key(a), c.peak_key(b));
        // A proxy without a sample costs nothing while idle and the most while busy.
        let unsampled = |f: u32| if f == 0 { f64::NEG_INFINITY } else { f64::INFINITY };
        let order = if ka == NO_SAMPLE || kb == NO_SAMPLE {
            let (ca, cb) =
                (if ka == NO_SAMPLE { unsampled(fa) } else { 0.0 }, if kb == NO_SAMPLE { unsampled(fb) } else { 0.0 });
            cb.partial_cmp(&ca)
        } else {
            // cost = e^key × (in flight + 1) ÷ answer share, up to a factor both share, so
            // b costs less when e^(kb − ka) × (fb + 1) × share(a) < (fa + 1) × share(b): at
            // most one fast exponential instead of two logarithms, and with each share's
            // fraction multiplied out, no division.
            let ((num_a, den_a), (num_b, den_b)) = (answer_share_parts(c, a), answer_share_parts(c, b));
            let (x, y) = (f64::from(fb + 1) * num_a * den_b, f64::from(fa + 1) * num_b * den_a);
            let d = kb - ka;
            if (d <= 0.0 && x <= y) || (d >= 0.0 && x >= y) {
                // The exponential's side of 1 decides: no need to compute it.
                let (by_peak, by_rest) = (d.partial_cmp(&0.0), x.partial_cmp(&y));
                if by_peak == Some(Ordering::Equal) { by_rest } else { by_peak }
            } else {
                (exp(d) * x).partial_cmp(&y)
            }
        };
        match order {
            Some(Ordering::Less) => b,
            Some(Ordering::Equal) if fb < fa => b,
            _ => a,
        }
    }
}

/// The first eligible candidate from a random position on, other than `except`, among
/// the next `limit` candidates.
fn next_eligible(c: &Candidates<'_>, n: usize, except: Option<usize>, limit: usize) -> Option<usize> {
    let start = c.random_below(n);
    (start..n).chain(0..start).take(limit).find(|&i| Some(i) != except && c.is_eligible(i))
}

/// The share of the proxy's attempts that got an answer, from its fading counts as
/// stored (their ratio does not depend on when it is read), with one of each as a prior.
#[inline]
fn answer_share(c: &Candidates<'_>, i: usize) -> f64 {
    let (numerator, denominator) = answer_share_parts(c, i);
    numerator / denominator
}

/// [`answer_share`] as its numerator and denominator.
#[inline]
fn answer_share_parts(c: &Candidates<'_>, i: usize) -> (f64, f64) {
    let (answered, failed) = c.hot(i).transport.raw();
    (answered + 1.0, answered + failed + 2.0)
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
        // Both samples first, and their lines asked for before either is judged: a pick's
        // time goes to fetching each candidate's entry, hot line and member from memory,
        // and fetched side by side the two cost little more than one.
        let a = c.random_below(n);
        let b = other(c.random_below(n - 1), a);
        c.touch(a);
        c.touch(b);
        match (c.is_eligible(a), c.is_eligible(b)) {
            (true, true) => return Some(Self::better(c, a, b)),
            (true, false) => return Self::second(c, a, n, DRAWS - 2),
            (false, true) => return Self::second(c, b, n, DRAWS - 2),
            (false, false) => {}
        }
        for drawn in 2..DRAWS {
            let i = c.random_below(n);
            if c.is_eligible(i) {
                return Self::second(c, i, n, DRAWS - drawn - 1);
            }
        }
        // Most candidates are ineligible: the first eligible one from a random start, and
        // then a second to compare it with.
        let a = next_eligible(c, n, None, n)?;
        Self::second(c, a, n, 0)
    }
}

/// Position `drawn` (below `n - 1`) among the candidates other than `a`: the two samples
/// are always distinct.
#[inline]
fn other(drawn: usize, a: usize) -> usize {
    if drawn >= a { drawn + 1 } else { drawn }
}
