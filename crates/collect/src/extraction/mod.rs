//! Reading a product out of a real page, and telling a real page from a ban page or a
//! "not found" page that came back with `200`.
//!
//! Every page is parsed once by an HTML5 parser (`scraper`, on html5ever) and read with CSS
//! selectors, never by searching the markup as text. The [`Extractor`] reads each field from
//! the most trustworthy place the page has it, and says where ([`Source`]):
//!
//! 1. a per-host rule of the `--extract-rules` file ([`Rules`]), when one names the field
//!    and its selector matches;
//! 2. schema.org JSON-LD: `<script type="application/ld+json">` holding a `Product` (also
//!    inside `@graph` or a list), its `offers` (`Offer` or `AggregateOffer`: `price`, else
//!    `lowPrice`, `priceCurrency`, `availability`);
//! 3. schema.org microdata: the `itemprop`s of an `itemscope` of type `Product` and of its
//!    offers;
//! 4. OpenGraph and meta tags: `og:title`, `og:description`, `product:price:amount` /
//!    `og:price:amount`, `product:price:currency` / `og:price:currency`, and the
//!    `description` meta tag;
//! 5. what is visible: the first `<h1>` for the name, then the `<title>`, and the first short
//!    text that reads as a price with a currency (`$19.99`, `19,99 €`, `EUR 1.299,00`).
//!
//! A page that is a ban or captcha interstitial is found by [`PageClassifier`], the client's
//! classifier, before extraction (see [`interstitial`]); a page that says "not found" and
//! carries no product is a soft 404 ([`Extracted::not_found`]).
//!
//! ```
//! use harvester_collect::extraction::{Extractor, Source};
//!
//! let page = r#"<html><head><title>Mug | Shop</title>
//!   <script type="application/ld+json">
//!     {"@context": "https://schema.org", "@type": "Product", "name": "Blue mug",
//!      "offers": {"@type": "Offer", "price": "12.50", "priceCurrency": "EUR"}}
//!   </script></head><body><h1>Blue mug</h1></body></html>"#;
//! let product = Extractor::default().extract("shop.example", page);
//! let price = product.price.expect("a price");
//! assert_eq!((price.value, price.source), (12.5, Source::JsonLd));
//! assert_eq!(product.currency.map(|c| c.value).as_deref(), Some("EUR"));
//! assert_eq!(product.name.map(|n| n.value).as_deref(), Some("Blue mug"));
//! ```

pub mod interstitial;
mod not_found;
pub mod rules;
mod structured;
mod visible;

use std::sync::Arc;

use harvester_pipeline::record::{clean_str, normalize_price};
use scraper::{ElementRef, Html, Selector};
use serde::Serialize;

pub use interstitial::PageClassifier;
pub use rules::{FieldRule, HostRules, Rules, RulesError};

/// Where a field's value was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Source {
    /// A selector of the host's rule in the `--extract-rules` file.
    #[serde(rename = "rule")]
    Rule,
    /// schema.org JSON-LD.
    #[serde(rename = "json-ld")]
    JsonLd,
    /// schema.org microdata (`itemprop`).
    #[serde(rename = "microdata")]
    Microdata,
    /// OpenGraph or another `<meta>` tag.
    #[serde(rename = "meta")]
    Meta,
    /// The first `<h1>`.
    #[serde(rename = "h1")]
    Heading,
    /// The `<title>`.
    #[serde(rename = "title")]
    Title,
    /// A visible text that reads as a price.
    #[serde(rename = "text")]
    Text,
    /// The currency the price's own text shows (`$`, `€`, `EUR`).
    #[serde(rename = "price-text")]
    PriceText,
}

impl Source {
    /// The name written in the output (`json-ld`, `microdata`, `meta`, `rule`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Rule => "rule",
            Source::JsonLd => "json-ld",
            Source::Microdata => "microdata",
            Source::Meta => "meta",
            Source::Heading => "h1",
            Source::Title => "title",
            Source::Text => "text",
            Source::PriceText => "price-text",
        }
    }
}

/// A field's value and where it was read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found<T> {
    /// The value, cleaned (whitespace collapsed, trimmed).
    pub value: T,
    /// Where it was read.
    pub source: Source,
}

impl<T> Found<T> {
    fn new(value: T, source: Source) -> Self {
        Found { value, source }
    }
}

/// What a page yielded. Every field is `None` when no source had it.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Extracted {
    /// The page's `<title>`, cleaned.
    pub title: Option<String>,
    /// The product's name.
    pub name: Option<Found<String>>,
    /// The price's amount, in the currency's main unit.
    pub price: Option<Found<f64>>,
    /// The price's currency: an ISO 4217 code when the page gives or implies one.
    pub currency: Option<Found<String>>,
    /// The product's description.
    pub description: Option<Found<String>>,
    /// schema.org availability (`InStock`, `OutOfStock`, …), when structured data has it.
    pub availability: Option<Found<String>>,
    /// Whether structured data (JSON-LD, microdata, product meta tags) or a host rule
    /// describes a product on this page.
    pub has_product: bool,
    /// Why the page is a soft 404 (a "not found" page served with `200`), if it is one.
    pub not_found: Option<String>,
    /// The visible text of the page, cleaned.
    pub content: String,
}

/// Reads products out of pages: the default sources, overridden per host by [`Rules`].
/// Cheap to clone (the rules are shared).
#[derive(Debug, Clone, Default)]
pub struct Extractor {
    rules: Arc<Rules>,
}

impl Extractor {
    /// An extractor that applies `rules` to their hosts and the defaults everywhere.
    pub fn new(rules: Arc<Rules>) -> Self {
        Extractor { rules }
    }

    /// The rules it applies.
    pub fn rules(&self) -> &Arc<Rules> {
        &self.rules
    }

    /// Reads `html`, a page of `host` (lower-case, no port: the URL's host). Never panics.
    pub fn extract(&self, host: &str, html: &str) -> Extracted {
        let document = Html::parse_document(html);
        self.extract_document(host, &document)
    }

    fn extract_document(&self, host: &str, document: &Html) -> Extracted {
        let rule = self.rules.for_host(host);
        let structured = structured::read(document);
        let visible = visible::read(document);
        let by_rule = rule.map(|rule| rule.read(document)).unwrap_or_default();
        let has_product = structured.has_product() || by_rule.matched;

        let name = first([
            by_rule.name.map(|v| Found::new(v, Source::Rule)),
            structured.json_ld.name.map(|v| Found::new(v, Source::JsonLd)),
            structured.microdata.name.map(|v| Found::new(v, Source::Microdata)),
            structured.meta.name.map(|v| Found::new(v, Source::Meta)),
            visible.heading.clone().map(|v| Found::new(v, Source::Heading)),
            visible.title.clone().map(|v| Found::new(v, Source::Title)),
        ]);
        let description = first([
            by_rule.description.map(|v| Found::new(v, Source::Rule)),
            structured.json_ld.description.map(|v| Found::new(v, Source::JsonLd)),
            structured.microdata.description.map(|v| Found::new(v, Source::Microdata)),
            structured.meta.description.map(|v| Found::new(v, Source::Meta)),
        ]);
        // The price and the currency the price's own text shows, from the first source
        // that has a price.
        let priced = first([
            by_rule.price.as_deref().and_then(read_price).map(|p| (p, Source::Rule)),
            structured.json_ld.price.as_deref().and_then(read_price).map(|p| (p, Source::JsonLd)),
            structured.microdata.price.as_deref().and_then(read_price).map(|p| (p, Source::Microdata)),
            structured.meta.price.as_deref().and_then(read_price).map(|p| (p, Source::Meta)),
            visible.price.as_deref().and_then(read_price).map(|p| (p, Source::Text)),
        ]);
        let currency = first([
            by_rule.currency.map(|v| Found::new(v, Source::Rule)),
            structured.json_ld.currency.map(|v| Found::new(v, Source::JsonLd)),
            structured.microdata.currency.map(|v| Found::new(v, Source::Microdata)),
            structured.meta.currency.map(|v| Found::new(v, Source::Meta)),
            priced.as_ref().and_then(|(p, _)| p.currency.clone()).map(|v| Found::new(v, Source::PriceText)),
        ]);
        let availability = first([
            structured.json_ld.availability.map(|v| Found::new(v, Source::JsonLd)),
            structured.microdata.availability.map(|v| Found::new(v, Source::Microdata)),
        ]);
        let price = priced.map(|(p, source)| Found::new(p.amount, source));
        // A price seen in the text is no sign of a product: "not found" pages show the prices
        // of what they recommend instead.
        let not_found = not_found::reason(document, rule, has_product, &visible);
        Extracted {
            title: visible.title,
            name,
            price,
            currency,
            description,
            availability,
            has_product,
            not_found,
            content: visible.content,
        }
    }
}

/// The first value present, in order of trust.
fn first<T, const N: usize>(candidates: [Option<T>; N]) -> Option<T> {
    candidates.into_iter().flatten().next()
}

/// A price as structured data writes it (`1299.00`, `1299`: a `.` is the decimal point),
/// else as a person reads it (`1.299,00 €`, see `normalize_price`).
fn read_price(text: &str) -> Option<harvester_pipeline::record::Price> {
    let trimmed = text.trim();
    let plain = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if plain && let Ok(amount) = trimmed.parse::<f64>() {
        return (amount.is_finite() && amount >= 0.0)
            .then_some(harvester_pipeline::record::Price { amount, currency: None });
    }
    normalize_price(trimmed)
}

/// An element's text, every descendant text joined, cleaned; `None` when blank.
fn text_of(element: ElementRef<'_>) -> Option<String> {
    non_blank(&element.text().collect::<String>())
}

/// `text` cleaned; `None` when nothing is left.
fn non_blank(text: &str) -> Option<String> {
    let cleaned = clean_str(text);
    (!cleaned.is_empty()).then_some(cleaned)
}

/// A selector the code itself spells: parsed once, and a test parses every one.
fn css(selector: &'static str) -> Selector {
    // Only constants of this module reach here; `every_constant_selector_parses` checks them.
    #[allow(clippy::expect_used)]
    Selector::parse(selector).expect("a constant selector of harvester-collect parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_prices_read_the_dot_as_the_decimal_point() {
        assert_eq!(read_price("1.299").map(|p| p.amount), Some(1.299));
        assert_eq!(read_price("1299.00").map(|p| p.amount), Some(1299.0));
        assert_eq!(read_price("1.299,00 €").map(|p| (p.amount, p.currency)), Some((1299.0, Some("EUR".to_owned()))));
        assert_eq!(read_price("free"), None);
    }

    #[test]
    fn every_constant_selector_parses() {
        let all = [structured::constant_selectors(), visible::constant_selectors(), interstitial::constant_selectors()];
        assert!(all.iter().flatten().count() >= 9);
    }
}
