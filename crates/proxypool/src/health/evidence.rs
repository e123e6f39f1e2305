//! Evidence that fades with time: counts of good and bad outcomes, each weighing
//! `2^(−age / half-life)`, and the Beta posteriors made from them.
//!
//! A window of the last N outcomes forgets nothing while a proxy sits idle and then
//! forgets everything at once (an ejection used to wipe it); a count that fades with
//! time does neither. A proxy that failed ten times an hour ago still carries most of
//! that failure into its next pick, and a proxy nobody has used for a day has drifted
//! back to what the pool expects of a proxy it knows nothing about.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Nanos;

/// Two fading counts, `good` and `bad`, packed as two `f32` in one atomic word so that
/// a reader never sees one without the other; the time they were last brought up to
/// date sits beside them.
///
/// Two writers racing may decay one of their updates from a stamp the other has just
/// moved: the error is a fraction of one outcome's weight, which an estimate can afford
/// (the same trade as the peak EWMA's).
#[derive(Debug, Default)]
pub(crate) struct FadingPair {
    packed: AtomicU64,
    stamp: AtomicU64,
}

/// The weight left after `age` nanoseconds with half-life `half_life` nanoseconds.
#[inline]
pub(crate) fn fade(age: Nanos, half_life: f64) -> f64 {
    if age == 0 { 1.0 } else { exp2(-(age as f64) / half_life) }
}

/// `2^x`, to about 1e-7 relative error, in a dozen instructions.
///
/// Hand-written because an estimate reads a handful of fading counts and draws from two
/// beliefs for every candidate a pick weighs: libm's `exp` was a fifth of a pick's
/// instructions, and none of these uses needs more than six digits.
#[inline]
pub(crate) fn exp2(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(-1022.0, 1023.0);
    // `floor` through an integer: `f64::floor` is a libm call on baseline x86-64 (no
    // SSE4.1 `roundsd`): about 3 % of a P2C pick. `x` is clamped, so the cast is exact.
    let truncated = x as i64 as f64;
    let whole = if truncated > x { truncated - 1.0 } else { truncated };
    let f = x - whole;
    // 2^f = e^(f ln 2) on [0, 1): Taylor to the 8th power (error below 1e-7).
    let t = f * std::f64::consts::LN_2;
    let poly = 1.0
        + t * (1.0
            + t * (0.5
                + t * (1.0 / 6.0
                    + t * (1.0 / 24.0 + t * (1.0 / 120.0 + t * (1.0 / 720.0 + t * (1.0 / 5040.0 + t / 40_320.0)))))));
    // `whole` lies in [-1022, 1023]: a normal exponent.
    poly * f64::from_bits(((whole as i64 + 1023) as u64) << 52)
}

/// `e^x`, to about 1e-7 relative error (see [`exp2`]).
#[inline]
pub(crate) fn exp(x: f64) -> f64 {
    exp2(x * std::f64::consts::LOG2_E)
}

fn pack(good: f64, bad: f64) -> u64 {
    (u64::from((good as f32).to_bits()) << 32) | u64::from((bad as f32).to_bits())
}

fn unpack(packed: u64) -> (f64, f64) {
    (f64::from(f32::from_bits((packed >> 32) as u32)), f64::from(f32::from_bits(packed as u32)))
}

impl FadingPair {
    /// Adds `good` and `bad` at `now`, fading what was there before.
    pub(crate) fn add(&self, good: f64, bad: f64, now: Nanos, half_life: f64) {
        let stamp = self.stamp.load(Ordering::Acquire);
        let w = fade(now.saturating_sub(stamp), half_life);
        let _ = self.packed.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            let (g, b) = unpack(packed);
            Some(pack(g * w + good, b * w + bad))
        });
        self.stamp.fetch_max(now, Ordering::AcqRel);
    }

    /// Back to no evidence.
    pub(crate) fn reset(&self) {
        self.packed.store(0, Ordering::Relaxed);
        self.stamp.store(0, Ordering::Relaxed);
    }

    /// The counts as of `now`.
    #[inline]
    pub(crate) fn get(&self, now: Nanos, half_life: f64) -> (f64, f64) {
        let (g, b) = unpack(self.packed.load(Ordering::Acquire));
        if g == 0.0 && b == 0.0 {
            return (0.0, 0.0);
        }
        let w = fade(now.saturating_sub(self.stamp.load(Ordering::Acquire)), half_life);
        (g * w, b * w)
    }

    /// The counts as last stored, without fading: their ratio is the same as at any
    /// later time, so comparisons that only need the share of good outcomes skip the
    /// clock.
    #[inline]
    pub(crate) fn raw(&self) -> (f64, f64) {
        unpack(self.packed.load(Ordering::Acquire))
    }
}

/// A Beta posterior over a probability: `good + weight · prior` successes and
/// `bad + weight · (1 − prior)` failures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Belief {
    /// Pseudo-successes.
    pub(crate) alpha: f64,
    /// Pseudo-failures.
    pub(crate) beta: f64,
}

impl Belief {
    /// What `good` and `bad` say on top of a prior mean `prior` worth `weight` outcomes.
    #[inline]
    pub(crate) fn new(good: f64, bad: f64, prior: f64, weight: f64) -> Belief {
        let prior = prior.clamp(0.0, 1.0);
        Belief { alpha: good + weight * prior, beta: bad + weight * (1.0 - prior) }
    }

    /// A belief with mean `mean` worth `weight` outcomes.
    #[inline]
    pub(crate) fn with_mean(mean: f64, weight: f64) -> Belief {
        let mean = mean.clamp(0.0, 1.0);
        Belief { alpha: mean * weight, beta: (1.0 - mean) * weight }
    }

    /// The posterior mean.
    #[inline]
    pub(crate) fn mean(self) -> f64 {
        let n = self.alpha + self.beta;
        if n > 0.0 { self.alpha / n } else { 0.5 }
    }

    /// A draw from (an approximation of) the posterior, given a standard normal `z`:
    /// a logit-normal with the Beta's log-odds mean and variance (digamma and trigamma
    /// differences, by their asymptotic series, good to 1 % from one outcome up). Thompson
    /// sampling needs draws that spread like the posterior, not exact Beta variates, and
    /// this costs a logarithm and an exponential where a Beta draw costs two gamma draws. Unlike a normal approximation it stays inside (0, 1)
    /// and keeps the Beta's skew near the edges: a belief centred at 0.8 on five
    /// outcomes draws above 0.98 about one time in twelve, as the Beta does (a normal
    /// would draw above 1 one time in six), so near the top a thin belief does not tie
    /// with, or beat, a proven one just by being wide.
    ///
    /// Both counts are taken as at least one for the draw: below one the Beta piles its
    /// mass onto an edge while its log-odds spread without bound, which no normal can
    /// follow (a proxy that never failed, on a thin prior, would draw near 0 at times).
    #[inline]
    pub(crate) fn draw(self, z: f64) -> f64 {
        let (a, b) = (self.alpha.max(1.0), self.beta.max(1.0));
        // ψ(a) − ψ(b) with ψ(x) ≈ ln x − 1/2x − 1/12x², one logarithm for both.
        let (ia, ib) = (1.0 / a, 1.0 / b);
        let log_odds = (a * ib).ln() - 0.5 * (ia - ib) - (ia * ia - ib * ib) / 12.0;
        // ψ′(x) ≈ 1/x + 1/2x² + 1/6x³.
        let trigamma = |i: f64| i * (1.0 + i * (0.5 + i / 6.0));
        let spread = (trigamma(ia) + trigamma(ib)).sqrt();
        1.0 / (1.0 + exp(-(log_odds + z * spread)))
    }

    /// How many outcomes' worth of evidence it holds, prior included.
    #[inline]
    pub(crate) fn weight(self) -> f64 {
        self.alpha + self.beta
    }
}

/// A plain (non-atomic) fading count, for state already behind a lock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fading {
    value: f64,
    stamp: Nanos,
}

impl Fading {
    /// Adds `amount` at `now`.
    pub(crate) fn add(&mut self, amount: f64, now: Nanos, half_life: f64) {
        self.value = self.get(now, half_life) + amount;
        self.stamp = self.stamp.max(now);
    }

    /// The count as of `now`.
    #[inline]
    pub(crate) fn get(&self, now: Nanos, half_life: f64) -> f64 {
        if self.value == 0.0 { 0.0 } else { self.value * fade(now.saturating_sub(self.stamp), half_life) }
    }
}

/// Three plain fading counts that always change together, faded with one stamp (one
/// exponential for all three).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FadingTriple {
    values: [f64; 3],
    stamp: Nanos,
}

impl FadingTriple {
    /// Adds `amounts` at `now`.
    pub(crate) fn add(&mut self, amounts: [f64; 3], now: Nanos, half_life: f64) {
        let current = self.get(now, half_life);
        self.values = [current[0] + amounts[0], current[1] + amounts[1], current[2] + amounts[2]];
        self.stamp = self.stamp.max(now);
    }

    /// The counts as of `now`.
    #[inline]
    pub(crate) fn get(&self, now: Nanos, half_life: f64) -> [f64; 3] {
        if self.values == [0.0; 3] {
            return self.values;
        }
        let w = fade(now.saturating_sub(self.stamp), half_life);
        self.values.map(|v| v * w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;
    const HALF: f64 = 60e9;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4 * b.abs().max(1.0)
    }

    #[test]
    fn counts_halve_every_half_life_and_keep_their_ratio() {
        let p = FadingPair::default();
        p.add(3.0, 1.0, SEC, HALF);
        let (g, b) = p.get(61 * SEC, HALF);
        assert!(close(g, 1.5) && close(b, 0.5), "{g} {b}");
        assert_eq!(p.raw(), (3.0, 1.0));
        p.add(0.0, 1.0, 61 * SEC, HALF);
        let (g, b) = p.get(61 * SEC, HALF);
        assert!(close(g, 1.5) && close(b, 1.5), "the old evidence faded before the new was added: {g} {b}");
    }

    #[test]
    fn a_belief_without_evidence_is_its_prior() {
        let b = Belief::new(0.0, 0.0, 0.8, 2.0);
        assert!(close(b.mean(), 0.8));
        let strong = Belief::new(90.0, 10.0, 0.8, 2.0);
        assert!(close(strong.mean(), 91.6 / 102.0));
        assert!(strong.draw(1.0) - strong.draw(-1.0) < b.draw(1.0) - b.draw(-1.0), "evidence narrows the posterior");
        let thin = Belief::with_mean(0.8, 5.0);
        assert!((0.0..1.0).contains(&thin.draw(-3.0)) && (0.0..1.0).contains(&thin.draw(3.0)), "draws stay in (0, 1)");
        assert!(thin.draw(0.1) > thin.draw(0.0), "and keep their order");
        // Beta(4, 1) is above 0.98 with probability 1 − 0.98⁴ ≈ 0.08: 1.4 deviations out.
        assert!(thin.draw(1.3) < 0.98 && thin.draw(1.5) > 0.98, "a thin belief at 0.8 reaches 0.98 one time in twelve");
        let proven = Belief::with_mean(0.98, 200.0);
        assert!(
            (proven.draw(-1.0) - 0.98).abs() < 0.02 && (proven.draw(1.0) - 0.98).abs() < 0.02,
            "a proven one stays near"
        );
    }

    #[test]
    fn exp2_is_good_to_six_digits_over_the_range_used() {
        for i in -4000..4000 {
            let x = f64::from(i) / 97.0;
            let (fast, exact) = (exp2(x), x.exp2());
            assert!(((fast - exact) / exact).abs() < 1e-7, "2^{x}: {fast} against {exact}");
        }
        assert_eq!(exp2(-5000.0), 2f64.powi(-1022), "clamped, never a subnormal or zero from a bad shift");
        assert!((exp(1.0) - std::f64::consts::E).abs() < 1e-6);
    }

    #[test]
    fn the_draws_log_odds_follow_digamma_and_trigamma() {
        // From α = β = 1 up, the draw's centre and spread match the exact functions to 1 %.
        for (a, b) in [(1.0, 1.0), (1.0, 3.0), (2.5, 1.5), (30.0, 1.2), (8.0, 40.0)] {
            let belief = Belief { alpha: a, beta: b };
            let logit = |p: f64| (p / (1.0 - p)).ln();
            let centre = logit(belief.draw(0.0));
            let spread = logit(belief.draw(1.0)) - centre;
            let (exact_centre, exact_spread) = (digamma(a) - digamma(b), (trigamma(a) + trigamma(b)).sqrt());
            assert!((centre - exact_centre).abs() < 0.01 * exact_centre.abs().max(1.0), "{a} {b}: {centre}");
            assert!((spread - exact_spread).abs() < 0.01 * exact_spread, "{a} {b}: {spread}");
        }
    }

    /// ψ(x) for x ≥ 1: shifted up to 6 by ψ(x) = ψ(x + 1) − 1/x, then the asymptotic series
    /// (error below 1e-8 there).
    fn digamma(mut x: f64) -> f64 {
        let mut shift = 0.0;
        while x < 6.0 {
            shift -= 1.0 / x;
            x += 1.0;
        }
        let inv2 = 1.0 / (x * x);
        shift + x.ln() - 0.5 / x - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 / 252.0))
    }

    /// ψ′(x) for x ≥ 1, the same way: ψ′(x) = ψ′(x + 1) + 1/x².
    fn trigamma(mut x: f64) -> f64 {
        let mut shift = 0.0;
        while x < 6.0 {
            shift += 1.0 / (x * x);
            x += 1.0;
        }
        let inv = 1.0 / x;
        let inv2 = inv * inv;
        shift + inv + 0.5 * inv2 + inv * inv2 * (1.0 / 6.0 - inv2 * (1.0 / 30.0 - inv2 / 42.0))
    }

    #[test]
    fn digamma_and_trigamma_match_known_values() {
        assert!((digamma(1.0) + 0.577_215_664_9).abs() < 1e-8, "−γ");
        assert!((trigamma(1.0) - std::f64::consts::PI.powi(2) / 6.0).abs() < 1e-8, "π²/6");
        assert!((digamma(10.5) - 2.303_001_034_3).abs() < 1e-8);
    }

    #[test]
    fn a_confident_belief_near_an_edge_never_draws_the_other_edge() {
        // Thirty answers and no failure on a prior of 0.98: α ≈ 32, β ≈ 0.04.
        let confident = Belief::new(30.0, 0.0, 0.98, 2.0);
        for z in [-2.45, -1.0, 0.0, 1.0, 2.45] {
            assert!(confident.draw(z) > 0.6, "z {z}: {}", confident.draw(z));
        }
    }

    #[test]
    fn a_plain_fading_count_fades_like_the_atomic_one() {
        let mut f = Fading::default();
        f.add(4.0, SEC, HALF);
        assert!(close(f.get(121 * SEC, HALF), 1.0));
        f.add(1.0, 121 * SEC, HALF);
        assert!(close(f.get(121 * SEC, HALF), 2.0));
    }
}
