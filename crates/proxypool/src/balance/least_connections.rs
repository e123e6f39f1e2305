use super::{Balancer, Candidates, random_below};

/// The eligible candidate with the fewest requests in flight.
///
/// The scan starts at a random position so ties rotate instead of piling on the first
/// proxy, and stops early at an idle proxy, which nothing can beat.
#[derive(Debug, Default)]
pub struct LeastConnections;

impl LeastConnections {
    /// The balancer.
    pub fn new() -> Self {
        LeastConnections
    }
}

impl Balancer for LeastConnections {
    fn name(&self) -> &'static str {
        "least_connections"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let n = c.len();
        if n == 0 {
            return None;
        }
        let start = random_below(n);
        let mut best: Option<(usize, u32)> = None;
        for i in (start..n).chain(0..start) {
            if !c.is_eligible(i) {
                continue;
            }
            let load = c.health(i).in_flight();
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
                if load == 0 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
    }
}
