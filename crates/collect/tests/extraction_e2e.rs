//! Extraction end to end: the job (`run`) against the testbed site, whose product pages take
//! turns between four markups (classes, JSON-LD, microdata, OpenGraph), through good proxies
//! and one that answers every request with a captcha page. Every product's name and price
//! must come out exactly, each from the source its markup has; the captcha pages must never
//! be recorded, and the shop's "not found" pages must be soft 404s.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harvester_collect::extraction::{Extractor, Rules};
use harvester_collect::input::Target;
use harvester_collect::run;
use harvester_collect::work::List;
use harvester_proxypool::{Proxy, ProxyMeta, ProxyPool};
use harvester_testbed::{FaultProxy, Markup, Product, TargetServer};
use serde_json::Value;

const PRODUCTS: u32 = 120;
const DISCONTINUED: usize = 4;

fn proxy(id: &str, url: &str) -> Proxy {
    let meta = ProxyMeta { id: Some(id.into()), ..ProxyMeta::default() };
    Proxy::with_meta(url, meta).expect("valid proxy URL")
}

/// Runs the job over `urls` through two good proxies and a captcha one: the output lines by
/// URL, and how many connections the captcha proxy took.
async fn collect(urls: &[String], extractor: Extractor) -> (BTreeMap<String, Value>, usize) {
    let good = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let good_2 = FaultProxy::slow(Duration::ZERO).await.expect("proxy starts");
    let captcha = FaultProxy::captcha().await.expect("captcha proxy starts");
    let pool = ProxyPool::builder().build().expect("valid");
    pool.extend([proxy("good", &good.url()), proxy("good-2", &good_2.url()), proxy("captcha", &captcha.url())])
        .expect("unique ids");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.jsonl");
    let job = common::job(
        Box::new(List::new(urls.iter().map(|url| Target::parse(url).expect("valid URL")).collect())),
        pool,
        out.clone(),
        common::settings(8, 100_000, 5, Duration::from_secs(5)),
    );
    let running = run::start_with(job, extractor).await.expect("job starts");
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    running.run(stop).await;
    let lines = std::fs::read_to_string(&out)
        .expect("output written")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("every line is JSON"))
        .map(|line| (line["url"].as_str().expect("a url").to_owned(), line))
        .collect();
    (lines, captcha.connections())
}

fn product_urls(site: &TargetServer) -> Vec<(String, Product)> {
    (0..PRODUCTS)
        .map(|n| Product::get(n).expect("in the catalogue"))
        .map(|product| (format!("{}{}", site.url(), product.path()), product))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_products_name_and_price_come_out_exactly_whatever_its_markup() {
    let site = TargetServer::start().await.expect("site starts");
    let products = product_urls(&site);
    let mut urls: Vec<String> = products.iter().map(|(url, _)| url.clone()).collect();
    urls.extend((0..DISCONTINUED).map(|n| format!("{}/discontinued/{n}", site.url())));

    let (lines, captcha_asked) = collect(&urls, Extractor::default()).await;

    assert_eq!(lines.len(), urls.len(), "one line per URL");
    assert!(captcha_asked > 0, "the captcha proxy was tried");
    let mut sources: BTreeMap<(String, &str), BTreeSet<String>> = BTreeMap::new();
    for (url, product) in &products {
        let line = &lines[url];
        assert_eq!(line["status"], "ok", "{line}");
        let data = &line["record"]["data"];
        assert_eq!(data["product_name"], product.name.as_str(), "{line}");
        assert_eq!(data["current_price"]["amount"].as_f64(), Some(product.price_cents as f64 / 100.0), "{line}");
        if product.currency != "kr" {
            assert_eq!(data["current_price"]["currency"], product.currency, "{line}");
        }
        assert_eq!(data["product_title"], format!("Product {}", product.number), "{line}");
        if matches!(product.markup(), Markup::JsonLd | Markup::Microdata | Markup::OpenGraph) {
            assert_eq!(data["product_description"], product.description.as_str(), "{line}");
        }
        let field_sources = &data["processing_metadata"]["field_sources"];
        for field in ["name", "price"] {
            let source = field_sources[field].as_str().expect("a source").to_owned();
            sources.entry((format!("{:?}", product.markup()), field)).or_default().insert(source);
        }
        assert_ne!(line["proxy"], "captcha", "a captcha page is never recorded: {line}");
    }
    let expected: BTreeMap<(String, &str), BTreeSet<String>> = [
        ("Classes", "name", "h1"),
        ("Classes", "price", "text"),
        ("JsonLd", "name", "json-ld"),
        ("JsonLd", "price", "json-ld"),
        ("Microdata", "name", "microdata"),
        ("Microdata", "price", "microdata"),
        ("OpenGraph", "name", "meta"),
        ("OpenGraph", "price", "meta"),
    ]
    .into_iter()
    .map(|(markup, field, source)| ((markup.to_owned(), field), BTreeSet::from([source.to_owned()])))
    .collect();
    assert_eq!(sources, expected, "each markup is read from its own source");

    for n in 0..DISCONTINUED {
        let line = &lines[&format!("{}/discontinued/{n}", site.url())];
        assert_eq!(line["status"], "failed", "{line}");
        assert_eq!(line["http_status"], 200, "{line}");
        let error = line["error"].as_str().expect("an error");
        assert!(error.starts_with("soft 404: the title says \"Product not found\""), "{line}");
        assert!(line.get("record").is_none(), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hosts_rule_reads_the_classes_markup_and_the_other_markups_keep_their_sources() {
    let site = TargetServer::start().await.expect("site starts");
    let products: Vec<(String, Product)> = product_urls(&site).into_iter().take(8).collect();
    let urls: Vec<String> = products.iter().map(|(url, _)| url.clone()).collect();
    let rules = Rules::parse(
        Path::new("rules.toml"),
        "[hosts.\"127.0.0.1\"]\nname = \"h1.name\"\nprice = \"span.price\"\ndescription = \"p.description\"\n",
    )
    .expect("valid rules");

    let (lines, _) = collect(&urls, Extractor::new(Arc::new(rules))).await;

    for (url, product) in &products {
        let data = &lines[url]["record"]["data"];
        assert_eq!(data["product_name"], product.name.as_str(), "{data}");
        assert_eq!(data["current_price"]["amount"].as_f64(), Some(product.price_cents as f64 / 100.0), "{data}");
        assert_eq!(data["product_description"], product.description.as_str(), "{data}");
        let expected = if product.markup() == Markup::Classes { "rule" } else { "json-ld" };
        if matches!(product.markup(), Markup::Classes | Markup::JsonLd) {
            assert_eq!(data["processing_metadata"]["field_sources"]["description"], expected, "{data}");
        }
    }
}
