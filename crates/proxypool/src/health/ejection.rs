//! Pool-wide bookkeeping for outlier ejection: how many proxies are out, the cap on
//! that number, and panic mode.
//!
//! The cap guards against a common cause: when our own network fails, every proxy fails
//! at once, and ejecting them all would leave nothing. But a fleet where more than the
//! cap's share of proxies is bad is common, and there the cap kept bad proxies in rotation
//! (on the testbed's dirty fleet, 15 of 27 deserve ejection and the cap of half left two
//! hanging ones taking a share of every round robin). So past the cap a proxy is still
//! ejected while some proxy of the pool answered within [`RECENT_ANSWER`]: the network
//! works, and the failures are the proxy's own. Never so far that panic mode would start.
//!
//! The tracker keeps the end time of every running ejection, so its count is exact even
//! for proxies no pick looks at any more (filtered out, or removed). Ejections are rare
//! events, so that list sits behind a mutex; the pick path reads only two atomics unless
//! an ejection has ended since the last look.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::clock::Nanos;
use crate::config::EjectionConfig;

/// How recent an answer from some proxy must be for the cap to give way (see the module docs).
pub(crate) const RECENT_ANSWER: Nanos = 1_000_000_000;
/// The last answer's time is rewritten at most this often, so that answers on many
/// threads do not all write one shared line.
const ANSWER_GRAIN: Nanos = 10_000_000;

#[derive(Debug, Default)]
pub(crate) struct EjectionTracker {
    pool_size: AtomicUsize,
    ends: Mutex<Vec<Nanos>>,
    /// Running ejections as of the last prune.
    count: AtomicUsize,
    /// The earliest end among them (0 when none): until then `count` is exact.
    next_end: AtomicU64,
    /// When some proxy last delivered an answer (0: never), to within [`ANSWER_GRAIN`].
    last_answer: AtomicU64,
}

impl EjectionTracker {
    pub(crate) fn set_pool_size(&self, size: usize) {
        self.pool_size.store(size, Ordering::Release);
    }

    /// Running ejections at `now`.
    pub(crate) fn ejected(&self, now: Nanos) -> usize {
        let next = self.next_end.load(Ordering::Acquire);
        if next == 0 || now < next {
            return self.count.load(Ordering::Acquire);
        }
        let mut ends = self.lock();
        self.prune(&mut ends, now);
        ends.len()
    }

    /// Some proxy delivered an answer (of any kind) at `now`.
    #[inline]
    pub(crate) fn note_answer(&self, now: Nanos) {
        let last = self.last_answer.load(Ordering::Relaxed);
        // The first answer counts whenever it comes, even within the pool's first grain.
        if last == 0 || now.saturating_sub(last) >= ANSWER_GRAIN {
            self.last_answer.store(now, Ordering::Relaxed);
        }
    }

    /// Takes a place for an ejection ending at `until`: one of those the cap allows, or
    /// past the cap while some proxy answered within [`RECENT_ANSWER`] and one more
    /// ejection keeps the pool out of panic mode. False when neither holds.
    pub(crate) fn try_reserve(&self, until: Nanos, now: Nanos, cfg: &EjectionConfig) -> bool {
        let size = self.pool_size.load(Ordering::Acquire);
        let cap = ((size as f64 * cfg.max_ejected_fraction).floor() as usize).max(1);
        let mut ends = self.lock();
        self.prune(&mut ends, now);
        if ends.len() >= cap {
            let last = self.last_answer.load(Ordering::Relaxed);
            let answering = last != 0 && now.saturating_sub(last) <= RECENT_ANSWER;
            let left = size.saturating_sub(ends.len() + 1);
            // At least one proxy stays in, whatever `panic_threshold` (0 is valid).
            if !answering || left == 0 || (left as f64) < cfg.panic_threshold * size as f64 {
                return false;
            }
        }
        ends.push(until);
        self.publish(&ends);
        true
    }

    /// Gives back the place of an ejection ending at `until` that ended early.
    pub(crate) fn release(&self, until: Nanos) {
        let mut ends = self.lock();
        if let Some(pos) = ends.iter().position(|&e| e == until) {
            ends.swap_remove(pos);
        }
        self.publish(&ends);
    }

    /// Moves the end of a running ejection from `from` to `to` (lengthened elsewhere).
    pub(crate) fn extend(&self, from: Nanos, to: Nanos) {
        let mut ends = self.lock();
        match ends.iter().position(|&e| e == from) {
            Some(pos) => ends[pos] = to,
            None => ends.push(to),
        }
        self.publish(&ends);
    }

    /// Panic mode: too few proxies are healthy to trust ejections, so all are used.
    #[inline]
    pub(crate) fn in_panic(&self, now: Nanos, cfg: &EjectionConfig) -> bool {
        let ejected = self.ejected(now);
        if ejected == 0 {
            return false;
        }
        let size = self.pool_size.load(Ordering::Acquire);
        size > 0 && (size.saturating_sub(ejected) as f64) < cfg.panic_threshold * size as f64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Nanos>> {
        self.ends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn prune(&self, ends: &mut Vec<Nanos>, now: Nanos) {
        ends.retain(|&end| end > now);
        self.publish(ends);
    }

    fn publish(&self, ends: &[Nanos]) {
        self.count.store(ends.len(), Ordering::Release);
        self.next_end.store(ends.iter().copied().min().unwrap_or(0), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_allows_at_least_one_ejection() {
        let t = EjectionTracker::default();
        t.set_pool_size(3);
        let cfg = EjectionConfig { max_ejected_fraction: 0.1, ..EjectionConfig::default() };
        assert!(t.try_reserve(100, 1, &cfg));
        assert!(!t.try_reserve(100, 1, &cfg), "10 % of 3 rounds down, but one is always allowed, and only one");
        t.release(100);
        assert!(t.try_reserve(100, 1, &cfg));
    }

    #[test]
    fn past_the_cap_only_while_some_proxy_answers_and_never_into_panic() {
        const SEC: Nanos = 1_000_000_000;
        let t = EjectionTracker::default();
        t.set_pool_size(10);
        let cfg = EjectionConfig { max_ejected_fraction: 0.5, panic_threshold: 0.3, ..EjectionConfig::default() };
        for _ in 0..5 {
            assert!(t.try_reserve(100 * SEC, SEC, &cfg));
        }
        assert!(!t.try_reserve(100 * SEC, SEC, &cfg), "at the cap, and no proxy has answered: a common cause");
        t.note_answer(1);
        assert!(t.try_reserve(100 * SEC, SEC, &cfg), "the pool's first answer, however early, counts");
        t.release(100 * SEC);
        t.note_answer(SEC);
        assert!(t.try_reserve(100 * SEC, SEC + 1, &cfg), "another proxy answers: the failures are the proxy's own");
        assert!(t.try_reserve(100 * SEC, SEC + 2, &cfg));
        assert_eq!(t.ejected(SEC + 2), 7);
        assert!(!t.try_reserve(100 * SEC, SEC + 3, &cfg), "an eighth would leave 2 of 10: panic mode");
        assert!(!t.in_panic(SEC + 3, &cfg));
        t.release(100 * SEC);
        assert!(!t.try_reserve(100 * SEC, 3 * SEC, &cfg), "the last answer is 2 s old: the cap holds again");
    }

    #[test]
    fn past_the_cap_one_proxy_always_stays_in_even_without_a_panic_threshold() {
        let t = EjectionTracker::default();
        t.set_pool_size(4);
        let cfg = EjectionConfig { max_ejected_fraction: 0.5, panic_threshold: 0.0, ..EjectionConfig::default() };
        t.note_answer(1);
        for _ in 0..3 {
            assert!(t.try_reserve(100, 2, &cfg));
        }
        assert!(!t.try_reserve(100, 2, &cfg), "the fourth of four would leave none");
    }

    #[test]
    fn ended_ejections_leave_the_count_without_anyone_looking_at_the_proxy() {
        let t = EjectionTracker::default();
        t.set_pool_size(2);
        let cfg = EjectionConfig { max_ejected_fraction: 0.5, ..EjectionConfig::default() };
        assert!(t.try_reserve(100, 1, &cfg));
        assert_eq!(t.ejected(99), 1);
        assert!(!t.try_reserve(200, 99, &cfg));
        assert_eq!(t.ejected(100), 0);
        assert!(t.try_reserve(200, 100, &cfg));
    }

    #[test]
    fn an_extended_ejection_keeps_its_one_place() {
        let t = {
            let t = EjectionTracker::default();
            t.set_pool_size(2);
            t
        };
        let cfg = EjectionConfig { max_ejected_fraction: 0.5, ..EjectionConfig::default() };
        assert!(t.try_reserve(100, 1, &cfg));
        t.extend(100, 300);
        assert_eq!(t.ejected(150), 1, "still out after its first end");
        assert!(!t.try_reserve(400, 150, &cfg), "and still holding the only place");
        assert_eq!(t.ejected(300), 0);
    }

    #[test]
    fn panic_starts_when_healthy_share_falls_below_threshold() {
        let t = EjectionTracker::default();
        t.set_pool_size(10);
        let cfg = EjectionConfig { max_ejected_fraction: 1.0, panic_threshold: 0.3, ..EjectionConfig::default() };
        for _ in 0..7 {
            assert!(t.try_reserve(100, 1, &cfg));
        }
        assert!(!t.in_panic(1, &cfg), "3 of 10 healthy is not below 30 %");
        assert!(t.try_reserve(100, 1, &cfg));
        assert!(t.in_panic(1, &cfg), "2 of 10 healthy is");
        assert!(!t.in_panic(100, &cfg), "panic ends when the ejections do");
    }
}
