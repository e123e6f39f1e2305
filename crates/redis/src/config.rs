//! Where Redis is and how to talk to it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::error::ConfigError;

/// Longest connect or response timeout accepted.
const LONGEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// How to reach Redis.
///
/// Credentials come from the URL (`redis://user:password@host:port/db`) or, taking
/// precedence, from `username` / `password`; `database` likewise overrides the URL's. They
/// never appear in `Debug`, `Display`, serialized output, errors or logs: the URL shows as
/// `redis://***:***@host:port`, user name and password as `***`, and serializing leaves
/// them out (a report of the configuration must not leak them; keep them in the file you
/// read).
///
/// In TOML:
///
/// ```toml
/// [redis]
/// url = "redis://10.0.0.5:6379"
/// username = "harvester"
/// password = "..."
/// database = 2
/// key_prefix = "harvester:"
/// connect_timeout = "1s"
/// response_timeout = "200ms"
/// ```
///
/// A Redis Cluster: `cluster = true`, and `url` names one node (any master or replica
/// that answers; the others are found from it with `CLUSTER SLOTS`):
///
/// ```toml
/// [redis]
/// url = "redis://10.0.0.5:7000"
/// cluster = true
/// ```
///
/// ```
/// use harvester_redis::RedisConfig;
///
/// let config = RedisConfig { url: "redis://app:s3cret@127.0.0.1:6379/1".into(), ..Default::default() };
/// config.validate()?;
/// assert_eq!(config.to_string(), "redis://***:***@127.0.0.1:6379/1 (prefix \"harvester:\")");
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), harvester_redis::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user[:password]@]host[:port][/db]`, `redis+unix:///path` or, with the
    /// `tls` feature, `rediss://...`. Default `redis://127.0.0.1:6379`.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    /// ACL user name (Redis 6+); needs `password`. Treated as a secret like the password.
    #[serde(skip_serializing)]
    pub username: Option<String>,
    /// Password (`AUTH`); never printed, never serialized.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// Database number; default the URL's, else 0. A cluster has database 0 only.
    pub database: Option<i64>,
    /// Whether `url` is one node of a Redis Cluster (the seed the topology is discovered
    /// from) rather than a standalone Redis. Must match the server: connecting checks
    /// `INFO cluster` and refuses a mismatch, naming this field. Default `false`.
    pub cluster: bool,
    /// Put before every key this crate writes. Default `harvester:`.
    pub key_prefix: String,
    /// Longest wait for a connection to be made. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for an answer; a check waits no longer than this for Redis before the
    /// failure policy decides. Default 200 ms.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_owned(),
            username: None,
            password: None,
            database: None,
            cluster: false,
            key_prefix: "harvester:".to_owned(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(200),
        }
    }
}

impl RedisConfig {
    /// Refuses values that cannot work, naming the field; never echoes the URL.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.connection_info()?;
        if self.username.is_some() && self.password.is_none() {
            return Err(ConfigError::new("redis.password", "required when redis.username is set"));
        }
        if self.database.is_some_and(|db| db < 0) {
            return Err(ConfigError::new("redis.database", "must be 0 or more"));
        }
        if self.cluster {
            if matches!(scheme(&self.url), Some("redis+unix" | "unix")) {
                return Err(ConfigError::new(
                    "redis.url",
                    "a cluster's seed must be redis:// or rediss:// (its nodes are found by address, not by socket)",
                ));
            }
            if self.connection_info()?.redis_settings().db() != 0 {
                return Err(ConfigError::new("redis.database", "must be 0 on a cluster (redis.cluster = true)"));
            }
        }
        for (field, timeout) in
            [("redis.connect_timeout", self.connect_timeout), ("redis.response_timeout", self.response_timeout)]
        {
            if timeout.is_zero() || timeout > LONGEST_TIMEOUT {
                return Err(ConfigError::new(field, "must be greater than zero and at most an hour"));
            }
        }
        Ok(())
    }

    /// The connection settings for the `redis` crate, credentials and database applied.
    pub fn connection_info(&self) -> Result<redis::ConnectionInfo, ConfigError> {
        use redis::IntoConnectionInfo;

        check_scheme(&self.url)?;
        // The crate's parse errors do not quote the URL, but say nothing of it either way.
        let info = self.url.as_str().into_connection_info().map_err(|_| {
            ConfigError::new("redis.url", "not a Redis URL: expected redis://[user[:password]@]host[:port][/db]")
        })?;
        let mut settings = info.redis_settings().clone();
        if let Some(username) = &self.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        if let Some(database) = self.database {
            settings = settings.set_db(database);
        }
        Ok(info.set_redis_settings(settings))
    }

    /// Every string that must not be shown: the password, the user name, the URL's
    /// userinfo (raw and its parts), longest first; [`scrub`](crate::scrub) removes them
    /// from a message.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> =
            [self.password.as_deref(), self.username.as_deref()].into_iter().flatten().map(str::to_owned).collect();
        if let Some(userinfo) = userinfo(&self.url) {
            secrets.push(userinfo.to_owned());
            // `user:password`, each percent-encoded: the first ':' separates them.
            let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
            for part in [user, password] {
                secrets.push(part.to_owned());
                secrets.extend(harvester_core::percent::decode(part));
            }
        }
        // Unix-socket URLs carry them as query parameters (`?user=…&pass=…`).
        for value in secret_query_values(&self.url) {
            secrets.push(value.to_owned());
            secrets.extend(harvester_core::percent::decode(value));
        }
        // Longest first, so that a secret containing another is removed whole.
        secrets.retain(|s| s.len() >= 2);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        secrets
    }

    /// The URL as it may be shown: userinfo replaced by `***:***`, the database applied.
    pub fn redacted_url(&self) -> String {
        let url = redact_url(&self.url);
        match self.database {
            Some(db) => format!("{} db {db}", url),
            None => url,
        }
    }

    /// Whether the URL asks for TLS (`rediss://`, `valkeys://`).
    pub fn uses_tls(&self) -> bool {
        matches!(scheme(&self.url), Some("rediss" | "valkeys"))
    }
}

impl fmt::Display for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = if self.cluster { "cluster, " } else { "" };
        write!(f, "{} ({mode}prefix {:?})", self.redacted_url(), self.key_prefix)
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url(&self.url))
            .field("username", &self.username.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

fn serialize_redacted_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&redact_url(url))
}

/// The URL's scheme when it looks like one (a short plain word); anything else may be a
/// password before a misplaced scheme, and is never shown.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.trim().split_once("://")?;
    (!scheme.is_empty() && scheme.len() <= 16 && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+'))
        .then_some(scheme)
}

fn check_scheme(url: &str) -> Result<(), ConfigError> {
    match scheme(url) {
        Some("redis" | "valkey" | "redis+unix" | "unix") => Ok(()),
        Some("rediss" | "valkeys") if cfg!(feature = "tls") => Ok(()),
        Some("rediss" | "valkeys") => Err(ConfigError::new(
            "redis.url",
            "rediss:// needs the `tls` feature of harvester-redis (`redis-tls` of harvester-resilience)",
        )),
        _ => Err(ConfigError::new("redis.url", "scheme must be redis://, rediss:// or redis+unix://")),
    }
}

/// The userinfo of `url`: between `://` and the last `@` (passwords may hold `/`, `?`, `#`).
fn userinfo(url: &str) -> Option<&str> {
    let (_, rest) = url.trim().split_once("://")?;
    rest.rfind('@').map(|at| &rest[..at])
}

/// Query parameters that carry credentials (the `redis` crate reads `user` and `pass`
/// from unix-socket URLs; the longer spellings are redacted too, in case).
const SECRET_PARAMETERS: [&str; 4] = ["pass", "password", "user", "username"];

/// The values of the URL's credential query parameters.
fn secret_query_values(url: &str) -> impl Iterator<Item = &str> {
    let query = url.trim().split_once('?').map_or("", |(_, query)| query);
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    query.split('&').filter_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        SECRET_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()).then_some(value)
    })
}

/// `scheme://***:***@host...` when the URL has userinfo, and `pass=***` (or `user=***`) for
/// credentials in its query; `***` when it does not parse as a URL at all (it could be
/// anything, a password included).
fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some(scheme) = scheme(url) else { return "***".to_owned() };
    let rest = &url[scheme.len() + 3..];
    let shown = match rest.rfind('@') {
        Some(at) => format!("{scheme}://***:***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    };
    let Some((base, query)) = shown.split_once('?') else { return shown };
    let redacted: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) => format!("{key}=***"),
            // A fragment or a parameter without a value may be anything: not shown.
            Some(_) if pair.contains('#') => "***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", redacted.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_redacted_everywhere() {
        let config = RedisConfig {
            url: "redis://us%40er:p%3Ass@127.0.0.1:6379/0".into(),
            username: Some("admin".into()),
            password: Some("hunter22".into()),
            ..Default::default()
        };
        let shown = format!("{config} {config:?} {}", toml::to_string(&config).unwrap_or_default());
        for secret in ["us%40er", "p%3Ass", "us@er", "p:ss", "admin", "hunter22"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("redis://***:***@127.0.0.1:6379/0"), "{shown}");
        let secrets = config.secrets();
        assert!(secrets.iter().any(|s| s == "p:ss") && secrets.iter().any(|s| s == "hunter22"), "{secrets:?}");
    }

    #[test]
    fn unix_socket_credentials_in_the_query_are_redacted_everywhere() {
        for url in [
            "redis+unix:///run/redis.sock?db=2&pass=s3cr%21t-pw&user=app-user",
            "unix:///run/redis.sock?pass=s3cr%21t-pw",
            "redis+unix:///run/redis.sock?PASSWORD=s3cr%21t-pw&db=1",
        ] {
            let config = RedisConfig { url: url.into(), ..Default::default() };
            let shown = format!(
                "{config} {config:?} {} {} {}",
                config.redacted_url(),
                toml::to_string(&config).unwrap_or_default(),
                serde_json::to_string(&config).unwrap_or_default()
            );
            for secret in ["s3cr%21t-pw", "s3cr!t-pw", "app-user"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("/run/redis.sock?"), "the socket path stays: {shown}");
            let secrets = config.secrets();
            assert!(secrets.iter().any(|s| s == "s3cr!t-pw"), "scrub removes it from errors: {secrets:?}");
            let message = format!("could not connect to {url}: refused by s3cr!t-pw");
            assert!(!crate::scrub(&message, &secrets).contains("s3cr"), "{}", crate::scrub(&message, &secrets));
        }
    }

    #[test]
    fn url_without_scheme_is_not_echoed() {
        let config = RedisConfig { url: "user:secret@redis://h".into(), ..Default::default() };
        let err = config.validate().expect_err("invalid");
        assert_eq!(err.field, "redis.url");
        assert!(!err.to_string().contains("secret") && !format!("{config:?}").contains("secret"));
    }

    #[test]
    fn username_needs_a_password() {
        let config = RedisConfig { username: Some("app".into()), ..Default::default() };
        assert_eq!(config.validate().expect_err("invalid").field, "redis.password");
    }

    #[test]
    fn a_cluster_seed_is_a_network_address_with_database_0() {
        let unix = RedisConfig { url: "redis+unix:///run/redis.sock".into(), cluster: true, ..Default::default() };
        assert_eq!(unix.validate().expect_err("invalid").field, "redis.url");
        for config in [
            RedisConfig { url: "redis://127.0.0.1:7000/2".into(), cluster: true, ..Default::default() },
            RedisConfig { database: Some(1), cluster: true, ..Default::default() },
        ] {
            assert_eq!(config.validate().expect_err("invalid").field, "redis.database");
        }
        let seed = RedisConfig { url: "redis://127.0.0.1:7000".into(), cluster: true, ..Default::default() };
        seed.validate().expect("valid");
        assert_eq!(seed.to_string(), "redis://127.0.0.1:7000 (cluster, prefix \"harvester:\")");
    }

    #[test]
    fn cluster_defaults_to_false_in_files() {
        let config: RedisConfig = toml::from_str("url = \"redis://127.0.0.1:7000\"").expect("parses");
        assert!(!config.cluster);
        let config: RedisConfig = toml::from_str("cluster = true").expect("parses");
        assert!(config.cluster);
    }

    #[test]
    fn timeouts_must_be_positive() {
        let config = RedisConfig { response_timeout: Duration::ZERO, ..Default::default() };
        assert_eq!(config.validate().expect_err("invalid").field, "redis.response_timeout");
    }
}
