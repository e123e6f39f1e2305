use std::sync::atomic::{AtomicU32, Ordering};

use super::{Balancer, Candidates};

/// Each pick takes the next eligible candidate in turn.
///
/// One shared counter: O(1) per pick while most candidates are eligible. When the turn
/// falls on ineligible candidates (busy, ejected, banned, or filtered out of a set the
/// indexes could not narrow), the counter skips past them as well, so the eligible ones
/// keep taking equal turns instead of the first after a gap taking the gap's share.
/// The counter is shared by every candidate set the balancer serves, so across
/// different requirements the rotation is even only on average.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicU32,
}

impl RoundRobin {
    /// A round robin starting at the first candidate.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    #[inline]
    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        // Snapshots hold at most u32::MAX proxies (slots are u32).
        let n = u32::try_from(c.len()).unwrap_or(u32::MAX);
        if n == 0 {
            return None;
        }
        // The counter wraps at `n` itself, which spares the pick a division; a counter
        // left beyond `n` by a larger candidate set is brought back by one modulo.
        let next = |i: u32| if i + 1 >= n { 0 } else { i + 1 };
        let (Ok(start) | Err(start)) = self.next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |i| Some(next(i)));
        let start = if start < n { start } else { start % n };
        if c.is_eligible(start as usize) {
            return Some(start as usize);
        }
        let found = (start + 1..n).chain(0..start).find(|&i| c.is_eligible(i as usize))?;
        // The next turn goes to the candidate after the one chosen, not to one of the
        // ineligible ones skipped (which would hand the chosen one their turns again).
        self.next.store(next(found), Ordering::Relaxed);
        Some(found as usize)
    }
}
