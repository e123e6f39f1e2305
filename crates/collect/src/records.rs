//! One output line per URL, and the pipeline stages that make a fetched page a clean
//! `DataRecord`: validate → extract → transform.
//!
//! A URL that failed to fetch travels the pipeline too (the stages pass it through), so the
//! output has exactly one line for every URL whatever happened to it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use harvester_pipeline::record::{DataRecord, FieldMapping, clean_text, normalize_price, validate_required};
use harvester_pipeline::{ErrorPolicy, Outcome, Stage};
use serde::Serialize;
use serde_json::{Value, json};

use crate::input::Target;

/// Whether a URL was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The page was fetched from the target (2xx, not a ban or captcha page) and extracted.
    Ok,
    /// It was not, `error` says why.
    Failed,
}

/// A line of the `--out` file: what happened to one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The URL as listed.
    pub url: String,
    /// Its host, as parsed from the list (for the per-host metrics); never written out.
    #[serde(skip)]
    pub host: Arc<str>,
    /// `ok` or `failed`.
    pub status: Status,
    /// The last HTTP status seen, if any answer came back.
    pub http_status: Option<u16>,
    /// The id of the proxy of the last attempt (an id, never credentials).
    pub proxy: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// From the first attempt to the last answer or error.
    pub elapsed_ms: u64,
    /// The pipeline's output, when ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<DataRecord>,
    /// Why it failed, when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The fetched body, between the fetch and the extract stage; never written out.
    #[serde(skip)]
    pub body: Option<Bytes>,
}

impl Line {
    /// A fetched page, not yet validated.
    pub fn fetched(target: &Target, status: u16, proxy: String, attempts: u32, elapsed: Duration, body: Bytes) -> Self {
        Line {
            url: target.url.to_string(),
            host: target.host.clone(),
            status: Status::Ok,
            http_status: Some(status),
            proxy: Some(proxy),
            attempts,
            elapsed_ms: millis(elapsed),
            record: None,
            error: None,
            body: Some(body),
        }
    }

    /// A URL that could not be collected.
    pub fn failed(target: &Target, error: String, attempts: u32, elapsed: Duration) -> Self {
        Line {
            url: target.url.to_string(),
            host: target.host.clone(),
            status: Status::Failed,
            http_status: None,
            proxy: None,
            attempts,
            elapsed_ms: millis(elapsed),
            record: None,
            error: Some(error),
            body: None,
        }
    }

    /// Marks the line failed for `error`, keeping what was known (status, proxy).
    pub fn fail(mut self, error: impl Into<String>) -> Self {
        self.status = Status::Failed;
        self.error = Some(error.into());
        self.record = None;
        self.body = None;
        self
    }

    fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// The three stages, in order. `extract` and `transform` are CPU work and are the stages a
/// scaler gives workers to; `workers` is where each starts.
pub fn stages(workers: usize) -> Vec<Stage<Line>> {
    vec![
        Stage::new("validate", |line: Line| async move { Outcome::Keep(validate(line)) }),
        Stage::new("extract", |line: Line| async move { extract(line) })
            .workers(workers)
            // An extraction bug is not transient: no retry, straight to the dead-letter sink,
            // which writes the URL as failed with the error.
            .on_error(ErrorPolicy::DeadLetter),
        Stage::new("transform", |line: Line| async move { Outcome::Keep(transform(line)) }).workers(workers),
    ]
}

/// What the target sends instead of content when it suspects a robot.
pub const CAPTCHA_MARKERS: &[&str] = &["Are you a robot?", "captcha"];

/// A fetched page is kept only if it is a real page: 2xx, a body, and not a captcha.
pub fn validate(line: Line) -> Line {
    if !line.is_ok() {
        return line;
    }
    let status = line.http_status.unwrap_or(0);
    if !(200..300).contains(&status) {
        return line.fail(format!("http {status}: the target answered HTTP {status}"));
    }
    let Some(body) = &line.body else { return line.fail("empty page: no body") };
    if body.is_empty() {
        return line.fail("empty page: the target answered with an empty body");
    }
    let text = String::from_utf8_lossy(body);
    if CAPTCHA_MARKERS.iter().any(|marker| text.contains(marker)) {
        return line.fail("captcha: the target answered with a captcha page");
    }
    line
}

/// Pulls the fields out of the page into a `DataRecord` (the body is dropped here).
pub fn extract(mut line: Line) -> Outcome<Line> {
    if !line.is_ok() {
        return Outcome::Keep(line);
    }
    let Some(body) = line.body.take() else {
        return Outcome::Error(line, "no body to extract from".to_owned());
    };
    let html = String::from_utf8_lossy(&body);
    let title = between(&html, "<title>", "</title>");
    let name = element_text(&html, "class=\"name\"");
    let price = element_text(&html, "class=\"price\"");
    let description = element_text(&html, "class=\"description\"");
    let content = strip_tags(&html);
    let data = json!({
        "url": line.url,
        "title": title.or(name.clone()),
        "name": name,
        "price": price,
        "description": description,
        "content": content,
    });
    let mut record = DataRecord::new(line.url.clone(), line.url.clone(), data);
    record.metadata.insert("collection_method".into(), Value::from("proxy"));
    record.stage = "extract".into();
    line.record = Some(record);
    Outcome::Keep(line)
}

/// Cleans the text, normalises the price, scores completeness and maps the fields to their
/// final names (the seed's mapping).
pub fn transform(mut line: Line) -> Line {
    let Some(record) = line.record.as_mut() else { return line };
    clean_text(record);
    let parsed = record.data.get("price").and_then(Value::as_str).and_then(normalize_price);
    if let (Some(price), Some(data)) = (parsed, record.data.as_object_mut()) {
        data.insert("price".into(), json!({ "amount": price.amount, "currency": price.currency }));
    }
    validate_required(record, &["url", "title", "content", "price"]);
    FieldMapping::seed().apply(record);
    record.stage = "transform".into();
    line
}

/// The text between the first `open` and the next `close`.
fn between(html: &str, open: &str, close: &str) -> Option<String> {
    let start = html.find(open)? + open.len();
    let end = html[start..].find(close)? + start;
    Some(html[start..end].to_owned())
}

/// The text of the first element carrying `attribute` (e.g. `class="price"`), tags removed.
fn element_text(html: &str, attribute: &str) -> Option<String> {
    let at = html.find(attribute)?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find("</")? + start;
    Some(strip_tags(&html[start..end]))
}

/// The text of an HTML fragment: tags removed, nothing else touched (cleaning comes later).
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}
