//! [`ProxyClientBuilder`]: the pool, the classifier, the host policy and the settings of
//! a [`ProxyClient`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::classify::{Classifier, DefaultClassifier};
use super::config::{ClientConfig, ClientSettings};
use super::policy::HostPolicy;
use super::service::ProxyClient;
use super::tail::{AdaptiveTimeout, Hedging};
use crate::error::ConfigError;
use crate::pool::ProxyPool;

/// Builds a [`ProxyClient`]; see [`ProxyClient::builder`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct ProxyClientBuilder {
    pool: ProxyPool,
    classifier: Arc<dyn Classifier>,
    policy: HostPolicy,
    settings: ClientSettings,
}

impl ProxyClient {
    /// A builder over `pool` with the defaults.
    pub fn builder(pool: ProxyPool) -> ProxyClientBuilder {
        ProxyClientBuilder::new(pool)
    }
}

impl ProxyClientBuilder {
    /// Time to connect to the proxy (more than zero, at most a day). Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.config.connect_timeout = timeout;
        self
    }

    /// Time for the whole exchange, body included; past it the request fails with
    /// [`ClientError::TimedOut`](super::ClientError::TimedOut) and the proxy is reported
    /// timed out (more than zero, at most a day). Default 30 s (the seed's timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.config.request_timeout = timeout;
        self
    }

    /// Gives up on an attempt after a multiple of its host's latency quantile (see
    /// [`AdaptiveTimeout`]), never later than the request timeout. Default off: every
    /// attempt gets the whole request timeout.
    pub fn adaptive_timeout(mut self, adaptive: AdaptiveTimeout) -> Self {
        self.settings.config.adaptive_timeout = Some(adaptive);
        self
    }

    /// Sends a second attempt through another proxy when the first is slow (see
    /// [`Hedging`]). Default off: every request goes through one proxy at a time.
    pub fn hedging(mut self, hedging: Hedging) -> Self {
        self.settings.config.hedging = Some(hedging);
        self
    }

    /// Largest body read; a larger one fails with
    /// [`ClientError::BodyTooLarge`](super::ClientError::BodyTooLarge). Default 10 MiB.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.settings.config.max_body_bytes = bytes;
        self
    }

    /// Per-proxy clients kept (1 to a million); the least recently used goes beyond it.
    /// Default 1024.
    pub fn max_cached_clients(mut self, clients: usize) -> Self {
        self.settings.config.max_cached_clients = clients;
        self
    }

    /// Idle keep-alive connections each per-proxy client keeps per target host (at most
    /// 65 536). Default 8.
    pub fn max_idle_per_proxy(mut self, connections: usize) -> Self {
        self.settings.config.max_idle_per_proxy = connections;
        self
    }

    /// The classifier. Default: [`DefaultClassifier`].
    pub fn classifier(mut self, classifier: impl Classifier) -> Self {
        self.classifier = Arc::new(classifier);
        self
    }

    /// Requirements per target host. Default: no rules, empty requirements.
    pub fn policy(mut self, policy: HostPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Also trusts this certificate (PEM) for HTTPS targets, beside the system's roots.
    pub fn trust_root_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ConfigError::new("client.trust_root_pem", format!("not a PEM certificate: {e}")))?;
        self.settings.root_certificates.push(cert);
        Ok(self)
    }

    /// A say over each per-proxy reqwest client (redirect policy, default headers,
    /// HTTP/2…). It runs first: the proxy, the connect timeout and the idle-connection
    /// limit are set after it and cannot be overridden, so traffic cannot bypass the proxy.
    pub fn configure_client(
        mut self,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Self {
        self.settings.configure = Some(Arc::new(configure));
        self
    }

    /// Every setting at once (say, from a configuration file), replacing those set so far.
    pub fn config(mut self, config: ClientConfig) -> Self {
        self.settings.config = config;
        self
    }

    /// The client, or the setting that is out of range.
    pub fn build(self) -> Result<ProxyClient, ConfigError> {
        self.settings.config.validate()?;
        Ok(ProxyClient::from_parts(self.pool, self.classifier, self.policy, self.settings))
    }
}

impl ProxyClientBuilder {
    pub(crate) fn new(pool: ProxyPool) -> Self {
        ProxyClientBuilder {
            pool,
            classifier: Arc::new(DefaultClassifier::new()),
            policy: HostPolicy::default(),
            settings: ClientSettings {
                config: ClientConfig::default(),
                root_certificates: Vec::new(),
                configure: None,
            },
        }
    }
}

impl fmt::Debug for ProxyClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClientBuilder").field("pool", &self.pool).finish()
    }
}
