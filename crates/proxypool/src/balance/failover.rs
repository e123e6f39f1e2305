use super::{Balancer, Candidates};

/// The first eligible proxy in the pool's order: a primary and its backups. Every request
/// goes through the first proxy that may serve it; the next one takes over only while it
/// is ejected, banned by the target host, at its session limit or tried by the request
/// already.
///
/// For a fleet with a preferred exit (a contracted proxy, with pay-per-use ones as
/// backups), and for tests that must know which proxy a request gets first.
#[derive(Debug, Default)]
pub struct Failover;

impl Failover {
    /// The balancer.
    pub fn new() -> Self {
        Failover
    }
}

impl Balancer for Failover {
    fn name(&self) -> &'static str {
        "failover"
    }

    fn pick(&self, c: &Candidates<'_>) -> Option<usize> {
        (0..c.len()).find(|&i| c.is_eligible(i))
    }
}
