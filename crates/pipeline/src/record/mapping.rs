use serde_json::{Map, Value};

use super::DataRecord;

/// Renames extracted fields to their final names and adds the seed's computed fields.
///
/// [`apply`](Self::apply) replaces `record.data` with an object holding the mapped fields
/// (fields without a mapping are dropped, as in the seed) and:
/// `extraction_timestamp` (RFC 3339), `data_quality_score`, `processing_metadata` (a copy
/// of the metadata), `record_id`, `source_domain` (the host of `source_url`) and
/// `collection_method` (`metadata["collection_method"]`, else `"unknown"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMapping {
    pairs: Vec<(String, String)>,
}

impl Default for FieldMapping {
    fn default() -> Self {
        Self::seed()
    }
}

impl FieldMapping {
    /// The seed's mapping: url → source_url, title → product_title, price → current_price,
    /// description → product_description, image_urls → product_images, category →
    /// product_category, rating → customer_rating, reviews_count → total_reviews.
    pub fn seed() -> Self {
        Self::new([
            ("url", "source_url"),
            ("title", "product_title"),
            ("price", "current_price"),
            ("description", "product_description"),
            ("image_urls", "product_images"),
            ("category", "product_category"),
            ("rating", "customer_rating"),
            ("reviews_count", "total_reviews"),
        ])
    }

    /// A mapping from `(source field, target field)` pairs.
    pub fn new<S: Into<String>, D: Into<String>>(pairs: impl IntoIterator<Item = (S, D)>) -> Self {
        FieldMapping { pairs: pairs.into_iter().map(|(s, d)| (s.into(), d.into())).collect() }
    }

    /// The `(source, target)` pairs.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Rewrites `record.data` to the final format (see the type's docs).
    pub fn apply(&self, record: &mut DataRecord) {
        let mut out = Map::new();
        for (source, target) in &self.pairs {
            if let Some(value) = record.data.get(source.as_str()) {
                out.insert(target.clone(), value.clone());
            }
        }
        let timestamp = humantime_serde::re::humantime::format_rfc3339(record.timestamp).to_string();
        out.insert("extraction_timestamp".into(), Value::String(timestamp));
        out.insert("data_quality_score".into(), Value::from(record.quality_score));
        out.insert("processing_metadata".into(), Value::Object(record.metadata.clone()));
        out.insert("record_id".into(), Value::String(record.id.clone()));
        out.insert("source_domain".into(), Value::String(source_domain(&record.source_url).to_owned()));
        let method = record.metadata.get("collection_method").cloned().unwrap_or_else(|| "unknown".into());
        out.insert("collection_method".into(), method);
        record.data = Value::Object(out);
    }
}

/// The host of a URL, lower-cased by the caller if needed: no scheme, user info, port,
/// path, query or fragment. Empty when there is none.
fn source_domain(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    if let Some(v6) = host.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    host.split(':').next().unwrap_or_default()
}
