//! What a reader of the page sees: its title, its first heading, a price in the text, and
//! the text itself. The least trusted sources, used when no structured data has a field.

use std::sync::LazyLock;

use harvester_pipeline::record::normalize_price;
use scraper::{ElementRef, Html, Node, Selector};

use super::{css, non_blank, text_of};

/// The visible parts of a page.
#[derive(Debug, Default, Clone)]
pub(super) struct Visible {
    pub(super) title: Option<String>,
    pub(super) heading: Option<String>,
    /// The first short text that reads as a price with a currency, as written.
    pub(super) price: Option<String>,
    /// Every visible text, cleaned, in document order.
    pub(super) content: String,
}

static TITLE: LazyLock<Selector> = LazyLock::new(|| css("head title, title"));
static HEADING: LazyLock<Selector> = LazyLock::new(|| css("h1"));
static BODY: LazyLock<Selector> = LazyLock::new(|| css("body"));

/// Texts longer than this are sentences, not a price tag.
const MAX_PRICE_TEXT: usize = 40;

pub(super) fn read(document: &Html) -> Visible {
    let title = title(document);
    let heading = document.select(&HEADING).find_map(text_of);
    let root = document.select(&BODY).next().unwrap_or_else(|| document.root_element());
    let mut texts = Vec::new();
    collect_texts(root, &mut texts);
    let price = texts
        .iter()
        .find(|text| {
            text.chars().count() <= MAX_PRICE_TEXT && normalize_price(text).is_some_and(|p| p.currency.is_some())
        })
        .cloned();
    Visible { title, heading, price, content: texts.join(" ") }
}

/// The texts under `element` a browser shows, each cleaned: not those of scripts, styles,
/// templates or `<noscript>`. Iterative, so deep markup cannot exhaust the stack.
fn collect_texts(element: ElementRef<'_>, texts: &mut Vec<String>) {
    let mut stack = vec![*element];
    while let Some(node) = stack.pop() {
        match node.value() {
            Node::Text(text) => {
                if let Some(text) = non_blank(text) {
                    texts.push(text);
                }
            }
            Node::Element(e) if matches!(e.name(), "script" | "style" | "template" | "noscript" | "head") => {}
            _ => stack.extend(node.children().rev()),
        }
    }
}

/// The page's `<title>`, cleaned.
pub(super) fn title(document: &Html) -> Option<String> {
    document.select(&TITLE).next().and_then(text_of)
}

#[cfg(test)]
pub(super) fn constant_selectors() -> Vec<&'static Selector> {
    vec![&TITLE, &HEADING, &BODY]
}
