use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Balancer, Candidates};

/// Each pick takes the next candidate in turn, skipping ineligible ones.
///
/// One shared counter: O(1) per pick while most candidates are eligible.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
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
        let n = c.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (start..n).chain(0..start).find(|&i| c.is_eligible(i))
    }
}
