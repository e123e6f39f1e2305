//! Per-host extraction rules, read from the TOML file of `--extract-rules` and checked whole
//! before any work: every selector is parsed, every key known.
//!
//! ```toml
//! # One table per host (the URL's host, without port; `www.` counts).
//! [hosts."shop.example.com"]
//! name = "div.product-title"                                   # the text of the first match
//! price = { selector = "span[data-price]", attribute = "data-price" }  # or an attribute
//! currency = "span.currency"
//! description = "#details p"
//! ban = ["div#bot-wall", "form[action*='verify']"]             # a match: a ban page
//! ban_titles = ["Checking your browser"]                       # a <title> containing one
//! not_found = ["div.error-404"]                                # a match: a soft 404
//! not_found_titles = ["Seite nicht gefunden"]
//! ```
//!
//! A field a host's rule names is read by its selector; where the selector matches nothing
//! on a page, or for a field the rule does not name, the default sources apply. The ban and
//! not-found markers add to the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use scraper::{Html, Selector};
use serde::Deserialize;
use thiserror::Error;

use super::{non_blank, text_of};

/// Why a rule file was refused; each names the file, and the host, field and selector at
/// fault where there is one.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("extraction rules {path}: cannot read the file: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not TOML, or its top level is not `[hosts."…"]` tables.
    #[error("extraction rules {path}: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the TOML reader said (with the line).
        message: String,
    },
    /// A host's table has an unknown key or a value of the wrong kind.
    #[error("extraction rules {path}: host {host:?}: {message}")]
    BadHost {
        /// The file.
        path: PathBuf,
        /// The host's key, as written.
        host: String,
        /// What is wrong (an unknown field names the known ones).
        message: String,
    },
    /// A selector does not parse as CSS.
    #[error("extraction rules {path}: host {host:?}: {field}: bad CSS selector {selector:?}: {reason}")]
    BadSelector {
        /// The file.
        path: PathBuf,
        /// The host's key, as written.
        host: String,
        /// The field or marker list it is for (`price`, `ban`…).
        field: String,
        /// The selector, as written.
        selector: String,
        /// What the CSS parser said.
        reason: String,
    },
    /// An empty host, attribute or marker.
    #[error("extraction rules {path}: host {host:?}: {field}: {what} is empty")]
    Empty {
        /// The file.
        path: PathBuf,
        /// The host's key, as written.
        host: String,
        /// The field it is for.
        field: String,
        /// What is empty (`the host`, `the attribute`, `a title`).
        what: &'static str,
    },
}

/// The rules of a file: per host, lower-case and without port.
#[derive(Debug, Default)]
pub struct Rules {
    hosts: BTreeMap<String, HostRules>,
}

/// How to read one field: a selector, and the attribute to read instead of the text.
#[derive(Debug, Clone)]
pub struct FieldRule {
    selector: Selector,
    /// The selector as written.
    pub css: String,
    /// The attribute read from the first match (`content`, `data-price`), or its text when
    /// `None`.
    pub attribute: Option<String>,
}

impl FieldRule {
    /// The value of the first match that has one.
    fn read(&self, document: &Html) -> Option<String> {
        document.select(&self.selector).find_map(|element| match &self.attribute {
            Some(attribute) => element.attr(attribute).and_then(non_blank),
            None => text_of(element),
        })
    }
}

/// The rule of one host.
#[derive(Debug, Clone, Default)]
pub struct HostRules {
    /// The product's name.
    pub name: Option<FieldRule>,
    /// The price (its text, or attribute, is read as a price).
    pub price: Option<FieldRule>,
    /// The currency.
    pub currency: Option<FieldRule>,
    /// The description.
    pub description: Option<FieldRule>,
    ban: Vec<(String, Selector)>,
    ban_titles: Vec<String>,
    not_found: Vec<(String, Selector)>,
    not_found_titles: Vec<String>,
}

/// What a host's selectors found on a page.
#[derive(Debug, Default)]
pub(super) struct RuleFields {
    pub(super) name: Option<String>,
    pub(super) price: Option<String>,
    pub(super) currency: Option<String>,
    pub(super) description: Option<String>,
    /// At least one field's selector matched.
    pub(super) matched: bool,
}

impl HostRules {
    pub(super) fn read(&self, document: &Html) -> RuleFields {
        let read = |rule: &Option<FieldRule>| rule.as_ref().and_then(|rule| rule.read(document));
        let (name, price, currency, description) =
            (read(&self.name), read(&self.price), read(&self.currency), read(&self.description));
        let matched = name.is_some() || price.is_some() || currency.is_some() || description.is_some();
        RuleFields { name, price, currency, description, matched }
    }

    /// Whether the page shows one of the host's ban markers.
    pub(super) fn shows_ban(&self, document: &Html, title: Option<&str>) -> Option<String> {
        shows(document, title, &self.ban, &self.ban_titles)
    }

    /// Whether the page shows one of the host's not-found markers.
    pub(super) fn shows_not_found(&self, document: &Html, title: Option<&str>) -> Option<String> {
        shows(document, title, &self.not_found, &self.not_found_titles)
    }
}

fn shows(document: &Html, title: Option<&str>, selectors: &[(String, Selector)], titles: &[String]) -> Option<String> {
    if let Some((css, _)) = selectors.iter().find(|(_, s)| document.select(s).next().is_some()) {
        return Some(format!("the host's marker {css:?} matched"));
    }
    let title = title?.to_lowercase();
    titles.iter().find(|t| title.contains(t.as_str())).map(|t| format!("the title contains the host's marker {t:?}"))
}

impl Rules {
    /// No rules: the defaults everywhere.
    pub fn none() -> Self {
        Rules::default()
    }

    /// Reads and checks the rule file at `path`.
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RulesError::Unreadable { path: path.to_owned(), source })?;
        Rules::parse(path, &text)
    }

    /// Checks the rules in `text`, read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Rules, RulesError> {
        let malformed = |message: String| RulesError::Malformed { path: path.to_owned(), message };
        let file: RuleFile = toml::from_str(text).map_err(|e| malformed(e.to_string().trim().to_owned()))?;
        let mut hosts = BTreeMap::new();
        for (key, table) in file.hosts {
            let bad_host = |message: String| RulesError::BadHost { path: path.to_owned(), host: key.clone(), message };
            let spec: HostSpec = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| bad_host(e.message().trim().to_owned()))?;
            let host = harvester_core::host::normalize(key.trim()).into_owned();
            let checker = Checker { path, host: &key };
            if host.is_empty() {
                return Err(checker.empty("host", "the host"));
            }
            let rules = checker.host_rules(spec)?;
            if hosts.insert(host.clone(), rules).is_some() {
                return Err(bad_host(format!("{host} is named twice (host keys are compared without case and port)")));
            }
        }
        Ok(Rules { hosts })
    }

    /// The rule for `host` (lower-case, no port), if the file has one.
    pub fn for_host(&self, host: &str) -> Option<&HostRules> {
        self.hosts.get(host)
    }

    /// The hosts that have a rule.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    hosts: BTreeMap<String, toml::Table>,
}

/// One host's table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    name: Option<FieldSpec>,
    price: Option<FieldSpec>,
    currency: Option<FieldSpec>,
    description: Option<FieldSpec>,
    #[serde(default)]
    ban: Vec<String>,
    #[serde(default)]
    ban_titles: Vec<String>,
    #[serde(default)]
    not_found: Vec<String>,
    #[serde(default)]
    not_found_titles: Vec<String>,
}

/// A field: `"selector"` or `{ selector = "…", attribute = "…" }`, checked by
/// [`Checker::field`] so that a mistake inside it is named precisely.
type FieldSpec = toml::Value;

/// Checks one host's specs into rules, naming the file and host in every error.
struct Checker<'a> {
    path: &'a Path,
    host: &'a str,
}

impl Checker<'_> {
    fn host_rules(&self, spec: HostSpec) -> Result<HostRules, RulesError> {
        Ok(HostRules {
            name: self.field("name", spec.name)?,
            price: self.field("price", spec.price)?,
            currency: self.field("currency", spec.currency)?,
            description: self.field("description", spec.description)?,
            ban: self.selectors("ban", &spec.ban)?,
            ban_titles: self.titles("ban_titles", &spec.ban_titles)?,
            not_found: self.selectors("not_found", &spec.not_found)?,
            not_found_titles: self.titles("not_found_titles", &spec.not_found_titles)?,
        })
    }

    fn field(&self, field: &str, spec: Option<FieldSpec>) -> Result<Option<FieldRule>, RulesError> {
        let Some(spec) = spec else { return Ok(None) };
        let bad_host = |message: String| RulesError::BadHost {
            path: self.path.to_owned(),
            host: self.host.to_owned(),
            message: format!("{field}: {message}"),
        };
        let (css, attribute) = match spec {
            toml::Value::String(css) => (css, None),
            toml::Value::Table(mut table) => {
                let css = match table.remove("selector") {
                    Some(toml::Value::String(css)) => css,
                    Some(_) => return Err(bad_host("`selector` must be a string".to_owned())),
                    None => return Err(bad_host("missing `selector`".to_owned())),
                };
                let attribute = match table.remove("attribute") {
                    Some(toml::Value::String(attribute)) => Some(attribute),
                    Some(_) => return Err(bad_host("`attribute` must be a string".to_owned())),
                    None => None,
                };
                if let Some(unknown) = table.keys().next() {
                    return Err(bad_host(format!("unknown key `{unknown}`, expected `selector` or `attribute`")));
                }
                (css, attribute)
            }
            _ => {
                return Err(bad_host(
                    r#"expected a selector ("h1.title") or { selector = "…", attribute = "…" }"#.to_owned(),
                ));
            }
        };
        if attribute.as_deref().is_some_and(|a| a.trim().is_empty()) {
            return Err(self.empty(field, "the attribute"));
        }
        let selector = self.selector(field, &css)?;
        Ok(Some(FieldRule { selector, css, attribute: attribute.map(|a| a.trim().to_owned()) }))
    }

    fn selectors(&self, field: &str, list: &[String]) -> Result<Vec<(String, Selector)>, RulesError> {
        list.iter().map(|css| Ok((css.clone(), self.selector(field, css)?))).collect()
    }

    fn titles(&self, field: &str, list: &[String]) -> Result<Vec<String>, RulesError> {
        list.iter()
            .map(|title| {
                let title = title.trim().to_lowercase();
                if title.is_empty() { Err(self.empty(field, "a title")) } else { Ok(title) }
            })
            .collect()
    }

    fn selector(&self, field: &str, css: &str) -> Result<Selector, RulesError> {
        let bad = |reason: String| RulesError::BadSelector {
            path: self.path.to_owned(),
            host: self.host.to_owned(),
            field: field.to_owned(),
            selector: css.to_owned(),
            reason,
        };
        if css.trim().is_empty() {
            return Err(bad("the selector is empty".to_owned()));
        }
        Selector::parse(css).map_err(|e| bad(describe(&e)))
    }

    fn empty(&self, field: &str, what: &'static str) -> RulesError {
        RulesError::Empty { path: self.path.to_owned(), host: self.host.to_owned(), field: field.to_owned(), what }
    }
}

/// The CSS parser's complaint in words (its own text for the rarer kinds is a debug dump).
fn describe(error: &scraper::error::SelectorErrorKind) -> String {
    use scraper::error::SelectorErrorKind as Kind;
    match error {
        Kind::UnexpectedToken => "a token was not expected here".to_owned(),
        Kind::EndOfLine => "it ends too early (an unclosed bracket, quote or combinator?)".to_owned(),
        Kind::ExpectedColonOnPseudoElement | Kind::ExpectedIdentityOnPseudoElement => {
            "a pseudo-element is malformed".to_owned()
        }
        Kind::UnexpectedSelectorParseError(kind) => {
            format!(
                "not a selector this parser supports ({kind:?}); use plain CSS (tags, #ids, .classes, [attributes], combinators)"
            )
        }
        _ => "not a CSS selector".to_owned(),
    }
}
