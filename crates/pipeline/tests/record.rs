//! The ready-made stages for the seed's `DataRecord`, on messy scraped input.

use std::time::{Duration, UNIX_EPOCH};

use harvester_pipeline::record::{
    DataRecord, FieldMapping, Price, QualityFilter, SEED_REQUIRED_FIELDS, clean_str, clean_text, normalize_price,
    validate_required,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn record(data: Value) -> DataRecord {
    DataRecord::new("r-1", "https://user@Shop.example.com:8443/p/42?ref=x", data)
}

fn scored(id: &str, quality_score: f64) -> DataRecord {
    DataRecord { quality_score, ..DataRecord::new(id, "https://shop.example/", json!({})) }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

// ---------------------------------------------------------------- DataRecord

#[test]
fn record_round_trips_through_json_and_reads_the_seed_stage_name() {
    let mut r = record(json!({"title": "Mug"}));
    r.timestamp = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let text = serde_json::to_string(&r).expect("serializes");
    assert!(text.contains("\"timestamp\":\"2023-11-14T22:13:20Z\""), "{text}");
    assert_eq!(serde_json::from_str::<DataRecord>(&text).expect("deserializes"), r);

    let seed: DataRecord = serde_json::from_value(json!({
        "id": "a", "source_url": "u", "timestamp": "2024-01-01T00:00:00Z", "data": {},
        "quality_score": 0.7, "processing_stage": "validation"
    }))
    .expect("seed shape");
    assert_eq!(seed.stage, "validation");
    assert!(seed.metadata.is_empty());
}

// ---------------------------------------------------------------- validate_required

#[test]
fn each_missing_or_empty_required_field_costs_a_tenth_of_quality() {
    let mut r = record(json!({"url": "https://shop.example/p/42", "title": "   ", "content": null, "extra": 1}));

    let missing = validate_required(&mut r, SEED_REQUIRED_FIELDS);

    assert_eq!(missing, vec!["title", "content"]);
    assert!(close(r.quality_score, 0.8));
    assert_eq!(
        r.metadata["validation_errors"],
        json!(["Missing required field: title", "Missing required field: content"])
    );
}

#[test]
fn zero_and_false_count_as_present_but_empty_collections_do_not() {
    let mut r = record(json!({"price": 0, "in_stock": false, "images": [], "specs": {}}));

    let missing = validate_required(&mut r, &["price", "in_stock", "images", "specs"]);

    assert_eq!(missing, vec!["images", "specs"]);
}

#[test]
fn quality_never_drops_below_zero_and_non_object_data_misses_everything() {
    let mut r = record(json!("just a string"));
    r.quality_score = 0.15;

    let missing = validate_required(&mut r, SEED_REQUIRED_FIELDS);

    assert_eq!(missing.len(), 3);
    assert_eq!(r.quality_score, 0.0);
}

#[test]
fn a_complete_record_keeps_its_score_and_an_empty_error_list() {
    let mut r = record(json!({"url": "u", "title": "t", "content": "c"}));
    assert!(validate_required(&mut r, SEED_REQUIRED_FIELDS).is_empty());
    assert_eq!(r.quality_score, 1.0);
    assert_eq!(r.metadata["validation_errors"], json!([]));
}

// ---------------------------------------------------------------- clean_text

#[test]
fn clean_text_collapses_whitespace_and_strips_control_characters_at_every_depth() {
    let mut r = record(json!({
        "title": "\n\t  Stainless\u{a0}Steel   Mug\r\n (350\u{200b}ml)\u{7}  ",
        "price": 12.5,
        "specs": {"colour": " deep\tblue ", "tags": ["  a  b ", "\u{0}c\u{1b}", 3, null]},
        "  key with spaces ": "  kept key  "
    }));

    clean_text(&mut r);

    assert_eq!(
        r.data,
        json!({
            "title": "Stainless Steel Mug (350ml)",
            "price": 12.5,
            "specs": {"colour": "deep blue", "tags": ["a b", "c", 3, null]},
            "  key with spaces ": "kept key"
        })
    );
}

#[test]
fn clean_str_leaves_clean_text_alone_and_empties_blank_text() {
    assert_eq!(clean_str("Already clean, 100% ünïcode ✓"), "Already clean, 100% ünïcode ✓");
    assert_eq!(clean_str(" \n\t\u{feff} "), "");
    assert_eq!(clean_str("a\u{0}b"), "ab");
}

proptest! {
    #[test]
    fn cleaned_text_has_no_control_characters_or_double_spaces(s in any::<String>()) {
        let cleaned = clean_str(&s);
        prop_assert!(!cleaned.chars().any(char::is_control));
        prop_assert!(!cleaned.contains("  "));
        prop_assert_eq!(cleaned.trim(), cleaned.as_str());
        prop_assert_eq!(clean_str(&cleaned), cleaned.clone(), "cleaning is idempotent");
    }
}

// ---------------------------------------------------------------- normalize_price

fn price(text: &str) -> (f64, Option<String>) {
    let Price { amount, currency } = normalize_price(text).unwrap_or_else(|| panic!("no price in {text:?}"));
    (amount, currency)
}

#[test]
fn prices_in_the_usual_shapes() {
    let cases: &[(&str, f64, Option<&str>)] = &[
        ("$1,299.00", 1299.0, Some("USD")),
        ("1.299,00 €", 1299.0, Some("EUR")),
        ("USD 12", 12.0, Some("USD")),
        ("12.50 EUR", 12.5, Some("EUR")),
        ("€ 5", 5.0, Some("EUR")),
        ("1 299,95 kr", 1299.95, Some("kr")),
        ("1\u{a0}299,95\u{a0}kr", 1299.95, Some("kr")),
        ("CHF 1'299.50", 1299.5, Some("CHF")),
        ("£0.99", 0.99, Some("GBP")),
        ("¥12,800", 12800.0, Some("JPY")),
        ("R$ 1.234,56", 1234.56, Some("BRL")),
        ("US$ 20", 20.0, Some("USD")),
        ("CAD $15.00", 15.0, Some("CAD")),
        ("Price: 49,90 zł", 49.9, Some("PLN")),
        ("1,299", 1299.0, None),
        ("1.299", 1299.0, None),
        ("0.299", 0.299, None),
        ("12,5", 12.5, None),
        ("1,234,567", 1234567.0, None),
        ("1.234.567,89 EUR", 1234567.89, Some("EUR")),
        ("  \n Now only 19.99$!!  ", 19.99, Some("USD")),
        ("Try 12", 12.0, None),
        ("12.", 12.0, None),
    ];
    for (text, amount, currency) in cases {
        let (got_amount, got_currency) = price(text);
        assert!(close(got_amount, *amount), "{text:?}: {got_amount} != {amount}");
        assert_eq!(got_currency.as_deref(), *currency, "{text:?}");
    }
}

#[test]
fn the_first_number_is_the_price() {
    assert_eq!(price("Was 20, now 15 EUR"), (20.0, Some("EUR".into())));
    assert_eq!(price("2 for 10"), (2.0, None));
}

#[test]
fn text_without_digits_is_no_price() {
    for text in ["", "free", "€", "Price on request", "N/A", "-.-"] {
        assert_eq!(normalize_price(text), None, "{text:?}");
    }
}

proptest! {
    #[test]
    fn normalize_price_never_panics_and_gives_finite_non_negative_amounts(s in any::<String>()) {
        if let Some(p) = normalize_price(&s) {
            prop_assert!(p.amount.is_finite() && p.amount >= 0.0);
        }
    }

    #[test]
    fn normalize_price_never_panics_on_price_like_text(s in "[0-9 .,'\u{a0}$€kr-]{0,24}") {
        if let Some(p) = normalize_price(&s) {
            prop_assert!(p.amount.is_finite() && p.amount >= 0.0);
        }
    }

    #[test]
    fn grouped_amounts_read_back_in_either_convention(cents in 0u64..10_000_000_000) {
        let (units, rest) = (cents / 100, cents % 100);
        let grouped = |sep: char| {
            let digits = units.to_string();
            let mut out = String::new();
            for (i, d) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    out.push(sep);
                }
                out.push(d);
            }
            out
        };
        let expected = units as f64 + rest as f64 / 100.0;
        let en = format!("${}.{rest:02}", grouped(','));
        let de = format!("{},{rest:02} €", grouped('.'));
        prop_assert!(close(price(&en).0, expected), "{}", en);
        prop_assert!(close(price(&de).0, expected), "{}", de);
    }
}

// ---------------------------------------------------------------- FieldMapping

#[test]
fn seed_mapping_renames_fields_drops_unmapped_ones_and_adds_computed_fields() {
    let mut r = record(json!({
        "url": "https://shop.example.com/p/42", "title": "Mug", "price": 12.5, "rating": 4.5,
        "reviews_count": 12, "image_urls": ["a.jpg"], "internal_note": "drop me"
    }));
    r.timestamp = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    r.quality_score = 0.9;
    r.metadata.insert("collection_method".into(), json!("proxy-pool"));

    FieldMapping::seed().apply(&mut r);

    assert_eq!(
        r.data,
        json!({
            "source_url": "https://shop.example.com/p/42", "product_title": "Mug", "current_price": 12.5,
            "customer_rating": 4.5, "total_reviews": 12, "product_images": ["a.jpg"],
            "extraction_timestamp": "2023-11-14T22:13:20Z", "data_quality_score": 0.9,
            "processing_metadata": {"collection_method": "proxy-pool"}, "record_id": "r-1",
            "source_domain": "Shop.example.com", "collection_method": "proxy-pool"
        })
    );
}

#[test]
fn custom_mapping_and_unknown_collection_method() {
    let mut r = DataRecord::new("r-2", "http://[::1]:8080/x", json!({"name": "Mug"}));

    FieldMapping::new([("name", "title")]).apply(&mut r);

    assert_eq!(r.data["title"], "Mug");
    assert_eq!(r.data["source_domain"], "::1");
    assert_eq!(r.data["collection_method"], "unknown");
    assert_eq!(FieldMapping::default(), FieldMapping::seed());
}

// ---------------------------------------------------------------- QualityFilter

#[test]
fn quality_filter_keeps_records_at_or_above_the_threshold_in_order() {
    let batch = vec![scored("a", 0.9), scored("b", 0.2), scored("c", 0.5), scored("d", f64::NAN), scored("e", 0.7)];

    let split = QualityFilter::default().split(batch);

    let ids = |v: &[DataRecord]| v.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&split.kept), vec!["a", "c", "e"]);
    assert_eq!(ids(&split.rejected), vec!["b", "d"]);
    assert!(split.low_quality_batch, "3 of 5 kept is below 80 %");
}

#[test]
fn a_mostly_good_batch_is_not_flagged_and_an_empty_one_neither() {
    let batch = (0..10).map(|i| scored(&i.to_string(), if i < 8 { 0.6 } else { 0.1 })).collect();
    assert!(!QualityFilter::default().split(batch).low_quality_batch, "8 of 10 is exactly 80 %");
    assert!(!QualityFilter::default().split(Vec::new()).low_quality_batch);
}
