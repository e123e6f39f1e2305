//! Per-target-host state of one proxy: what each site answered it, how fast it has been
//! sending there, and the site's bans.
//!
//! A proxy banned by `shop.example` stays good for every other host. The table sits
//! behind a read-write lock that reports take for writing and picks for reading; the
//! eligibility check of every balancer takes it only while the proxy's ban hint (in its
//! hot line, see `hot`, passed in here) says some ban of this proxy may still run. A ban is one entry's update, never a copy of the table, and
//! the table holds at most `bans.max_hosts_per_proxy` hosts: when full, the least
//! recently seen eighth of the hosts without a running ban is forgotten at once.

use std::collections::HashMap;

use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use super::evidence::{Fading, FadingTriple};
use crate::clock::{Nanos, duration_to_nanos};
use crate::config::PoolConfig;

/// Key for bans reported without a target host: they bar the proxy from every host.
const ANY_HOST: &str = "";

/// What one host answered one proxy, as of one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct TargetView {
    /// Answers that were not bans, fading.
    pub(crate) accepted: f64,
    /// Bans, fading.
    pub(crate) refused: f64,
    /// What the host's answers to proxies of the same kind predicted for those answers:
    /// the sum of their acceptance at the time of each answer, fading. `accepted ÷
    /// expected` is this proxy's standing at the host relative to its peers.
    pub(crate) expected: f64,
    /// Requests sent there over the last rate window (a fading count).
    pub(crate) recent: f64,
}

/// `repr(C)` keeps the word a pick reads first at the front, where the proxy's health
/// puts it on the same cache line as its other hot fields.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct TargetTable {
    hosts: RwLock<HashMap<Box<str>, TargetState, RandomState>>,
}

#[derive(Debug, Default)]
struct TargetState {
    /// Accepted, refused, and what the peers' acceptance expected of those answers.
    answers: FadingTriple,
    recent: Fading,
    ban_until: Nanos,
    /// Bans in a row from this host; reset by a success there. Grows the cooldown.
    ban_streak: u32,
    last_seen: Nanos,
}

/// Why a host barred the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Refused (403, a captcha page…).
    Ban,
    /// Told to slow down (429).
    RateLimit,
}

/// What a ban did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Banned {
    /// When it ends.
    pub(crate) until: Nanos,
    /// What the host says of the proxy after it.
    pub(crate) view: TargetView,
    /// Whether it counted as a refusal of the proxy (see [`TargetTable::ban`]).
    pub(crate) counted: bool,
}

/// One active ban, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActiveBan {
    pub(crate) host: String,
    pub(crate) until: Nanos,
    pub(crate) streak: u32,
}

/// Half-lives in nanoseconds, read once per report from the config.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fades {
    pub(crate) evidence: f64,
    pub(crate) rate: f64,
}

impl Fades {
    pub(crate) fn of(cfg: &PoolConfig) -> Fades {
        Fades {
            evidence: cfg.evidence.half_life.as_secs_f64() * 1e9,
            rate: cfg.evidence.rate_window.as_secs_f64() * 1e9,
        }
    }
}

impl TargetTable {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Box<str>, TargetState, RandomState>> {
        self.hosts.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<Box<str>, TargetState, RandomState>> {
        self.hosts.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The end of the ban that bars this proxy from `host` at `now`, if any.
    #[inline]
    pub(crate) fn banned_until(
        &self,
        host: Option<&str>,
        ban_hint: &AtomicU64,
        now: impl FnOnce() -> Nanos,
    ) -> Option<Nanos> {
        let hint = ban_hint.load(Ordering::Acquire);
        if hint == 0 {
            return None;
        }
        let now = now();
        if hint <= now {
            return None;
        }
        let hosts = self.read();
        let until = |key: &str| hosts.get(key).map(|s| s.ban_until).filter(|&u| u > now);
        match host {
            Some(h) => until(h).max(until(ANY_HOST)),
            None => until(ANY_HOST),
        }
    }

    /// What `host` answered this proxy, as of `now`; `None` if it never has (or was
    /// forgotten).
    #[inline]
    pub(crate) fn view(&self, host: &str, now: Nanos, fades: Fades) -> Option<TargetView> {
        let hosts = self.read();
        hosts.get(host).map(|s| view_of(s, now, fades))
    }

    /// Records an answer from `host` that was not a ban (a success, or the target's own
    /// error), which its peers' acceptance there predicted with probability `expected`,
    /// and returns the host's view after it.
    pub(crate) fn record_accepted(
        &self,
        host: &str,
        expected: f64,
        now: Nanos,
        cfg: &PoolConfig,
        fades: Fades,
    ) -> TargetView {
        let mut hosts = self.write();
        let state = entry(&mut hosts, host, now, cfg);
        state.answers.add([1.0, 0.0, expected], now, fades.evidence);
        state.recent.add(1.0, now, fades.rate);
        state.last_seen = now;
        state.ban_streak = 0;
        view_of(state, now, fades)
    }

    /// Counts a request to `host` that got no answer: it still counts towards the rate
    /// the host sees, and says nothing about whether the host accepts the proxy.
    pub(crate) fn record_unanswered(&self, host: &str, now: Nanos, cfg: &PoolConfig, fades: Fades) {
        let mut hosts = self.write();
        let state = entry(&mut hosts, host, now, cfg);
        state.recent.add(1.0, now, fades.rate);
        state.last_seen = now;
    }

    /// Bans the proxy from `host` (or from every host) after a refusal that its peers'
    /// acceptance there predicted to be an acceptance with probability `expected`.
    /// A ban counts against the proxy there; a rate limit only when the host never
    /// accepted the proxy (then it is an address ban by another name), since one that
    /// did is saying "slower", not "not you".
    pub(crate) fn ban(
        &self,
        host: Option<&str>,
        retry_after: Option<Duration>,
        refusal: Refusal,
        expected: f64,
        (now, ban_hint): (Nanos, &AtomicU64),
        cfg: &PoolConfig,
    ) -> Banned {
        let fades = Fades::of(cfg);
        let bans = &cfg.bans;
        let mut hosts = self.write();
        let state = entry(&mut hosts, host.unwrap_or(ANY_HOST), now, cfg);
        let counted = match refusal {
            Refusal::Ban => true,
            Refusal::RateLimit => state.answers.get(now, fades.evidence)[0] < 1.0,
        };
        if counted {
            state.answers.add([0.0, 1.0, expected], now, fades.evidence);
        }
        state.recent.add(1.0, now, fades.rate);
        state.last_seen = now;
        state.ban_streak = state.ban_streak.saturating_add(1);
        let length = match retry_after {
            Some(asked) => asked.min(bans.max_retry_after),
            None => {
                let doublings = state.ban_streak.saturating_sub(1).min(31);
                bans.base_cooldown.saturating_mul(1 << doublings).min(bans.max_cooldown)
            }
        };
        let until = now.saturating_add(duration_to_nanos(length));
        state.ban_until = state.ban_until.max(until);
        let until = state.ban_until;
        let view = view_of(state, now, fades);
        ban_hint.fetch_max(until, Ordering::AcqRel);
        Banned { until, view, counted }
    }

    /// Bars the proxy from `host` (or from every host) until `until`, as decided
    /// elsewhere: the host's evidence and ban streak stay as they are. False when a ban
    /// running at least as long was there already.
    pub(crate) fn impose(
        &self,
        host: Option<&str>,
        until: Nanos,
        (now, ban_hint): (Nanos, &AtomicU64),
        cfg: &PoolConfig,
    ) -> bool {
        let mut hosts = self.write();
        let state = entry(&mut hosts, host.unwrap_or(ANY_HOST), now, cfg);
        state.last_seen = now;
        if state.ban_until >= until {
            return false;
        }
        state.ban_until = until;
        ban_hint.fetch_max(until, Ordering::AcqRel);
        true
    }

    /// Share of answers from `host` that were not bans, fading; `None` if it never
    /// answered (or was forgotten).
    pub(crate) fn success_rate(&self, host: &str, now: Nanos, fades: Fades) -> Option<f64> {
        let view = self.view(host, now, fades)?;
        let answers = view.accepted + view.refused;
        (answers > 0.0).then(|| view.accepted / answers)
    }

    pub(crate) fn active_bans(&self, ban_hint: &AtomicU64, now: Nanos) -> Vec<ActiveBan> {
        if ban_hint.load(Ordering::Acquire) <= now {
            return Vec::new();
        }
        let hosts = self.read();
        let mut bans: Vec<ActiveBan> = hosts
            .iter()
            .filter(|(_, s)| s.ban_until > now)
            .map(|(h, s)| ActiveBan { host: h.to_string(), until: s.ban_until, streak: s.ban_streak })
            .collect();
        bans.sort_by(|a, b| a.host.cmp(&b.host));
        bans
    }

    /// Hosts held now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }
}

fn view_of(state: &TargetState, now: Nanos, fades: Fades) -> TargetView {
    let [accepted, refused, expected] = state.answers.get(now, fades.evidence);
    TargetView { accepted, refused, expected, recent: state.recent.get(now, fades.rate) }
}

/// The state for `host`, making room when the table is full.
fn entry<'a>(
    hosts: &'a mut HashMap<Box<str>, TargetState, RandomState>,
    host: &str,
    now: Nanos,
    cfg: &PoolConfig,
) -> &'a mut TargetState {
    let max = cfg.bans.max_hosts_per_proxy.max(1);
    if !hosts.contains_key(host) && hosts.len() >= max {
        make_room(hosts, now, max);
    }
    hosts.entry(Box::from(host)).or_default()
}

/// Forgets the least recently seen eighth of the hosts without a running ban (at least
/// one host); when every host bans the proxy, the bans that end first go instead. One
/// scan per eighth of the table, so a stream of new hosts costs O(1) each on average.
fn make_room(hosts: &mut HashMap<Box<str>, TargetState, RandomState>, now: Nanos, max: usize) {
    let want = (max / 8).max(1);
    let mut idle: Vec<(Nanos, Box<str>)> =
        hosts.iter().filter(|(_, s)| s.ban_until <= now).map(|(h, s)| (s.last_seen, h.clone())).collect();
    if idle.is_empty() {
        idle = hosts.iter().map(|(h, s)| (s.ban_until, h.clone())).collect();
    }
    let n = want.min(idle.len());
    if n < idle.len() {
        idle.select_nth_unstable(n - 1);
    }
    for (_, host) in idle.into_iter().take(n) {
        hosts.remove(&host);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BanConfig;

    const SEC: Nanos = 1_000_000_000;

    fn cfg(bans: BanConfig) -> PoolConfig {
        PoolConfig { bans, ..PoolConfig::default() }
    }

    /// A table with its ban hint beside it, as a proxy's health holds them.
    #[derive(Default)]
    struct Table {
        table: TargetTable,
        hint: AtomicU64,
    }

    impl std::ops::Deref for Table {
        type Target = TargetTable;
        fn deref(&self) -> &TargetTable {
            &self.table
        }
    }

    impl Table {
        fn ban(
            &self,
            host: Option<&str>,
            after: Option<Duration>,
            r: Refusal,
            e: f64,
            now: Nanos,
            c: &PoolConfig,
        ) -> Banned {
            self.table.ban(host, after, r, e, (now, &self.hint), c)
        }
        fn impose(&self, host: Option<&str>, until: Nanos, now: Nanos, c: &PoolConfig) -> bool {
            self.table.impose(host, until, (now, &self.hint), c)
        }
        fn banned_until(&self, host: Option<&str>, now: impl FnOnce() -> Nanos) -> Option<Nanos> {
            self.table.banned_until(host, &self.hint, now)
        }
    }

    fn fades() -> Fades {
        Fades::of(&PoolConfig::default())
    }

    #[test]
    fn a_ban_bars_only_its_host() {
        let t = Table::default();
        let until = t
            .ban(Some("a.example"), Some(Duration::from_secs(10)), Refusal::Ban, 1.0, SEC, &PoolConfig::default())
            .until;
        assert_eq!(until, 11 * SEC);
        assert_eq!(t.banned_until(Some("a.example"), || 2 * SEC), Some(11 * SEC));
        assert_eq!(t.banned_until(Some("b.example"), || 2 * SEC), None);
        assert_eq!(t.banned_until(Some("a.example"), || 11 * SEC), None, "the ban ends at its Retry-After");
    }

    #[test]
    fn a_ban_without_host_bars_every_host() {
        let t = Table::default();
        t.ban(None, None, Refusal::Ban, 1.0, SEC, &PoolConfig::default());
        assert!(t.banned_until(Some("any.example"), || 2 * SEC).is_some());
        assert!(t.banned_until(None, || 2 * SEC).is_some());
    }

    #[test]
    fn cooldown_doubles_per_ban_and_resets_after_success() {
        let t = Table::default();
        let c = cfg(BanConfig { base_cooldown: Duration::from_secs(10), ..BanConfig::default() });
        let lengths: Vec<Nanos> =
            (0..3).map(|_| t.ban(Some("h"), None, Refusal::Ban, 1.0, SEC, &c).until - SEC).collect();
        assert_eq!(lengths, vec![10 * SEC, 20 * SEC, 40 * SEC]);
        t.record_accepted("h", 1.0, 100 * SEC, &c, fades());
        assert_eq!(t.ban(Some("h"), None, Refusal::Ban, 1.0, 100 * SEC, &c).until, 110 * SEC);
    }

    #[test]
    fn an_imposed_ban_lengthens_only_and_leaves_the_evidence_alone() {
        let t = Table::default();
        let c = cfg(BanConfig { base_cooldown: Duration::from_secs(10), ..BanConfig::default() });
        assert!(t.impose(Some("h"), 30 * SEC, SEC, &c));
        assert!(!t.impose(Some("h"), 20 * SEC, SEC, &c), "a shorter ban changes nothing");
        assert_eq!(t.banned_until(Some("h"), || 2 * SEC), Some(30 * SEC));
        assert_eq!(t.banned_until(Some("other"), || 2 * SEC), None);
        assert_eq!(t.view("h", 2 * SEC, fades()), Some(TargetView::default()), "no refusal was seen here");
        assert_eq!(
            t.ban(Some("h"), None, Refusal::Ban, 1.0, 2 * SEC, &c).until,
            30 * SEC,
            "the first local ban is still the base one"
        );
    }

    #[test]
    fn a_rate_limit_counts_against_the_proxy_only_where_it_was_never_accepted() {
        let t = Table::default();
        let c = PoolConfig::default();
        assert!(t.ban(Some("new"), None, Refusal::RateLimit, 1.0, SEC, &c).counted, "an address ban by 429");
        t.record_accepted("known", 1.0, SEC, &c, fades());
        let banned = t.ban(Some("known"), None, Refusal::RateLimit, 1.0, SEC, &c);
        assert!(!banned.counted, "a site that accepted it says slower, not no");
        assert_eq!((banned.view.refused, banned.view.recent), (0.0, 2.0), "but both requests count towards the rate");
        assert!(t.banned_until(Some("known"), || 2 * SEC).is_some(), "and it is barred all the same");
    }

    #[test]
    fn retry_after_is_capped() {
        let t = Table::default();
        let c = cfg(BanConfig { max_retry_after: Duration::from_secs(5), ..BanConfig::default() });
        assert_eq!(t.ban(Some("h"), Some(Duration::from_secs(86_400)), Refusal::Ban, 1.0, SEC, &c).until, 6 * SEC);
    }

    #[test]
    fn answers_and_requests_fade_at_their_own_pace() {
        let t = Table::default();
        let c = PoolConfig::default();
        for _ in 0..3 {
            t.record_accepted("h", 0.5, SEC, &c, fades());
        }
        t.ban(Some("h"), None, Refusal::Ban, 1.0, SEC, &c);
        let now = t.view("h", SEC, fades()).expect("seen");
        assert_eq!((now.accepted, now.refused, now.expected, now.recent), (3.0, 1.0, 2.5, 4.0));
        assert_eq!(t.success_rate("h", SEC, fades()), Some(0.75));
        let later = t.view("h", 61 * SEC, fades()).expect("seen");
        assert!(later.recent < 0.1, "requests of a minute ago hardly count towards the rate: {}", later.recent);
        assert!(later.accepted > 2.5, "a minute hardly dents the evidence: {}", later.accepted);
    }

    #[test]
    fn table_forgets_the_least_recently_seen_unbanned_hosts_when_full() {
        let t = Table::default();
        let c = cfg(BanConfig { max_hosts_per_proxy: 2, ..BanConfig::default() });
        t.ban(Some("banned"), None, Refusal::Ban, 1.0, SEC, &c);
        t.record_accepted("old", 1.0, 2 * SEC, &c, fades());
        t.record_accepted("new", 1.0, 3 * SEC, &c, fades());
        assert_eq!(t.success_rate("old", 3 * SEC, fades()), None, "the oldest unbanned host is forgotten");
        assert!(t.banned_until(Some("banned"), || 4 * SEC).is_some(), "an active ban is kept");
        assert_eq!(t.success_rate("new", 3 * SEC, fades()), Some(1.0));
    }

    #[test]
    fn many_hosts_stay_within_the_bound_and_each_ban_is_cheap() {
        let t = Table::default();
        let c = cfg(BanConfig { max_hosts_per_proxy: 64, ..BanConfig::default() });
        for i in 0..10_000u64 {
            t.ban(Some(&format!("h{i}")), None, Refusal::Ban, 1.0, SEC + i, &c);
        }
        assert!(t.len() <= 64, "{}", t.len());
        assert!(t.banned_until(Some("h9999"), || 2 * SEC).is_some(), "the newest ban is held");
    }
}
