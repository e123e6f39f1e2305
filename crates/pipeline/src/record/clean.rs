use serde_json::Value;

use super::DataRecord;

/// Cleans every string in `record.data`, at any depth (object values and array items;
/// keys are left alone): see [`clean_str`].
pub fn clean_text(record: &mut DataRecord) {
    clean_value(&mut record.data);
}

fn clean_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if needs_cleaning(s) {
                *s = clean_str(s);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean_value),
        Value::Object(map) => map.values_mut().for_each(clean_value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Trims, collapses every run of whitespace (Unicode, so non-breaking spaces, newlines and
/// tabs too) to one space, and removes control and zero-width characters.
///
/// ```
/// assert_eq!(harvester_pipeline::record::clean_str(" Blue\u{a0}\u{a0}mug\r\n\t(2\u{0}\u{200b}pcs) "), "Blue mug (2pcs)");
/// ```
pub fn clean_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            pending_space = true;
        } else if !is_invisible(c) {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c);
        }
    }
    out
}

fn is_invisible(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}')
}

// Most strings are clean already; skip the allocation for them.
fn needs_cleaning(s: &str) -> bool {
    let mut previous_space = true;
    for c in s.chars() {
        if c == ' ' {
            if previous_space {
                return true;
            }
            previous_space = true;
        } else if c.is_whitespace() || is_invisible(c) {
            return true;
        } else {
            previous_space = false;
        }
    }
    previous_space && !s.is_empty()
}
