//! The machine-readable descriptions a product page carries for search engines and social
//! networks: schema.org JSON-LD, schema.org microdata, OpenGraph and meta tags.

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

use super::{css, non_blank, text_of};

/// What one kind of structured data says, as text (prices as written there).
#[derive(Debug, Default)]
pub(super) struct Fields {
    pub(super) name: Option<String>,
    pub(super) price: Option<String>,
    pub(super) currency: Option<String>,
    pub(super) description: Option<String>,
    pub(super) availability: Option<String>,
    /// The source describes a product (a `Product` object or scope, product meta tags).
    pub(super) product: bool,
}

/// Each kind of structured data of a page.
#[derive(Debug, Default)]
pub(super) struct Structured {
    pub(super) json_ld: Fields,
    pub(super) microdata: Fields,
    pub(super) meta: Fields,
}

impl Structured {
    /// Whether any of them describes a product.
    pub(super) fn has_product(&self) -> bool {
        self.json_ld.product || self.microdata.product || self.meta.product
    }
}

/// Reads every kind from `document`.
pub(super) fn read(document: &Html) -> Structured {
    Structured { json_ld: json_ld(document), microdata: microdata(document), meta: meta(document) }
}

static JSON_LD: LazyLock<Selector> = LazyLock::new(|| css(r#"script[type="application/ld+json" i]"#));

/// schema.org types that are a product.
const PRODUCT_TYPES: [&str; 4] = ["Product", "ProductGroup", "ProductModel", "IndividualProduct"];

/// The first `Product` of the page's JSON-LD blocks (a block that is not JSON is passed over).
fn json_ld(document: &Html) -> Fields {
    for script in document.select(&JSON_LD) {
        let text: String = script.text().collect();
        let Ok(value) = serde_json::from_str::<Value>(text.trim()) else { continue };
        if let Some(product) = find_product(&value) {
            return product_fields(product);
        }
    }
    Fields::default()
}

/// Depth first, in document order: a `Product` itself, inside `@graph`, a list, or any other
/// object (`mainEntity` of a `WebPage`, say). serde_json bounds the depth of what it parses.
fn find_product(value: &Value) -> Option<&Value> {
    match value {
        Value::Array(items) => items.iter().find_map(find_product),
        Value::Object(object) => {
            if has_type(value, &PRODUCT_TYPES) {
                return Some(value);
            }
            object.values().find_map(find_product)
        }
        _ => None,
    }
}

/// Whether `value`'s `@type` (a string or a list) is one of `types`, spelt `Product`,
/// `schema:Product` or `https://schema.org/Product`.
fn has_type(value: &Value, types: &[&str]) -> bool {
    let matches = |t: &Value| {
        t.as_str().is_some_and(|t| {
            let short = t.rsplit(['/', ':']).next().unwrap_or(t);
            types.contains(&short)
        })
    };
    match value.get("@type") {
        Some(Value::Array(list)) => list.iter().any(matches),
        Some(t) => matches(t),
        None => false,
    }
}

fn product_fields(product: &Value) -> Fields {
    let mut fields = Fields {
        name: product.get("name").and_then(text_value),
        description: product.get("description").and_then(text_value),
        product: true,
        ..Fields::default()
    };
    let offers = product.get("offers");
    let offer_list: Vec<&Value> = match offers {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(offer @ Value::Object(_)) => vec![offer],
        _ => Vec::new(),
    };
    for offer in offer_list {
        let specification = offer.get("priceSpecification").and_then(|s| match s {
            Value::Array(list) => list.first(),
            other => Some(other),
        });
        let price = ["price", "lowPrice"]
            .iter()
            .find_map(|key| offer.get(*key).and_then(text_value))
            .or_else(|| specification.and_then(|s| s.get("price")).and_then(text_value));
        let Some(price) = price else { continue };
        fields.price = Some(price);
        fields.currency = offer
            .get("priceCurrency")
            .or_else(|| specification.and_then(|s| s.get("priceCurrency")))
            .and_then(text_value);
        fields.availability = offer.get("availability").and_then(text_value).map(|a| schema_term(&a));
        break;
    }
    fields
}

/// A string, a number, or a `{"@value": …}` as text; `None` when blank or anything else.
fn text_value(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => non_blank(text),
        Value::Number(number) => Some(number.to_string()),
        Value::Object(object) => object.get("@value").and_then(text_value),
        Value::Array(list) => list.first().and_then(text_value),
        _ => None,
    }
}

/// `https://schema.org/InStock` → `InStock`.
fn schema_term(value: &str) -> String {
    value.rsplit(['/', ':']).next().unwrap_or(value).to_owned()
}

static ITEM_SCOPES: LazyLock<Selector> = LazyLock::new(|| css("[itemscope][itemtype]"));
static ITEM_PROPS: LazyLock<Selector> = LazyLock::new(|| css("[itemprop]"));

/// The properties of the first `Product` scope and of its offers.
fn microdata(document: &Html) -> Fields {
    let is_product = |scope: &ElementRef<'_>| {
        scope.attr("itemtype").is_some_and(|types| {
            types.split_whitespace().any(|t| PRODUCT_TYPES.contains(&t.rsplit('/').next().unwrap_or(t)))
        })
    };
    let Some(product) = document.select(&ITEM_SCOPES).find(is_product) else {
        return Fields::default();
    };
    let mut fields = Fields { product: true, ..Fields::default() };
    for property in product.select(&ITEM_PROPS) {
        let Some(owner) = owning_scope(property) else { continue };
        let of_product = owner.id() == product.id();
        let of_offer = !of_product
            && owner.attr("itemprop").is_some_and(|p| has_token(p, "offers"))
            && owning_scope(owner).is_some_and(|o| o.id() == product.id());
        let names = property.attr("itemprop").unwrap_or_default();
        for name in names.split_whitespace() {
            let slot = match name {
                "name" if of_product => &mut fields.name,
                "description" if of_product => &mut fields.description,
                "price" | "lowPrice" if of_product || of_offer => &mut fields.price,
                "priceCurrency" if of_product || of_offer => &mut fields.currency,
                "availability" if of_product || of_offer => &mut fields.availability,
                _ => continue,
            };
            if slot.is_none() {
                *slot = property_value(property);
            }
        }
    }
    fields.availability = fields.availability.map(|a| schema_term(&a));
    fields
}

/// The nearest ancestor with `itemscope`: the item `property` belongs to.
fn owning_scope(property: ElementRef<'_>) -> Option<ElementRef<'_>> {
    property.ancestors().filter_map(ElementRef::wrap).find(|e| e.attr("itemscope").is_some())
}

fn has_token(list: &str, token: &str) -> bool {
    list.split_whitespace().any(|t| t == token)
}

/// A microdata property's value: `content` (a `<meta>`, or a visible element that also
/// states it for machines), `href` of a link, `value` of `<data>`, else the text.
fn property_value(property: ElementRef<'_>) -> Option<String> {
    let element = property.value();
    if let Some(content) = element.attr("content") {
        return non_blank(content);
    }
    match element.name() {
        "link" | "a" => element.attr("href").and_then(non_blank),
        "data" | "meter" => element.attr("value").and_then(non_blank),
        _ => text_of(property),
    }
}

static META: LazyLock<Selector> = LazyLock::new(|| css("meta[content]"));

/// OpenGraph and product meta tags, and the `description` meta tag.
fn meta(document: &Html) -> Fields {
    let mut fields = Fields::default();
    let mut og_description = None;
    let mut plain_description = None;
    for tag in document.select(&META) {
        let key = tag.attr("property").or_else(|| tag.attr("name")).unwrap_or_default().to_ascii_lowercase();
        let Some(content) = tag.attr("content").and_then(non_blank) else { continue };
        let slot = match key.as_str() {
            "og:title" => &mut fields.name,
            "og:description" => &mut og_description,
            "description" => &mut plain_description,
            "product:price:amount" | "og:price:amount" => &mut fields.price,
            "product:price:currency" | "og:price:currency" => &mut fields.currency,
            "og:type" => {
                fields.product |= content.eq_ignore_ascii_case("product") || content.eq_ignore_ascii_case("og:product");
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(content);
        }
    }
    fields.product |= fields.price.is_some();
    fields.description = og_description.or(plain_description);
    fields
}

#[cfg(test)]
pub(super) fn constant_selectors() -> Vec<&'static Selector> {
    vec![&JSON_LD, &ITEM_SCOPES, &ITEM_PROPS, &META]
}
