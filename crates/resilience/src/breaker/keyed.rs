//! One breaker per key: per target host, per proxy, per anything a request carries.
//!
//! Each key has its own [`Breaker`] (window, state, open wait): a host that fails opens only
//! its own breaker. All of them share the configuration, the metric handles, the callbacks and
//! the broadcast channel, whose events carry the key.
//!
//! The number of keys is bounded by `max_keys`. Nothing runs in the background: when a new key
//! arrives and the map is full, or `key_idle_timeout` has passed since the last sweep, keys
//! idle for longer than `key_idle_timeout` are forgotten; if the map is still full, the least
//! recently used keys are (a sixteenth of `max_keys` at once, so that the scan is paid once
//! per many new keys). Tasks inserting at the same instant may overshoot the bound by their
//! number. A forgotten key starts again closed; a forgotten key's breaker still held by calls
//! in flight keeps guarding them but publishes nothing more (no event, no `open_keys` change).

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::broadcast;
use tokio::time::Instant;
use tower::{Layer, Service};

use super::classify::{Classify, ErrorIsFailure};
use super::config::{BreakerConfig, Settings};
use super::events::{Emitter, StateChange};
use super::future::ResponseFuture;
use super::state::{Breaker, Snapshot};
use crate::error::{BoxError, ConfigError};
use crate::key::{ExtensionKey, HostKey, KeyExtractor, TargetHost};

#[derive(Debug)]
struct Entry {
    breaker: Breaker,
    /// Nanoseconds since `KeyedInner::base`.
    last_used: AtomicU64,
}

struct KeyedInner<K> {
    map: DashMap<K, Entry>,
    settings: Arc<Settings>,
    emitter: Arc<Emitter>,
    base: Instant,
    last_sweep: AtomicU64,
}

/// Marking a key used costs a write to a line other threads read; once a millisecond is
/// precise enough for idle eviction.
const TOUCH_RESOLUTION_NANOS: u64 = 1_000_000;

/// A bounded set of breakers, one per key. Clones share the set.
///
/// ```
/// use std::time::Duration;
/// use harvester_resilience::breaker::{BreakerConfig, BreakerState, KeyedBreaker, CallOutcome};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let hosts = KeyedBreaker::new(BreakerConfig { minimum_calls: 1, ..BreakerConfig::default() }).unwrap();
/// let down = hosts.breaker(&"down.example".to_owned());
/// down.try_acquire().unwrap().record(CallOutcome::failure(Duration::ZERO));
/// assert_eq!(down.state(), BreakerState::Open);
/// assert_eq!(hosts.breaker(&"up.example".to_owned()).state(), BreakerState::Closed);
/// # }
/// ```
pub struct KeyedBreaker<K> {
    inner: Arc<KeyedInner<K>>,
}

impl<K> Clone for KeyedBreaker<K> {
    fn clone(&self) -> Self {
        KeyedBreaker { inner: self.inner.clone() }
    }
}

impl<K: Hash + Eq> fmt::Debug for KeyedBreaker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBreaker")
            .field("name", &self.inner.emitter.name)
            .field("keys", &self.inner.map.len())
            .finish()
    }
}

fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl<K: Hash + Eq + Clone + fmt::Display> KeyedBreaker<K> {
    /// An empty set; each key's breaker is built from `config` when the key is first seen.
    /// Registers the metrics with the recorder installed now.
    pub fn new(config: BreakerConfig) -> Result<Self, ConfigError> {
        let settings = Arc::new(Settings::new(config)?);
        let emitter = Arc::new(Emitter::new(&settings.config.name, true));
        if let Some(keys) = &emitter.keys {
            keys.set(0.0);
        }
        Ok(KeyedBreaker {
            inner: Arc::new(KeyedInner {
                map: DashMap::new(),
                settings,
                emitter,
                base: harvester_core::time::now(),
                last_sweep: AtomicU64::new(0),
            }),
        })
    }

    /// The breaker of `key`, created closed if the key is new; marks the key used.
    pub fn breaker(&self, key: &K) -> Breaker {
        self.breaker_at(key, harvester_core::time::now())
    }

    pub(crate) fn breaker_at(&self, key: &K, now: Instant) -> Breaker {
        let stamp = saturating_nanos(now.saturating_duration_since(self.inner.base));
        if let Some(breaker) = self.touch(key, stamp) {
            return breaker;
        }
        self.make_room(stamp);
        let inner = &*self.inner;
        let breaker = inner
            .map
            .entry(key.clone())
            .or_insert_with(|| Entry {
                breaker: Breaker::with_parts(
                    inner.settings.clone(),
                    inner.emitter.clone(),
                    Some(key.to_string().into()),
                ),
                last_used: AtomicU64::new(stamp),
            })
            .breaker
            .clone();
        if let Some(keys) = &inner.emitter.keys {
            keys.set(inner.map.len() as f64);
        }
        breaker
    }

    fn touch(&self, key: &K, stamp: u64) -> Option<Breaker> {
        let entry = self.inner.map.get(key)?;
        if stamp.saturating_sub(entry.last_used.load(Relaxed)) >= TOUCH_RESOLUTION_NANOS {
            entry.last_used.store(stamp, Relaxed);
        }
        Some(entry.breaker.clone())
    }

    /// Forgets idle keys when a sweep is due or the map is full, then the least recently used
    /// ones while it is still full. Holds no map guard on entry (`retain` locks every shard).
    fn make_room(&self, stamp: u64) {
        let inner = &*self.inner;
        let config = &inner.settings.config;
        let idle = saturating_nanos(config.key_idle_timeout);
        let sweep_due = stamp.saturating_sub(inner.last_sweep.load(Relaxed)) >= idle;
        if !sweep_due && inner.map.len() < config.max_keys {
            return;
        }
        inner.last_sweep.store(stamp, Relaxed);
        inner.map.retain(|_, entry| {
            let keep = stamp.saturating_sub(entry.last_used.load(Relaxed)) < idle;
            if !keep {
                entry.breaker.shared.evict();
            }
            keep
        });
        let len = inner.map.len();
        if len < config.max_keys {
            return;
        }
        let mut by_age: Vec<(u64, K)> =
            inner.map.iter().map(|entry| (entry.last_used.load(Relaxed), entry.key().clone())).collect();
        let evict = (len + 1 - config.max_keys).max(config.max_keys / 16).clamp(1, by_age.len().max(1));
        if by_age.len() > evict {
            by_age.select_nth_unstable_by_key(evict - 1, |(used, _)| *used);
        }
        for (used, key) in by_age.into_iter().take(evict) {
            // A key used since the scan stays.
            if let Some((_, entry)) = inner.map.remove_if(&key, |_, entry| entry.last_used.load(Relaxed) == used) {
                entry.breaker.shared.evict();
            }
        }
    }

    /// The breaker of `key` if it is tracked; neither creates it nor marks it used.
    pub fn get<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.inner.map.get(key).map(|entry| entry.breaker.clone())
    }

    /// The snapshot of `key`'s breaker, if it is tracked.
    pub fn snapshot<Q>(&self, key: &Q) -> Option<Snapshot>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get(key).map(|breaker| breaker.snapshot())
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// The keys tracked now.
    pub fn keys(&self) -> Vec<K> {
        self.inner.map.iter().map(|entry| entry.key().clone()).collect()
    }

    /// The configuration every key's breaker uses.
    pub fn config(&self) -> &BreakerConfig {
        &self.inner.settings.config
    }

    /// A receiver of every later state change of every key.
    pub fn subscribe(&self) -> broadcast::Receiver<StateChange> {
        self.inner.emitter.subscribe()
    }

    /// Calls `callback` on every later state change of every key; see
    /// [`Breaker::on_state_change`].
    pub fn on_state_change(&self, callback: impl Fn(StateChange) + Send + Sync + 'static) {
        self.inner.emitter.on_state_change(Arc::new(callback));
    }
}

/// Wraps services in a [`KeyedCircuitBreaker`]: one breaker per key of the request.
///
/// ```
/// use harvester_resilience::breaker::{BreakerConfig, KeyedCircuitBreakerLayer, ServerErrorIsFailure};
/// use tower::ServiceBuilder;
///
/// # async fn fetch(_: http::Request<()>) -> Result<http::Response<()>, std::io::Error> { Ok(http::Response::new(())) }
/// let per_host = KeyedCircuitBreakerLayer::per_host(BreakerConfig::default())
///     .unwrap()
///     .classify(ServerErrorIsFailure);
/// let client = ServiceBuilder::new().layer(per_host).service_fn(fetch);
/// # let _ = client;
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct KeyedCircuitBreakerLayer<K, X, C = ErrorIsFailure> {
    breakers: KeyedBreaker<K>,
    extractor: X,
    classifier: C,
}

impl<K, X: Clone, C: Clone> Clone for KeyedCircuitBreakerLayer<K, X, C> {
    fn clone(&self) -> Self {
        KeyedCircuitBreakerLayer {
            breakers: self.breakers.clone(),
            extractor: self.extractor.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<K: Hash + Eq, X, C> fmt::Debug for KeyedCircuitBreakerLayer<K, X, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerLayer").field("breakers", &self.breakers).finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone + fmt::Display, X> KeyedCircuitBreakerLayer<K, X> {
    /// A layer keying requests with `extractor` (e.g. a closure
    /// `|request: &Request<B>| Some(key)`).
    pub fn new<Req>(config: BreakerConfig, extractor: X) -> Result<Self, ConfigError>
    where
        X: KeyExtractor<Req, Key = K>,
    {
        Ok(Self::from_breakers(KeyedBreaker::new(config)?, extractor))
    }
}

impl<K, X> KeyedCircuitBreakerLayer<K, X> {
    /// A layer over an existing set of breakers.
    pub fn from_breakers(breakers: KeyedBreaker<K>, extractor: X) -> Self {
        KeyedCircuitBreakerLayer { breakers, extractor, classifier: ErrorIsFailure }
    }
}

impl KeyedCircuitBreakerLayer<HostKey, TargetHost> {
    /// One breaker per target host of `http::Request`s ([`TargetHost::new`]): requests
    /// without a host pass unguarded.
    pub fn per_host(config: BreakerConfig) -> Result<Self, ConfigError> {
        Ok(Self::from_breakers(KeyedBreaker::new(config)?, TargetHost::new()))
    }
}

impl<T: Hash + Eq + Clone + fmt::Display> KeyedCircuitBreakerLayer<T, ExtensionKey<T>> {
    /// One breaker per value of type `T` in the extensions of `http::Request`s
    /// ([`ExtensionKey`]).
    pub fn per_extension(config: BreakerConfig) -> Result<Self, ConfigError> {
        Ok(Self::from_breakers(KeyedBreaker::new(config)?, ExtensionKey::new()))
    }
}

impl<K, X, C> KeyedCircuitBreakerLayer<K, X, C> {
    /// Decides what a failure is with `classifier` instead.
    pub fn classify<C2>(self, classifier: C2) -> KeyedCircuitBreakerLayer<K, X, C2> {
        KeyedCircuitBreakerLayer { breakers: self.breakers, extractor: self.extractor, classifier }
    }

    /// The breakers, to subscribe, take snapshots or force a key's state.
    pub fn breakers(&self) -> &KeyedBreaker<K> {
        &self.breakers
    }
}

impl<K: Hash + Eq + Clone + fmt::Display, X, C> KeyedCircuitBreakerLayer<K, X, C> {
    /// Calls `callback` on every state change of every key.
    pub fn on_state_change(self, callback: impl Fn(StateChange) + Send + Sync + 'static) -> Self {
        self.breakers.on_state_change(callback);
        self
    }
}

impl<S, K, X: Clone, C: Clone> Layer<S> for KeyedCircuitBreakerLayer<K, X, C> {
    type Service = KeyedCircuitBreaker<S, K, X, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreaker {
            inner,
            breakers: self.breakers.clone(),
            extractor: self.extractor.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

/// Calls the inner service while the breaker of the request's key allows it. Like
/// [`CircuitBreaker`](super::CircuitBreaker), it decides in `call`, not in `poll_ready`.
pub struct KeyedCircuitBreaker<S, K, X, C = ErrorIsFailure> {
    inner: S,
    breakers: KeyedBreaker<K>,
    extractor: X,
    classifier: C,
}

impl<S: Clone, K, X: Clone, C: Clone> Clone for KeyedCircuitBreaker<S, K, X, C> {
    fn clone(&self) -> Self {
        KeyedCircuitBreaker {
            inner: self.inner.clone(),
            breakers: self.breakers.clone(),
            extractor: self.extractor.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S: fmt::Debug, K: Hash + Eq, X, C> fmt::Debug for KeyedCircuitBreaker<S, K, X, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreaker")
            .field("inner", &self.inner)
            .field("breakers", &self.breakers)
            .finish_non_exhaustive()
    }
}

impl<S, K, X, C> KeyedCircuitBreaker<S, K, X, C> {
    /// The breakers.
    pub fn breakers(&self) -> &KeyedBreaker<K> {
        &self.breakers
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, K, X, C, Req> Service<Req> for KeyedCircuitBreaker<S, K, X, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    X: KeyExtractor<Req, Key = K>,
    K: Hash + Eq + Clone + fmt::Display,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let Some(key) = self.extractor.extract(&request) else {
            return ResponseFuture::unguarded(self.inner.call(request), self.classifier.clone());
        };
        let now = harvester_core::time::now();
        let breaker = self.breakers.breaker_at(&key, now);
        let inner = &mut self.inner;
        ResponseFuture::guarded(breaker.shared, self.classifier.clone(), Some(now), || inner.call(request))
    }
}
