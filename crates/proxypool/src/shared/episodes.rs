//! How long this pool lets a remote verdict last.
//!
//! A verdict stays in Redis for as long as the instance that decided it chose, and polling
//! reads it again every `poll_interval`: applied each time for its remaining time, a verdict
//! longer than this pool's own maximum would keep the proxy out for the whole of it. So each
//! remote ejection, and each remote ban of a host, is an episode that starts when this pool
//! first hears of it and ends at most this pool's maximum later; the episode is forgotten
//! once a complete poll no longer shows its verdict.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::health::{HealthEvent, HealthEventKind};
use crate::proxy::ProxyId;

/// What a verdict is about: a proxy's ejection, or its ban by one host.
type Subject = (ProxyId, Option<Option<Arc<str>>>);

fn subject(event: &HealthEvent) -> Option<Subject> {
    match &event.kind {
        HealthEventKind::Ejected { .. } => Some((event.proxy.clone(), None)),
        HealthEventKind::Banned { host, .. } => Some((event.proxy.clone(), Some(host.clone()))),
        HealthEventKind::Restored => None,
    }
}

/// The running episodes: until when each may last.
#[derive(Default)]
pub(crate) struct Episodes {
    until: HashMap<Subject, Instant>,
}

impl Episodes {
    /// `event` as this pool may apply it now: an ejection or ban cut to what is left of its
    /// episode (`None` once that is over), a restoration as it is (it ends the proxy's
    /// ejection episode).
    pub(crate) fn clamp(
        &mut self,
        event: &HealthEvent,
        max_ejection: Duration,
        max_ban: Duration,
        now: Instant,
    ) -> Option<HealthEvent> {
        let (kind, max) = match &event.kind {
            HealthEventKind::Ejected { duration } => (HealthEventKind::Ejected { duration: *duration }, max_ejection),
            HealthEventKind::Banned { host, duration } => {
                (HealthEventKind::Banned { host: host.clone(), duration: *duration }, max_ban)
            }
            HealthEventKind::Restored => {
                self.until.remove(&(event.proxy.clone(), None));
                return Some(event.clone());
            }
        };
        let key = subject(event)?;
        // `max` is a validated setting (at most a week); the fallback only guards the clock.
        let until = *self.until.entry(key).or_insert_with(|| now.checked_add(max).unwrap_or(now));
        let left = until.saturating_duration_since(now);
        if left.is_zero() {
            return None;
        }
        let kind = match kind {
            HealthEventKind::Ejected { duration } => HealthEventKind::Ejected { duration: duration.min(left) },
            HealthEventKind::Banned { host, duration } => {
                HealthEventKind::Banned { host, duration: duration.min(left) }
            }
            HealthEventKind::Restored => HealthEventKind::Restored,
        };
        Some(HealthEvent { proxy: event.proxy.clone(), kind })
    }

    /// Forgets the episodes whose verdicts a complete poll (`polled`) no longer shows.
    pub(crate) fn retain_polled<'a>(&mut self, polled: impl IntoIterator<Item = &'a HealthEvent>) {
        let running: std::collections::HashSet<Subject> = polled.into_iter().filter_map(subject).collect();
        self.until.retain(|key, _| running.contains(key));
    }

    /// Episodes remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ejected(secs: u64) -> HealthEvent {
        HealthEvent {
            proxy: ProxyId::from("p1"),
            kind: HealthEventKind::Ejected { duration: Duration::from_secs(secs) },
        }
    }

    fn duration_of(event: Option<HealthEvent>) -> Option<Duration> {
        match event?.kind {
            HealthEventKind::Ejected { duration } | HealthEventKind::Banned { duration, .. } => Some(duration),
            HealthEventKind::Restored => None,
        }
    }

    #[test]
    fn a_verdict_heard_again_never_lasts_past_the_local_maximum_from_first_hearing() {
        let (mut episodes, max) = (Episodes::default(), Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(duration_of(episodes.clamp(&ejected(60), max, max, start)), Some(Duration::from_secs(10)));
        let later = start + Duration::from_secs(4);
        assert_eq!(duration_of(episodes.clamp(&ejected(56), max, max, later)), Some(Duration::from_secs(6)));
        assert_eq!(episodes.clamp(&ejected(50), max, max, start + Duration::from_secs(10)), None);
    }

    #[test]
    fn a_poll_without_the_verdict_ends_its_episode_and_a_restoration_ends_the_ejection() {
        let (mut episodes, max) = (Episodes::default(), Duration::from_secs(10));
        let start = Instant::now();
        episodes.clamp(&ejected(60), max, max, start);
        episodes.retain_polled([&ejected(50)]);
        assert_eq!(episodes.len(), 1);
        episodes.retain_polled([]);
        assert_eq!(episodes.len(), 0);
        episodes.clamp(&ejected(60), max, max, start);
        let restored = HealthEvent { proxy: ProxyId::from("p1"), kind: HealthEventKind::Restored };
        assert!(episodes.clamp(&restored, max, max, start).is_some());
        assert_eq!(episodes.len(), 0);
    }
}
