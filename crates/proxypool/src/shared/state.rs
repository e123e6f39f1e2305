//! The running share: one background task per instance that keeps its registrations
//! alive, mirrors the registry into its pool, announces its health decisions and applies
//! everyone else's.

use harvester_core::panic_text;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use harvester_redis::redis::Msg;
use harvester_redis::redis::aio::PubSubStream;
use harvester_redis::{RedisConnection, RedisError};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::episodes::Episodes;
use crate::health::{HealthEvent, RemoteEffect};
use crate::pool::ProxyPool;
use crate::proxy::{Proxy, ProxyId};

use super::backoff::Backoff;
use super::channel::HealthChannel;
use super::config::SharedStateConfig;
use super::error::SharedStateError;
use super::keys::Keys;
use super::mirror::RegistryMirror;
use super::pending::Pending;
use super::registry::{ProxyRegistry, RegistryIndex};
use super::verdict::Verdict;

/// A pool's share of the state of every instance: see the [module docs](super).
///
/// Dropping it stops the background task at once, without withdrawing anything (as a
/// crash would: the registrations expire after their TTL); [`shutdown`](Self::shutdown)
/// stops it and withdraws them.
#[must_use = "dropping it stops the background task at once; call `shutdown` to withdraw the registrations"]
pub struct SharedState {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// What the handle and the task both use.
struct Shared {
    pool: ProxyPool,
    registry: ProxyRegistry,
    /// The proxies this instance registers, by id: rewritten at every heartbeat.
    owned: Mutex<HashMap<ProxyId, Arc<Proxy>>>,
    /// The proxies this instance took from the registry into its pool: other instances'
    /// proxies, never registered as this one's.
    mirrored: Mutex<HashSet<ProxyId>>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    redis_down: AtomicBool,
    subscribed: AtomicBool,
    announced: AtomicU64,
    received: AtomicU64,
    applied: AtomicU64,
    polls: AtomicU64,
    pending: AtomicUsize,
    last_error: Mutex<Option<String>>,
    /// Why the background task ended before it was told to stop (it panicked).
    died: Mutex<Option<String>>,
}

/// A point-in-time view of a [`SharedState`], for logs, health endpoints and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SharedStatus {
    /// This instance's name.
    pub instance: String,
    /// False from a failed Redis command until the next one that succeeds.
    pub redis_available: bool,
    /// True while subscribed to the other instances' announcements.
    pub subscribed: bool,
    /// This pool's verdicts written to Redis.
    pub announced: u64,
    /// This pool's verdicts waiting for Redis to come back.
    pub pending: usize,
    /// Other instances' verdicts received (announced or polled; repeats included).
    pub received: u64,
    /// Of those, the ones that changed this pool.
    pub applied: u64,
    /// Polls completed: reads of the running verdicts (every `poll_interval`) that
    /// succeeded and were applied. Tells that the polling fallback is doing its rounds.
    pub polls: u64,
    /// Proxies this instance keeps registered.
    pub registered: usize,
    /// The last Redis failure (redacted, scrubbed of credentials).
    pub last_error: Option<String>,
    /// False once the background task has stopped: nothing is announced, applied or kept
    /// registered any more. [`died`](Self::died) says why when it was not told to stop.
    pub running: bool,
    /// Why the background task died, when it did; [`SharedState::register`] and
    /// [`SharedState::unregister`] then fail with [`SharedStateError::Stopped`].
    pub died: Option<String>,
}

impl SharedState {
    /// Starts sharing `pool`'s state through `connection` (made with
    /// `RedisConnection::lazy` it may start while Redis is down). Must be called inside a
    /// tokio runtime.
    ///
    /// From now on, every health decision of `pool` is announced, and the registry is
    /// loaded into it every `sync_interval` (unless `load_registry` is off). Register this
    /// instance's own proxies with [`register`](Self::register).
    pub fn start(
        pool: ProxyPool,
        connection: RedisConnection,
        config: SharedStateConfig,
    ) -> Result<SharedState, SharedStateError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| SharedStateError::NoRuntime)?;
        let instance: Arc<str> = Arc::from(config.instance_name());
        let registry = ProxyRegistry::with_instance(connection.clone(), &config, instance.clone());
        let keys = Arc::new(Keys::new(connection.key_prefix(), &config.namespace));
        let channel = HealthChannel::new(connection, keys, instance);
        // Subscribed before the task runs: no decision made from now on is missed.
        let events = pool.subscribe_health();
        let shared = Arc::new(Shared {
            pool,
            registry,
            owned: Mutex::new(HashMap::new()),
            mirrored: Mutex::new(HashSet::new()),
            counters: Counters::default(),
        });
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            shared: shared.clone(),
            channel,
            mirror: RegistryMirror::default(),
            pending: Pending::new(config.max_pending),
            outage: Backoff::new(config.retry_base_delay, config.retry_max_delay),
            episodes: Episodes::default(),
            config,
        };
        let task = runtime.spawn(supervised(shared.clone(), worker.run(events, stopped)));
        Ok(SharedState { shared, stop, task: Some(task) })
    }

    /// Registers `proxies` as this instance's: written to the registry now, and again at
    /// every heartbeat (with the pool's current version of each and its quality tier)
    /// for as long as this instance runs. When Redis is away the write fails, but the
    /// proxies stay registered here and the next successful heartbeat writes them.
    /// Returns how many were written.
    ///
    /// A proxy this instance took from the registry into its pool belongs to the instance
    /// that registered it and is skipped, so `register(pool.proxies())` registers only the
    /// application's own proxies however early or late it runs: re-registering another
    /// instance's proxy would keep it alive in the registry after that instance is gone.
    pub async fn register(&self, proxies: impl IntoIterator<Item = Arc<Proxy>>) -> Result<usize, SharedStateError> {
        self.alive()?;
        let proxies: Vec<Arc<Proxy>> = {
            let mirrored = self.shared.mirrored();
            proxies.into_iter().filter(|proxy| !mirrored.contains(proxy.id())).collect()
        };
        {
            let mut owned = self.shared.owned();
            for proxy in &proxies {
                owned.insert(proxy.id().clone(), proxy.clone());
            }
        }
        let pool = &self.shared.pool;
        self.shared.registry.register(proxies.iter().map(|proxy| (&**proxy, quality(pool, proxy.id())))).await
    }

    /// Stops registering the proxies with `ids` and removes their entries (those this
    /// instance wrote last). Returns how many entries it removed.
    pub async fn unregister(&self, ids: impl IntoIterator<Item = ProxyId>) -> Result<usize, SharedStateError> {
        self.alive()?;
        let removed: Vec<Arc<Proxy>> = {
            let mut owned = self.shared.owned();
            ids.into_iter().filter_map(|id| owned.remove(&id)).collect()
        };
        self.shared.registry.withdraw(removed.iter().map(|proxy| &**proxy)).await
    }

    /// The registry, to read it (say, one index) directly.
    pub fn registry(&self) -> &ProxyRegistry {
        &self.shared.registry
    }

    /// This instance's name.
    pub fn instance(&self) -> &str {
        self.shared.registry.instance()
    }

    /// How the share is doing now.
    pub fn status(&self) -> SharedStatus {
        let counters = &self.shared.counters;
        SharedStatus {
            instance: self.instance().to_owned(),
            redis_available: !counters.redis_down.load(Ordering::Relaxed),
            subscribed: counters.subscribed.load(Ordering::Relaxed),
            announced: counters.announced.load(Ordering::Relaxed),
            pending: counters.pending.load(Ordering::Relaxed),
            received: counters.received.load(Ordering::Relaxed),
            applied: counters.applied.load(Ordering::Relaxed),
            polls: counters.polls.load(Ordering::Relaxed),
            registered: self.shared.owned().len(),
            last_error: counters.last_error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            running: self.task.as_ref().is_some_and(|task| !task.is_finished()),
            died: self.died(),
        }
    }

    fn died(&self) -> Option<String> {
        self.shared.counters.died.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// An error when the background task died.
    fn alive(&self) -> Result<(), SharedStateError> {
        match self.died() {
            Some(reason) => Err(SharedStateError::Stopped(reason)),
            None => Ok(()),
        }
    }

    /// Stops the task, then withdraws this instance's registrations (so that the others
    /// drop its proxies without waiting for the TTL). Returns how many it withdrew; an
    /// error when Redis could not be told (the entries then expire by themselves) or when
    /// the task had died ([`SharedStateError::Stopped`], after withdrawing).
    pub async fn shutdown(mut self) -> Result<usize, SharedStateError> {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            // A task that panicked has nothing left to stop; its registrations are still
            // withdrawn below, and the death is reported after.
            let _ = task.await;
        }
        let owned: Vec<Arc<Proxy>> = self.shared.owned().drain().map(|(_, proxy)| proxy).collect();
        let withdrawn = self.shared.registry.withdraw(owned.iter().map(|proxy| &**proxy)).await?;
        self.alive()?;
        Ok(withdrawn)
    }
}

impl Drop for SharedState {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedState").field("registry", &self.shared.registry).field("status", &self.status()).finish()
    }
}

impl Shared {
    fn owned(&self) -> std::sync::MutexGuard<'_, HashMap<ProxyId, Arc<Proxy>>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn mirrored(&self) -> std::sync::MutexGuard<'_, HashSet<ProxyId>> {
        self.mirrored.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A proxy's quality score in `pool`, 1 (a fresh start) when the pool does not hold it.
fn quality(pool: &ProxyPool, id: &ProxyId) -> f64 {
    pool.proxy_stats(id.as_str()).map_or(1.0, |stats| stats.quality)
}

/// The background task.
struct Worker {
    shared: Arc<Shared>,
    channel: HealthChannel,
    config: SharedStateConfig,
    mirror: RegistryMirror,
    pending: Pending,
    /// Failures of Redis in a row: while failing, this pool's verdicts wait in `pending`
    /// and the periodic duties retry with this backoff.
    outage: Backoff,
    /// Remote verdicts last no longer than this pool's own maximum from first hearing.
    episodes: Episodes,
}

impl Worker {
    async fn run(mut self, mut events: broadcast::Receiver<HealthEvent>, mut stopped: watch::Receiver<bool>) {
        let start = Instant::now();
        let (mut next_heartbeat, mut next_sync, mut next_poll, mut next_subscribe) = (start, start, start, start);
        let mut subscription: Option<PubSubStream> = None;
        let mut resubscribe = Backoff::new(self.config.retry_base_delay, self.config.retry_max_delay);
        loop {
            tokio::select! {
                biased;
                _ = stopped.changed() => break,
                received = events.recv() => match received {
                    Ok(event) => self.announce(event).await,
                    Err(RecvError::Lagged(missed)) => tracing::warn!(
                        instance = self.channel.instance(),
                        missed,
                        "shared proxy state fell behind this pool's health decisions; some were not announced"
                    ),
                    // The pool, which this task holds, cannot be gone.
                    Err(RecvError::Closed) => break,
                },
                message = next_message(&mut subscription) => match message {
                    Some(message) => self.receive(&message),
                    None => {
                        subscription = None;
                        self.shared.counters.subscribed.store(false, Ordering::Relaxed);
                        tracing::debug!(endpoint = self.channel.endpoint(), "health announcements subscription lost");
                        next_subscribe = Instant::now() + resubscribe.fail();
                    }
                },
                () = sleep_until(next_subscribe), if subscription.is_none() => {
                    match self.channel.subscribe().await {
                        Ok(stream) => {
                            subscription = Some(stream);
                            resubscribe.reset();
                            self.shared.counters.subscribed.store(true, Ordering::Relaxed);
                            // Catch up on what was announced while unsubscribed.
                            next_poll = Instant::now();
                            self.recovered().await;
                        }
                        Err(error) => {
                            self.failed(&error);
                            next_subscribe = Instant::now() + resubscribe.fail();
                        }
                    }
                },
                () = sleep_until(next_heartbeat) => next_heartbeat = self.heartbeat().await,
                () = sleep_until(next_poll) => next_poll = self.poll().await,
                () = sleep_until(next_sync), if self.config.load_registry => next_sync = self.sync().await,
            }
        }
    }

    /// Announces one of this pool's decisions, or holds it while Redis is away.
    async fn announce(&mut self, event: HealthEvent) {
        if self.outage.failing() {
            self.hold(event);
            return;
        }
        match self.channel.announce(&event).await {
            Ok(()) => {
                self.shared.counters.announced.fetch_add(1, Ordering::Relaxed);
                self.recovered().await;
            }
            Err(error) => {
                self.hold(event);
                self.failed(&error);
            }
        }
    }

    fn hold(&mut self, event: HealthEvent) {
        if !self.pending.hold(event, Instant::now()) {
            tracing::warn!(
                instance = self.channel.instance(),
                held = self.pending.len(),
                "Redis away too long: a health decision is dropped instead of announced later"
            );
        }
        self.shared.counters.pending.store(self.pending.len(), Ordering::Relaxed);
    }

    fn receive(&mut self, message: &Msg) {
        if let Some(verdict) = self.channel.read(message) {
            self.apply(&verdict);
        }
    }

    fn apply(&mut self, verdict: &Verdict) {
        let counters = &self.shared.counters;
        counters.received.fetch_add(1, Ordering::Relaxed);
        let pool = &self.shared.pool;
        let config = pool.config();
        let max_ban = config.bans.max_cooldown.max(config.bans.max_retry_after);
        let Some(event) = self.episodes.clamp(&verdict.event, config.ejection.max_ejection, max_ban, Instant::now())
        else {
            tracing::debug!(proxy = %verdict.event.proxy, origin = verdict.origin, "remote verdict outlasted this pool's maximum");
            return;
        };
        let effect = pool.apply_remote(&event);
        if effect == RemoteEffect::Applied {
            counters.applied.fetch_add(1, Ordering::Relaxed);
        }
        tracing::debug!(
            proxy = %verdict.event.proxy,
            origin = verdict.origin,
            ?effect,
            "health verdict from another instance"
        );
    }

    /// Rewrites this instance's registrations; returns when to do it next.
    async fn heartbeat(&mut self) -> Instant {
        let interval = self.config.heartbeat_interval;
        let owned: Vec<Arc<Proxy>> = {
            let owned = self.shared.owned();
            let pool = &self.shared.pool;
            // The pool's current version of each, if it holds one: updates are shared too.
            owned.iter().map(|(id, proxy)| pool.get(id.as_str()).unwrap_or_else(|| proxy.clone())).collect()
        };
        if owned.is_empty() {
            return Instant::now() + interval;
        }
        let pool = &self.shared.pool;
        let written = self.shared.registry.register(owned.iter().map(|proxy| (&**proxy, quality(pool, proxy.id()))));
        match written.await {
            Ok(_) => {
                self.recovered().await;
                Instant::now() + interval
            }
            Err(error) => Instant::now() + self.failed_shared(&error).min(interval),
        }
    }

    /// Reads the running verdicts and applies them; returns when to do it next.
    async fn poll(&mut self) -> Instant {
        let interval = self.config.poll_interval;
        match self.channel.poll(self.config.max_polled).await {
            Ok(verdicts) => {
                for verdict in &verdicts {
                    self.apply(verdict);
                }
                // A complete poll shows every running verdict: the others' episodes are over.
                if verdicts.len() < self.config.max_polled {
                    self.episodes.retain_polled(verdicts.iter().map(|verdict| &verdict.event));
                }
                self.shared.counters.polls.fetch_add(1, Ordering::Relaxed);
                self.recovered().await;
                Instant::now() + interval
            }
            Err(error) => Instant::now() + self.failed(&error).min(interval),
        }
    }

    /// Loads the registry into the pool; returns when to do it next.
    async fn sync(&mut self) -> Instant {
        let interval = self.config.sync_interval;
        let loaded = match self.shared.registry.load(RegistryIndex::All).await {
            Ok(loaded) => loaded,
            Err(error) => return Instant::now() + self.failed_shared(&error).min(interval),
        };
        let pool = &self.shared.pool;
        let plan = self.mirror.plan(
            Instant::now(),
            self.config.removal_grace,
            loaded.into_iter().map(|registered| registered.proxy).collect(),
            |id| pool.get(id.as_str()),
        );
        if !plan.upserts.is_empty() || !plan.removals.is_empty() {
            // Marked before they reach the pool and unmarked after they leave it: a
            // `register` racing this sync never sees one of them there unmarked.
            self.shared.mirrored().extend(plan.upserts.iter().map(|proxy| proxy.id().clone()));
            let removals = plan.removals.clone();
            let report = pool.apply_batch(plan.upserts, plan.removals);
            {
                let mut mirrored = self.shared.mirrored();
                for id in &removals {
                    mirrored.remove(id);
                }
            }
            tracing::info!(
                instance = self.channel.instance(),
                added = report.added,
                updated = report.replaced,
                removed = report.removed,
                "proxy pool synchronised with the shared registry"
            );
        }
        self.recovered().await;
        Instant::now() + interval
    }

    /// Redis answered: ends an outage, and announces what waited for it.
    async fn recovered(&mut self) {
        if self.outage.failing() {
            self.outage.reset();
            self.shared.counters.redis_down.store(false, Ordering::Relaxed);
            tracing::info!(
                instance = self.channel.instance(),
                endpoint = self.channel.endpoint(),
                "Redis answers again; proxy state is shared again"
            );
        }
        if self.pending.is_empty() {
            return;
        }
        let mut waiting = self.pending.take(Instant::now()).into_iter();
        while let Some(event) = waiting.next() {
            if let Err(error) = self.channel.announce(&event).await {
                let now = Instant::now();
                for event in std::iter::once(event).chain(waiting) {
                    self.pending.hold(event, now);
                }
                self.failed(&error);
                break;
            }
            self.shared.counters.announced.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.counters.pending.store(self.pending.len(), Ordering::Relaxed);
    }

    /// Redis failed: starts or continues an outage; returns the wait before retrying.
    fn failed(&mut self, error: &RedisError) -> Duration {
        let counters = &self.shared.counters;
        if !self.outage.failing() {
            counters.redis_down.store(true, Ordering::Relaxed);
            tracing::warn!(
                instance = self.channel.instance(),
                %error,
                "Redis unavailable: health decisions stay local, and are announced when it returns"
            );
        }
        *counters.last_error.lock().unwrap_or_else(PoisonError::into_inner) = Some(error.to_string());
        self.outage.fail()
    }

    fn failed_shared(&mut self, error: &SharedStateError) -> Duration {
        match error {
            SharedStateError::Redis(error) => self.failed(error),
            other => {
                let error =
                    RedisError::Command { endpoint: self.channel.endpoint().to_owned(), reason: other.to_string() };
                self.failed(&error)
            }
        }
    }
}

/// The next announcement, or never without a subscription.
async fn next_message(subscription: &mut Option<PubSubStream>) -> Option<Msg> {
    match subscription {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// Runs the background task's `work`. A panic must not leave a share that looks healthy
/// while nothing is shared: its message is kept, shown in the status and returned by
/// every later call.
async fn supervised(shared: Arc<Shared>, work: impl Future<Output = ()>) {
    if let Err(panic) = AssertUnwindSafe(work).catch_unwind().await {
        let reason = format!("background task panicked: {}", panic_text(panic.as_ref()));
        tracing::error!(%reason, "shared proxy state stopped");
        *shared.counters.died.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use harvester_redis::RedisConfig;

    #[tokio::test]
    async fn a_task_that_dies_shows_in_the_status_and_fails_every_later_call() {
        // Nothing listens on port 1: the share starts (lazily) without Redis.
        let config = RedisConfig { url: "redis://127.0.0.1:1".into(), ..RedisConfig::default() };
        let connection = RedisConnection::lazy(&config).expect("a lazy connection");
        let pool = ProxyPool::new([Proxy::parse("http://127.0.0.1:9").expect("a proxy")]).expect("a pool");
        let mut state = SharedState::start(pool, connection, SharedStateConfig::default()).expect("started");
        assert!(state.status().running && state.status().died.is_none());

        if let Some(task) = state.task.take() {
            task.abort();
        }
        let dying = supervised(state.shared.clone(), async { panic!("applying a verdict overflowed") });
        let task = tokio::spawn(dying);
        while !task.is_finished() {
            tokio::task::yield_now().await;
        }
        state.task = Some(task);

        let status = state.status();
        assert!(!status.running);
        assert!(status.died.as_deref().is_some_and(|why| why.contains("applying a verdict overflowed")), "{status:?}");
        let proxy = Arc::new(Proxy::parse("http://127.0.0.1:10").expect("a proxy"));
        assert!(matches!(state.register([proxy]).await, Err(SharedStateError::Stopped(_))));
        assert!(matches!(state.unregister([]).await, Err(SharedStateError::Stopped(_))));
    }
}
