//! [`PendingChange`]: a change an engine recommended, counted as made only once a later sample
//! runs it.
//!
//! An engine cannot see whether its answer was applied: the actuator may have failed, or a
//! wrapper ([`CostCap`](crate::CostCap), [`Scheduled`](crate::Scheduled)) may have answered
//! another number. Kubernetes stores a scale event only after the scale update succeeded
//! (`reconcileAutoscaler` calls `storeScaleEvent` after `UpdateScale`); the engines here learn
//! the same from the next sample. The change counts, dated when it was recommended, if that
//! sample runs exactly the recommended replicas, and is forgotten otherwise.

use crate::time::Timestamp;

/// A change from `from` to `to` replicas, recommended at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) from: u32,
    pub(crate) to: u32,
    pub(crate) at: Timestamp,
}

/// The last recommended change, until a sample confirms or refutes it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PendingChange(Option<Change>);

impl PendingChange {
    /// Remembers a recommendation of `to` replicas while `from` run; nothing if they are equal.
    pub(crate) fn record(&mut self, from: u32, to: u32, at: Timestamp) {
        self.0 = (from != to).then_some(Change { from, to, at });
    }

    /// The pending change if `running` replicas show it made; forgotten either way.
    pub(crate) fn confirm(&mut self, running: u32) -> Option<Change> {
        self.0.take().filter(|change| change.to == running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_counts_only_when_the_next_sample_runs_it() {
        let at = Timestamp::from_unix_secs(0);
        let mut pending = PendingChange::default();
        pending.record(2, 6, at);
        assert_eq!(pending.confirm(6), Some(Change { from: 2, to: 6, at }));
        assert_eq!(pending.confirm(6), None, "confirmed once");
        pending.record(2, 6, at);
        assert_eq!(pending.confirm(2), None, "not applied");
        assert_eq!(pending.confirm(6), None, "forgotten after a refuting sample");
        pending.record(3, 3, at);
        assert_eq!(pending.confirm(3), None, "no change, nothing to confirm");
    }
}
