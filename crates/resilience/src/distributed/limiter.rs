//! The decision both distributed limiters make: the deny-cache first, then one script run
//! on Redis, and the failure policy when Redis cannot answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use harvester_redis::RedisConnection;
use metrics::{Counter, Gauge};

use super::config::{DistributedOptions, FailurePolicy};
use super::error::{DistributedError, Refusal};
use super::script::{RedisGcra, Verdict};
use crate::error::ConfigError;
use crate::rate_limit::{Clock, NotUntil, Quota, TokioClock};

/// Counts of what a limiter did, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DistributedStats {
    /// Checks sent to Redis (script runs, successful or not).
    pub round_trips: u64,
    /// Checks refused by the local deny-cache, without a round trip.
    pub denied_locally: u64,
    /// Round trips that failed (unreachable, timed out, error reply).
    pub redis_errors: u64,
    /// Checks decided by the failure policy.
    pub fallback_decisions: u64,
}

/// The state and settings shared by both limiters.
pub(crate) struct Core {
    connection: RedisConnection,
    gcra: RedisGcra,
    quota: Quota,
    policy: FailurePolicy,
    /// The local fallback quota of [`FailurePolicy::Local`].
    fallback_quota: Option<Quota>,
    outage: Outage,
    last_error: ArcSwapOption<DistributedError>,
    clock: TokioClock,
    telemetry: Telemetry,
    stats: Counters,
}

/// What asking Redis gave.
pub(crate) enum Answer {
    Admitted(Duration),
    /// Refused; `single_until` is the clock reading before which not even one cell
    /// conforms (what the deny-cache keeps), zero when one would now.
    Refused {
        refusal: NotUntil,
        single_until: u64,
    },
    /// Redis could not decide (or was not asked during an outage).
    Failed(DistributedError),
}

impl Core {
    pub(crate) fn new(
        connection: RedisConnection,
        quota: Quota,
        options: &DistributedOptions,
    ) -> Result<Core, ConfigError> {
        options.validate()?;
        let fallback_quota = match options.failure_policy {
            FailurePolicy::Local { share } => Some(quota.share(share)?),
            _ => None,
        };
        Ok(Core::build(connection, quota, options, fallback_quota))
    }

    /// The default options: valid, and failing closed (no local fallback).
    pub(crate) fn with_defaults(connection: RedisConnection, quota: Quota) -> Core {
        Core::build(connection, quota, &DistributedOptions::default(), None)
    }

    fn build(
        connection: RedisConnection,
        quota: Quota,
        options: &DistributedOptions,
        fallback_quota: Option<Quota>,
    ) -> Core {
        Core {
            connection,
            gcra: RedisGcra::new(quota),
            quota,
            policy: options.failure_policy,
            fallback_quota,
            outage: Outage { until: AtomicU64::new(0), probe_interval: nanos(options.probe_interval) },
            last_error: ArcSwapOption::empty(),
            clock: TokioClock::new(),
            telemetry: Telemetry::register(&options.name, options.failure_policy),
            stats: Counters::default(),
        }
    }

    pub(crate) fn connection(&self) -> &RedisConnection {
        &self.connection
    }

    pub(crate) fn quota(&self) -> Quota {
        self.quota
    }

    pub(crate) fn fallback_quota(&self) -> Option<Quota> {
        self.fallback_quota
    }

    pub(crate) fn name(&self) -> &Arc<str> {
        &self.telemetry.name
    }

    pub(crate) fn policy(&self) -> FailurePolicy {
        self.policy
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    pub(crate) fn stats(&self) -> DistributedStats {
        DistributedStats {
            round_trips: self.stats.round_trips.load(Ordering::Relaxed),
            denied_locally: self.stats.denied_locally.load(Ordering::Relaxed),
            redis_errors: self.stats.redis_errors.load(Ordering::Relaxed),
            fallback_decisions: self.stats.fallback_decisions.load(Ordering::Relaxed),
        }
    }

    /// Whether Redis is taken as down now (the last round trip failed).
    pub(crate) fn in_outage(&self) -> bool {
        self.outage.until.load(Ordering::Relaxed) != 0
    }

    /// Refuses what no wait could admit; `Ok(true)` when there is nothing to take (cost 0).
    pub(crate) fn precheck(&self, cost: u32) -> Result<bool, Refusal> {
        if cost > self.gcra.burst() {
            return Err(Refusal::InsufficientCapacity { cost, burst: self.gcra.burst() });
        }
        Ok(cost == 0)
    }

    /// The deny-cache's refusal: `single_until` (from an earlier refusal) says not even one
    /// cell conforms before it, so `cost` cells conform `(cost - 1) × T` later at the
    /// earliest; refused locally when that is beyond `max_wait`.
    pub(crate) fn denied_by_cache(
        &self,
        single_until: u64,
        now: u64,
        cost: u32,
        max_wait: Duration,
    ) -> Option<Refusal> {
        if single_until <= now {
            return None;
        }
        let earliest = single_until.saturating_add(u64::from(cost.saturating_sub(1)) * nanos(self.gcra.interval()));
        if earliest - now <= nanos(max_wait) {
            return None;
        }
        self.stats.denied_locally.fetch_add(1, Ordering::Relaxed);
        self.telemetry.denied_cache.increment(1);
        Some(Refusal::RateLimited(NotUntil::at(now, earliest)))
    }

    /// Asks Redis for `cost` cells of `key` at `now` (read before sending: the deny-cache
    /// then never refuses longer than Redis would), unless an outage is on and this is
    /// not the one probe of the interval.
    pub(crate) async fn ask(&self, key: &str, now: u64, cost: u32, max_wait: Duration) -> Answer {
        if !self.outage.may_ask(now) {
            let error = self.last_error.load_full().map(|error| (*error).clone()).unwrap_or_else(|| {
                DistributedError::Redis(harvester_redis::RedisError::Command {
                    endpoint: self.connection.endpoint().to_owned(),
                    reason: "unavailable".into(),
                })
            });
            return Answer::Failed(error);
        }
        self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
        match self.gcra.decide(&self.connection, key, cost, max_wait).await {
            Ok(verdict) => {
                if self.outage.end() {
                    self.telemetry.fallback.set(0.0);
                    tracing::info!(limiter = %self.telemetry.name, "Redis answers again; distributed rate limiting resumed");
                }
                match verdict {
                    Verdict::Admitted { wait } => {
                        self.telemetry.allowed_redis.increment(1);
                        Answer::Admitted(wait)
                    }
                    Verdict::Refused { retry_in } => {
                        self.telemetry.denied_redis.increment(1);
                        let earliest = now.saturating_add(nanos(retry_in));
                        let extra = u64::from(cost.saturating_sub(1)) * nanos(self.gcra.interval());
                        let single_until = earliest.saturating_sub(extra);
                        Answer::Refused {
                            refusal: NotUntil::at(now, earliest),
                            single_until: if single_until > now { single_until } else { 0 },
                        }
                    }
                }
            }
            Err(error) => {
                self.stats.redis_errors.fetch_add(1, Ordering::Relaxed);
                self.telemetry.errors.increment(1);
                self.last_error.store(Some(Arc::new(error.clone())));
                if self.outage.begin(self.now()) {
                    self.telemetry.fallback.set(1.0);
                    tracing::warn!(
                        limiter = %self.telemetry.name,
                        policy = self.policy.label(),
                        error = %error,
                        "Redis cannot decide; the failure policy decides until it answers again"
                    );
                }
                Answer::Failed(error)
            }
        }
    }

    /// The failure policy's decision; `local` asks the local fallback limiter (only called
    /// under [`FailurePolicy::Local`]).
    pub(crate) fn fall_back(
        &self,
        error: DistributedError,
        local: impl FnOnce() -> Result<Duration, NotUntil>,
    ) -> Result<Duration, Refusal> {
        self.stats.fallback_decisions.fetch_add(1, Ordering::Relaxed);
        let decision = match self.policy {
            FailurePolicy::FailOpen => Ok(Duration::ZERO),
            FailurePolicy::FailClosed => Err(Refusal::Unavailable(error)),
            FailurePolicy::Local { .. } => local().map_err(Refusal::RateLimited),
        };
        match decision {
            Ok(_) => self.telemetry.allowed_fallback.increment(1),
            Err(_) => self.telemetry.denied_fallback.increment(1),
        }
        decision
    }
}

/// Whether Redis is taken as down, and when to probe it next. One atomic: zero when Redis
/// answered last, else the clock reading of the next probe.
struct Outage {
    until: AtomicU64,
    probe_interval: u64,
}

impl Outage {
    /// True when Redis should be asked: no outage, or this caller won the probe that is due.
    fn may_ask(&self, now: u64) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        until == 0
            || (now >= until
                && self
                    .until
                    .compare_exchange(until, self.next_probe(now), Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok())
    }

    /// Starts (or extends) an outage; true when it was not on.
    fn begin(&self, now: u64) -> bool {
        self.until.swap(self.next_probe(now), Ordering::Relaxed) == 0
    }

    /// Ends an outage; true when it was on.
    fn end(&self) -> bool {
        self.until.load(Ordering::Relaxed) != 0 && self.until.swap(0, Ordering::Relaxed) != 0
    }

    fn next_probe(&self, now: u64) -> u64 {
        now.saturating_add(self.probe_interval).max(1)
    }
}

#[derive(Default)]
struct Counters {
    round_trips: AtomicU64,
    denied_locally: AtomicU64,
    redis_errors: AtomicU64,
    fallback_decisions: AtomicU64,
}

/// Metric handles, registered once per limiter.
struct Telemetry {
    name: Arc<str>,
    allowed_redis: Counter,
    allowed_fallback: Counter,
    denied_redis: Counter,
    denied_cache: Counter,
    denied_fallback: Counter,
    errors: Counter,
    fallback: Gauge,
}

impl Telemetry {
    fn register(name: &str, policy: FailurePolicy) -> Telemetry {
        const ALLOWED: &str = "harvester_distributed_rate_limit_allowed_total";
        const DENIED: &str = "harvester_distributed_rate_limit_denied_total";
        let label = name.to_owned();
        let allowed = |source: &'static str| metrics::counter!(ALLOWED, "limiter" => label.clone(), "source" => source);
        let denied = |source: &'static str| metrics::counter!(DENIED, "limiter" => label.clone(), "source" => source);
        Telemetry {
            allowed_redis: allowed("redis"),
            allowed_fallback: allowed(policy.label()),
            denied_redis: denied("redis"),
            denied_cache: denied("deny_cache"),
            denied_fallback: denied(policy.label()),
            errors: metrics::counter!("harvester_distributed_rate_limit_errors_total", "limiter" => label.clone()),
            fallback: metrics::gauge!("harvester_distributed_rate_limit_fallback", "limiter" => label.clone()),
            name: Arc::from(name),
        }
    }
}

pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
