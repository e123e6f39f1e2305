//! The randomness balancers draw from, through [`Candidates`](crate::balance::Candidates).
//!
//! Hand-written on purpose: a pick draws a few numbers, and `rand::rng()` costs about
//! 5 ns a draw (thread-local handle plus a ChaCha block), a third of a cheap pick's
//! budget. wyrand costs about 1 ns and is plenty for spreading load and for Thompson
//! sampling; nothing here needs unpredictability.
//!
//! Unseeded, each thread has its own generator (no shared write on the pick path).
//! Seeded ([`ProxyPoolBuilder::seed`](crate::ProxyPoolBuilder::seed)), the pool has one
//! generator, advanced by an atomic add: every sequence of picks made from one thread is
//! then reproducible, which simulations and tests need; picks from several threads
//! interleave their draws as the threads interleave.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

const INCREMENT: u64 = 0xa076_1d64_78bd_642f;

/// Where a pool's random numbers come from.
#[derive(Debug)]
pub(crate) enum RandomSource {
    /// A generator per thread, seeded from the OS.
    PerThread,
    /// One generator for the pool, from a seed.
    Seeded(AtomicU64),
}

thread_local! {
    static WYRAND: Cell<u64> = const { Cell::new(0) };
}

/// A thread's first state: out of line, so that the draw itself stays a few instructions
/// inlined where it is used.
#[cold]
#[inline(never)]
fn thread_seed() -> u64 {
    rand::random::<u64>() | 1
}

#[inline]
fn finish(s: u64) -> u64 {
    let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

impl RandomSource {
    /// A source seeded with `seed`, or one per thread.
    pub(crate) fn new(seed: Option<u64>) -> RandomSource {
        match seed {
            Some(seed) => RandomSource::Seeded(AtomicU64::new(seed)),
            None => RandomSource::PerThread,
        }
    }

    /// 64 uniformly random bits.
    #[inline]
    pub(crate) fn next_u64(&self) -> u64 {
        match self {
            RandomSource::PerThread => WYRAND.with(|state| {
                let mut s = state.get();
                if s == 0 {
                    s = thread_seed();
                }
                s = s.wrapping_add(INCREMENT);
                state.set(s);
                finish(s)
            }),
            RandomSource::Seeded(state) => {
                finish(state.fetch_add(INCREMENT, Ordering::Relaxed).wrapping_add(INCREMENT))
            }
        }
    }

    /// A uniformly random position below `n` (n > 0): Lemire's multiply-shift, no division.
    #[inline]
    pub(crate) fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Two approximately standard normal numbers from one draw (see [`normal_pair`]).
    #[inline]
    pub(crate) fn normal_pair(&self) -> (f64, f64) {
        normal_pair(self.next_u64())
    }
}

/// Two approximately standard normal numbers from 64 random bits: each is a sum of two
/// 16-bit uniforms, centred and scaled to unit variance (a triangular distribution with
/// the normal's mean and spread, bounded by ±√6). Thompson sampling needs draws that
/// spread like the posterior; the normal's far tails matter little, and this costs a
/// few integer operations where Box–Muller costs a logarithm, a root and a cosine.
#[inline]
pub(crate) fn normal_pair(bits: u64) -> (f64, f64) {
    const SCALE: f64 = 1.0 / 65_536.0;
    // Var(U1 + U2) = 1/6 for U uniform on [0, 1): scale by √6.
    const SQRT_6: f64 = 2.449_489_742_783_178;
    let u = |shift: u32| f64::from(((bits >> shift) & 0xffff) as u32) * SCALE;
    ((u(0) + u(16) - 1.0) * SQRT_6, (u(32) + u(48) - 1.0) * SQRT_6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_source_repeats_itself_and_differs_by_seed() {
        let draws = |seed| {
            let r = RandomSource::new(Some(seed));
            (0..8).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
    }

    #[test]
    fn positions_are_below_n_and_cover_it() {
        let r = RandomSource::new(Some(1));
        let mut seen = [0usize; 5];
        for _ in 0..5_000 {
            seen[r.below(5)] += 1;
        }
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn normals_have_mean_zero_and_unit_variance() {
        let r = RandomSource::new(Some(3));
        let (mut sum, mut squares, n) = (0.0, 0.0, 20_000);
        for _ in 0..n / 2 {
            let (a, b) = r.normal_pair();
            sum += a + b;
            squares += a * a + b * b;
        }
        let mean = sum / f64::from(n);
        let variance = squares / f64::from(n) - mean * mean;
        assert!(mean.abs() < 0.03 && (variance - 1.0).abs() < 0.05, "mean {mean}, variance {variance}");
    }
}
