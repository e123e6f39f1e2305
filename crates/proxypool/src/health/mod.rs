//! Passive health: what every reported [`Outcome`] teaches the pool.
//!
//! Each proxy's health is a set of atomics: in-flight count, latency EWMA and
//! peak EWMA, a window of recent outcomes, consecutive failures, ejection state and
//! counters, fading evidence of whether it answers and how it stands against its peers,
//! plus a per-target-host table of answers, request rate and bans. The pool keeps the
//! per-site side (how each site treats each kind of proxy, its rate tolerance, latency
//! quantiles and best proxies), and from both the default balancer estimates each
//! proxy's chance of success at a site (see `ExpectedSuccess`). From these also come the
//! seed's quality score (0.7 × success rate + 0.3 × latency part, the latency part full
//! up to 2 s and falling linearly to 0 at 5 s) and outlier ejection: after N network
//! failures or timeouts in a row, or a success rate below the floor, a proxy is out for
//! a time that grows with each ejection, within a cap on the share of the pool ejected,
//! and ignored altogether in panic mode.
//!
//! Every ejection, ban and early restoration the pool decides is also a [`HealthEvent`]
//! for whoever subscribes ([`ProxyPool::subscribe_health`](crate::ProxyPool::subscribe_health)),
//! and verdicts decided elsewhere can be applied
//! ([`ProxyPool::apply_remote`](crate::ProxyPool::apply_remote)); see [`events`].

mod context;
mod ejection;
pub mod events;
pub(crate) mod evidence;
mod ewma;
mod hot;
pub(crate) mod latency;
pub(crate) mod learning;
mod outcome;
pub(crate) mod sites;
mod targets;
mod window;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use context::{HealthContext, Picked};
pub(crate) use ejection::EjectionTracker;
pub use events::{HealthEvent, HealthEventKind, RemoteEffect};
use evidence::FadingPair;
use ewma::Ewma;
use hot::HotCell;
pub(crate) use hot::{Chunk, Hot, HotRef, HotTable};
pub use latency::LatencyQuantiles;
pub use outcome::{Outcome, OutcomeKind, ProbeResult};
use targets::TargetTable;
pub(crate) use targets::{ActiveBan, Fades, Refusal, TargetView};
use window::OutcomeWindow;

use crate::clock::{Nanos, duration_to_nanos};
use crate::config::{HealthConfig, PoolConfig};

/// The live state of one proxy, shared by the pool and every lease on it.
///
/// What a round-robin or P2C pick reads sits in the proxy's line of the pool's dense
/// table ([`hot`]); what an estimate reads besides (per-host answers, standing,
/// latency) comes first here, aligned.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct ProxyHealth {
    /// What picks read (in-flight count, ejection, ban hint, peak latency, answer share),
    /// in the pool's dense table rather than here; see [`hot`].
    hot: HotCell,
    targets: TargetTable,
    /// Answers that were not bans, against what its peers' acceptance at each host
    /// predicted for those answers, over every host: the proxy's standing (one banned
    /// where its kind is welcome stands low; one banned where its kind is banned does not).
    standing: FadingPair,
    latency: Ewma,
    window: OutcomeWindow,
    consecutive_failures: AtomicU32,
    times_ejected: AtomicU32,
    last_success: AtomicU64,
    requests: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    timeouts: AtomicU64,
    bans: AtomicU64,
    slow: AtomicU64,
    removed: AtomicBool,
}

/// Latency samples are capped here (a day), so that `Duration::MAX` meaning "no timeout"
/// cannot overflow the averages or the `Duration`s made from them.
const MAX_SAMPLE_SECS: f64 = 86_400.0;

/// What a report changed, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Ejected { until: Nanos },
    Banned { until: Nanos },
}

/// What a report changed, and what the host now says of the proxy (when the report
/// named a host and the host answered or was asked).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recorded {
    pub(crate) effect: Effect,
    pub(crate) target: Option<TargetView>,
    /// The host's answer counted as evidence of whether it accepts the proxy (every
    /// answer but a 429 from a host that had accepted the proxy).
    pub(crate) answered: Option<bool>,
}

/// The peak EWMA's time constant in nanoseconds (`as_secs_f64` avoids a slow u128 to
/// f64 conversion).
fn tau_nanos(cfg: &HealthConfig) -> f64 {
    cfg.peak_decay.as_secs_f64() * 1e9
}

impl Default for ProxyHealth {
    /// A health with a line of its own, outside any pool's table.
    fn default() -> Self {
        ProxyHealth::new(HotCell::standalone())
    }
}

impl ProxyHealth {
    /// A fresh health on the line `hot`.
    pub(crate) fn new(hot: HotCell) -> ProxyHealth {
        ProxyHealth {
            hot,
            targets: TargetTable::default(),
            standing: FadingPair::default(),
            latency: Ewma::default(),
            window: OutcomeWindow::default(),
            consecutive_failures: AtomicU32::new(0),
            times_ejected: AtomicU32::new(0),
            last_success: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            bans: AtomicU64::new(0),
            slow: AtomicU64::new(0),
            removed: AtomicBool::new(false),
        }
    }

    /// The proxy's line in the dense table.
    #[inline]
    pub(crate) fn hot(&self) -> &Hot {
        self.hot.get()
    }

    /// A handle on that line, for snapshots and members.
    pub(crate) fn hot_ref(&self) -> HotRef {
        self.hot.share()
    }

    /// Requests in flight through this proxy now.
    #[inline]
    pub fn in_flight(&self) -> u32 {
        self.hot().in_flight()
    }

    /// Share of successes over the recent window; `None` before the first outcome.
    pub fn success_rate(&self) -> Option<f64> {
        self.window.view().success_rate()
    }

    /// Exponentially weighted average latency; `None` before the first sample.
    pub fn latency(&self) -> Option<Duration> {
        self.latency.get().map(|secs| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
    }

    /// The latency EWMA in seconds, without building a `Duration`.
    #[inline]
    pub fn latency_secs(&self) -> Option<f64> {
        self.latency.get()
    }

    /// Network failures and timeouts in a row since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// How many times this proxy has been ejected.
    pub fn times_ejected(&self) -> u32 {
        self.times_ejected.load(Ordering::Relaxed)
    }

    /// Share of answers from one target host that were not bans, as of `now` by the
    /// pool's clock (see [`Candidates`](crate::balance::Candidates)); `None` if the host
    /// never answered this proxy (or was forgotten).
    pub(crate) fn target_success_rate(&self, host: &str, now: Nanos, fades: Fades) -> Option<f64> {
        self.targets.success_rate(host, now, fades)
    }

    /// What `host` answered this proxy, as of `now`.
    #[inline]
    pub(crate) fn target_view(&self, host: &str, now: Nanos, fades: Fades) -> Option<TargetView> {
        self.targets.view(host, now, fades)
    }

    /// Answers against failures (network, timeout, abandoned), fading, as of `now`.
    #[inline]
    pub(crate) fn transport(&self, now: Nanos, half_life: f64) -> (f64, f64) {
        self.hot().transport.get(now, half_life)
    }

    /// Accepted answers against what its peers' acceptance predicted, over every host,
    /// fading, as of `now`.
    #[inline]
    pub(crate) fn standing(&self, now: Nanos, half_life: f64) -> (f64, f64) {
        self.standing.get(now, half_life)
    }

    /// True until the proxy's first success, and again after each ejection until the
    /// next: such a proxy is on probation.
    #[inline]
    pub fn is_proven(&self) -> bool {
        self.hot().proven.load(Ordering::Relaxed)
    }

    /// The time since which the oldest request in flight has been out at least; `None`
    /// when idle. When the pick that sent it did not read the clock, the time is not
    /// known: the first look (`now`) starts it, which errs on the late side.
    #[inline]
    pub(crate) fn stalled_since(&self, now: Nanos) -> Option<Nanos> {
        if self.in_flight() == 0 {
            return None;
        }
        match self.hot().stall_since.load(Ordering::Relaxed) {
            0 => {
                let _ = self.hot().stall_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
                Some(now)
            }
            at => Some(at),
        }
    }

    /// The seed's trend: the newer half of the last ten outcomes' success rate minus
    /// the older half's, in [-1, 1].
    pub fn trend(&self) -> f64 {
        self.window.view().trend()
    }

    /// The seed's quality score in [0, 1]. With no outcomes yet it is 1: a new proxy is
    /// tried, and its first failures bring the score down within a few requests.
    pub fn quality(&self, cfg: &HealthConfig) -> f64 {
        let success = self.success_rate().unwrap_or(1.0);
        let latency_part = match self.latency.get() {
            None => 1.0,
            Some(secs) => {
                let good = cfg.good_latency.as_secs_f64();
                let bad = cfg.bad_latency.as_secs_f64();
                ((bad - secs) / (bad - good)).clamp(0.0, 1.0)
            }
        };
        (0.7 * success + 0.3 * latency_part).min(1.0)
    }

    pub(crate) fn counters(&self) -> [u64; 6] {
        [&self.requests, &self.successes, &self.failures, &self.timeouts, &self.bans, &self.slow]
            .map(|c| c.load(Ordering::Relaxed))
    }

    pub(crate) fn last_success(&self) -> Option<Nanos> {
        let at = self.last_success.load(Ordering::Relaxed);
        (at != 0).then_some(at)
    }

    pub(crate) fn peak_latency(&self, now: Nanos, cfg: &HealthConfig) -> f64 {
        self.hot().peak.get(now, tau_nanos(cfg))
    }

    /// When this proxy's ejection ends, or `None` if it is in rotation. An ejection found
    /// expired is cleared here, once, with a fresh start: failures counted before it no
    /// longer count.
    #[inline]
    pub(crate) fn ejected_until(&self, now: impl FnOnce() -> Nanos) -> Option<Nanos> {
        let until = self.hot().ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        if until > now() {
            return Some(until);
        }
        // Reset before the ejection visibly ends, so that no report sees the proxy back in
        // rotation with the failures that ejected it still counted.
        self.consecutive_failures.store(0, Ordering::Release);
        self.window.reset();
        let _ = self.hot().ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire);
        None
    }

    #[inline]
    pub(crate) fn banned_until(&self, host: Option<&str>, now: impl FnOnce() -> Nanos) -> Option<Nanos> {
        self.targets.banned_until(host, &self.hot().ban_hint, now)
    }

    pub(crate) fn active_bans(&self, now: Nanos) -> Vec<ActiveBan> {
        self.targets.active_bans(&self.hot().ban_hint, now)
    }

    /// A removed proxy leaves the ejection count and never enters it again; leases still
    /// out may report on it without effect on the pool.
    pub(crate) fn mark_removed(&self, tracker: &EjectionTracker) {
        self.removed.store(true, Ordering::Release);
        let until = self.hot().ejected_until.swap(0, Ordering::AcqRel);
        if until != 0 {
            tracker.release(until);
        }
    }

    /// Records an active probe. A successful probe of an ejected proxy ends the
    /// ejection at once, with a fresh start; the first value is true when it did. The
    /// second is what a failed probe changed (it counts like a failed request).
    pub(crate) fn record_probe(
        &self,
        result: ProbeResult,
        now: Nanos,
        cfg: &PoolConfig,
        tracker: &EjectionTracker,
    ) -> (bool, Effect) {
        let latency = result.latency;
        if !result.success {
            let outcome = if result.timed_out { Outcome::timeout(latency) } else { Outcome::network_failure(latency) };
            return (false, self.record(&outcome, None, 1.0, now, cfg, tracker).effect);
        }
        let restored = self.restore(now, tracker);
        self.record(&Outcome::success(latency), None, 1.0, now, cfg, tracker);
        (restored, Effect::None)
    }

    /// Ends a running ejection now, with a fresh start; true when there was one.
    pub(crate) fn restore(&self, now: Nanos, tracker: &EjectionTracker) -> bool {
        let until = self.hot().ejected_until.load(Ordering::Acquire);
        let restored = until > now && {
            self.consecutive_failures.store(0, Ordering::Release);
            self.window.reset();
            self.hot().ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        };
        if restored {
            tracker.release(until);
        }
        restored
    }

    /// Ejects the proxy until `until` on another instance's word: within the same limits
    /// as a local ejection (the cap, or past it while this pool hears answers), and counted like one (the next local ejection lasts longer). A
    /// running ejection is only ever lengthened.
    pub(crate) fn eject_remote(
        &self,
        until: Nanos,
        now: Nanos,
        cfg: &PoolConfig,
        tracker: &EjectionTracker,
    ) -> RemoteEffect {
        if !cfg.ejection.enabled {
            return RemoteEffect::EjectionDisabled;
        }
        if self.removed.load(Ordering::Acquire) {
            return RemoteEffect::UnknownProxy;
        }
        if until <= now {
            return RemoteEffect::Unchanged;
        }
        if let Some(current) = self.ejected_until(|| now) {
            if current >= until {
                return RemoteEffect::Unchanged;
            }
            // Already holds a place under the cap: move its end. A race with a removal
            // can leave that place taken until `until`, when pruning frees it.
            if self.hot().ejected_until.compare_exchange(current, until, Ordering::AcqRel, Ordering::Acquire).is_err() {
                return RemoteEffect::Unchanged;
            }
            tracker.extend(current, until);
            return RemoteEffect::Applied;
        }
        if !tracker.try_reserve(until, now, &cfg.ejection) {
            return RemoteEffect::CapReached;
        }
        if self.hot().ejected_until.compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire).is_err() {
            tracker.release(until);
            return RemoteEffect::Unchanged;
        }
        if self.removed.load(Ordering::Acquire)
            && self.hot().ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            tracker.release(until);
            return RemoteEffect::UnknownProxy;
        }
        self.times_ejected.fetch_add(1, Ordering::AcqRel);
        RemoteEffect::Applied
    }

    /// Bars the proxy from `host` (`None`: every host) until `until` on another
    /// instance's word. Neither the host's statistics nor its ban streak change: those
    /// follow this pool's own reports.
    pub(crate) fn ban_remote(&self, host: Option<&str>, until: Nanos, now: Nanos, cfg: &PoolConfig) -> RemoteEffect {
        if until > now && self.targets.impose(host, until, (now, &self.hot().ban_hint), cfg) {
            RemoteEffect::Applied
        } else {
            RemoteEffect::Unchanged
        }
    }

    /// Records a report. `expected` is the probability that the host accepts a proxy of
    /// this one's kind, as its answers to them say now (1 without a host).
    pub(crate) fn record(
        &self,
        outcome: &Outcome,
        host: Option<&str>,
        expected: f64,
        now: Nanos,
        cfg: &PoolConfig,
        tracker: &EjectionTracker,
    ) -> Recorded {
        let h = &cfg.health;
        let fades = Fades::of(cfg);
        let secs = outcome.latency().as_secs_f64().min(MAX_SAMPLE_SECS);
        let tau = tau_nanos(h);
        self.requests.fetch_add(1, Ordering::Relaxed);
        // A completion: whatever is still in flight has been out since now at least.
        self.hot().stall_since.store(now, Ordering::Relaxed);
        match outcome.kind() {
            OutcomeKind::Success => {
                self.successes.fetch_add(1, Ordering::Relaxed);
                self.window.record(true, h.success_window);
                self.consecutive_failures.store(0, Ordering::Release);
                self.latency.record(secs, h.latency_alpha);
                self.hot().peak.record(secs, now, tau);
                self.last_success.store(now, Ordering::Relaxed);
                self.hot().transport.add(1.0, 0.0, now, fades.evidence);
                self.standing.add(1.0, expected, now, fades.evidence);
                self.hot().proven.store(true, Ordering::Relaxed);
                tracker.note_answer(now);
                let target = host.map(|host| self.targets.record_accepted(host, expected, now, cfg, fades));
                Recorded { effect: Effect::None, target, answered: Some(true) }
            }
            OutcomeKind::NetworkFailure | OutcomeKind::Timeout => {
                // An ejection that has run out ends here first, with its fresh start, so
                // that a late report from before it cannot eject the proxy again at once.
                let _ = self.ejected_until(|| now);
                if outcome.kind() == OutcomeKind::Timeout {
                    self.timeouts.fetch_add(1, Ordering::Relaxed);
                    // A timeout is a latency of at least the timeout: it must weigh on
                    // latency-driven balancers.
                    self.latency.record(secs, h.latency_alpha);
                    self.hot().peak.record(secs, now, tau);
                } else {
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    // A refused connection is fast and must not make the proxy look fast:
                    // the peak EWMA takes the bad-latency mark instead, so P2C avoids a
                    // proxy that fails fast (the evidence counts the failure itself).
                    self.hot().peak.record(secs.max(h.bad_latency.as_secs_f64()), now, tau);
                }
                self.window.record(false, h.success_window);
                self.consecutive_failures.fetch_add(1, Ordering::AcqRel);
                self.hot().transport.add(0.0, 1.0, now, fades.evidence);
                if let Some(host) = host {
                    self.targets.record_unanswered(host, now, cfg, fades);
                }
                Recorded { effect: self.maybe_eject(now, cfg, tracker), target: None, answered: None }
            }
            OutcomeKind::Slow => {
                // Abandoned for a faster proxy: a latency of at least this, and an attempt
                // that did not deliver in time. One such loss says little (the proxy may
                // answer next time), so it leaves the success window alone; but it extends
                // a run of attempts without an answer, which only an answer breaks: a proxy
                // that loses every race (it hangs while hedges rescue its requests) is
                // ejected like one that times out.
                let _ = self.ejected_until(|| now);
                self.slow.fetch_add(1, Ordering::Relaxed);
                self.latency.record(secs, h.latency_alpha);
                self.hot().peak.record(secs, now, tau);
                self.consecutive_failures.fetch_add(1, Ordering::AcqRel);
                self.hot().transport.add(0.0, 1.0, now, fades.evidence);
                if let Some(host) = host {
                    self.targets.record_unanswered(host, now, cfg, fades);
                }
                Recorded { effect: self.maybe_eject(now, cfg, tracker), target: None, answered: None }
            }
            OutcomeKind::Ban { retry_after } | OutcomeKind::RateLimited { retry_after } => {
                self.bans.fetch_add(1, Ordering::Relaxed);
                // The proxy delivered the site's answer: it works, the site refused it.
                self.hot().transport.add(1.0, 0.0, now, fades.evidence);
                tracker.note_answer(now);
                // A ban weighs on latency-driven balancers as a failure does: a proxy that
                // only ever gets refused must not look like the fastest one.
                self.hot().peak.record(secs.max(h.bad_latency.as_secs_f64()), now, tau);
                let refusal = match outcome.kind() {
                    OutcomeKind::RateLimited { .. } => Refusal::RateLimit,
                    _ => Refusal::Ban,
                };
                let banned = self.targets.ban(host, retry_after, refusal, expected, (now, &self.hot().ban_hint), cfg);
                if banned.counted {
                    self.standing.add(0.0, expected, now, fades.evidence);
                }
                Recorded {
                    effect: Effect::Banned { until: banned.until },
                    target: host.map(|_| banned.view),
                    answered: banned.counted.then_some(false),
                }
            }
        }
    }

    fn maybe_eject(&self, now: Nanos, cfg: &PoolConfig, tracker: &EjectionTracker) -> Effect {
        let e = &cfg.ejection;
        if !e.enabled || self.removed.load(Ordering::Acquire) || self.ejected_until(|| now).is_some() {
            return Effect::None;
        }
        let in_a_row = self.consecutive_failures.load(Ordering::Acquire);
        let view = self.window.view();
        let low_rate = view.count() >= e.min_requests && view.success_rate().is_some_and(|r| r < e.min_success_rate);
        if in_a_row < e.consecutive_failures && !low_rate {
            return Effect::None;
        }
        let times = self.times_ejected.load(Ordering::Acquire).saturating_add(1);
        let length = e.base_ejection.saturating_mul(times).min(e.max_ejection);
        let until = now.saturating_add(duration_to_nanos(length));
        if !tracker.try_reserve(until, now, e) {
            return Effect::None;
        }
        if self.hot().ejected_until.compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire).is_err() {
            // Another report ejected it first; give back the place we took.
            tracker.release(until);
            return Effect::None;
        }
        // Removed meanwhile: `mark_removed` found nothing to release, so undo it here.
        if self.removed.load(Ordering::Acquire)
            && self.hot().ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            tracker.release(until);
            return Effect::None;
        }
        self.times_ejected.fetch_add(1, Ordering::AcqRel);
        // Back from an ejection, it proves itself again before it takes more than one
        // request at a time.
        self.hot().proven.store(false, Ordering::Relaxed);
        Effect::Ejected { until }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_an_estimate_reads_sits_in_the_first_lines() {
        assert_eq!(std::mem::align_of::<ProxyHealth>(), 64);
        let h = ProxyHealth::default();
        let base = &h as *const ProxyHealth as usize;
        let end_of = |field: usize, size: usize| field - base + size;
        assert!(end_of(&h.standing as *const _ as usize, std::mem::size_of::<FadingPair>()) <= 128);
        assert!(end_of(&h.latency as *const _ as usize, 8) <= 128);
    }
}
