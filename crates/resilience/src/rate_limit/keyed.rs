//! One GCRA state per key (target host, client, proxy), in a bounded table that evicts
//! stale keys without a background task.
//!
//! Each key's state is a single `AtomicU64` TAT in a [`DashMap`]: a check is a read-locked
//! shard lookup plus one compare-and-swap. A key whose TAT is not after now decides every
//! later call exactly as a fresh key would, so dropping it loses nothing: eviction is exact.
//! A caller may still hold a clock reading older than the sweep's (read before it, decided
//! after it), so a key is created with its TAT at the latest sweep's reading, not at zero:
//! at least the TAT of any state a sweep dropped, so no key goes back in time.
//! When a new key finds the table holding `max_keys` keys, the table is swept of stale
//! keys; if every key is still live, the new key is refused until the first one goes
//! stale (a hard memory bound, and the limiter never forgets a live key's debt).

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::time::Instant;

use super::clock::{Clock, TokioClock};
use super::gcra::{Gcra, NotUntil, is_stale};
use super::quota::{Quota, duration_nanos};
use crate::error::ConfigError;

/// Default bound on the number of keys a keyed limiter tracks.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// A GCRA limiter per key.
///
/// ```
/// use harvester_resilience::rate_limit::{KeyedRateLimiter, Quota};
///
/// let limiter = KeyedRateLimiter::<String>::new(Quota::per_second(1)?);
/// let now = limiter.epoch();
/// assert!(limiter.check_key_at("a.example", now).is_ok());
/// assert!(limiter.check_key_at("a.example", now).is_err());
/// assert!(limiter.check_key_at("b.example", now).is_ok()); // keys are isolated
/// # Ok::<(), harvester_resilience::ConfigError>(())
/// ```
///
/// The table hashes keys with std's `RandomState` (SipHash), which resists hash flooding
/// by keys an adversary chooses (host names found while crawling are such keys); pass
/// another hasher to [`with_clock_and_hasher`](Self::with_clock_and_hasher) if your keys
/// are trusted.
pub struct KeyedRateLimiter<K, C = TokioClock, S = RandomState> {
    gcra: Gcra,
    quota: Quota,
    clock: C,
    states: DashMap<K, AtomicU64, S>,
    /// Entries in `states`, counted here so that `max_keys` holds when inserts race.
    keys: AtomicUsize,
    max_keys: usize,
    /// No stored key can be stale before this clock reading: a sweep earlier would free
    /// nothing, so a full table refuses new keys without scanning.
    next_sweep: AtomicU64,
    /// The latest clock reading a sweep dropped keys at: not before the TAT of any dropped
    /// key, so a key (re)created starts from here, never from an earlier state.
    last_sweep: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// A limiter on tokio's clock tracking at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(quota: Quota) -> Self {
        Self::with_clock_and_hasher(quota, TokioClock::new(), RandomState::new())
    }

    /// The instant its clock counts from.
    pub fn epoch(&self) -> Instant {
        self.clock.origin()
    }

    /// [`check_key`](Self::check_key) at an explicit instant.
    #[inline]
    pub fn check_key_at<Q>(&self, key: &Q, now: Instant) -> Result<(), NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.check_key_at_nanos(key, self.clock.nanos_at(now))
    }
}

impl<K: Hash + Eq + Clone, C: Clock> KeyedRateLimiter<K, C> {
    /// A limiter reading `clock`, tracking at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn with_clock(quota: Quota, clock: C) -> Self {
        Self::with_clock_and_hasher(quota, clock, RandomState::new())
    }
}

impl<K: Hash + Eq + Clone, C: Clock, S: BuildHasher + Clone> KeyedRateLimiter<K, C, S> {
    /// A limiter reading `clock`, its table hashing keys with `hasher`.
    pub fn with_clock_and_hasher(quota: Quota, clock: C, hasher: S) -> Self {
        KeyedRateLimiter {
            gcra: Gcra::new(quota),
            quota,
            clock,
            states: DashMap::with_hasher(hasher),
            keys: AtomicUsize::new(0),
            max_keys: DEFAULT_MAX_KEYS,
            next_sweep: AtomicU64::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Bounds the table to `max_keys` keys (at least 1). Size it well above the number of
    /// keys live at once: a key stays live for at most `burst × interval` after its last call.
    pub fn with_max_keys(mut self, max_keys: usize) -> Result<Self, ConfigError> {
        if max_keys == 0 {
            return Err(ConfigError::new("rate_limit.max_keys", "must be at least 1"));
        }
        self.max_keys = max_keys;
        Ok(self)
    }

    /// The quota every key gets.
    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// The clock it reads.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The bound on tracked keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// Keys tracked now (stale ones included until a sweep drops them).
    pub fn len(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one cell for `key` now, or says when one will be available.
    #[inline]
    pub fn check_key<Q>(&self, key: &Q) -> Result<(), NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.check_key_at_nanos(key, self.clock.now_nanos())
    }

    /// Wait mode for `key`: see [`RateLimiter::reserve`](super::RateLimiter::reserve).
    #[inline]
    pub fn reserve_key<Q>(&self, key: &Q, max_wait: Duration) -> Result<Duration, NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.reserve_key_at_nanos(key, self.clock.now_nanos(), max_wait)
    }

    /// The raw check at an explicit clock reading (nanoseconds since the clock's origin).
    #[inline]
    pub fn check_key_at_nanos<Q>(&self, key: &Q, now: u64) -> Result<(), NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.decide(key, now, 1, 0).map(|_| ())
    }

    /// The raw [`reserve_key`](Self::reserve_key) at an explicit clock reading.
    #[inline]
    pub fn reserve_key_at_nanos<Q>(&self, key: &Q, now: u64, max_wait: Duration) -> Result<Duration, NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.decide(key, now, 1, duration_nanos(max_wait)).map(Duration::from_nanos)
    }

    /// [`reserve_key`](Self::reserve_key) of `cost` cells (1 ..= burst) at once.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn reserve_key_n<Q>(&self, key: &Q, cost: u32, max_wait: Duration) -> Result<Duration, NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.decide(key, self.clock.now_nanos(), cost, duration_nanos(max_wait)).map(Duration::from_nanos)
    }

    /// Drops every stale key now; returns how many.
    pub fn evict_stale(&self) -> usize {
        self.next_sweep.store(0, Ordering::Relaxed);
        self.sweep(self.clock.now_nanos())
    }

    #[inline]
    fn decide<Q>(&self, key: &Q, now: u64, cost: u32, max_wait: u64) -> Result<u64, NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        match self.states.get(key) {
            Some(tat) => self.reserve_on(&tat, now, cost, max_wait),
            None => self.insert_and_reserve(key, now, cost, max_wait),
        }
    }

    /// One cell through the measured hot path; several (distributed fallback) through
    /// `reserve_n`. Callers pass a constant 1, so the branch folds away where it matters.
    #[inline]
    fn reserve_on(&self, tat: &AtomicU64, now: u64, cost: u32, max_wait: u64) -> Result<u64, NotUntil> {
        if cost == 1 { self.gcra.reserve(tat, now, max_wait) } else { self.gcra.reserve_n(tat, now, cost, max_wait) }
    }

    #[cold]
    fn insert_and_reserve<Q>(&self, key: &Q, now: u64, cost: u32, max_wait: u64) -> Result<u64, NotUntil>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.take_place(now)?;
        match self.states.entry(key.to_owned()) {
            Entry::Occupied(entry) => {
                // Another thread inserted it first: give the place back, decide on its state.
                self.keys.fetch_sub(1, Ordering::Relaxed);
                self.reserve_on(entry.get(), now, cost, max_wait)
            }
            Entry::Vacant(entry) => {
                // Not zero: a sweep at a later reading than `now` may have dropped this key
                // with a TAT after `now`. Read under the shard's lock, which orders this after
                // the sweep's removal, itself after its store; `last_sweep <= now` (readings
                // not older than the latest sweep) decides exactly as a fresh key.
                let tat = AtomicU64::new(self.last_sweep.load(Ordering::Relaxed));
                let decision = self.reserve_on(&tat, now, cost, max_wait);
                if decision.is_ok() {
                    entry.insert(tat);
                } else {
                    // Refused: nothing to remember (the state is the table's floor already).
                    self.keys.fetch_sub(1, Ordering::Relaxed);
                }
                decision
            }
        }
    }

    /// Counts one more key, sweeping when the table is full; refused while every key is
    /// live, until the first one goes stale.
    fn take_place(&self, now: u64) -> Result<(), NotUntil> {
        let mut keys = self.keys.load(Ordering::Relaxed);
        loop {
            if keys >= self.max_keys {
                let freed = self.sweep(now);
                keys = self.keys.load(Ordering::Relaxed);
                if freed == 0 && keys >= self.max_keys {
                    return Err(NotUntil::at(now, self.next_sweep.load(Ordering::Relaxed).max(now)));
                }
                continue;
            }
            match self.keys.compare_exchange_weak(keys, keys + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => keys = actual,
            }
        }
    }

    fn sweep(&self, now: u64) -> usize {
        if now < self.next_sweep.load(Ordering::Relaxed) {
            return 0;
        }
        // Before any removal: whoever finds a key missing then reads at least `now` here.
        self.last_sweep.fetch_max(now, Ordering::Relaxed);
        let mut freed = 0;
        let mut first_stale = u64::MAX;
        self.states.retain(|_, tat| {
            let tat = tat.load(Ordering::Relaxed);
            if is_stale(tat, now) {
                freed += 1;
                false
            } else {
                first_stale = first_stale.min(tat);
                true
            }
        });
        self.keys.fetch_sub(freed, Ordering::Relaxed);
        // TATs only grow, and a key inserted during the sweep has a TAT of at least its
        // arrival + T, so nothing can be stale before this bound.
        self.next_sweep.store(first_stale.min(now.saturating_add(self.gcra.interval())), Ordering::Relaxed);
        if freed == 0 {
            tracing::warn!(
                keys = self.len(),
                max_keys = self.max_keys,
                "rate limiter key table full of live keys; new keys refused until one goes stale"
            );
        }
        freed
    }
}

impl<K, C, S> fmt::Debug for KeyedRateLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.keys.load(Ordering::Relaxed))
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

/// A keyed limiter together with the way to find a request's key: what a keyed
/// [`RateLimitLayer`](super::RateLimitLayer) enforces.
#[derive(Debug)]
pub struct Keyed<K, E, C = TokioClock, S = RandomState> {
    limiter: KeyedRateLimiter<K, C, S>,
    extractor: E,
}

impl<K, E, C, S> Keyed<K, E, C, S> {
    /// `limiter`, keyed by `extractor`.
    pub fn new(limiter: KeyedRateLimiter<K, C, S>, extractor: E) -> Self {
        Keyed { limiter, extractor }
    }

    /// The limiter.
    pub fn limiter(&self) -> &KeyedRateLimiter<K, C, S> {
        &self.limiter
    }

    /// The key extractor.
    pub fn extractor(&self) -> &E {
        &self.extractor
    }
}
