//! Per-target-host state of one proxy: its success there and its bans.
//!
//! A proxy banned by `shop.example` stays good for every other host. Running bans live
//! in a small copy-on-write map behind an atomic pointer, so the pick path reads them
//! without a lock, and only while `ban_hint` says some ban may still run. The per-host
//! statistics (success window, ban streak) change with every report and sit behind a
//! lock that only reports and the adaptive balancer take.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::{Nanos, duration_to_nanos};
use crate::config::BanConfig;

use super::window::OutcomeWindow;

/// Key for bans reported without a target host: they bar the proxy from every host.
const ANY_HOST: &str = "";

/// `repr(C)` keeps the two words a pick reads at the front, where the proxy's health
/// puts them on the same cache line as its other hot fields.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct TargetTable {
    /// The latest end of any ban ever set here; only while it lies in the future can a
    /// ban be active, so picks skip the ban map otherwise.
    ban_hint: AtomicU64,
    /// Host → end of its running ban; replaced whole on every new ban.
    bans: ArcSwap<HashMap<Box<str>, Nanos>>,
    hosts: RwLock<HashMap<Box<str>, TargetState>>,
}

#[derive(Debug, Default)]
struct TargetState {
    window: OutcomeWindow,
    ban_until: Nanos,
    /// Bans in a row from this host; reset by a success there. Grows the cooldown.
    ban_streak: u32,
    last_seen: Nanos,
}

/// One active ban, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveBan {
    pub(crate) host: String,
    pub(crate) until: Nanos,
    pub(crate) streak: u32,
}

impl TargetTable {
    /// The end of the ban that bars this proxy from `host` at `now`, if any.
    #[inline]
    pub(crate) fn banned_until(&self, host: Option<&str>, now: impl FnOnce() -> Nanos) -> Option<Nanos> {
        let hint = self.ban_hint.load(Ordering::Acquire);
        if hint == 0 {
            return None;
        }
        let now = now();
        if hint <= now {
            return None;
        }
        let bans = self.bans.load();
        let until = |key: &str| bans.get(key).copied().filter(|&u| u > now);
        match host {
            Some(h) => until(h).max(until(ANY_HOST)),
            None => until(ANY_HOST),
        }
    }

    pub(crate) fn record_result(&self, host: &str, success: bool, now: Nanos, window: u32, cfg: &BanConfig) {
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        let state = entry(&mut hosts, host, now, cfg);
        state.window.record(success, window);
        state.last_seen = now;
        if success {
            state.ban_streak = 0;
        }
    }

    /// Bans the proxy from `host` (or from every host) and returns when the ban ends.
    pub(crate) fn ban(
        &self,
        host: Option<&str>,
        retry_after: Option<Duration>,
        now: Nanos,
        window: u32,
        cfg: &BanConfig,
    ) -> Nanos {
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        let state = entry(&mut hosts, host.unwrap_or(ANY_HOST), now, cfg);
        state.window.record(false, window);
        state.last_seen = now;
        state.ban_streak = state.ban_streak.saturating_add(1);
        let length = match retry_after {
            Some(asked) => asked.min(cfg.max_retry_after),
            None => {
                let doublings = state.ban_streak.saturating_sub(1).min(31);
                cfg.base_cooldown.saturating_mul(1 << doublings).min(cfg.max_cooldown)
            }
        };
        let until = now.saturating_add(duration_to_nanos(length));
        state.ban_until = state.ban_until.max(until);
        let until = state.ban_until;
        self.publish_ban(host.unwrap_or(ANY_HOST), until, now);
        until
    }

    /// Bars the proxy from `host` (or from every host) until `until`, as decided
    /// elsewhere: the host's window and ban streak stay as they are. False when a ban
    /// running at least as long was there already.
    pub(crate) fn impose(&self, host: Option<&str>, until: Nanos, now: Nanos, cfg: &BanConfig) -> bool {
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        let key = host.unwrap_or(ANY_HOST);
        let state = entry(&mut hosts, key, now, cfg);
        state.last_seen = now;
        if state.ban_until >= until {
            return false;
        }
        state.ban_until = until;
        self.publish_ban(key, until, now);
        true
    }

    /// Makes the ban of `key` until `until` visible to picks. Called under the write lock
    /// of `hosts`, so ban writers never race each other.
    fn publish_ban(&self, key: &str, until: Nanos, now: Nanos) {
        let mut bans: HashMap<Box<str>, Nanos> =
            self.bans.load().iter().filter(|&(_, &end)| end > now).map(|(h, &end)| (h.clone(), end)).collect();
        bans.insert(Box::from(key), until);
        self.bans.store(Arc::new(bans));
        self.ban_hint.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn success_rate(&self, host: &str) -> Option<f64> {
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        hosts.get(host).and_then(|s| s.window.view().success_rate())
    }

    pub(crate) fn active_bans(&self, now: Nanos) -> Vec<ActiveBan> {
        if self.ban_hint.load(Ordering::Acquire) <= now {
            return Vec::new();
        }
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        let mut bans: Vec<ActiveBan> = hosts
            .iter()
            .filter(|(_, s)| s.ban_until > now)
            .map(|(h, s)| ActiveBan { host: h.to_string(), until: s.ban_until, streak: s.ban_streak })
            .collect();
        bans.sort_by(|a, b| a.host.cmp(&b.host));
        bans
    }
}

/// The state for `host`, making room by forgetting the least recently seen host
/// without an active ban when the table is full.
fn entry<'a>(
    hosts: &'a mut HashMap<Box<str>, TargetState>,
    host: &str,
    now: Nanos,
    cfg: &BanConfig,
) -> &'a mut TargetState {
    if !hosts.contains_key(host) && hosts.len() >= cfg.max_hosts_per_proxy {
        let victim = hosts
            .iter()
            .filter(|(_, s)| s.ban_until <= now)
            .min_by_key(|(_, s)| s.last_seen)
            .or_else(|| hosts.iter().min_by_key(|(_, s)| s.ban_until))
            .map(|(h, _)| h.clone());
        if let Some(victim) = victim {
            hosts.remove(&victim);
        }
    }
    hosts.entry(Box::from(host)).or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Nanos = 1_000_000_000;

    #[test]
    fn a_ban_bars_only_its_host() {
        let t = TargetTable::default();
        let cfg = BanConfig::default();
        let until = t.ban(Some("a.example"), Some(Duration::from_secs(10)), SEC, 50, &cfg);
        assert_eq!(until, 11 * SEC);
        assert_eq!(t.banned_until(Some("a.example"), || 2 * SEC), Some(11 * SEC));
        assert_eq!(t.banned_until(Some("b.example"), || 2 * SEC), None);
        assert_eq!(t.banned_until(Some("a.example"), || 11 * SEC), None, "the ban ends at its Retry-After");
    }

    #[test]
    fn a_ban_without_host_bars_every_host() {
        let t = TargetTable::default();
        t.ban(None, None, SEC, 50, &BanConfig::default());
        assert!(t.banned_until(Some("any.example"), || 2 * SEC).is_some());
        assert!(t.banned_until(None, || 2 * SEC).is_some());
    }

    #[test]
    fn cooldown_doubles_per_ban_and_resets_after_success() {
        let t = TargetTable::default();
        let cfg = BanConfig { base_cooldown: Duration::from_secs(10), ..BanConfig::default() };
        let lengths: Vec<Nanos> = (0..3).map(|_| t.ban(Some("h"), None, SEC, 50, &cfg) - SEC).collect();
        assert_eq!(lengths, vec![10 * SEC, 20 * SEC, 40 * SEC]);
        t.record_result("h", true, 100 * SEC, 50, &cfg);
        assert_eq!(t.ban(Some("h"), None, 100 * SEC, 50, &cfg), 110 * SEC);
    }

    #[test]
    fn an_imposed_ban_lengthens_only_and_leaves_the_streak_alone() {
        let t = TargetTable::default();
        let cfg = BanConfig { base_cooldown: Duration::from_secs(10), ..BanConfig::default() };
        assert!(t.impose(Some("h"), 30 * SEC, SEC, &cfg));
        assert!(!t.impose(Some("h"), 20 * SEC, SEC, &cfg), "a shorter ban changes nothing");
        assert_eq!(t.banned_until(Some("h"), || 2 * SEC), Some(30 * SEC));
        assert_eq!(t.banned_until(Some("other"), || 2 * SEC), None);
        assert_eq!(t.ban(Some("h"), None, 2 * SEC, 50, &cfg), 30 * SEC, "the first local ban is still the base one");
    }

    #[test]
    fn retry_after_is_capped() {
        let t = TargetTable::default();
        let cfg = BanConfig { max_retry_after: Duration::from_secs(5), ..BanConfig::default() };
        assert_eq!(t.ban(Some("h"), Some(Duration::from_secs(86_400)), SEC, 50, &cfg), 6 * SEC);
    }

    #[test]
    fn table_forgets_the_least_recently_seen_unbanned_host_when_full() {
        let t = TargetTable::default();
        let cfg = BanConfig { max_hosts_per_proxy: 2, ..BanConfig::default() };
        t.ban(Some("banned"), None, SEC, 50, &cfg);
        t.record_result("old", true, 2 * SEC, 50, &cfg);
        t.record_result("new", true, 3 * SEC, 50, &cfg);
        assert_eq!(t.success_rate("old"), None, "the oldest unbanned host is forgotten");
        assert!(t.banned_until(Some("banned"), || 4 * SEC).is_some(), "an active ban is kept");
        assert_eq!(t.success_rate("new"), Some(1.0));
    }
}
