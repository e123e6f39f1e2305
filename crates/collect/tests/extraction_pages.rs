//! Extraction and ban detection on saved pages of the shapes real sites serve (written for
//! these tests, under `tests/pages/`): each field exactly, and where it was read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use harvester_collect::extraction::interstitial::ban_reason;
use harvester_collect::extraction::{Extracted, Extractor, PageClassifier, Rules, RulesError, Source};
use harvester_proxypool::client::{Classifier, DefaultClassifier, Verdict};
use http::{HeaderMap, StatusCode};

fn page(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pages").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn extract(name: &str) -> Extracted {
    Extractor::default().extract("shop.example", &page(name))
}

fn value<T: Clone>(found: &Option<harvester_collect::extraction::Found<T>>) -> Option<(T, Source)> {
    found.as_ref().map(|f| (f.value.clone(), f.source))
}

fn rules(text: &str) -> Result<Rules, RulesError> {
    Rules::parse(Path::new("rules.toml"), text)
}

const PLAIN_RULES: &str = r#"
[hosts."bric-a-brac.example"]
name = ".item .item-title"
price = { selector = ".item-cost", attribute = "data-amount" }
currency = ".item-cur"
description = ".item-text"
"#;

#[test]
fn json_ld_in_a_graph_gives_every_field_from_the_product_and_its_aggregate_offer() {
    let product = extract("json_ld_graph.html");

    assert_eq!(value(&product.name), Some(("Walnut Desk Lamp".to_owned(), Source::JsonLd)));
    assert_eq!(value(&product.price), Some((89.5, Source::JsonLd)));
    assert_eq!(value(&product.currency), Some(("GBP".to_owned(), Source::JsonLd)));
    assert_eq!(
        value(&product.description),
        Some(("A warm desk lamp turned from solid walnut.".to_owned(), Source::JsonLd))
    );
    assert_eq!(value(&product.availability), Some(("InStock".to_owned(), Source::JsonLd)));
    assert_eq!(product.title.as_deref(), Some("Walnut Desk Lamp – Lumen & Co."));
    assert!(product.has_product);
    assert_eq!(product.not_found, None);
}

#[test]
fn microdata_reads_the_products_own_properties_not_those_of_its_brand_or_reviews() {
    let product = extract("microdata.html");

    assert_eq!(value(&product.name), Some(("Kaffeemühle Classic".to_owned(), Source::Microdata)));
    assert_eq!(value(&product.price), Some((1299.0, Source::Microdata)));
    assert_eq!(value(&product.currency), Some(("EUR".to_owned(), Source::Microdata)));
    assert_eq!(value(&product.description), Some(("Handmühle mit Keramikmahlwerk.".to_owned(), Source::Microdata)));
    assert_eq!(value(&product.availability), Some(("OutOfStock".to_owned(), Source::Microdata)));
    assert!(product.has_product);
}

#[test]
fn opengraph_and_product_meta_tags_are_read_when_there_is_no_schema_org() {
    let product = extract("opengraph.html");

    assert_eq!(value(&product.name), Some(("Linen Throw Pillow".to_owned(), Source::Meta)));
    assert_eq!(value(&product.price), Some((34.0, Source::Meta)));
    assert_eq!(value(&product.currency), Some(("USD".to_owned(), Source::Meta)));
    assert_eq!(value(&product.description), Some(("Stonewashed linen, 50 x 50 cm.".to_owned(), Source::Meta)));
    assert_eq!(value(&product.availability), None);
    assert!(product.has_product);
}

#[test]
fn plain_markup_yields_only_its_title_by_default() {
    let product = Extractor::default().extract("bric-a-brac.example", &page("plain_markup.html"));

    assert_eq!(value(&product.name), Some(("Item 88213".to_owned(), Source::Title)));
    assert_eq!(value(&product.price), None, "24.95 shows no currency: not taken for a price");
    assert_eq!(value(&product.description), None);
    assert!(!product.has_product);
    assert_eq!(product.not_found, None, "nothing says not found");
}

#[test]
fn plain_markup_is_read_field_by_field_with_the_hosts_rule() {
    let extractor = Extractor::new(Arc::new(rules(PLAIN_RULES).expect("valid rules")));

    let product = extractor.extract("bric-a-brac.example", &page("plain_markup.html"));

    assert_eq!(value(&product.name), Some(("Brass Candle Holder".to_owned(), Source::Rule)));
    assert_eq!(value(&product.price), Some((24.95, Source::Rule)));
    assert_eq!(value(&product.currency), Some(("CAD".to_owned(), Source::Rule)));
    assert_eq!(value(&product.description), Some(("Polished brass, set of two.".to_owned(), Source::Rule)));
    assert!(product.has_product);
}

#[test]
fn a_hosts_rule_applies_to_that_host_only() {
    let extractor = Extractor::new(Arc::new(rules(PLAIN_RULES).expect("valid rules")));

    let other = extractor.extract("other.example", &page("plain_markup.html"));

    assert_eq!(value(&other.name), Some(("Item 88213".to_owned(), Source::Title)));
}

#[test]
fn a_rule_field_that_matches_nothing_falls_back_to_the_default_sources() {
    let extractor = Extractor::new(Arc::new(
        rules("[hosts.\"shop.example\"]\nname = \"div.nowhere\"\nprice = \"span.nowhere\"").expect("valid rules"),
    ));

    let product = extractor.extract("shop.example", &page("json_ld_graph.html"));

    assert_eq!(value(&product.name), Some(("Walnut Desk Lamp".to_owned(), Source::JsonLd)));
    assert_eq!(value(&product.price), Some((89.5, Source::JsonLd)));
}

#[test]
fn a_not_found_page_without_a_product_is_a_soft_404_even_with_prices_in_its_text() {
    let product = extract("soft_404.html");

    let reason = product.not_found.expect("a soft 404");
    assert!(reason.contains("\"Page not found | Casa\""), "{reason}");
    assert!(!product.has_product);
}

#[test]
fn a_product_page_is_never_a_soft_404_by_its_words() {
    let html = page("json_ld_graph.html").replace("<title>Walnut", "<title>Not found? Walnut");

    assert_eq!(Extractor::default().extract("shop.example", &html).not_found, None);
}

#[test]
fn a_hosts_not_found_marker_makes_a_soft_404() {
    let extractor =
        Extractor::new(Arc::new(rules("[hosts.\"shop.example\"]\nnot_found = [\"div#root\"]").expect("valid rules")));

    let product = extractor.extract("shop.example", &page("json_ld_graph.html"));

    assert_eq!(product.not_found.as_deref(), Some("the host's marker \"div#root\" matched"));
}

#[test]
fn a_product_page_that_mentions_captcha_is_a_product_not_a_ban() {
    let html = page("mentions_captcha.html");

    assert_eq!(ban_reason(&Rules::none(), "shop.example", &html), None);
    let product = extract("mentions_captcha.html");
    assert_eq!(value(&product.name), Some(("Captcha Solver Keyboard".to_owned(), Source::JsonLd)));
    assert_eq!(value(&product.price), Some((59.0, Source::JsonLd)));
    assert_eq!(value(&product.currency), Some(("USD".to_owned(), Source::JsonLd)));
}

#[test]
fn a_recaptcha_interstitial_is_a_ban() {
    let reason = ban_reason(&Rules::none(), "shop.example", &page("captcha_recaptcha.html"));

    assert_eq!(reason.as_deref(), Some("the page holds a captcha and no product"));
}

#[test]
fn a_cloudflare_challenge_is_a_ban_by_its_title() {
    let reason = ban_reason(&Rules::none(), "shop.example", &page("cloudflare_challenge.html"));

    assert_eq!(reason.as_deref(), Some("the title \"Just a moment...\" is a bot wall's"));
}

#[test]
fn a_challenge_form_is_a_ban_whatever_the_title() {
    let html = page("cloudflare_challenge.html").replace("Just a moment...", "shop.example.com");

    let reason = ban_reason(&Rules::none(), "shop.example", &html);

    assert_eq!(reason.as_deref(), Some("the page holds a bot challenge"));
}

#[test]
fn the_testbeds_captcha_page_is_a_ban() {
    assert!(ban_reason(&Rules::none(), "127.0.0.1", harvester_testbed::CAPTCHA_PAGE).is_some());
}

#[test]
fn none_of_the_product_pages_is_a_ban() {
    for name in ["json_ld_graph.html", "microdata.html", "opengraph.html", "plain_markup.html", "soft_404.html"] {
        assert_eq!(ban_reason(&Rules::none(), "shop.example", &page(name)), None, "{name}");
    }
}

#[test]
fn a_hosts_ban_markers_make_a_ban_on_that_host_only() {
    let rules = rules("[hosts.\"shop.example\"]\nban = [\"div.wrapper > form\"]\nban_titles = [\"walnut desk\"]")
        .expect("valid rules");

    assert_eq!(
        ban_reason(
            &rules,
            "shop.example",
            &page("mentions_captcha.html").replace("<h1>", "<div class=wrapper><form></form></div><h1>")
        )
        .as_deref(),
        Some("the host's marker \"div.wrapper > form\" matched")
    );
    assert_eq!(
        ban_reason(&rules, "shop.example", &page("json_ld_graph.html")).as_deref(),
        Some("the title contains the host's marker \"walnut desk\"")
    );
    assert_eq!(ban_reason(&rules, "other.example", &page("json_ld_graph.html")), None);
}

#[test]
fn the_page_classifier_judges_statuses_as_the_default_and_pages_by_their_structure() {
    let rules = Arc::new(rules("[hosts.\"shop.example\"]\nban_titles = [\"walnut desk\"]").expect("valid rules"));
    let classifier = PageClassifier::new(DefaultClassifier::new(), rules);
    let judge = |host: &str, status: u16, name: &str| {
        let status = StatusCode::from_u16(status).expect("a status");
        classifier.classify_response_for_host(host, status, &HeaderMap::new(), page(name).as_bytes())
    };
    let ban = Verdict::Ban { retry_after: None };

    assert_eq!(judge("shop.example", 200, "captcha_recaptcha.html"), ban);
    assert_eq!(judge("shop.example", 200, "cloudflare_challenge.html"), ban);
    assert_eq!(judge("shop.example", 200, "mentions_captcha.html"), Verdict::Success);
    assert_eq!(judge("shop.example", 200, "soft_404.html"), Verdict::Success, "a soft 404 is no ban");
    assert_eq!(judge("shop.example", 200, "json_ld_graph.html"), ban, "the host's marker");
    assert_eq!(judge("other.example", 200, "json_ld_graph.html"), Verdict::Success);
    assert_eq!(judge("shop.example", 403, "opengraph.html"), ban);
    assert_eq!(judge("shop.example", 404, "cloudflare_challenge.html"), Verdict::TargetError);
}

#[test]
fn no_input_makes_the_extractor_panic() {
    let extractor = Extractor::new(Arc::new(rules(PLAIN_RULES).expect("valid rules")));
    let odd = [
        "",
        "<",
        "<script type=\"application/ld+json\">{\"@type\": \"Product\", \"offers\": [1, null, {\"price\": {}}]}</script>",
        "<script type=\"application/ld+json\">[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]</script>",
        "<div itemscope itemtype=\"http://schema.org/Product\"><span itemprop=\"price\"></span></div>",
        "<meta property=\"product:price:amount\" content=\"NaN\"><title>\u{0}</title>",
        &"<div>".repeat(5_000),
    ];
    for html in odd {
        let _ = extractor.extract("bric-a-brac.example", html);
        let _ = ban_reason(extractor.rules(), "bric-a-brac.example", html);
    }
}

fn error_of(text: &str) -> String {
    rules(text).expect_err("refused").to_string()
}

#[test]
fn a_bad_selector_is_refused_naming_the_file_host_field_and_selector() {
    let message = error_of("[hosts.\"shop.example\"]\nname = \"h1\"\nprice = \"span..price\"");

    assert!(
        message.starts_with(
            "extraction rules rules.toml: host \"shop.example\": price: bad CSS selector \"span..price\": "
        ),
        "{message}"
    );
}

#[test]
fn a_bad_marker_selector_is_refused_too() {
    let message = error_of("[hosts.\"shop.example\"]\nban = [\"div\", \"#\"]");

    assert!(
        message.starts_with("extraction rules rules.toml: host \"shop.example\": ban: bad CSS selector \"#\": "),
        "{message}"
    );
}

#[test]
fn an_unknown_field_is_refused_with_the_known_ones() {
    let message = error_of("[hosts.\"shop.example\"]\nnmae = \"h1\"");

    assert!(
        message
            .starts_with("extraction rules rules.toml: host \"shop.example\": unknown field `nmae`, expected one of"),
        "{message}"
    );
    assert!(message.contains("`name`"), "{message}");
}

#[test]
fn an_unknown_key_of_a_field_is_refused() {
    let message = error_of("[hosts.\"shop.example\"]\nprice = { selector = \"span\", attr = \"content\" }");

    assert_eq!(
        message,
        "extraction rules rules.toml: host \"shop.example\": price: unknown key `attr`, expected `selector` or `attribute`"
    );
}

#[test]
fn an_unknown_top_level_table_is_refused() {
    let message = error_of("[host.\"shop.example\"]\nname = \"h1\"");

    assert!(message.starts_with("extraction rules rules.toml: "), "{message}");
    assert!(message.contains("unknown field `host`"), "{message}");
}

#[test]
fn an_empty_attribute_is_refused() {
    let message = error_of("[hosts.\"shop.example\"]\nprice = { selector = \"span\", attribute = \" \" }");

    assert_eq!(message, "extraction rules rules.toml: host \"shop.example\": price: the attribute is empty");
}

#[test]
fn a_missing_rule_file_is_refused_naming_it() {
    let path = PathBuf::from("/nonexistent/harvester/rules.toml");

    let message = Rules::load(&path).expect_err("refused").to_string();

    assert!(
        message.starts_with("extraction rules /nonexistent/harvester/rules.toml: cannot read the file: "),
        "{message}"
    );
}

#[test]
fn host_keys_are_compared_without_case_and_port() {
    let rules = rules("[hosts.\"Shop.Example:8443\"]\nname = \"h1\"").expect("valid rules");

    assert_eq!(rules.hosts().collect::<Vec<_>>(), ["shop.example"]);
    assert!(rules.for_host("shop.example").is_some());
}

#[test]
fn an_unsupported_pseudo_class_is_refused_saying_so() {
    let message = error_of("[hosts.\"shop.example\"]\nname = \"h1:contains(Lamp)\"");

    assert!(
        message.starts_with("extraction rules rules.toml: host \"shop.example\": name: bad CSS selector \"h1:contains(Lamp)\": not a selector this parser supports"),
        "{message}"
    );
}

#[test]
fn a_visible_price_is_read_in_the_formats_people_write() {
    let cases = [
        ("<p>Now only</p><b>$19.99</b>", 19.99, "USD"),
        ("<div>Preis:</div><span>19,99 €</span>", 19.99, "EUR"),
        ("<span class=x>EUR 1.299,00</span>", 1299.0, "EUR"),
        ("<span>CHF 1'299.50</span>", 1299.5, "CHF"),
    ];
    for (body, amount, currency) in cases {
        let html = format!("<html><head><title>Item</title></head><body><h1>Item</h1>{body}</body></html>");

        let product = Extractor::default().extract("shop.example", &html);

        assert_eq!(value(&product.price), Some((amount, Source::Text)), "{body}");
        assert_eq!(value(&product.currency), Some((currency.to_owned(), Source::PriceText)), "{body}");
        assert_eq!(value(&product.name), Some(("Item".to_owned(), Source::Heading)), "{body}");
    }
}

#[test]
fn a_number_without_a_currency_in_the_text_is_no_price() {
    let product = Extractor::default().extract("shop.example", "<body><h1>Room 101</h1><p>Sleeps 4, 2 beds</p></body>");

    assert_eq!(value(&product.price), None);
}
