use super::{Balancer, Candidates, min_eligible_by};

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
        min_eligible_by(c, |i| c.in_flight(i), |&load| load == 0)
    }
}
