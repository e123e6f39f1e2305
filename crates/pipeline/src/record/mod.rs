//! Ready-made stages for the seed's [`DataRecord`]: plain functions a processor stage
//! calls on one record (or, for the quality filter, on a batch).
//!
//! - [`validate_required`]: required fields present, quality lowered per missing field;
//! - [`clean_text`]: whitespace trimmed and collapsed, control characters removed;
//! - [`normalize_price`]: `"1.299,00 €"` → 1299.00 EUR;
//! - [`FieldMapping`]: the seed's final field names and computed fields;
//! - [`QualityFilter`]: keeps records at or above a quality score.
//!
//! ```
//! use harvester_pipeline::record::{clean_text, validate_required, DataRecord, SEED_REQUIRED_FIELDS};
//! use serde_json::json;
//!
//! let mut record = DataRecord::new("r1", "https://shop.example/p/1", json!({"title": "  Blue \n mug ", "url": "https://shop.example/p/1"}));
//! clean_text(&mut record);
//! let missing = validate_required(&mut record, SEED_REQUIRED_FIELDS);
//! assert_eq!(record.data["title"], "Blue mug");
//! assert_eq!(missing, vec!["content".to_string()]);
//! assert!((record.quality_score - 0.9).abs() < 1e-9);
//! ```

mod clean;
mod mapping;
mod price;
mod quality;
mod validate;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use clean::{clean_str, clean_text};
pub use mapping::FieldMapping;
pub use price::{Price, normalize_price};
pub use quality::{QualityFilter, QualitySplit};
pub use validate::{QUALITY_PENALTY_PER_MISSING_FIELD, SEED_REQUIRED_FIELDS, validate_required};

/// One collected item on its way through the pipeline (the seed's `DataRecord`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRecord {
    /// Unique id.
    pub id: String,
    /// The page it was collected from.
    pub source_url: String,
    /// When it was collected (RFC 3339 in JSON).
    #[serde(with = "humantime_serde")]
    pub timestamp: SystemTime,
    /// The extracted fields, normally a JSON object.
    pub data: Value,
    /// What the stages noted about it (validation errors, timestamps, collection method).
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// 0.0 (useless) to 1.0 (complete); stages lower it.
    pub quality_score: f64,
    /// The last stage it went through.
    #[serde(default, alias = "processing_stage")]
    pub stage: String,
}

impl DataRecord {
    /// A record collected now, with full quality, no metadata and no stage yet.
    pub fn new(id: impl Into<String>, source_url: impl Into<String>, data: Value) -> Self {
        DataRecord {
            id: id.into(),
            source_url: source_url.into(),
            timestamp: SystemTime::now(),
            data,
            metadata: Map::new(),
            quality_score: 1.0,
            stage: String::new(),
        }
    }
}
