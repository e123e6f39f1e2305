use serde_json::Value;

use super::DataRecord;

/// The seed's required fields.
pub const SEED_REQUIRED_FIELDS: &[&str] = &["url", "title", "content"];

/// How much [`validate_required`] lowers the quality score per missing field (the seed's
/// rule).
pub const QUALITY_PENALTY_PER_MISSING_FIELD: f64 = 0.1;

/// Checks that every field in `required` is present in `record.data` and not empty, lowers
/// `quality_score` by [`QUALITY_PENALTY_PER_MISSING_FIELD`] per missing field (never below
/// 0), records `"Missing required field: …"` messages under `metadata["validation_errors"]`,
/// and returns the missing fields' names.
///
/// Empty means null, a string of only whitespace, an empty array or an empty object. Unlike
/// the seed (Python truthiness), `0` and `false` count as present: a price of 0 is a value.
/// A `data` that is not an object misses every field.
pub fn validate_required(record: &mut DataRecord, required: &[&str]) -> Vec<String> {
    let missing: Vec<String> = required
        .iter()
        .filter(|field| record.data.get(**field).is_none_or(is_empty))
        .map(|field| (*field).to_owned())
        .collect();
    let penalty = missing.len() as f64 * QUALITY_PENALTY_PER_MISSING_FIELD;
    record.quality_score = (record.quality_score - penalty).max(0.0);
    let errors = missing.iter().map(|f| Value::String(format!("Missing required field: {f}"))).collect();
    record.metadata.insert("validation_errors".into(), Value::Array(errors));
    missing
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}
