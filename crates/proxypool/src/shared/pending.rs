//! Verdicts this instance made while Redis was away, to announce when it returns.
//!
//! One slot per proxy's ejection and per proxy and host's ban: a later verdict replaces
//! an earlier one (a restoration replaces the ejection it ends). Each keeps its deadline,
//! so that what is announced late lasts only what it has left.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::health::{HealthEvent, HealthEventKind};
use crate::proxy::ProxyId;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Ejection,
    Ban(Option<Arc<str>>),
}

/// The held verdicts, at most `max` of them.
#[derive(Debug)]
pub(crate) struct Pending {
    max: usize,
    held: HashMap<(ProxyId, Slot), (HealthEvent, Option<Instant>)>,
}

impl Pending {
    pub(crate) fn new(max: usize) -> Pending {
        Pending { max, held: HashMap::new() }
    }

    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Holds `event`, decided at `now`; false when full (it is dropped).
    pub(crate) fn hold(&mut self, event: HealthEvent, now: Instant) -> bool {
        // Durations are bounded by the pool's config; one beyond the clock's range is
        // dropped as if it had run out.
        let until = |duration: &std::time::Duration| Some(now.checked_add(*duration).unwrap_or(now));
        let (slot, deadline) = match &event.kind {
            HealthEventKind::Ejected { duration } => (Slot::Ejection, until(duration)),
            HealthEventKind::Banned { host, duration } => (Slot::Ban(host.clone()), until(duration)),
            HealthEventKind::Restored => (Slot::Ejection, None),
        };
        let key = (event.proxy.clone(), slot);
        if !self.held.contains_key(&key) && self.held.len() >= self.max {
            return false;
        }
        self.held.insert(key, (event, deadline));
        true
    }

    /// Every held verdict still running at `now`, lasting what it has left; the rest are
    /// forgotten.
    pub(crate) fn take(&mut self, now: Instant) -> Vec<HealthEvent> {
        self.held
            .drain()
            .filter_map(|(_, (mut event, deadline))| {
                let left = match deadline {
                    None => return Some(event),
                    Some(deadline) => deadline.saturating_duration_since(now),
                };
                if left.is_zero() {
                    return None;
                }
                match &mut event.kind {
                    HealthEventKind::Ejected { duration } | HealthEventKind::Banned { duration, .. } => {
                        *duration = left
                    }
                    HealthEventKind::Restored => {}
                }
                Some(event)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn event(id: &str, kind: HealthEventKind) -> HealthEvent {
        HealthEvent { proxy: ProxyId::from(id), kind }
    }

    #[test]
    fn a_late_verdict_lasts_only_what_it_has_left() {
        let mut pending = Pending::new(10);
        let start = Instant::now();
        pending.hold(event("a", HealthEventKind::Ejected { duration: 30 * SEC }), start);
        pending.hold(event("b", HealthEventKind::Ejected { duration: 5 * SEC }), start);
        let taken = pending.take(start + 10 * SEC);
        assert_eq!(taken, vec![event("a", HealthEventKind::Ejected { duration: 20 * SEC })], "b ran out meanwhile");
        assert!(pending.is_empty());
    }

    #[test]
    fn a_restoration_replaces_the_ejection_and_bans_keep_a_slot_per_host() {
        let mut pending = Pending::new(10);
        let now = Instant::now();
        pending.hold(event("a", HealthEventKind::Ejected { duration: 30 * SEC }), now);
        pending.hold(event("a", HealthEventKind::Restored), now);
        for host in ["x.example", "y.example"] {
            pending.hold(event("a", HealthEventKind::Banned { host: Some(Arc::from(host)), duration: SEC }), now);
        }
        assert_eq!(pending.len(), 3);
        assert!(pending.take(now).contains(&event("a", HealthEventKind::Restored)));
    }

    #[test]
    fn a_full_hold_drops_new_slots_but_updates_held_ones() {
        let mut pending = Pending::new(1);
        let now = Instant::now();
        assert!(pending.hold(event("a", HealthEventKind::Ejected { duration: SEC }), now));
        assert!(!pending.hold(event("b", HealthEventKind::Ejected { duration: SEC }), now));
        assert!(pending.hold(event("a", HealthEventKind::Ejected { duration: 2 * SEC }), now));
        assert_eq!(pending.take(now), vec![event("a", HealthEventKind::Ejected { duration: 2 * SEC })]);
    }
}
