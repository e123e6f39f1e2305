//! What the HPA remembers between rounds: its past (unstabilised) recommendations, for the
//! stabilisation windows, and its past scale events, for the policies' periods. A change
//! becomes a scale event only once the next round's sample runs it (see
//! [`PendingChange`]).
//!
//! Both lists are kept as Kubernetes keeps them — one entry older than every window (or
//! period) is overwritten per round rather than all being pruned — so that even the edge
//! cases (an entry exactly one window old, down policies longer than up ones) behave the same.

use std::time::Duration;

use super::config::{PolicyKind, Rules, SelectPolicy};
use crate::pending::PendingChange;
use crate::time::{Timestamp, older_than, within};

#[derive(Debug, Clone, Copy)]
struct Recommended {
    replicas: i64,
    at: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    change: i64,
    at: Timestamp,
    outdated: bool,
}

/// Recommendations and scale events of one HPA.
#[derive(Debug, Clone, Default)]
pub(crate) struct History {
    recommendations: Vec<Recommended>,
    up_events: Vec<ScaleEvent>,
    down_events: Vec<ScaleEvent>,
    /// The last recommended change, a scale event once a sample shows it applied.
    pending: PendingChange,
}

impl History {
    /// Kubernetes records the replicas found at the first round as a recommendation, so a
    /// target starting large does not shrink before the downscale window has passed.
    pub(crate) fn record_initial(&mut self, replicas: i64, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommended { replicas, at: now });
        }
    }

    /// Stores `replicas` at `now`, over the last entry for which `old` holds, else appended.
    fn store(&mut self, replicas: i64, now: Timestamp, old: Option<usize>) {
        let entry = Recommended { replicas, at: now };
        match old {
            Some(index) => self.recommendations[index] = entry,
            None => self.recommendations.push(entry),
        }
    }

    /// Without a behaviour: the highest of `desired` and the recommendations of the last
    /// `window` (one exactly `window` old included), then `desired` is stored.
    pub(crate) fn stabilize_down(&mut self, desired: i64, window: Duration, now: Timestamp) -> i64 {
        let mut highest = desired;
        let mut old = None;
        for (index, rec) in self.recommendations.iter().enumerate() {
            if older_than(now, rec.at, window) {
                old = Some(index);
            } else {
                highest = highest.max(rec.replicas);
            }
        }
        self.store(desired, now, old);
        highest
    }

    /// With a behaviour: `current` brought within [lowest recommendation of the up window,
    /// highest of the down window] (both windows exclude an entry exactly their length old),
    /// then `desired` is stored.
    pub(crate) fn stabilize(
        &mut self,
        current: i64,
        desired: i64,
        up_window: Duration,
        down_window: Duration,
        now: Timestamp,
    ) -> i64 {
        let (mut up, mut down) = (desired, desired);
        let mut old = None;
        for (index, rec) in self.recommendations.iter().enumerate() {
            if within(now, rec.at, up_window) {
                up = up.min(rec.replicas);
            }
            if within(now, rec.at, down_window) {
                down = down.max(rec.replicas);
            }
            if older_than(now, rec.at, up_window) && older_than(now, rec.at, down_window) {
                old = Some(index);
            }
        }
        self.store(desired, now, old);
        current.max(up).min(down)
    }

    /// Remembers a recommended change from `from` to `to` replicas; [`settle`](Self::settle)
    /// turns it into a scale event if the next round finds it applied.
    pub(crate) fn recommend_scale(&mut self, from: u32, to: u32, now: Timestamp) {
        self.pending.record(from, to, now);
    }

    /// Stores the pending change as a scale event, dated when it was recommended, if `running`
    /// replicas show it applied (Kubernetes stores an event only after the scale update
    /// succeeded); forgets it either way. Only with a behaviour: the events feed the policies.
    pub(crate) fn settle(&mut self, running: u32, up: &Rules, down: &Rules) {
        if let Some(change) = self.pending.confirm(running) {
            self.record_scale(i64::from(change.from), i64::from(change.to), up, down, change.at);
        }
    }

    /// Records a change from `from` to `to` replicas made at `now`.
    fn record_scale(&mut self, from: i64, to: i64, up: &Rules, down: &Rules, now: Timestamp) {
        let (events, longest, change) = if to > from {
            (&mut self.up_events, up.longest_period(), to - from)
        } else {
            (&mut self.down_events, down.longest_period(), from - to)
        };
        let mut old = None;
        for (index, event) in events.iter_mut().enumerate() {
            if older_than(now, event.at, longest) {
                event.outdated = true;
            }
            if event.outdated {
                old = Some(index);
            }
        }
        let event = ScaleEvent { change, at: now, outdated: false };
        match old {
            Some(index) => events[index] = event,
            None => events.push(event),
        }
    }

    /// Replicas at the start of a `period` ending now: current, less what was added, plus what
    /// was removed within it.
    fn period_start(&self, current: i64, period: Duration, now: Timestamp) -> i64 {
        let sum = |events: &[ScaleEvent]| -> i64 {
            events.iter().filter(|e| within(now, e.at, period)).map(|e| e.change).sum()
        };
        current - sum(&self.up_events) + sum(&self.down_events)
    }

    /// The most replicas the scale-up policies allow now.
    pub(crate) fn scale_up_limit(&self, current: i64, rules: &Rules, now: Timestamp) -> i64 {
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => i64::min,
            SelectPolicy::Max => i64::max,
        };
        let proposals = rules.policies.iter().map(|policy| {
            let start = self.period_start(current, policy.period, now);
            match policy.kind {
                PolicyKind::Pods => start + i64::from(policy.value),
                // Rounded up, else a small target could never grow (and in floating point,
                // as Kubernetes computes it).
                PolicyKind::Percent => (start as f64 * (1.0 + f64::from(policy.value) / 100.0))
                    .ceil()
                    .clamp(i64::MIN as f64, i64::MAX as f64) as i64,
            }
        });
        proposals.reduce(pick).unwrap_or(current)
    }

    /// The fewest replicas the scale-down policies allow now.
    pub(crate) fn scale_down_limit(&self, current: i64, rules: &Rules, now: Timestamp) -> i64 {
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current,
            // The smallest change down is the highest floor.
            SelectPolicy::Min => i64::max,
            SelectPolicy::Max => i64::min,
        };
        let proposals = rules.policies.iter().map(|policy| {
            let start = self.period_start(current, policy.period, now);
            match policy.kind {
                PolicyKind::Pods => start - i64::from(policy.value),
                // Truncated toward zero, as Kubernetes' int32 conversion does.
                PolicyKind::Percent => (start as f64 * (1.0 - f64::from(policy.value) / 100.0)) as i64,
            }
        });
        proposals.reduce(pick).unwrap_or(current)
    }
}
