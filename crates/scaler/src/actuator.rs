//! [`Actuator`]: what makes a decision real — a concurrency limit, a pipeline stage's workers,
//! a deployment's replicas.

use async_trait::async_trait;

use crate::error::ActuatorError;

/// Sets and reports the replicas of one target.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use async_trait::async_trait;
/// use harvester_scaler::{Actuator, ActuatorError};
///
/// /// A worker count kept in an atomic.
/// struct Workers(AtomicU32);
///
/// #[async_trait]
/// impl Actuator for Workers {
///     async fn current(&self) -> Result<u32, ActuatorError> {
///         Ok(self.0.load(Ordering::Relaxed))
///     }
///     async fn apply(&self, replicas: u32) -> Result<(), ActuatorError> {
///         self.0.store(replicas, Ordering::Relaxed);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Actuator: Send + Sync {
    /// The replicas set now.
    async fn current(&self) -> Result<u32, ActuatorError>;

    /// Sets the replicas. Shrinking must not drop work in progress: it may take effect as
    /// running work finishes.
    async fn apply(&self, replicas: u32) -> Result<(), ActuatorError>;
}
