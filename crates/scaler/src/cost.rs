//! Cost: what a recommendation costs per hour, and a budget that caps it.
//!
//! A [`CostCap`] wraps any engine. Every recommendation gets its `cost_per_hour` (replicas ×
//! `cost_per_replica_hour`); with a `max_cost_per_hour`, replicas are capped at what the budget
//! affords, ⌊budget ÷ unit cost⌋. The budget is a hard limit: it wins over the inner engine's
//! minimum and over schedule windows (wrap the `Scheduled` engine in the cap, not the reverse,
//! if that is what you want; wrap the cap in the schedule to let windows exceed the budget).
//!
//! The cap changes only the answer. The wrapped engine learns from the next sample that its
//! own number was not run, so a capped change leaves it no false event: no HPA scale event
//! against its policies, no reactive cooldown (see [`Engine`]).
//!
//! ```
//! use harvester_scaler::{CostCap, CostConfig, Engine, Reason, ReactiveConfig, ReactiveScaler, Sample, Timestamp};
//!
//! let config = CostConfig { cost_per_replica_hour: 0.0464, max_cost_per_hour: Some(0.20) };
//! let mut engine = CostCap::new(config, ReactiveScaler::new(ReactiveConfig::default())?)?;
//! // cpu is high: the reactive engine wants 3 -> 6, the budget affords ⌊0.20 / 0.0464⌋ = 4.
//! let decision = engine.recommend(&Sample::new(3).with_value("cpu", 0.95), Timestamp::from_unix_secs(0));
//! assert_eq!(decision.replicas, 4);
//! assert!(matches!(decision.reason, Reason::CostCapped { .. }));
//! assert!(decision.cost_per_hour.is_some_and(|cost| (cost - 0.1856).abs() < 1e-9));
//! # Ok::<(), harvester_scaler::ConfigError>(())
//! ```

use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::ConfigError;
use crate::recommendation::{Reason, Recommendation};
use crate::sample::{Sample, usable};
use crate::time::Timestamp;

/// Unit cost and budget. The default unit cost is the seed's compute price for one core-hour
/// (0.0464, an AWS c5.large equivalent), with no budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CostConfig {
    /// What one replica costs per hour (any currency).
    pub cost_per_replica_hour: f64,
    /// The most to spend per hour; `None`: no cap.
    pub max_cost_per_hour: Option<f64>,
}

impl Default for CostConfig {
    fn default() -> Self {
        CostConfig { cost_per_replica_hour: 0.0464, max_cost_per_hour: None }
    }
}

impl CostConfig {
    /// Refuses out-of-range values, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !usable(self.cost_per_replica_hour) {
            return Err(ConfigError::new(
                "cost.cost_per_replica_hour",
                format!("{} is not a finite, non-negative number", self.cost_per_replica_hour),
            ));
        }
        if let Some(budget) = self.max_cost_per_hour {
            if !usable(budget) {
                return Err(ConfigError::new(
                    "cost.max_cost_per_hour",
                    format!("{budget} is not a finite, non-negative number"),
                ));
            }
            if self.affordable().is_some_and(|replicas| replicas == 0) {
                return Err(ConfigError::new(
                    "cost.max_cost_per_hour",
                    format!("{budget} affords no replica at {} each", self.cost_per_replica_hour),
                ));
            }
        }
        Ok(())
    }

    /// What `replicas` cost per hour.
    pub fn cost_per_hour(&self, replicas: u32) -> f64 {
        f64::from(replicas) * self.cost_per_replica_hour
    }

    /// The most replicas the budget affords; `None` without a budget or at zero unit cost.
    pub fn affordable(&self) -> Option<u32> {
        let budget = self.max_cost_per_hour?;
        if self.cost_per_replica_hour <= 0.0 {
            return None;
        }
        // A hair of slack so that a budget of exactly n units affords n despite rounding.
        let replicas = (budget / self.cost_per_replica_hour + 1e-9).floor();
        Some(replicas.clamp(0.0, f64::from(u32::MAX)) as u32)
    }
}

/// An engine under a cost budget. See the [module documentation](self).
pub struct CostCap {
    config: CostConfig,
    cap: Option<u32>,
    inner: Box<dyn Engine>,
}

impl fmt::Debug for CostCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostCap").field("config", &self.config).field("cap", &self.cap).finish_non_exhaustive()
    }
}

impl CostCap {
    /// `inner` under `config`, validated.
    pub fn new(config: CostConfig, inner: impl Engine + 'static) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(CostCap { config, cap: config.affordable(), inner: Box::new(inner) })
    }

    /// The cost configuration.
    pub fn config(&self) -> &CostConfig {
        &self.config
    }

    /// The replica cap the budget sets, if any.
    pub fn cap(&self) -> Option<u32> {
        self.cap
    }
}

impl Engine for CostCap {
    fn recommend(&mut self, sample: &Sample, now: Timestamp) -> Recommendation {
        let mut recommendation = self.inner.recommend(sample, now);
        if let (Some(cap), Some(budget)) = (self.cap, self.config.max_cost_per_hour)
            && recommendation.replicas > cap
        {
            recommendation = Recommendation::new(
                cap,
                Reason::CostCapped { max_cost_per_hour: budget },
                format!(
                    "budget {budget}/h affords {cap} replicas at {}/h each; engine said {recommendation}",
                    self.config.cost_per_replica_hour
                ),
            );
        }
        recommendation.cost_per_hour = Some(self.config.cost_per_hour(recommendation.replicas));
        recommendation
    }

    fn replica_range(&self) -> RangeInclusive<u32> {
        let inner = self.inner.replica_range();
        match self.cap {
            Some(cap) => (*inner.start()).min(cap)..=(*inner.end()).min(cap),
            None => inner,
        }
    }
}
