use super::{Balancer, Candidates, min_eligible_by};

/// The eligible candidate with the lowest latency EWMA.
///
/// A proxy with no latency sample yet counts as fastest while it is idle, so every new
/// proxy is tried, and as slowest while it has a request in flight, so it cannot take
/// every request before its first answer. Ties go to fewer requests in flight, then
/// rotate through a random scan start.
#[derive(Debug, Default)]
pub struct LeastLatency;

impl LeastLatency {
    /// The balancer.
    pub fn new() -> Self {
        LeastLatency
    }
}

impl Balancer for LeastLatency {
    fn name(&self) -> &'static str {
        "least_latency"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        let key = |i: usize| {
            let in_flight = c.in_flight(i);
            let latency = match c.health(i).latency_secs() {
                Some(secs) => secs,
                None if in_flight == 0 => f64::NEG_INFINITY,
                None => f64::INFINITY,
            };
            (latency, in_flight)
        };
        // Nothing beats an idle proxy nobody has measured.
        min_eligible_by(c, key, |&(latency, _)| latency == f64::NEG_INFINITY)
    }
}
