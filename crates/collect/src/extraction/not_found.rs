//! Soft 404s: a page served with `200` that says the product is not there.

use scraper::Html;

use super::rules::HostRules;
use super::visible::Visible;

/// What the title or first heading of a "not found" page says, lower-case.
const NOT_FOUND_PHRASES: [&str; 14] = [
    "not found",
    "no longer available",
    "does not exist",
    "doesn't exist",
    "could not be found",
    "couldn't find",
    "can't find",
    "cannot find",
    "page is missing",
    "nicht gefunden",
    "introuvable",
    "no encontrad",
    "non trovat",
    "niet gevonden",
];

/// Why the page is a soft 404, if it is one: the host's not-found marker shows (whatever
/// else the page has), or the page carries no product (`has_product` false) and its title
/// or first heading says "not found" (or is a lone `404`).
pub(super) fn reason(
    document: &Html,
    rule: Option<&HostRules>,
    has_product: bool,
    visible: &Visible,
) -> Option<String> {
    if let Some(reason) = rule.and_then(|rule| rule.shows_not_found(document, visible.title.as_deref())) {
        return Some(reason);
    }
    if has_product {
        return None;
    }
    [("title", &visible.title), ("first heading", &visible.heading)].into_iter().find_map(|(place, text)| {
        let text = text.as_deref()?;
        says_not_found(text).then(|| format!("the {place} says {text:?} and the page carries no product"))
    })
}

fn says_not_found(text: &str) -> bool {
    let lower = text.to_lowercase();
    NOT_FOUND_PHRASES.iter().any(|phrase| lower.contains(phrase))
        || lower.split(|c: char| !c.is_alphanumeric()).any(|word| word == "404")
}
