//! What a [`ProxyClient`](super::ProxyClient) is tuned with: [`ClientConfig`], plain and
//! serde-ready, checked by [`validate`](ClientConfig::validate); and the settings each
//! per-proxy HTTP client is built from.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::error_chain;
use super::tail::{AdaptiveTimeout, Hedging};
use crate::config::{Longest, entries_in};
use crate::error::ConfigError;
use crate::proxy::Proxy;

/// The most idle connections per proxy and host that may be kept.
const MAX_IDLE_PER_PROXY: usize = 65_536;

/// The client's settings. Every field has a default; [`validate`](Self::validate) names
/// the first one out of range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Time to connect to the proxy (more than zero, at most a day). Default 10 s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time for one attempt, body included; past it the attempt fails with
    /// [`ClientError::TimedOut`](super::ClientError::TimedOut) and the proxy is reported
    /// timed out (more than zero, at most a day). Default 30 s (the seed's timeout).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Largest body read; a larger one fails with
    /// [`ClientError::BodyTooLarge`](super::ClientError::BodyTooLarge). Default 10 MiB.
    pub max_body_bytes: usize,
    /// Per-proxy clients kept (1 to a million); the least recently used goes beyond it.
    /// Default 1024.
    pub max_cached_clients: usize,
    /// Idle keep-alive connections each per-proxy client keeps per target host (at most
    /// 65 536). Default 8.
    pub max_idle_per_proxy: usize,
    /// Gives up on an attempt after a multiple of its host's latency quantile, never
    /// later than `request_timeout`. Default off.
    pub adaptive_timeout: Option<AdaptiveTimeout>,
    /// Sends another attempt through another proxy when the first is slow. Default off.
    pub hedging: Option<Hedging>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            max_cached_clients: 1024,
            max_idle_per_proxy: 8,
            adaptive_timeout: None,
            hedging: None,
        }
    }
}

impl ClientConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        Longest::DAY.check("client.connect_timeout", self.connect_timeout, false)?;
        Longest::DAY.check("client.request_timeout", self.request_timeout, false)?;
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new("client.max_body_bytes", "must be at least 1"));
        }
        // The same cap as every other table of the pool.
        entries_in("client.max_cached_clients", self.max_cached_clients)?;
        if self.max_idle_per_proxy > MAX_IDLE_PER_PROXY {
            return Err(ConfigError::new(
                "client.max_idle_per_proxy",
                format!("{} must be at most {MAX_IDLE_PER_PROXY}", self.max_idle_per_proxy),
            ));
        }
        if let Some(adaptive) = &self.adaptive_timeout {
            adaptive.validate()?;
        }
        if let Some(hedging) = &self.hedging {
            hedging.validate()?;
        }
        Ok(())
    }
}

/// How each per-proxy HTTP client is built.
pub(crate) struct ClientSettings {
    pub(crate) config: ClientConfig,
    pub(crate) root_certificates: Vec<reqwest::Certificate>,
    pub(crate) configure: Option<Arc<ConfigureFn>>,
}

pub(crate) type ConfigureFn = dyn Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync;

impl ClientSettings {
    /// The client for `proxy`, which sends every request through it, or why not (the
    /// message may quote the proxy URL: scrub it).
    ///
    /// A request must never leave except through the proxy it was leased for. The HTTP
    /// stack matches requests to a proxy by a URI it parses from the proxy URL, and when
    /// that parse fails (a URL past 64 KiB, say) it drops the proxy without a word and
    /// connects straight to the target. So the same parse is done here first, and its
    /// failure is an error; any proxy the caller's `configure` set is cleared, so the
    /// leased one is the only one.
    pub(crate) fn build_client(&self, proxy: &Proxy) -> Result<reqwest::Client, String> {
        // reqwest is built without a crypto provider of its own: ring is the one TLS stack
        // of this project. Installing fails harmlessly when the host already chose one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = proxy.url_with_credentials();
        if url.parse::<http::Uri>().is_err() {
            return Err("the proxy URL cannot be used by the HTTP stack (too long, or malformed)".to_owned());
        }
        let mut builder = reqwest::Client::builder();
        // The user's say comes first, so that it cannot take the proxy or the timeouts away.
        if let Some(configure) = &self.configure {
            builder = configure(builder);
        }
        if !self.root_certificates.is_empty() {
            builder = builder.tls_certs_merge(self.root_certificates.iter().cloned());
        }
        let leased = reqwest::Proxy::all(url).map_err(|e| error_chain(&e))?;
        builder
            .no_proxy()
            .proxy(leased)
            .connect_timeout(self.config.connect_timeout)
            .pool_max_idle_per_host(self.config.max_idle_per_proxy)
            .build()
            .map_err(|e| error_chain(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_url_the_http_stack_would_drop_is_an_error_never_a_direct_connection() {
        let settings =
            ClientSettings { config: ClientConfig::default(), root_certificates: Vec::new(), configure: None };
        let long = Proxy::parse("http://127.0.0.1:3128")
            .expect("valid")
            .with_unchecked_credentials("user", &"p".repeat(70_000));
        let err = settings.build_client(&long).expect_err("the stack would drop this proxy");
        assert!(err.contains("cannot be used") && !err.contains("ppp"), "{err}");
        let fine = Proxy::parse("http://user:pw@127.0.0.1:3128").expect("valid");
        assert!(settings.build_client(&fine).is_ok());
    }

    #[test]
    fn the_default_config_is_valid_and_bad_values_name_their_field() {
        ClientConfig::default().validate().expect("the defaults are valid");
        let zero = ClientConfig { request_timeout: Duration::ZERO, ..ClientConfig::default() };
        assert_eq!(zero.validate().expect_err("zero").field, "client.request_timeout");
        let idle = ClientConfig { max_idle_per_proxy: MAX_IDLE_PER_PROXY + 1, ..ClientConfig::default() };
        assert_eq!(idle.validate().expect_err("too many").field, "client.max_idle_per_proxy");
    }
}
