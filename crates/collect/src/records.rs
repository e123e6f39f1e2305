//! One output line per URL ([`Line`]), what travels the pipeline on its way there
//! ([`Fetched`]), and the stages that make a fetched page a clean `DataRecord`:
//! validate → extract → transform.
//!
//! A URL that failed to fetch travels the pipeline too (the stages pass it through), so the
//! output has exactly one line for every URL whatever happened to it.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use bytes::Bytes;
use harvester_pipeline::record::{DataRecord, FieldMapping, clean_text, validate_required};
use harvester_pipeline::{ErrorPolicy, Stage, StageOutcome};
use harvester_proxypool::client::Verdict;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::OwnedSemaphorePermit;

use crate::extraction::{Extractor, Source};
use crate::input::Target;
use crate::stack::Page;
use crate::work::Receipt;

/// Whether a URL was collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Status {
    /// The page was fetched from the target (2xx, not a ban or captcha page, not a soft 404)
    /// and extracted.
    Ok,
    /// It was not, `error` says why (`banned: …`, `http 404: …`, `soft 404: …`, …).
    Failed,
}

/// A line of the `--out` file: what happened to one URL.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// The URL as listed.
    pub url: String,
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
}

/// One URL on its way through the pipeline: its output [`Line`], and what the stages need
/// that is never written out.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The line as it stands.
    pub line: Line,
    /// The URL's host, as parsed from the list (for the per-host metrics).
    pub host: Arc<str>,
    /// What the `ProxyClient` made of the answer, if one came back: the one classification
    /// of a page as a success, a ban (a captcha page included) or the target's error.
    pub verdict: Option<Verdict>,
    /// The fetched body, between the fetch and the `extract` stage.
    pub body: Option<Bytes>,
    /// Settled once the line is written, if final (a queue acknowledges the URL then).
    pub receipt: Option<Arc<dyn Receipt>>,
    /// The run's slot (one of `--concurrency`) that the URL holds from its fetch until its
    /// line is written and the last copy of this value is dropped: so at any time at most
    /// `--concurrency` pages are fetched but not yet in the file, and a crash makes a resumed
    /// run fetch at most that many again.
    pub slot: Option<Arc<OwnedSemaphorePermit>>,
}

/// Written as its line alone: the in-flight parts never reach the file.
impl Serialize for Fetched {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.line.serialize(serializer)
    }
}

impl Fetched {
    /// A page that came back through a proxy, not yet validated.
    pub fn page(target: &Target, page: Page, attempts: u32, elapsed: Duration) -> Self {
        let line = Line {
            url: target.url.to_string(),
            status: Status::Ok,
            http_status: Some(page.status),
            proxy: Some(page.proxy.as_str().to_owned()),
            attempts,
            elapsed_ms: millis(elapsed),
            record: None,
            error: None,
        };
        Fetched {
            line,
            host: target.host.clone(),
            verdict: Some(page.verdict),
            body: Some(page.body),
            receipt: None,
            slot: None,
        }
    }

    /// A URL that could not be collected.
    pub fn failed(target: &Target, error: String, attempts: u32, elapsed: Duration) -> Self {
        let line = Line {
            url: target.url.to_string(),
            status: Status::Failed,
            http_status: None,
            proxy: None,
            attempts,
            elapsed_ms: millis(elapsed),
            record: None,
            error: Some(error),
        };
        Fetched { line, host: target.host.clone(), verdict: None, body: None, receipt: None, slot: None }
    }

    /// Marks the URL failed for `error`, keeping what was known (status, proxy).
    pub fn fail(mut self, error: impl Into<String>) -> Self {
        self.line.status = Status::Failed;
        self.line.error = Some(error.into());
        self.line.record = None;
        self.body = None;
        self
    }

    /// The same, settling `receipt` once its line is written (if final).
    pub fn with_receipt(mut self, receipt: Option<Arc<dyn Receipt>>) -> Self {
        self.receipt = receipt;
        self
    }

    /// The same, holding the run's `slot` until its line is written.
    pub fn with_slot(mut self, slot: OwnedSemaphorePermit) -> Self {
        self.slot = Some(Arc::new(slot));
        self
    }

    fn is_ok(&self) -> bool {
        self.line.status == Status::Ok
    }
}

/// The start of the error of a line whose URL a stop cut short: such a line is not final.
pub const INTERRUPTED: &str = "interrupted:";

impl Line {
    /// The failed line of a URL that was never fetched, for `error`.
    pub fn unfetched(url: &str, error: String) -> Line {
        Line {
            url: url.to_owned(),
            status: Status::Failed,
            http_status: None,
            proxy: None,
            attempts: 0,
            elapsed_ms: 0,
            record: None,
            error: Some(error),
        }
    }

    /// Whether this line is the URL's last word: collected, or failed for a reason of its
    /// own. A URL cut short by a stop (`interrupted: …`) is not done: a resumed run or
    /// another collector fetches it again.
    pub fn is_final(&self) -> bool {
        is_final(self.status, self.error.as_deref())
    }
}

/// Whether a line of `status` and `error` is its URL's last word (see [`Line::is_final`]):
/// also how a resumed run reads the lines already in `--out`.
pub fn is_final(status: Status, error: Option<&str>) -> bool {
    status == Status::Ok || !error.is_some_and(|error| error.starts_with(INTERRUPTED))
}

fn millis(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// The three stages, in order. `extract` and `transform` are CPU work and are the stages a
/// scaler gives workers to; `workers` is where each starts. `extractor` reads the pages.
pub fn stages(workers: usize, extractor: Extractor) -> Vec<Stage<Fetched>> {
    vec![
        Stage::new("validate", |fetched: Fetched| async move { StageOutcome::Keep(validate(fetched)) }),
        Stage::new("extract", move |fetched: Fetched| {
            let extractor = extractor.clone();
            async move { extract(&extractor, fetched) }
        })
        .workers(workers)
        // An extraction bug is not transient: no retry, straight to the dead-letter sink,
        // which writes the URL as failed with the error.
        .on_error(ErrorPolicy::DeadLetter),
        Stage::new("transform", |fetched: Fetched| async move { StageOutcome::Keep(transform(fetched)) })
            .workers(workers),
    ]
}

/// A fetched page is kept only if it is a real page: not a ban (the client's verdict, which
/// knows captcha pages), 2xx, and a body.
pub fn validate(fetched: Fetched) -> Fetched {
    if !fetched.is_ok() {
        return fetched;
    }
    if fetched.verdict.is_some_and(Verdict::is_ban) {
        let attempts = fetched.line.attempts;
        return fetched.fail(format!("banned: the last of {attempts} proxies was refused too"));
    }
    let status = fetched.line.http_status.unwrap_or(0);
    if !(200..300).contains(&status) {
        return fetched.fail(format!("http {status}: the target answered HTTP {status}"));
    }
    match &fetched.body {
        None => fetched.fail("empty page: no body"),
        Some(body) if body.is_empty() => fetched.fail("empty page: the target answered with an empty body"),
        Some(_) => fetched,
    }
}

/// Pulls the fields out of the page into a `DataRecord` (the body is dropped here), each
/// field's source in the record's metadata (`field_sources`). A soft 404 (a "not found"
/// page with no product, served with 2xx) fails the URL with `soft 404: …`.
pub fn extract(extractor: &Extractor, mut fetched: Fetched) -> StageOutcome<Fetched> {
    if !fetched.is_ok() {
        return StageOutcome::Keep(fetched);
    }
    let Some(body) = fetched.body.take() else {
        return StageOutcome::Error(fetched, "no body to extract from".to_owned());
    };
    let page = extractor.extract(&fetched.host, &String::from_utf8_lossy(&body));
    if let Some(reason) = page.not_found {
        return StageOutcome::Keep(fetched.fail(format!("soft 404: {reason}")));
    }
    let url = &fetched.line.url;
    let currency = page.currency.as_ref().map(|c| c.value.clone());
    let mut sources = Map::new();
    let mut source = |field: &str, found: Option<Source>| {
        if let Some(found) = found {
            sources.insert(field.to_owned(), Value::from(found.as_str()));
        }
    };
    source("name", page.name.as_ref().map(|f| f.source));
    source("price", page.price.as_ref().map(|f| f.source));
    source("currency", page.currency.as_ref().map(|f| f.source));
    source("description", page.description.as_ref().map(|f| f.source));
    source("availability", page.availability.as_ref().map(|f| f.source));
    let name = page.name.map(|f| f.value);
    let data = json!({
        "url": url,
        "title": page.title.or_else(|| name.clone()),
        "name": name,
        "price": page.price.map(|f| json!({ "amount": f.value, "currency": currency })),
        "currency": currency,
        "description": page.description.map(|f| f.value),
        "availability": page.availability.map(|f| f.value),
        "content": page.content,
    });
    let mut record = DataRecord::new(url.clone(), url.clone(), data);
    record.metadata.insert("collection_method".into(), Value::from("proxy"));
    record.metadata.insert("field_sources".into(), Value::Object(sources));
    record.stage = "extract".into();
    fetched.line.record = Some(record);
    StageOutcome::Keep(fetched)
}

/// Cleans the text, scores completeness and maps the fields to their final names: the
/// seed's mapping (`product_title`, `current_price` as `{amount, currency}`,
/// `product_description`, …) and `product_name`, `product_availability`.
pub fn transform(mut fetched: Fetched) -> Fetched {
    static MAPPING: LazyLock<FieldMapping> = LazyLock::new(|| {
        let seed = FieldMapping::seed();
        let extra = [("name", "product_name"), ("availability", "product_availability")];
        FieldMapping::new(seed.pairs().iter().map(|(s, d)| (s.as_str(), d.as_str())).chain(extra))
    });
    let Some(record) = fetched.line.record.as_mut() else { return fetched };
    clean_text(record);
    validate_required(record, &["url", "title", "content", "price"]);
    MAPPING.apply(record);
    record.stage = "transform".into();
    fetched
}
