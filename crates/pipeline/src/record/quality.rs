use serde::{Deserialize, Serialize};

use super::DataRecord;

/// Keeps the records of a batch whose quality score reaches a threshold, and flags a batch
/// where too few do (the seed: keep ≥ 0.5, warn below 80 % kept).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QualityFilter {
    /// Records scoring at least this are kept. Default 0.5.
    pub min_score: f64,
    /// A batch keeping less than this fraction of its records is flagged. Default 0.8.
    pub min_kept_fraction: f64,
}

impl Default for QualityFilter {
    fn default() -> Self {
        QualityFilter { min_score: 0.5, min_kept_fraction: 0.8 }
    }
}

/// A batch split by [`QualityFilter::split`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QualitySplit {
    /// Records at or above the threshold, in their original order.
    pub kept: Vec<DataRecord>,
    /// The others, in their original order.
    pub rejected: Vec<DataRecord>,
    /// Whether fewer than `min_kept_fraction` of the batch were kept.
    pub low_quality_batch: bool,
}

impl QualityFilter {
    /// Splits `batch` into kept and rejected records. A score that is NaN is rejected.
    pub fn split(&self, batch: Vec<DataRecord>) -> QualitySplit {
        let total = batch.len();
        let (kept, rejected): (Vec<_>, Vec<_>) = batch.into_iter().partition(|r| r.quality_score >= self.min_score);
        let low_quality_batch = total > 0 && (kept.len() as f64) < total as f64 * self.min_kept_fraction;
        if low_quality_batch {
            tracing::warn!(kept = kept.len(), total, "low quality batch");
        }
        QualitySplit { kept, rejected, low_quality_batch }
    }
}
