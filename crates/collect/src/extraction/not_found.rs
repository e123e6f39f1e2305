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
/// or first heading says "not found" (or is a lone `404`, as in "Error 404").
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

/// Words that may stand beside a `404` in a title that says nothing else ("Error 404",
/// "404 - Page"); any other word makes the number part of a name ("Product 404").
const BESIDE_A_LONE_404: [&str; 6] = ["error", "page", "http", "status", "oops", "code"];

fn says_not_found(text: &str) -> bool {
    let lower = text.to_lowercase();
    if NOT_FOUND_PHRASES.iter().any(|phrase| lower.contains(phrase)) {
        return true;
    }
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).collect();
    words.contains(&"404") && words.iter().all(|word| *word == "404" || BESIDE_A_LONE_404.contains(word))
}

#[cfg(test)]
mod tests {
    use super::says_not_found;

    #[test]
    fn a_lone_404_says_not_found_but_a_name_with_404_in_it_does_not() {
        for title in
            ["404", "Error 404", "404 - Page", "HTTP 404", "Oops! 404", "Page not found", "Seite nicht gefunden"]
        {
            assert!(says_not_found(title), "{title:?}");
        }
        for title in ["Product 404", "Route 404 travel mug", "Model 404 lamp", "Contact us"] {
            assert!(!says_not_found(title), "{title:?}");
        }
    }
}
