//! Proxy lists: many proxies and their metadata, read from text, JSON or TOML.
//!
//! **Text** has one proxy per line: a URL, then optional whitespace-separated `key=value`
//! metadata. Blank lines and lines starting with `#` are skipped, and a token starting with `#`
//! starts a trailing comment (a `#` inside a token does not). The keys are
//! `id`, `region`, `provider`, `kind` (`residential`, `datacenter` or `mobile`), `tags`
//! (comma-separated), `cost_per_request` (or `cost`), `max_sessions` and `weight`; values cannot
//! contain whitespace, and a space in credentials must be percent-encoded (`%20`).
//!
//! ```text
//! # EU residential gateway
//! socks5h://alice:s3cret@gate.example.com:7000 id=eu-1 region=eu kind=residential tags=fast,sticky cost=0.002
//! http://10.0.0.8:3128  weight=3 max_sessions=20   # office proxy
//! ```
//!
//! **JSON** is an array of objects with a `url` and the same fields (`tags` as an array), or
//! `{"proxies": [...]}`. **TOML** is a list of `[[proxy]]` tables with the same fields.
//! [`ProxyList::load_path`] picks the format by file extension.
//!
//! Strict parsing refuses the whole list if anything is wrong, and its [`ListError`] names every
//! bad line (or entry) with its number, so a large file is fixed in one pass. Lenient parsing
//! keeps the good proxies and returns the bad lines as [`Rejected`]. Duplicate ids are refused
//! in every format, naming where the id was first used.
//!
//! Nothing here ever shows a proxy's credentials: errors never hold a line's text, never
//! forward a serde message about a value, and quote at most a short token of plain characters
//! (an unknown key, a kind), or `***` when the token could be part of a password.
//!
//! ```
//! use harvester_proxypool::ProxyKind;
//! use harvester_proxypool::list::ProxyList;
//!
//! let text = "\
//! ## EU residential gateway
//! socks5h://alice:s3cret@gate.example.com:7000 id=eu-1 region=eu kind=residential tags=fast,sticky
//! http://10.0.0.8:3128  weight=3 max_sessions=20   # office proxy
//! ";
//! let proxies = ProxyList::parse_text(text)?;
//! assert_eq!(proxies.len(), 2);
//! assert_eq!(proxies[0].id().as_str(), "eu-1");
//! assert_eq!(proxies[0].meta().kind, Some(ProxyKind::Residential));
//! assert_eq!(proxies[1].meta().weight, 3);
//!
//! let err = ProxyList::parse_text("http://10.0.0.1:8080\nhttp://10.0.0.2:99999\n").unwrap_err();
//! assert_eq!(err.to_string(), "proxy list line 2: port 99999 out of range 1..=65535");
//! # Ok::<(), harvester_proxypool::list::ListError>(())
//! ```

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::proxy::ProxyError;
use crate::proxy::{Proxy, ProxyId, ProxyKind, ProxyMeta, quote};

/// Reads proxy lists; see the [module documentation](self) for the formats.
///
/// Not a value: the namespace of the parsing functions. Each format has a strict function,
/// which returns every proxy or an error naming every bad line, and a lenient one, which
/// returns a [`Loaded`] with the good proxies and the [`Rejected`] lines.
#[derive(Debug)]
pub enum ProxyList {}

impl ProxyList {
    /// Parses a text list, refusing it if any line is bad.
    ///
    /// ```
    /// use harvester_proxypool::list::ProxyList;
    ///
    /// let err = ProxyList::parse_text("http://h:1 colour=red\nhttp://h:2\nhttp://h:3 kind=cloud\n").unwrap_err();
    /// let lines: Vec<usize> = err.rejected().iter().map(|r| r.location.number()).collect();
    /// assert_eq!(lines, [1, 3]);
    /// ```
    pub fn parse_text(input: &str) -> Result<Vec<Proxy>, ListError> {
        Self::parse_text_lenient(input).into_strict()
    }

    /// Parses a text list, keeping the good lines and returning the bad ones. Never fails.
    ///
    /// ```
    /// use harvester_proxypool::list::ProxyList;
    ///
    /// let loaded = ProxyList::parse_text_lenient("http://10.0.0.1:8080\nhttp://10.0.0.2:99999\n");
    /// assert_eq!(loaded.proxies.len(), 1);
    /// assert_eq!(loaded.rejected[0].to_string(), "proxy list line 2: port 99999 out of range 1..=65535");
    /// ```
    pub fn parse_text_lenient(input: &str) -> Loaded {
        parse_text(input)
    }

    /// Parses a JSON list, refusing it if it does not parse or any entry is bad.
    ///
    /// ```
    /// use harvester_proxypool::list::ProxyList;
    ///
    /// let json = r#"[{"url": "http://10.0.0.1:8080", "region": "us", "tags": ["fast"], "weight": 2}]"#;
    /// let proxies = ProxyList::parse_json(json)?;
    /// assert_eq!(proxies[0].meta().region.as_deref(), Some("us"));
    /// # Ok::<(), harvester_proxypool::list::ListError>(())
    /// ```
    pub fn parse_json(input: &str) -> Result<Vec<Proxy>, ListError> {
        Self::parse_json_lenient(input)?.into_strict()
    }

    /// Parses a JSON list, keeping the good entries and returning the bad ones. Fails only
    /// when the document is not JSON or not a list of entries.
    ///
    /// ```
    /// use harvester_proxypool::list::ProxyList;
    ///
    /// let json = r#"{"proxies": [{"url": "http://10.0.0.1:8080"}, {"url": "http://10.0.0.2:8080", "weight": 0}]}"#;
    /// let loaded = ProxyList::parse_json_lenient(json)?;
    /// assert_eq!(loaded.proxies.len(), 1);
    /// assert_eq!(loaded.rejected[0].to_string(), "proxy list entry 2: weight must be at least 1");
    /// # Ok::<(), harvester_proxypool::list::ListError>(())
    /// ```
    pub fn parse_json_lenient(input: &str) -> Result<Loaded, ListError> {
        parse_json(input)
    }

    /// Parses a TOML list of `[[proxy]]` tables, refusing it if it does not parse or any entry
    /// is bad.
    ///
    /// ```
    /// use harvester_proxypool::ProxyKind;
    /// use harvester_proxypool::list::ProxyList;
    ///
    /// let toml = r#"
    /// [[proxy]]
    /// url = "socks5://10.0.0.1:1080"
    /// kind = "datacenter"
    /// cost_per_request = 0.0005
    /// "#;
    /// let proxies = ProxyList::parse_toml(toml)?;
    /// assert_eq!(proxies[0].meta().kind, Some(ProxyKind::Datacenter));
    /// # Ok::<(), harvester_proxypool::list::ListError>(())
    /// ```
    pub fn parse_toml(input: &str) -> Result<Vec<Proxy>, ListError> {
        Self::parse_toml_lenient(input)?.into_strict()
    }

    /// Parses a TOML list, keeping the good entries and returning the bad ones. Fails only
    /// when the document is not TOML or holds anything besides `[[proxy]]` tables.
    pub fn parse_toml_lenient(input: &str) -> Result<Loaded, ListError> {
        parse_toml(input)
    }

    /// Reads a list from a file, in the format its extension names ([`ListFormat::from_path`]),
    /// refusing it if anything is wrong.
    pub fn load_path(path: impl AsRef<Path>) -> Result<Vec<Proxy>, ListError> {
        Self::load_path_lenient(path)?.into_strict()
    }

    /// Reads a list from a file, keeping the good proxies and returning the bad entries.
    pub fn load_path_lenient(path: impl AsRef<Path>) -> Result<Loaded, ListError> {
        let path = path.as_ref();
        let input = std::fs::read_to_string(path).map_err(|source| ListError::Io { path: path.to_owned(), source })?;
        match ListFormat::from_path(path) {
            ListFormat::Text => Ok(parse_text(&input)),
            ListFormat::Json => parse_json(&input),
            ListFormat::Toml => parse_toml(&input),
        }
    }
}

/// The syntax of a proxy list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListFormat {
    /// One proxy per line, a URL then `key=value` metadata.
    Text,
    /// An array of objects, or `{"proxies": [...]}`.
    Json,
    /// `[[proxy]]` tables.
    Toml,
}

impl ListFormat {
    /// `.json` is JSON, `.toml` is TOML (in any letter case), anything else is text.
    ///
    /// ```
    /// use harvester_proxypool::list::ListFormat;
    ///
    /// assert_eq!(ListFormat::from_path("pool.TOML".as_ref()), ListFormat::Toml);
    /// assert_eq!(ListFormat::from_path("proxies.txt".as_ref()), ListFormat::Text);
    /// ```
    pub fn from_path(path: &Path) -> ListFormat {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => ListFormat::Json,
            Some("toml") => ListFormat::Toml,
            _ => ListFormat::Text,
        }
    }
}

impl fmt::Display for ListFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListFormat::Text => "text",
            ListFormat::Json => "JSON",
            ListFormat::Toml => "TOML",
        })
    }
}

/// What lenient parsing found: the good proxies, in list order, and the bad lines or entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The proxies that parsed, with unique ids.
    pub proxies: Vec<Proxy>,
    /// The lines or entries that did not, in list order.
    pub rejected: Vec<Rejected>,
}

impl Loaded {
    fn into_strict(self) -> Result<Vec<Proxy>, ListError> {
        if self.rejected.is_empty() { Ok(self.proxies) } else { Err(ListError::Invalid { rejected: self.rejected }) }
    }
}

/// Where in a list something is: a 1-based line of a text list, or the 1-based position of
/// an entry in a JSON array or among TOML `[[proxy]]` tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// A line of a text list.
    Line(usize),
    /// An entry of a JSON or TOML list.
    Entry(usize),
}

impl Location {
    /// The line or entry number, from 1.
    pub fn number(self) -> usize {
        match self {
            Location::Line(n) | Location::Entry(n) => n,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Entry(n) => write!(f, "entry {n}"),
        }
    }
}

/// A line or entry that did not become a proxy, and why.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("proxy list {location}: {reason}")]
pub struct Rejected {
    /// Which line or entry.
    pub location: Location,
    /// What is wrong with it.
    pub reason: RejectReason,
}

/// Why a line or entry was rejected. None of these holds the line's text.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The URL is not a proxy URL, or a metadata value is out of range (say a negative cost).
    #[error(transparent)]
    Proxy(ProxyError),
    /// A text-list token after the URL is not `key=value`.
    #[error("expected key=value metadata after the URL")]
    MalformedMetadata,
    /// A text line with an `@` in the metadata after its URL: most likely the credentials
    /// hold a space (which cut the URL short) or an `@` that is not percent-encoded, so no
    /// piece of the line is shown. Metadata values cannot hold an `@`.
    #[error(
        "'@' in the metadata after the URL: credentials with a space or an '@' must be percent-encoded (%20, %40); the line is not shown"
    )]
    SplitCredentials,
    /// A key that is not a proxy field; `***` when the key could be part of a secret.
    #[error("unknown key '{0}': expected id, region, provider, kind, tags, cost_per_request, max_sessions or weight")]
    UnknownKey(String),
    /// The same field given twice for one proxy (`cost` and `cost_per_request` are one field).
    #[error("{0} is given more than once")]
    RepeatedKey(&'static str),
    /// A value of the wrong type or not a number where one is needed.
    #[error("{key} must be {expected}")]
    InvalidValue {
        /// The field.
        key: &'static str,
        /// What it accepts.
        expected: &'static str,
    },
    /// A JSON or TOML entry without `url`.
    #[error("missing url")]
    MissingUrl,
    /// A JSON or TOML entry that is not an object or table.
    #[error("expected an object (a table in TOML) with a url and optional metadata")]
    NotAnObject,
    /// The proxy's id, given or derived, is already taken by an earlier proxy in the list.
    #[error("duplicate proxy id '{id}': already used at {first}")]
    DuplicateId {
        /// The id.
        id: ProxyId,
        /// Where the proxy that kept the id is.
        first: Location,
    },
}

/// What stands for a token that must not be shown.
const HIDDEN: &str = "***";

impl RejectReason {
    /// Replaces every quoted piece of input by `***`, for lines where any piece may be part of
    /// a password.
    fn without_quotes(self) -> RejectReason {
        let hidden = || HIDDEN.to_owned();
        match self {
            RejectReason::Proxy(e) => RejectReason::Proxy(match e {
                ProxyError::UnsupportedScheme(_) => ProxyError::UnsupportedScheme(hidden()),
                ProxyError::UnknownKind(_) => ProxyError::UnknownKind(hidden()),
                other => other,
            }),
            RejectReason::UnknownKey(_) => RejectReason::UnknownKey(hidden()),
            RejectReason::DuplicateId { first, .. } => RejectReason::DuplicateId { id: ProxyId::from(HIDDEN), first },
            other => other,
        }
    }
}

/// Why a proxy list could not be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ListError {
    /// The file could not be read.
    #[error("cannot read proxy list {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The JSON or TOML does not parse, so no entry could be read.
    #[error("proxy list is not valid {format} at line {line}, column {column}: {message}")]
    Syntax {
        /// JSON or TOML.
        format: ListFormat,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The document parses but is not a list of proxies.
    #[error("{format} proxy list must be {expected}")]
    Shape {
        /// JSON or TOML.
        format: ListFormat,
        /// What the top level must look like.
        expected: &'static str,
    },
    /// Some lines or entries are bad; all of them are here, in list order.
    #[error("{}", Summary(rejected))]
    Invalid {
        /// Every bad line or entry.
        rejected: Vec<Rejected>,
    },
}

impl ListError {
    /// The bad lines or entries, if that is what is wrong; empty otherwise.
    pub fn rejected(&self) -> &[Rejected] {
        match self {
            ListError::Invalid { rejected } => rejected,
            _ => &[],
        }
    }
}

/// One bad line reads like a single error; many are listed, up to a screenful.
struct Summary<'a>(&'a [Rejected]);

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        if let [only] = self.0 {
            return write!(f, "{only}");
        }
        let noun = match self.0.first().map(|r| r.location) {
            Some(Location::Entry(_)) => "entries",
            _ => "lines",
        };
        write!(f, "proxy list has {} bad {noun}:", self.0.len())?;
        for rejected in self.0.iter().take(SHOWN) {
            write!(f, "\n  {}: {}", rejected.location, rejected.reason)?;
        }
        if self.0.len() > SHOWN {
            write!(f, "\n  … and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

fn parse_text(input: &str) -> Loaded {
    let mut list = Collector::default();
    for (index, line) in without_bom(input).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let location = Location::Line(index + 1);
        if let Err(reason) = parse_line(line).and_then(|proxy| list.admit(location, proxy)) {
            let reason = if credentials_may_be_split(line) { reason.without_quotes() } else { reason };
            list.reject(location, reason);
        }
    }
    list.loaded
}

/// `line` is trimmed, not blank and not a comment.
fn parse_line(line: &str) -> Result<Proxy, RejectReason> {
    let mut tokens = line.split_whitespace().take_while(|token| !token.starts_with('#'));
    let url = tokens.next().unwrap_or_default();
    let metadata: Vec<&str> = tokens.collect();
    // Refused rather than read as a proxy whose host is the user name, or as metadata whose
    // keys are pieces of a password (`http://user:p@ss wo=rd@host`).
    if metadata.iter().any(|token| token.contains('@')) {
        return Err(RejectReason::SplitCredentials);
    }
    let mut draft = Draft::default();
    draft.set("url", Value::Text(url))?;
    for token in metadata {
        let (key, value) =
            token.split_once('=').filter(|(key, _)| !key.is_empty()).ok_or(RejectReason::MalformedMetadata)?;
        draft.set(key, Value::Text(value))?;
    }
    draft.build()
}

/// A line with an `@` after its first white space (even in a comment) probably holds
/// credentials cut at a space (`http://user:pa ss@host`, `http://user:p@ss wo=rd@host`), so
/// any piece of the line may be part of a password.
fn credentials_may_be_split(line: &str) -> bool {
    let url_end = line.find(char::is_whitespace).unwrap_or(line.len());
    line[url_end..].contains('@')
}

fn parse_json(input: &str) -> Result<Loaded, ListError> {
    const EXPECTED: &str = r#"an array of proxy objects, or an object whose only key is "proxies" holding one"#;
    let document: serde_json::Value = serde_json::from_str(without_bom(input)).map_err(json_syntax_error)?;
    let entries = match &document {
        serde_json::Value::Array(entries) => entries,
        serde_json::Value::Object(top) if top.len() == 1 => match top.get("proxies") {
            Some(serde_json::Value::Array(entries)) => entries,
            _ => return Err(ListError::Shape { format: ListFormat::Json, expected: EXPECTED }),
        },
        _ => return Err(ListError::Shape { format: ListFormat::Json, expected: EXPECTED }),
    };
    Ok(collect_entries(entries.iter().map(|entry| match entry {
        serde_json::Value::Object(fields) => {
            Draft::from_fields(fields.iter().map(|(key, value)| (key.as_str(), Value::Json(value))))
        }
        _ => Err(RejectReason::NotAnObject),
    })))
}

fn parse_toml(input: &str) -> Result<Loaded, ListError> {
    let shape_error = || ListError::Shape { format: ListFormat::Toml, expected: "[[proxy]] tables and nothing else" };
    let input = without_bom(input);
    let document: toml::Table = toml::from_str(input).map_err(|e| toml_syntax_error(input, &e))?;
    let mut entries: &[toml::Value] = &[];
    for (key, value) in &document {
        match (key.as_str(), value) {
            ("proxy", toml::Value::Array(array)) => entries = array,
            _ => return Err(shape_error()),
        }
    }
    Ok(collect_entries(entries.iter().map(|entry| match entry {
        toml::Value::Table(fields) => {
            Draft::from_fields(fields.iter().map(|(key, value)| (key.as_str(), Value::Toml(value))))
        }
        _ => Err(RejectReason::NotAnObject),
    })))
}

/// Numbers JSON or TOML entries, each already built into a proxy or refused, and checks ids.
fn collect_entries(entries: impl Iterator<Item = Result<Proxy, RejectReason>>) -> Loaded {
    let mut list = Collector::default();
    for (index, proxy) in entries.enumerate() {
        let location = Location::Entry(index + 1);
        if let Err(reason) = proxy.and_then(|proxy| list.admit(location, proxy)) {
            list.reject(location, reason);
        }
    }
    list.loaded
}

fn without_bom(input: &str) -> &str {
    input.strip_prefix('\u{feff}').unwrap_or(input)
}

fn json_syntax_error(error: serde_json::Error) -> ListError {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let message = full.strip_suffix(&format!(" at line {line} column {column}")).unwrap_or(&full);
    ListError::Syntax { format: ListFormat::Json, line, column, message: parser_message(message) }
}

/// `toml::de::Error`'s `Display` quotes the offending source line, so only its message and
/// position are used.
fn toml_syntax_error(input: &str, error: &toml::de::Error) -> ListError {
    let mut offset = error.span().map_or(0, |span| span.start).min(input.len());
    while !input.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &input[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |text| text.chars().count()) + 1;
    ListError::Syntax { format: ListFormat::Toml, line, column, message: parser_message(error.message()) }
}

/// Syntax messages say what the parser expected, not what it found; in case one ever quotes
/// the input, anything URL-like or long is dropped.
fn parser_message(message: &str) -> String {
    let message = message.trim();
    if message.contains('@') || message.contains("://") || message.chars().count() > 200 {
        "syntax error".to_owned()
    } else {
        message.to_owned()
    }
}

/// The proxies accepted so far, the lines rejected, and where each id was first used.
#[derive(Default)]
struct Collector {
    loaded: Loaded,
    first_seen: HashMap<ProxyId, Location>,
}

impl Collector {
    /// Keeps the proxy unless an earlier one has its id.
    fn admit(&mut self, location: Location, proxy: Proxy) -> Result<(), RejectReason> {
        match self.first_seen.entry(proxy.id().clone()) {
            MapEntry::Occupied(first) => Err(RejectReason::DuplicateId { id: proxy.id().clone(), first: *first.get() }),
            MapEntry::Vacant(slot) => {
                slot.insert(location);
                self.loaded.proxies.push(proxy);
                Ok(())
            }
        }
    }

    fn reject(&mut self, location: Location, reason: RejectReason) {
        self.loaded.rejected.push(Rejected { location, reason });
    }
}

/// A proxy's fields as they are read, before the proxy is built.
#[derive(Default)]
struct Draft<'a> {
    url: Option<&'a str>,
    meta: ProxyMeta,
    seen: u16,
}

impl<'a> Draft<'a> {
    fn from_fields(fields: impl Iterator<Item = (&'a str, Value<'a>)>) -> Result<Proxy, RejectReason> {
        let mut draft = Draft::default();
        for (key, value) in fields {
            draft.set(key, value)?;
        }
        draft.build()
    }

    fn set(&mut self, key: &str, value: Value<'a>) -> Result<(), RejectReason> {
        let field = Field::named(key).ok_or_else(|| RejectReason::UnknownKey(quote(key)))?;
        if self.seen & field.bit() != 0 {
            return Err(RejectReason::RepeatedKey(field.name()));
        }
        self.seen |= field.bit();
        if value.is_null() {
            return Ok(());
        }
        let meta = &mut self.meta;
        match field {
            Field::Url => self.url = Some(value.string(field)?),
            Field::Id => meta.id = Some(value.string(field)?.to_owned()),
            Field::Region => meta.region = Some(value.string(field)?.to_owned()),
            Field::Provider => meta.provider = Some(value.string(field)?.to_owned()),
            Field::Kind => meta.kind = Some(parse_kind(value.string(field)?)?),
            Field::Tags => meta.tags = value.strings(field)?.into_iter().map(str::to_owned).collect(),
            Field::Cost => meta.cost_per_request = value.number(field)?,
            Field::MaxSessions => meta.max_sessions = Some(value.count(field)?),
            Field::Weight => meta.weight = value.count(field)?,
        }
        Ok(())
    }

    fn build(self) -> Result<Proxy, RejectReason> {
        let url = self.url.ok_or(RejectReason::MissingUrl)?;
        Proxy::with_meta(url, self.meta).map_err(RejectReason::Proxy)
    }
}

fn parse_kind(value: &str) -> Result<ProxyKind, RejectReason> {
    value.parse().map_err(|_| RejectReason::Proxy(ProxyError::UnknownKind(quote(value))))
}

/// The fields of a list entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Url,
    Id,
    Region,
    Provider,
    Kind,
    Tags,
    Cost,
    MaxSessions,
    Weight,
}

impl Field {
    fn named(key: &str) -> Option<Field> {
        Some(match key {
            "url" => Field::Url,
            "id" => Field::Id,
            "region" => Field::Region,
            "provider" => Field::Provider,
            "kind" => Field::Kind,
            "tags" => Field::Tags,
            "cost" | "cost_per_request" => Field::Cost,
            "max_sessions" => Field::MaxSessions,
            "weight" => Field::Weight,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Field::Url => "url",
            Field::Id => "id",
            Field::Region => "region",
            Field::Provider => "provider",
            Field::Kind => "kind",
            Field::Tags => "tags",
            Field::Cost => "cost_per_request",
            Field::MaxSessions => "max_sessions",
            Field::Weight => "weight",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The error for a value of the wrong type, which says what is accepted and never quotes
    /// the value: it could be a URL with credentials in the wrong field.
    fn invalid(self) -> RejectReason {
        let expected = match self {
            Field::Url => "a proxy URL string",
            Field::Id | Field::Region | Field::Provider => "a string",
            Field::Kind => "one of residential, datacenter or mobile",
            Field::Tags => "a list of strings (comma-separated in a text list)",
            Field::Cost => "a number",
            Field::MaxSessions | Field::Weight => "a whole number from 1 to 4294967295",
        };
        RejectReason::InvalidValue { key: self.name(), expected }
    }
}

/// A field's value as written in one of the formats.
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Json(&'a serde_json::Value),
    Toml(&'a toml::Value),
}

impl<'a> Value<'a> {
    /// JSON `null` is the same as leaving the field out.
    fn is_null(self) -> bool {
        matches!(self, Value::Json(serde_json::Value::Null))
    }

    fn string(self, field: Field) -> Result<&'a str, RejectReason> {
        match self {
            Value::Text(text) => Some(text),
            Value::Json(value) => value.as_str(),
            Value::Toml(value) => value.as_str(),
        }
        .ok_or_else(|| field.invalid())
    }

    fn strings(self, field: Field) -> Result<Vec<&'a str>, RejectReason> {
        match self {
            Value::Text(text) => Some(text.split(',').collect()),
            Value::Json(value) => value.as_array().and_then(|items| items.iter().map(|item| item.as_str()).collect()),
            Value::Toml(value) => value.as_array().and_then(|items| items.iter().map(|item| item.as_str()).collect()),
        }
        .ok_or_else(|| field.invalid())
    }

    fn number(self, field: Field) -> Result<f64, RejectReason> {
        match self {
            Value::Text(text) => text.parse().ok(),
            Value::Json(value) => value.as_f64(),
            Value::Toml(value) => value.as_float().or_else(|| value.as_integer().map(|n| n as f64)),
        }
        .ok_or_else(|| field.invalid())
    }

    fn count(self, field: Field) -> Result<u32, RejectReason> {
        match self {
            Value::Text(text) => text.parse().ok(),
            Value::Json(value) => value.as_u64().and_then(|n| u32::try_from(n).ok()),
            Value::Toml(value) => value.as_integer().and_then(|n| u32::try_from(n).ok()),
        }
        .ok_or_else(|| field.invalid())
    }
}
