use super::{Balancer, Candidates, random_below};

/// The eligible candidate with the lowest latency EWMA.
///
/// A proxy with no latency sample yet counts as fastest, so every new proxy is tried
/// once before the averages decide. Ties rotate through a random scan start.
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
        let mut best: Option<(usize, f64)> = None;
        for i in (start..n).chain(0..start) {
            if !c.is_eligible(i) {
                continue;
            }
            let latency = c.health(i).latency().map_or(0.0, |d| d.as_secs_f64());
            if best.is_none_or(|(_, b)| latency < b) {
                best = Some((i, latency));
                if latency == 0.0 {
                    break;
                }
            }
        }
        best.map(|(i, _)| i)
    }
}
