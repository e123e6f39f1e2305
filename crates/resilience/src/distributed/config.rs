//! What to do when Redis is down, and a distributed rate limit as read from a file.
//! Where Redis is ([`RedisConfig`]) comes from harvester-redis.

use std::time::Duration;

use harvester_redis::RedisConfig;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::rate_limit::{KeyBy, Mode, Quota, RateLimitConfig};

/// Longest probe interval accepted.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// What a distributed limiter does when Redis cannot decide (unreachable, timing out,
/// refusing the login).
///
/// In TOML: `failure_policy = "fail_open"`, `"fail_closed"` or
/// `{ local = { share = 0.25 } }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Allow every call: availability over the targets' comfort.
    FailOpen,
    /// Refuse every call with [`LimiterUnavailable`](crate::LimiterUnavailable): the
    /// targets are never sent more than the quota. The default.
    #[default]
    FailClosed,
    /// Decide locally on `share` (in (0, 1]) of the quota: with N instances, `1 / N` keeps
    /// the total near the quota while Redis is away.
    Local {
        /// This process's share of the quota.
        share: f64,
    },
}

impl FailurePolicy {
    /// Refuses a share outside (0, 1].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            FailurePolicy::Local { share } if !(share > 0.0 && share <= 1.0) => {
                Err(ConfigError::new("failure_policy.share", "must be greater than 0 and at most 1"))
            }
            _ => Ok(()),
        }
    }

    /// The label of the metrics and events of decisions made under this policy.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            FailurePolicy::FailOpen => "fail_open",
            FailurePolicy::FailClosed => "fail_closed",
            FailurePolicy::Local { .. } => "local",
        }
    }
}

/// How a distributed limiter behaves besides its quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedOptions {
    /// Label of metrics and events. Default `distributed_rate_limit`.
    pub name: String,
    /// What to do when Redis cannot decide. Default fail closed.
    pub failure_policy: FailurePolicy,
    /// After Redis failed, checks are decided by the policy without asking Redis, except
    /// one probe per this interval; the first probe that succeeds ends the outage.
    /// Default 500 ms.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Keyed limiters: keys held at most in the local deny-cache, and in the local
    /// fallback limiter of [`FailurePolicy::Local`]. Default 100 000.
    pub max_keys: usize,
}

impl Default for DistributedOptions {
    fn default() -> Self {
        DistributedOptions {
            name: "distributed_rate_limit".to_owned(),
            failure_policy: FailurePolicy::FailClosed,
            probe_interval: Duration::from_millis(500),
            max_keys: crate::rate_limit::DEFAULT_MAX_KEYS,
        }
    }
}

impl DistributedOptions {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.failure_policy.validate()?;
        if self.probe_interval.is_zero() || self.probe_interval > LONGEST_TIMEOUT {
            return Err(ConfigError::new("probe_interval", "must be greater than zero and at most an hour"));
        }
        if self.max_keys == 0 {
            return Err(ConfigError::new("max_keys", "must be at least 1"));
        }
        Ok(())
    }
}

/// A distributed rate limit for HTTP requests, as read from a file: the fields of
/// [`RateLimitConfig`], the failure policy and where Redis is.
///
/// ```toml
/// [rate_limit]
/// name = "crawl"          # also the Redis key (namespace): harvester:crawl[:host]
/// rate = 2
/// per = "1s"
/// burst = 5
/// mode = "wait"
/// max_wait = "3s"
/// key = "host"
/// failure_policy = { local = { share = 0.25 } }
/// [rate_limit.redis]
/// url = "redis://10.0.0.5:6379"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DistributedRateLimitConfig {
    /// Metrics label, and the Redis key (direct) or key namespace (keyed) after the
    /// prefix. Default `rate_limit`.
    pub name: String,
    /// Calls per `per`, at least 1. Default 10.
    pub rate: u32,
    /// The period of `rate`. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub per: Duration,
    /// Calls that may go at once after a quiet spell. Default: `rate`.
    pub burst: Option<u32>,
    /// Refuse at once, or wait up to `max_wait`. Default reject.
    pub mode: Mode,
    /// Longest wait in wait mode. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// One rate for all, or per target host. Default per host.
    pub key: KeyBy,
    /// Keys held at most locally (deny-cache, local fallback). Default 100 000.
    pub max_keys: usize,
    /// What to do when Redis cannot decide. Default fail closed.
    pub failure_policy: FailurePolicy,
    /// One probe of Redis per this interval during an outage. Default 500 ms.
    #[serde(with = "humantime_serde")]
    pub probe_interval: Duration,
    /// Where Redis is.
    pub redis: RedisConfig,
}

impl Default for DistributedRateLimitConfig {
    fn default() -> Self {
        let local = RateLimitConfig::default();
        let options = DistributedOptions::default();
        DistributedRateLimitConfig {
            name: local.name,
            rate: local.rate,
            per: local.per,
            burst: local.burst,
            mode: local.mode,
            max_wait: local.max_wait,
            key: local.key,
            max_keys: local.max_keys,
            failure_policy: options.failure_policy,
            probe_interval: options.probe_interval,
            redis: RedisConfig::default(),
        }
    }
}

impl DistributedRateLimitConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.as_local().validate()?;
        self.options().validate()?;
        self.redis.validate()
    }

    /// The quota it describes.
    pub fn quota(&self) -> Result<Quota, ConfigError> {
        self.as_local().quota()
    }

    /// The options of the limiter it describes.
    pub fn options(&self) -> DistributedOptions {
        DistributedOptions {
            name: self.name.clone(),
            failure_policy: self.failure_policy,
            probe_interval: self.probe_interval,
            max_keys: self.max_keys,
        }
    }

    /// The same limit as a local [`RateLimitConfig`] (whose checks it shares).
    pub fn as_local(&self) -> RateLimitConfig {
        RateLimitConfig {
            name: self.name.clone(),
            rate: self.rate,
            per: self.per,
            burst: self.burst,
            mode: self.mode,
            max_wait: self.max_wait,
            key: self.key,
            max_keys: self.max_keys,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_policy_reads_from_toml() {
        #[derive(Deserialize)]
        struct File {
            rate_limit: DistributedRateLimitConfig,
        }
        let file: File = toml::from_str(
            "[rate_limit]\nname = \"crawl\"\nrate = 2\nfailure_policy = { local = { share = 0.25 } }\n\
             [rate_limit.redis]\nurl = \"redis://127.0.0.1:1\"\nresponse_timeout = \"50ms\"\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.rate_limit.failure_policy, FailurePolicy::Local { share: 0.25 });
        assert_eq!(file.rate_limit.redis.response_timeout, Duration::from_millis(50));
        file.rate_limit.validate().unwrap_or_else(|e| panic!("{e}"));

        let bad =
            DistributedRateLimitConfig { failure_policy: FailurePolicy::Local { share: 1.5 }, ..Default::default() };
        assert_eq!(bad.validate().expect_err("invalid").field, "failure_policy.share");
    }
}
