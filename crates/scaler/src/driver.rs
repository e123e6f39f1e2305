//! [`Driver`]: the loop that runs an engine — sample, decide, apply, remember — as a tokio task.
//!
//! Every `interval` (the first round at once) the driver asks the [`Actuator`] for the
//! replicas set now, reads a [`Sample`] from the [`MetricSource`], asks the [`Engine`], and
//! applies the recommendation when it differs. Each round is a [`Decision`] in a bounded
//! history (the last `history` rounds) that can be read while the driver runs. A source or
//! actuator failure is recorded and the next round tries again, and so is a round that
//! outlasts `round_timeout` (the interval by default): a source or actuator that hangs is
//! abandoned, so it can stall neither the loop nor [`Driver::stop`], which ends the loop after
//! the round in progress. An apply abandoned at the timeout may still have taken effect: the
//! next round reads the replicas again, and the engines count a change only once a sample
//! runs it (see [`Engine`]).
//!
//! Time comes from a [`WallClock`]: [`TokioWallClock`] by default, which follows tokio's clock (so
//! `tokio::time::pause` drives it in tests) from a UTC anchor taken once.
//!
//! ```
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use harvester_scaler::{ConcurrencyLimit, Driver, DriverConfig, MetricSource, ReactiveConfig, ReactiveScaler, Sample, SourceError, Timestamp};
//!
//! /// A queue that is always backed up.
//! struct Backlog;
//! #[async_trait]
//! impl MetricSource for Backlog {
//!     async fn sample(&mut self, replicas: u32, _now: Timestamp) -> Result<Sample, SourceError> {
//!         Ok(Sample::new(replicas).with_value("queue_depth", 10_000.0))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let limit = ConcurrencyLimit::new(1)?;
//! let engine = ReactiveScaler::new(ReactiveConfig { cooldown: Duration::from_secs(30), ..ReactiveConfig::default() })?;
//! let driver = Driver::spawn(DriverConfig::default(), engine, Backlog, limit.clone())?;
//! tokio::time::sleep(Duration::from_secs(61)).await; // rounds at 0, 15, 30, 45 and 60 s
//! assert_eq!(limit.limit(), 8); // 1 -> 2 at 0 s, -> 4 at 30 s, -> 8 at 60 s
//! assert_eq!(driver.history().len(), 5);
//! driver.stop().await?;
//! # Ok(())
//! # }
//! ```

use harvester_core::panic_text;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::actuator::Actuator;
use crate::engine::Engine;
use crate::error::{ConfigError, SourceError};
use crate::recommendation::Recommendation;
use crate::sample::Sample;
use crate::time::Timestamp;

/// Reads the metrics of one target.
#[async_trait]
pub trait MetricSource: Send {
    /// A sample at `now` of the target running `replicas` (as its actuator reports them; the
    /// returned sample's `replicas` should be the same).
    async fn sample(&mut self, replicas: u32, now: Timestamp) -> Result<Sample, SourceError>;
}

/// Where the driver's time comes from: a wall clock (UTC [`Timestamp`]s), not a monotonic
/// counter, because scaling schedules and behaviours are written as times of day.
pub trait WallClock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// tokio's clock, anchored to a UTC time once: `now` = anchor + tokio time elapsed since.
#[derive(Debug, Clone, Copy)]
pub struct TokioWallClock {
    anchor: Timestamp,
    start: Instant,
}

impl TokioWallClock {
    /// Anchored to the system's UTC time now (read once).
    pub fn new() -> Self {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        Self::starting_at(Timestamp::from_unix(since_epoch))
    }

    /// Anchored to `anchor` now (deterministic tests and simulations).
    pub fn starting_at(anchor: Timestamp) -> Self {
        TokioWallClock { anchor, start: Instant::now() }
    }
}

impl Default for TokioWallClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock for TokioWallClock {
    fn now(&self) -> Timestamp {
        self.anchor + self.start.elapsed()
    }
}

/// How often the driver decides, how long a round may take and how much it remembers.
/// Default: every 15 s (the HPA's sync period), rounds bounded by the interval, the last
/// 1 000 decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriverConfig {
    /// Time between rounds; longer than zero, at most a day.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The longest a round may wait on the actuator and the source; past it the round is
    /// recorded as failed ([`RoundOutcome::NoSample`] or [`RoundOutcome::ActuatorFailed`]) and the
    /// next round tries again. `None`: the interval. Longer than zero, at most a day.
    #[serde(with = "humantime_serde::option")]
    pub round_timeout: Option<Duration>,
    /// Decisions kept; 1..=[`DriverConfig::MAX_HISTORY`] (the history is allocated whole).
    pub history: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig { interval: Duration::from_secs(15), round_timeout: None, history: 1_000 }
    }
}

impl DriverConfig {
    /// The most decisions a driver keeps.
    pub const MAX_HISTORY: usize = 1_000_000;
    /// The longest interval and round timeout.
    pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.interval.is_zero() || self.interval > Self::MAX_INTERVAL {
            return Err(ConfigError::new("driver.interval", "must be longer than zero and at most a day"));
        }
        if self.round_timeout.is_some_and(|timeout| timeout.is_zero() || timeout > Self::MAX_INTERVAL) {
            return Err(ConfigError::new(
                "driver.round_timeout",
                "must be longer than zero and at most a day (or unset: the interval)",
            ));
        }
        if !(1..=Self::MAX_HISTORY).contains(&self.history) {
            return Err(ConfigError::new("driver.history", format!("must be within 1..={}", Self::MAX_HISTORY)));
        }
        Ok(())
    }
}

/// What came of one round.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum RoundOutcome {
    /// The recommendation differed from the replicas set, and the actuator applied it.
    Applied {
        /// The recommendation.
        recommendation: Recommendation,
    },
    /// The recommendation was the replicas already set.
    Unchanged {
        /// The recommendation.
        recommendation: Recommendation,
    },
    /// The actuator failed to apply the recommendation, or did not answer within the round
    /// timeout.
    ActuatorFailed {
        /// The recommendation.
        recommendation: Recommendation,
        /// Its error.
        error: String,
    },
    /// No recommendation: the actuator could not say what runs, or the source could not be read
    /// (either failed, or did not answer within the round timeout).
    NoSample {
        /// The error.
        error: String,
    },
}

/// One round of a [`Driver`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When it was made.
    pub at: Timestamp,
    /// Replicas set before it (0 when the actuator could not say).
    pub replicas_before: u32,
    /// What came of it.
    pub outcome: RoundOutcome,
}

impl Decision {
    /// The engine's recommendation, if it was asked.
    pub fn recommendation(&self) -> Option<&Recommendation> {
        match &self.outcome {
            RoundOutcome::Applied { recommendation }
            | RoundOutcome::Unchanged { recommendation }
            | RoundOutcome::ActuatorFailed { recommendation, .. } => Some(recommendation),
            RoundOutcome::NoSample { .. } => None,
        }
    }

    /// The replicas set after it.
    pub fn replicas_after(&self) -> u32 {
        match &self.outcome {
            RoundOutcome::Applied { recommendation } => recommendation.replicas,
            _ => self.replicas_before,
        }
    }
}

/// The last decisions, shared between the loop and readers.
#[derive(Debug)]
struct History {
    capacity: usize,
    decisions: VecDeque<Decision>,
    total: u64,
    /// Why the loop died (a panic in the engine, source or actuator), when it did.
    died: Option<String>,
}

fn lock(history: &Mutex<History>) -> MutexGuard<'_, History> {
    // Only whole decisions are pushed; a panic elsewhere cannot leave one half-written.
    history.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running scaling loop. See the [module documentation](self).
///
/// Dropping it aborts the loop; [`stop`](Self::stop) ends it after the round in progress.
#[derive(Debug)]
#[must_use = "the loop stops as soon as the driver is dropped"]
pub struct Driver {
    history: Arc<Mutex<History>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Driver {
    /// Starts the loop on the current tokio runtime, with a [`TokioWallClock`] anchored to the
    /// system time.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn<E, S, A>(config: DriverConfig, engine: E, source: S, actuator: A) -> Result<Driver, ConfigError>
    where
        E: Engine + 'static,
        S: MetricSource + 'static,
        A: Actuator + 'static,
    {
        Self::spawn_with_clock(config, engine, source, actuator, TokioWallClock::new())
    }

    /// Starts the loop with `clock`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime (as `tokio::spawn` does).
    pub fn spawn_with_clock<E, S, A, C>(
        config: DriverConfig,
        engine: E,
        source: S,
        actuator: A,
        clock: C,
    ) -> Result<Driver, ConfigError>
    where
        E: Engine + 'static,
        S: MetricSource + 'static,
        A: Actuator + 'static,
        C: WallClock,
    {
        config.validate()?;
        let history = Arc::new(Mutex::new(History {
            capacity: config.history,
            decisions: VecDeque::with_capacity(config.history.min(1_024)),
            total: 0,
            died: None,
        }));
        let (stop, stopped) = oneshot::channel();
        let timeout = config.round_timeout.unwrap_or(config.interval);
        let rounds = Rounds { engine, source, actuator, clock, timeout, history: history.clone() };
        let watch = history.clone();
        let task = tokio::spawn(async move {
            // A loop that died must not look like one that runs: the reason is kept for
            // `failure` and `stop`.
            if let Err(panic) = AssertUnwindSafe(rounds.run(config.interval, stopped)).catch_unwind().await {
                let reason = format!("the scaling loop panicked: {}", panic_text(panic.as_ref()));
                tracing::error!(%reason, "scaler stopped");
                lock(&watch).died = Some(reason);
            }
        });
        Ok(Driver { history, stop: Some(stop), task: Some(task) })
    }

    /// True while the loop runs: false once stopped, and once it died.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }

    /// Why the loop died (a panic in the engine, the source or the actuator), if it did:
    /// no more rounds are made.
    pub fn failure(&self) -> Option<String> {
        lock(&self.history).died.clone()
    }

    /// The decisions kept, oldest first.
    pub fn history(&self) -> Vec<Decision> {
        lock(&self.history).decisions.iter().cloned().collect()
    }

    /// The latest decision.
    pub fn last(&self) -> Option<Decision> {
        lock(&self.history).decisions.back().cloned()
    }

    /// Rounds made since the start, including those no longer kept.
    pub fn rounds(&self) -> u64 {
        lock(&self.history).total
    }

    /// Ends the loop after the round in progress (at most the round timeout away) and waits
    /// for it; returns the decisions kept, or, when the loop had died, why with them.
    pub async fn stop(mut self) -> Result<Vec<Decision>, DriverFailed> {
        if let Some(stop) = self.stop.take() {
            // The loop may have ended already (it died); nothing to tell it then.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // The task itself never panics: the loop's panic is caught and kept.
            let _ = task.await;
        }
        match self.failure() {
            Some(reason) => Err(DriverFailed { reason, history: self.history() }),
            None => Ok(self.history()),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// [`Driver::stop`] on a loop that had died: why, and the decisions it made before.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct DriverFailed {
    /// What ended the loop.
    pub reason: String,
    /// The decisions kept, oldest first.
    pub history: Vec<Decision>,
}

/// The loop's own state.
struct Rounds<E, S, A, C> {
    engine: E,
    source: S,
    actuator: A,
    clock: C,
    /// The longest a round may wait on the actuator and the source.
    timeout: Duration,
    history: Arc<Mutex<History>>,
}

/// A round's deadline.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    /// `None` when too far to represent (an interval of `Duration::MAX`): no bound.
    at: Option<Instant>,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Self {
        Deadline { at: Instant::now().checked_add(timeout), timeout }
    }

    /// `step`'s result, its error or a timeout as text.
    async fn bound<T, E: fmt::Display>(
        self,
        what: &str,
        step: impl Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        let result = match self.at {
            Some(at) => tokio::time::timeout_at(at, step)
                .await
                .map_err(|_| format!("{what}: no answer within the round timeout ({:?})", self.timeout))?,
            None => step.await,
        };
        result.map_err(|error| error.to_string())
    }
}

impl<E: Engine, S: MetricSource, A: Actuator, C: WallClock> Rounds<E, S, A, C> {
    async fn run(mut self, interval: Duration, mut stopped: oneshot::Receiver<()>) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = &mut stopped => break,
                _ = ticks.tick() => {}
            }
            let decision = self.round().await;
            tracing::debug!(at = %decision.at, before = decision.replicas_before, after = decision.replicas_after(), "scaler round");
            let mut history = lock(&self.history);
            if history.decisions.len() == history.capacity {
                history.decisions.pop_front();
            }
            history.decisions.push_back(decision);
            history.total += 1;
        }
    }

    async fn round(&mut self) -> Decision {
        let at = self.clock.now();
        let deadline = Deadline::after(self.timeout);
        let replicas_before = match deadline.bound("actuator (reading replicas)", self.actuator.current()).await {
            Ok(replicas) => replicas,
            Err(error) => return Decision { at, replicas_before: 0, outcome: RoundOutcome::NoSample { error } },
        };
        let sample = match deadline.bound("metric source", self.source.sample(replicas_before, at)).await {
            Ok(sample) => sample,
            Err(error) => return Decision { at, replicas_before, outcome: RoundOutcome::NoSample { error } },
        };
        let recommendation = self.engine.recommend(&sample, at);
        let outcome = if recommendation.replicas == replicas_before {
            RoundOutcome::Unchanged { recommendation }
        } else {
            match deadline.bound("actuator (applying)", self.actuator.apply(recommendation.replicas)).await {
                Ok(()) => RoundOutcome::Applied { recommendation },
                Err(error) => {
                    tracing::warn!(%error, replicas = recommendation.replicas, "scaler could not apply a decision");
                    RoundOutcome::ActuatorFailed { recommendation, error }
                }
            }
        };
        Decision { at, replicas_before, outcome }
    }
}
