use std::sync::{Mutex, PoisonError};

use super::{Balancer, Candidates};

/// Smooth weighted round robin (nginx's algorithm): over any run of picks whose eligible
/// set does not change, each proxy gets exactly its weight's share per cycle of
/// `sum(weights)` picks, and the picks of a heavy proxy are spread between the others
/// instead of coming in a burst.
///
/// Each pick adds every eligible candidate's weight to its running score, takes the
/// highest, and subtracts the total from the winner. That is O(candidates) per pick and
/// needs the scores to change together, so this balancer serialises its picks behind a
/// mutex; the pool's other balancers take no lock.
#[derive(Debug, Default)]
pub struct SmoothWeightedRoundRobin {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: u64,
    current: Vec<i64>,
}

impl SmoothWeightedRoundRobin {
    /// A balancer with all running scores at zero.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for SmoothWeightedRoundRobin {
    fn name(&self) -> &'static str {
        "smooth_weighted_round_robin"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.generation != c.generation() || state.current.len() != c.pool_len() {
            // Slots are renumbered when the pool changes: start the scores afresh.
            state.generation = c.generation();
            state.current.clear();
            state.current.resize(c.pool_len(), 0);
        }
        let mut total = 0i64;
        let mut best: Option<(usize, usize)> = None;
        for i in 0..c.len() {
            if !c.is_eligible(i) {
                continue;
            }
            let slot = c.slot(i);
            let weight = i64::from(c.weight(i));
            state.current[slot] += weight;
            total += weight;
            if best.is_none_or(|(_, b)| state.current[slot] > state.current[b]) {
                best = Some((i, slot));
            }
        }
        let (i, slot) = best?;
        state.current[slot] -= total;
        Some(i)
    }
}
