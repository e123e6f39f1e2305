//! Pool configuration: plain structs with defaults, serde, and `validate()`.
//!
//! Every default is chosen for proxy fleets, which are far dirtier than the service
//! fleets Envoy's defaults were made for; each field's doc says why.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The longest duration any setting of a [`PoolConfig`] accepts: a week. Far beyond any
/// sensible ejection, ban or half-life, and it keeps every deadline computed from a
/// setting (`now + setting`) from overflowing a clock.
pub const LONGEST_SETTING: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most entries a per-proxy or per-site table may be told to keep: a million.
pub const MAX_TABLE_ENTRIES: usize = 1_000_000;

/// The upper bound of a duration setting, with the words that name it in errors. Every
/// duration setting of the crate is checked through one of these.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Longest {
    limit: Duration,
    name: &'static str,
}

impl Longest {
    /// Timeouts and per-attempt delays.
    pub(crate) const DAY: Longest = Longest { limit: Duration::from_secs(86_400), name: "a day" };
    /// [`LONGEST_SETTING`]: the pool's ejections, bans, half-lives.
    pub(crate) const WEEK: Longest = Longest { limit: LONGEST_SETTING, name: "a week" };
    /// Health-check intervals.
    pub(crate) const YEAR: Longest = Longest { limit: Duration::from_secs(365 * 24 * 3600), name: "a year" };

    /// Refuses `value` when it is zero (unless `zero_ok`) or longer than this bound.
    pub(crate) fn check(self, field: &'static str, value: Duration, zero_ok: bool) -> Result<(), ConfigError> {
        if !zero_ok && value.is_zero() {
            return Err(ConfigError::new(field, "must be greater than zero"));
        }
        if value > self.limit {
            return Err(ConfigError::new(
                field,
                format!("{value:?} is longer than the longest accepted, {}", self.name),
            ));
        }
        Ok(())
    }
}

/// Refuses a duration that is zero (unless `zero_ok`) or longer than [`LONGEST_SETTING`].
fn duration_in(field: &'static str, value: Duration, zero_ok: bool) -> Result<(), ConfigError> {
    Longest::WEEK.check(field, value, zero_ok)
}

/// Refuses a table size outside `1..=`[`MAX_TABLE_ENTRIES`].
pub(crate) fn entries_in(field: &'static str, value: usize) -> Result<(), ConfigError> {
    if !(1..=MAX_TABLE_ENTRIES).contains(&value) {
        return Err(ConfigError::new(field, format!("{value} must be in 1..={MAX_TABLE_ENTRIES}")));
    }
    Ok(())
}

/// Everything a [`ProxyPool`](crate::ProxyPool) can be tuned with.
///
/// Ranges: every duration is at most [`LONGEST_SETTING`] (a week) and, unless its field
/// says otherwise, greater than zero; every share or rate is a finite number in the range
/// its field names; table sizes are in `1..=`[`MAX_TABLE_ENTRIES`]. `validate` (which the
/// pool's constructors call) refuses anything else with a [`ConfigError`] naming the field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Passive health: latency averages, success window, quality score.
    pub health: HealthConfig,
    /// Outlier ejection of failing proxies.
    pub ejection: EjectionConfig,
    /// Bans of a proxy by one target host.
    pub bans: BanConfig,
    /// What the pool learns about each proxy and each site, for choosing well.
    pub evidence: EvidenceConfig,
}

impl PoolConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.health.validate()?;
        self.ejection.validate()?;
        self.bans.validate()?;
        self.evidence.validate()?;
        if self.ejection.min_requests > self.health.success_window {
            return Err(ConfigError::new(
                "ejection.min_requests",
                format!(
                    "{} exceeds health.success_window {}: the success rate could never eject",
                    self.ejection.min_requests, self.health.success_window
                ),
            ));
        }
        Ok(())
    }
}

/// How each report updates a proxy's passive health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Weight of the newest latency sample in the latency EWMA. Default 0.3: a proxy's
    /// latency moves within a handful of requests, as exit IPs change under us.
    pub latency_alpha: f64,
    /// Time constant of the peak EWMA used by power-of-two-choices. Default 10 s, as
    /// Finagle: a latency spike is forgotten within seconds, not requests.
    #[serde(with = "humantime_serde")]
    pub peak_decay: Duration,
    /// How many recent outcomes the success rate is computed over (1..=56). Default 50.
    pub success_window: u32,
    /// Latency at or below which the latency part of the quality score is full. Default 2 s (the seed).
    #[serde(with = "humantime_serde")]
    pub good_latency: Duration,
    /// Latency at or above which the latency part of the quality score is zero. Default 5 s (the seed).
    #[serde(with = "humantime_serde")]
    pub bad_latency: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            latency_alpha: 0.3,
            peak_decay: Duration::from_secs(10),
            success_window: 50,
            good_latency: Duration::from_secs(2),
            bad_latency: Duration::from_secs(5),
        }
    }
}

impl HealthConfig {
    /// The largest success window: the outcome history is packed into one atomic word.
    pub const MAX_SUCCESS_WINDOW: u32 = 56;

    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.latency_alpha > 0.0 && self.latency_alpha <= 1.0) {
            return Err(ConfigError::new("health.latency_alpha", format!("{} must be in (0, 1]", self.latency_alpha)));
        }
        duration_in("health.peak_decay", self.peak_decay, false)?;
        duration_in("health.good_latency", self.good_latency, true)?;
        duration_in("health.bad_latency", self.bad_latency, false)?;
        if !(1..=Self::MAX_SUCCESS_WINDOW).contains(&self.success_window) {
            return Err(ConfigError::new(
                "health.success_window",
                format!("{} must be in 1..={}", self.success_window, Self::MAX_SUCCESS_WINDOW),
            ));
        }
        if self.bad_latency <= self.good_latency {
            return Err(ConfigError::new("health.bad_latency", "must be greater than health.good_latency"));
        }
        Ok(())
    }
}

/// When a failing proxy is taken out of rotation, and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EjectionConfig {
    /// Turn outlier ejection on or off. Default on.
    pub enabled: bool,
    /// Eject after this many network failures or timeouts in a row. Default 5, as Envoy.
    pub consecutive_failures: u32,
    /// Eject when the windowed success rate falls below this. Default 0.5: a proxy that
    /// fails every other request costs more in retries than it brings.
    pub min_success_rate: f64,
    /// Outcomes needed in the window before the success rate may eject. Default 20.
    pub min_requests: u32,
    /// First ejection time; the n-th ejection lasts n times this. Default 30 s, as Envoy.
    #[serde(with = "humantime_serde")]
    pub base_ejection: Duration,
    /// Longest ejection. Default 300 s, as Envoy.
    #[serde(with = "humantime_serde")]
    pub max_ejection: Duration,
    /// Largest share of the pool ejected at once while no proxy is answering (at least
    /// one proxy may always be). Default 0.5, not Envoy's 0.1: in a proxy fleet a fifth
    /// dead is an ordinary day, and a 10 % cap would keep most dead proxies in rotation;
    /// beyond half, with nothing answering, the fault is more likely our own network's
    /// than the proxies'. While some proxy of the pool answered within the last second,
    /// the failures are the failing proxies' own, and ejection goes past this share, up
    /// to where panic mode would start (`panic_threshold`).
    pub max_ejected_fraction: f64,
    /// Panic mode: when fewer than this share of the proxies a request may use (those
    /// matching its requirements) are healthy, that request ignores ejections rather
    /// than fail, as Envoy does per cluster; and when fewer than this share of the whole
    /// pool is healthy (possible when `max_ejected_fraction` is above `1 − threshold`),
    /// every request does. Default 0.3.
    pub panic_threshold: f64,
}

impl Default for EjectionConfig {
    fn default() -> Self {
        EjectionConfig {
            enabled: true,
            consecutive_failures: 5,
            min_success_rate: 0.5,
            min_requests: 20,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_fraction: 0.5,
            panic_threshold: 0.3,
        }
    }
}

impl EjectionConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.consecutive_failures == 0 {
            return Err(ConfigError::new("ejection.consecutive_failures", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.min_success_rate) {
            return Err(ConfigError::new(
                "ejection.min_success_rate",
                format!("{} must be in [0, 1]", self.min_success_rate),
            ));
        }
        if self.min_requests == 0 || self.min_requests > HealthConfig::MAX_SUCCESS_WINDOW {
            return Err(ConfigError::new(
                "ejection.min_requests",
                format!("{} must be in 1..={}", self.min_requests, HealthConfig::MAX_SUCCESS_WINDOW),
            ));
        }
        duration_in("ejection.base_ejection", self.base_ejection, false)?;
        duration_in("ejection.max_ejection", self.max_ejection, false)?;
        if self.max_ejection < self.base_ejection {
            return Err(ConfigError::new("ejection.max_ejection", "must be at least ejection.base_ejection"));
        }
        if !(0.0..=1.0).contains(&self.max_ejected_fraction) {
            return Err(ConfigError::new(
                "ejection.max_ejected_fraction",
                format!("{} must be in [0, 1]", self.max_ejected_fraction),
            ));
        }
        if !(0.0..=1.0).contains(&self.panic_threshold) {
            return Err(ConfigError::new(
                "ejection.panic_threshold",
                format!("{} must be in [0, 1]", self.panic_threshold),
            ));
        }
        Ok(())
    }
}

/// How long a proxy stays banned by a target host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BanConfig {
    /// First ban without Retry-After; each further ban by the same host doubles it.
    /// Default 60 s: sites that ban usually forgive within minutes.
    #[serde(with = "humantime_serde")]
    pub base_cooldown: Duration,
    /// Longest ban without Retry-After. Default 1 h, as scrapy-rotating-proxies.
    #[serde(with = "humantime_serde")]
    pub max_cooldown: Duration,
    /// Longest Retry-After honoured; a site asking for more gets this. Default 1 h.
    #[serde(with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// Target hosts remembered per proxy; beyond it the least recently seen host without
    /// an active ban is forgotten. Default 1024.
    pub max_hosts_per_proxy: usize,
}

impl Default for BanConfig {
    fn default() -> Self {
        BanConfig {
            base_cooldown: Duration::from_secs(60),
            max_cooldown: Duration::from_secs(3600),
            max_retry_after: Duration::from_secs(3600),
            max_hosts_per_proxy: 1024,
        }
    }
}

impl BanConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        duration_in("bans.base_cooldown", self.base_cooldown, false)?;
        duration_in("bans.max_cooldown", self.max_cooldown, false)?;
        duration_in("bans.max_retry_after", self.max_retry_after, true)?;
        if self.max_cooldown < self.base_cooldown {
            return Err(ConfigError::new("bans.max_cooldown", "must be at least bans.base_cooldown"));
        }
        entries_in("bans.max_hosts_per_proxy", self.max_hosts_per_proxy)?;
        Ok(())
    }
}

/// What the pool learns from every answer about each proxy and each site: the evidence
/// the [`ExpectedSuccess`](crate::balance::ExpectedSuccess) balancer chooses by, and the
/// latency quantiles the client sets its timeouts and hedges from.
///
/// Evidence fades with time instead of being counted over a window: a proxy idle for an
/// hour keeps most of what it showed, and a site that changes its mind is followed
/// within a site half-life.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvidenceConfig {
    /// Half-life of each proxy's own evidence: whether it answers at all, and what each
    /// site answers it. Default 10 min: long enough that a proxy which failed and sat
    /// out an ejection comes back with its record, short enough that a proxy which
    /// recovered is trusted again within the hour.
    #[serde(with = "humantime_serde")]
    pub half_life: Duration,
    /// Half-life of each site's evidence over all proxies of one kind: how the site
    /// treats that kind now, which every proxy of the kind is judged against. Default
    /// 20 s: a busy site answers many requests in 20 s, and a site that turns against a
    /// kind of proxy (or back) is followed within a minute (measured in the selection
    /// simulator); a quiet site's few answers fall back towards its other kinds and the
    /// pool's average.
    #[serde(with = "humantime_serde")]
    pub site_half_life: Duration,
    /// How many outcomes the starting point is worth against a proxy's own evidence.
    /// Default 2: two answers of its own already outweigh what the pool expects of it.
    pub prior_weight: f64,
    /// Requests per proxy and site are counted over about this long (a fading count),
    /// to learn and respect each site's per-proxy rate tolerance. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub rate_window: Duration,
    /// A learned rate tolerance doubles every this long without a new 429, so that a site
    /// which relaxed its limit is found out. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub rate_relax: Duration,
    /// Latency quantiles are taken over the last one to two windows of this length.
    /// Default 60 s.
    #[serde(with = "humantime_serde")]
    pub latency_window: Duration,
    /// Successful answers needed before a latency quantile is trusted. Default 20.
    pub min_latency_samples: u32,
    /// A request still in flight after this many times its site's 99th-percentile
    /// latency makes its proxy suspect before any timeout fires. Default 3.
    pub suspect_after: f64,
    /// The client's hedging delay, taken from a site's high latency quantile, is at most
    /// this many times the site's median latency, 1 to 1e6 (the adaptive timeout keeps the
    /// true quantile, so that a site's own slow pages are not cut off). Default 8:
    /// above the 95th and 99th percentiles of a typical site's own spread, so it binds only
    /// when slow proxies have dragged those quantiles up to their own latency (see
    /// [`ProxyPool::tail_latency`](crate::ProxyPool::tail_latency)).
    pub tail_spread: f64,
    /// Sites remembered; past it the least recently seen are forgotten. Default 4096.
    pub max_sites: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            half_life: Duration::from_secs(600),
            site_half_life: Duration::from_secs(20),
            prior_weight: 2.0,
            rate_window: Duration::from_secs(10),
            rate_relax: Duration::from_secs(300),
            latency_window: Duration::from_secs(60),
            min_latency_samples: 20,
            suspect_after: 3.0,
            tail_spread: 8.0,
            max_sites: 4096,
        }
    }
}

impl EvidenceConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, d) in [
            ("evidence.half_life", self.half_life),
            ("evidence.site_half_life", self.site_half_life),
            ("evidence.rate_window", self.rate_window),
            ("evidence.rate_relax", self.rate_relax),
            ("evidence.latency_window", self.latency_window),
        ] {
            duration_in(field, d, false)?;
        }
        if !(self.prior_weight > 0.0 && self.prior_weight <= 1e6) {
            return Err(ConfigError::new(
                "evidence.prior_weight",
                format!("{} must be above 0 and at most 1e6", self.prior_weight),
            ));
        }
        if !(1.0..=1e6).contains(&self.suspect_after) {
            return Err(ConfigError::new(
                "evidence.suspect_after",
                format!("{} must be in [1, 1e6]", self.suspect_after),
            ));
        }
        if !(1.0..=1e6).contains(&self.tail_spread) {
            return Err(ConfigError::new("evidence.tail_spread", format!("{} must be in [1, 1e6]", self.tail_spread)));
        }
        entries_in("evidence.max_sites", self.max_sites)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PoolConfig::default().validate().expect("defaults must validate");
    }

    #[test]
    fn each_bad_value_names_its_field() {
        let mut c = PoolConfig::default();
        c.ejection.max_ejected_fraction = 1.5;
        assert_eq!(c.validate().map_err(|e| e.field.into_owned()), Err("ejection.max_ejected_fraction".to_owned()));
        let mut c = PoolConfig::default();
        c.health.success_window = 57;
        assert_eq!(c.validate().map_err(|e| e.field.into_owned()), Err("health.success_window".to_owned()));
        let mut c = PoolConfig::default();
        c.bans.max_cooldown = Duration::from_secs(1);
        assert_eq!(c.validate().map_err(|e| e.field.into_owned()), Err("bans.max_cooldown".to_owned()));
        let mut c = PoolConfig::default();
        c.evidence.prior_weight = f64::NAN;
        assert_eq!(c.validate().map_err(|e| e.field.into_owned()), Err("evidence.prior_weight".to_owned()));
        let mut c = PoolConfig::default();
        c.evidence.site_half_life = Duration::ZERO;
        assert_eq!(c.validate().map_err(|e| e.field.into_owned()), Err("evidence.site_half_life".to_owned()));
        let mut c = PoolConfig::default();
        c.health.success_window = 10;
        assert_eq!(
            c.validate().map_err(|e| e.field.into_owned()),
            Err("ejection.min_requests".to_owned()),
            "20 outcomes never fit in 10"
        );
    }

    #[test]
    fn config_reads_from_toml_with_human_durations() {
        let c: PoolConfig =
            toml::from_str("[ejection]\nbase_ejection = \"45s\"\n[bans]\nmax_cooldown = \"2h\"\n").expect("valid toml");
        assert_eq!(c.ejection.base_ejection, Duration::from_secs(45));
        assert_eq!(c.bans.max_cooldown, Duration::from_secs(7200));
        assert_eq!(c.health, HealthConfig::default());
    }
}
