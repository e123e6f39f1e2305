//! The registry of proxies in Redis: any instance adds its proxies, every instance can
//! read them, and an entry expires unless its instance keeps rewriting it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use harvester_redis::{RedisConnection, redis};

use crate::proxy::Proxy;

use super::config::SharedStateConfig;
use super::entry::{self, RegisteredProxy};
use super::error::SharedStateError;
use super::keys::Keys;
use super::scripts::{REGISTER_SCRIPT, WITHDRAW_SCRIPT};
use super::tier::QualityTier;

/// Entries written per script call: one call stays short for Redis, which runs scripts
/// one at a time.
const WRITE_BATCH: usize = 100;
/// Entries read per `MGET`.
const READ_BATCH: usize = 500;

/// Which registered proxies to read: all, or those of one index (the seed's sets per
/// region, provider and quality tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryIndex<'a> {
    /// Every registered proxy.
    All,
    /// Proxies whose region is this one.
    Region(&'a str),
    /// Proxies of this provider.
    Provider(&'a str),
    /// Proxies whose registering instance last saw them in this tier.
    Tier(QualityTier),
}

/// The registry of proxies shared by every instance through Redis.
///
/// Each entry is a key holding the proxy as JSON (**with its credentials**: other
/// instances need them to connect) and a TTL; sorted sets index the entries by region,
/// provider and quality tier. An entry lives `registry_ttl` after its last write, so an
/// instance keeps its proxies registered by writing them again, more often than that
/// ([`SharedState`](super::SharedState) does it on every heartbeat); the proxies of an
/// instance that died leave by themselves.
///
/// Redis then holds proxy credentials: give the shared-state user a Redis ACL limited to
/// the namespace's keys and channel, and use `rediss://` (feature `redis-tls`) across
/// untrusted networks. Nothing here logs, prints or `Debug`s them.
///
/// Cheap to clone.
#[derive(Clone)]
pub struct ProxyRegistry {
    connection: RedisConnection,
    keys: Arc<Keys>,
    instance: Arc<str>,
    ttl: Duration,
}

impl ProxyRegistry {
    /// A registry on `connection`, with `config`'s namespace, TTL and instance name.
    pub fn new(connection: RedisConnection, config: SharedStateConfig) -> Result<ProxyRegistry, SharedStateError> {
        config.validate()?;
        Ok(ProxyRegistry::with_instance(connection, &config, Arc::from(config.instance_name())))
    }

    pub(crate) fn with_instance(
        connection: RedisConnection,
        config: &SharedStateConfig,
        instance: Arc<str>,
    ) -> ProxyRegistry {
        let keys = Arc::new(Keys::new(connection.key_prefix(), &config.namespace));
        ProxyRegistry { connection, keys, instance, ttl: config.registry_ttl }
    }

    /// The name this registry writes its entries under.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Writes (or rewrites) the entries of `proxies`, each with its quality score (from
    /// [`ProxyStats::quality`](crate::ProxyStats::quality); 1 for a proxy not yet used),
    /// for `registry_ttl` from now. Returns how many it wrote.
    pub async fn register<'a>(
        &self,
        proxies: impl IntoIterator<Item = (&'a Proxy, f64)>,
    ) -> Result<usize, SharedStateError> {
        let proxies: Vec<(&Proxy, f64)> = proxies.into_iter().collect();
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        for batch in proxies.chunks(WRITE_BATCH) {
            let mut invocation = REGISTER_SCRIPT.prepare_invoke();
            invocation.arg(ttl_ms);
            for &(proxy, quality) in batch {
                let json = entry::encode(proxy, &self.instance, quality);
                let tier = QualityTier::of(quality);
                let meta = proxy.meta();
                for key in self.index_keys(proxy) {
                    invocation.key(key);
                }
                let tier_number = QualityTier::ALL.iter().position(|t| *t == tier).map_or(4, |i| i + 1);
                invocation
                    .arg(proxy.id().as_str())
                    .arg(json)
                    .arg(if meta.region.is_some() { "1" } else { "0" })
                    .arg(if meta.provider.is_some() { "1" } else { "0" })
                    .arg(tier_number);
            }
            let _: u64 =
                self.connection.run(|mut manager| async move { invocation.invoke_async(&mut manager).await }).await?;
        }
        Ok(proxies.len())
    }

    /// Removes the entries of `proxies` that this instance wrote last (one rewritten by
    /// another instance since is left to it). Returns how many it removed.
    pub async fn withdraw<'a>(&self, proxies: impl IntoIterator<Item = &'a Proxy>) -> Result<usize, SharedStateError> {
        let proxies: Vec<&Proxy> = proxies.into_iter().collect();
        let mut removed = 0;
        for batch in proxies.chunks(WRITE_BATCH) {
            let mut invocation = WITHDRAW_SCRIPT.prepare_invoke();
            invocation.arg(&*self.instance);
            for proxy in batch {
                for key in self.index_keys(proxy) {
                    invocation.key(key);
                }
                invocation.arg(proxy.id().as_str());
            }
            let count: usize =
                self.connection.run(|mut manager| async move { invocation.invoke_async(&mut manager).await }).await?;
            removed += count;
        }
        Ok(removed)
    }

    /// The registered proxies of `index`, credentials included. Entries that do not read
    /// (another version, damaged) are skipped with a warning that never quotes them.
    pub async fn load(&self, index: RegistryIndex<'_>) -> Result<Vec<RegisteredProxy>, SharedStateError> {
        let index_key = match index {
            RegistryIndex::All => self.keys.all(),
            RegistryIndex::Region(region) => self.keys.region(region),
            RegistryIndex::Provider(provider) => self.keys.provider(provider),
            RegistryIndex::Tier(tier) => self.keys.tier(tier),
        };
        let ids: Vec<String> = self
            .connection
            .run(|mut manager| async move {
                redis::cmd("ZRANGE").arg(index_key).arg(0).arg(-1).query_async(&mut manager).await
            })
            .await?;
        let mut found = Vec::with_capacity(ids.len());
        let mut unreadable = 0usize;
        for batch in ids.chunks(READ_BATCH) {
            let keys: Vec<String> = batch.iter().map(|id| self.keys.entry(id)).collect();
            let values: Vec<Option<Vec<u8>>> = self
                .connection
                .run(|mut manager| async move { redis::cmd("MGET").arg(keys).query_async(&mut manager).await })
                .await?;
            // A missing value is an entry that expired before its index member: skipped.
            for value in values.into_iter().flatten() {
                match entry::decode(&value) {
                    Ok(registered) if matches(&registered, index) => found.push(registered),
                    Ok(_) => {}
                    Err(_) => unreadable += 1,
                }
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                endpoint = self.connection.endpoint(),
                unreadable,
                "registry entries skipped: not in the format this version writes"
            );
        }
        Ok(found)
    }

    /// The eight keys a proxy's entry touches: the entry, the index of all, its region's
    /// and provider's (the index of all again when it has none, unused), the four tiers.
    fn index_keys(&self, proxy: &Proxy) -> [String; 8] {
        let meta = proxy.meta();
        let all = self.keys.all();
        let [premium, high, medium, low] = QualityTier::ALL.map(|tier| self.keys.tier(tier));
        [
            self.keys.entry(proxy.id().as_str()),
            all.clone(),
            meta.region.as_deref().map_or_else(|| all.clone(), |r| self.keys.region(r)),
            meta.provider.as_deref().map_or_else(|| all.clone(), |p| self.keys.provider(p)),
            premium,
            high,
            medium,
            low,
        ]
    }
}

/// An index is a hint (a proxy may have moved since it was indexed): the entry decides.
fn matches(registered: &RegisteredProxy, index: RegistryIndex<'_>) -> bool {
    let meta = registered.proxy.meta();
    match index {
        RegistryIndex::All => true,
        RegistryIndex::Region(region) => meta.region.as_deref() == Some(region),
        RegistryIndex::Provider(provider) => meta.provider.as_deref() == Some(provider),
        RegistryIndex::Tier(tier) => registered.tier == tier,
    }
}

impl fmt::Debug for ProxyRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyRegistry")
            .field("endpoint", &self.connection.endpoint())
            .field("instance", &self.instance)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
