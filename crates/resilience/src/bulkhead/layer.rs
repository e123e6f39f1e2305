//! The cheap, cloneable description of a bulkhead, applied to services.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use super::config::BulkheadConfig;
use super::partition::Bulkhead;
use super::service::{BulkheadService, DefaultPartition};
use crate::error::ConfigError;

/// Applies a bulkhead to services. The partitions are created with the layer and shared by
/// every service it wraps and all their clones.
#[must_use = "a layer does nothing until it wraps a service"]
pub struct BulkheadLayer<P = DefaultPartition> {
    bulkhead: Bulkhead,
    selector: Arc<P>,
}

impl BulkheadLayer<DefaultPartition> {
    /// Every request in `config`'s default partition.
    pub fn new(config: BulkheadConfig) -> Result<Self, ConfigError> {
        Ok(BulkheadLayer { bulkhead: Bulkhead::new(config)?, selector: Arc::new(DefaultPartition) })
    }
}

impl<P> BulkheadLayer<P> {
    /// Each request in the partition `selector` names (a closure `Fn(&Req) -> Option<&str>`);
    /// `None` or an unknown name means `config`'s default partition, so a typo degrades to
    /// the ordinary limits instead of failing calls.
    pub fn partitioned<Req>(config: BulkheadConfig, selector: P) -> Result<Self, ConfigError>
    where
        P: Fn(&Req) -> Option<&str>,
    {
        Ok(BulkheadLayer { bulkhead: Bulkhead::new(config)?, selector: Arc::new(selector) })
    }

    /// The partitions, shared by every service built from this layer.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }
}

impl<S, P> Layer<S> for BulkheadLayer<P> {
    type Service = BulkheadService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone(), Arc::clone(&self.selector))
    }
}

impl<P> Clone for BulkheadLayer<P> {
    fn clone(&self) -> Self {
        BulkheadLayer { bulkhead: self.bulkhead.clone(), selector: Arc::clone(&self.selector) }
    }
}

impl<P> fmt::Debug for BulkheadLayer<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadLayer").field("bulkhead", &self.bulkhead).finish_non_exhaustive()
    }
}
