use super::{Balancer, Candidates, random_below};

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
        let n = c.len();
        if n == 0 {
            return None;
        }
        let start = random_below(n);
        let mut best: Option<(usize, (f64, u32))> = None;
        for i in (start..n).chain(0..start) {
            if !c.is_eligible(i) {
                continue;
            }
            let health = c.health(i);
            let in_flight = health.in_flight();
            let latency = match health.latency_secs() {
                Some(secs) => secs,
                None if in_flight == 0 => {
                    best = Some((i, (f64::NEG_INFINITY, 0)));
                    break; // nothing beats an idle proxy nobody has measured
                }
                None => f64::INFINITY,
            };
            if best.is_none_or(|(_, b)| (latency, in_flight) < b) {
                best = Some((i, (latency, in_flight)));
            }
        }
        best.map(|(i, _)| i)
    }
}
