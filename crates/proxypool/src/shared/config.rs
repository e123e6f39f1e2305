//! How an instance shares its proxies and their health through Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Longest interval or TTL accepted.
const LONGEST: Duration = Duration::from_secs(86_400);

/// The settings of [`SharedState`](super::SharedState) and [`ProxyRegistry`](super::ProxyRegistry).
/// Where Redis is comes separately, as a `harvester_redis::RedisConnection`.
///
/// In TOML:
///
/// ```toml
/// [shared]
/// instance = "crawler-eu-1"
/// registry_ttl = "60s"
/// heartbeat_interval = "15s"
/// poll_interval = "5s"
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SharedStateConfig {
    /// This instance's name, in registry entries and announced verdicts (so that it
    /// ignores its own). Default: the process id and a random suffix, new at each start.
    pub instance: Option<String>,
    /// Put after the connection's key prefix before every key and channel name, as a
    /// hash tag without its trailing colons (`harvester:{proxies}:...`), so that all the
    /// namespace's keys are in one slot of a Redis Cluster. Default `proxies:`; instances
    /// share state only within one namespace. Must not be empty nor hold `{` or `}`.
    pub namespace: String,
    /// How long a registry entry lives without a heartbeat: a proxy registered by an
    /// instance that died leaves the registry within this. Default 60 s.
    #[serde(with = "humantime_serde")]
    pub registry_ttl: Duration,
    /// How often an instance rewrites its registrations (refreshing their TTL and
    /// quality tier). At most half the TTL, so that one lost heartbeat loses nothing.
    /// Default 15 s.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
    /// Whether the instance loads the registry into its pool. Default true.
    pub load_registry: bool,
    /// How often the registry is loaded into the pool. Default 15 s.
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// A proxy loaded from the registry leaves the pool once it has been missing from the
    /// registry this long. Default 15 s (one heartbeat): a Redis restart, which empties
    /// the registry until the owners' next heartbeat, must not empty the pools.
    #[serde(with = "humantime_serde")]
    pub removal_grace: Duration,
    /// How often the running verdicts are read from Redis, the fallback for the pub/sub
    /// announcements missed while unsubscribed. Default 5 s: the longest delay before a
    /// verdict is honoured everywhere when pub/sub fails.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// First wait before retrying Redis after a failure; doubled (with jitter) at each
    /// failure in a row up to `retry_max_delay`. Default 100 ms.
    #[serde(with = "humantime_serde", alias = "retry_min")]
    pub retry_base_delay: Duration,
    /// Longest wait between retries. Default 5 s.
    #[serde(with = "humantime_serde", alias = "retry_max")]
    pub retry_max_delay: Duration,
    /// Verdicts this instance made while Redis was away, kept to be announced when it
    /// returns (the rest are dropped, with a warning). Default 10 000.
    pub max_pending: usize,
    /// Most running verdicts read by one poll. Default 10 000.
    pub max_polled: usize,
}

impl Default for SharedStateConfig {
    fn default() -> Self {
        SharedStateConfig {
            instance: None,
            namespace: "proxies:".to_owned(),
            registry_ttl: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(15),
            load_registry: true,
            sync_interval: Duration::from_secs(15),
            removal_grace: Duration::from_secs(15),
            poll_interval: Duration::from_secs(5),
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
            max_pending: 10_000,
            max_polled: 10_000,
        }
    }
}

impl SharedStateConfig {
    /// Refuses values that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(instance) = &self.instance
            && instance.trim().is_empty()
        {
            return Err(ConfigError::new("shared.instance", "must not be blank (leave it out for a generated one)"));
        }
        if self.namespace.trim_end_matches(':').is_empty() || self.namespace.contains(['{', '}']) {
            return Err(ConfigError::new(
                "shared.namespace",
                "must be a name without { or } (it is the hash tag of every shared key), like `proxies:`",
            ));
        }
        for (field, value) in [
            ("shared.registry_ttl", self.registry_ttl),
            ("shared.heartbeat_interval", self.heartbeat_interval),
            ("shared.sync_interval", self.sync_interval),
            ("shared.poll_interval", self.poll_interval),
            ("shared.retry_base_delay", self.retry_base_delay),
            ("shared.retry_max_delay", self.retry_max_delay),
        ] {
            if value.as_millis() == 0 || value > LONGEST {
                return Err(ConfigError::new(field, "must be at least 1 ms and at most a day"));
            }
        }
        if self.removal_grace > LONGEST {
            return Err(ConfigError::new("shared.removal_grace", "must be at most a day"));
        }
        if self.heartbeat_interval.saturating_mul(2) > self.registry_ttl {
            return Err(ConfigError::new(
                "shared.heartbeat_interval",
                "must be at most half of shared.registry_ttl, or entries expire between heartbeats",
            ));
        }
        if self.retry_max_delay < self.retry_base_delay {
            return Err(ConfigError::new("shared.retry_max_delay", "must be at least shared.retry_base_delay"));
        }
        if self.max_polled == 0 {
            return Err(ConfigError::new("shared.max_polled", "must be at least 1"));
        }
        Ok(())
    }

    /// The instance name: `instance`, or a new generated one.
    pub(crate) fn instance_name(&self) -> String {
        match &self.instance {
            Some(name) => name.trim().to_owned(),
            None => format!("{}-{:08x}", std::process::id(), rand::random::<u32>()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        SharedStateConfig::default().validate().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn a_heartbeat_slower_than_half_the_ttl_is_refused() {
        let config = SharedStateConfig {
            registry_ttl: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(6),
            ..Default::default()
        };
        assert_eq!(config.validate().map_err(|e| e.field.into_owned()), Err("shared.heartbeat_interval".to_owned()));
    }

    #[test]
    fn a_namespace_must_make_a_hash_tag() {
        for namespace in ["", ":", "a{b", "x}:"] {
            let config = SharedStateConfig { namespace: namespace.into(), ..Default::default() };
            assert_eq!(
                config.validate().map_err(|e| e.field.into_owned()),
                Err("shared.namespace".to_owned()),
                "{namespace:?}"
            );
        }
        SharedStateConfig { namespace: "crawl-7".into(), ..Default::default() }.validate().expect("a tag");
    }

    #[test]
    fn reads_from_toml() {
        let config: SharedStateConfig =
            toml::from_str("instance = \"a\"\nregistry_ttl = \"2s\"\nheartbeat_interval = \"1s\"\n")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.registry_ttl, Duration::from_secs(2));
        assert_eq!(config.instance_name(), "a");
        config.validate().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn generated_names_differ() {
        let config = SharedStateConfig::default();
        assert_ne!(config.instance_name(), config.instance_name());
    }
}
