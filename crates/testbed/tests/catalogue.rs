//! The product catalogue of the target site, fetched over real HTTP on loopback.

use harvester_pipeline::record::{clean_str, normalize_price};
use harvester_testbed::{Markup, Product, TargetServer, http1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response as the target sent it.
struct Fetched {
    status: u16,
    content_type: String,
    body: String,
}

/// `GET path` on a fresh connection, read to the end: the target closes after one response.
async fn get(target: &TargetServer, path: &str) -> Fetched {
    let mut stream = TcpStream::connect(target.addr()).await.expect("connect to the target");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", target.addr());
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let (head, mut body) = http1::read_head(&mut stream).await.expect("a response head");
    stream.read_to_end(&mut body).await.expect("read the body");
    let head = String::from_utf8(head).expect("a UTF-8 head");
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status code");
    let content_type = head.lines().find_map(|line| line.strip_prefix("Content-Type: ")).unwrap_or_default().to_owned();
    Fetched { status, content_type, body: String::from_utf8(body).expect("a UTF-8 body") }
}

/// The text between `<tag class="class">` and the next `</`.
fn element<'a>(page: &'a str, tag: &str, class: &str) -> &'a str {
    let open = format!("<{tag} class=\"{class}\">");
    let start = page.find(&open).map(|at| at + open.len()).expect("the element is on the page");
    let end = page[start..].find("</").expect("the element is closed");
    &page[start..start + end]
}

#[tokio::test]
async fn product_page_shows_title_name_price_and_messy_description() {
    let target = TargetServer::start().await.expect("target starts");
    let product = Product::get(40).expect("40 is in the catalogue");
    assert_eq!(product.markup(), Markup::Classes);

    let page = get(&target, "/product/40").await;

    assert_eq!(page.status, 200);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    assert!(page.body.contains("<title>Product 40</title>"), "{}", page.body);
    assert_eq!(element(&page.body, "h1", "name"), product.name);
    assert_eq!(element(&page.body, "span", "price"), product.price);
    let description = element(&page.body, "p", "description");
    assert_ne!(description, product.description, "the page's whitespace is messy");
    assert_eq!(clean_str(description), product.description);
    assert_eq!(target.requests_to("/product/40"), 1);
}

#[test]
fn the_markups_take_turns_by_product_number() {
    let markups: Vec<Markup> = (0..8).filter_map(Product::get).map(|p| p.markup()).collect();

    use Markup::*;
    assert_eq!(markups, [Classes, JsonLd, Microdata, OpenGraph, Classes, JsonLd, Microdata, OpenGraph]);
}

#[test]
fn a_json_ld_page_states_name_description_and_amount_in_a_graph_and_nothing_in_its_body() {
    let product = Product::get(41).expect("in the catalogue");
    let page = product.page();

    assert!(page.contains("<script type=\"application/ld+json\">"), "{page}");
    assert!(page.contains(&format!("\"@type\":\"Product\",\"name\":\"{}\"", product.name)), "{page}");
    assert!(page.contains(&format!("\"description\":\"{}\"", product.description)), "{page}");
    let amount = format!("\"price\":\"{}.{:02}\"", product.price_cents / 100, product.price_cents % 100);
    assert!(page.contains(&amount), "{page}");
    assert!(page.contains("<div id=\"app\" data-number=\"41\"></div>"), "{page}");
    assert!(!page.contains(&product.price), "the shown price is not on the page: {page}");
}

#[test]
fn a_microdata_page_marks_name_offer_and_description() {
    let product = Product::get(42).expect("in the catalogue");
    let page = product.page();

    assert!(page.contains("itemtype=\"https://schema.org/Product\""), "{page}");
    assert!(page.contains(&format!("<h1 itemprop=\"name\">{}</h1>", product.name)), "{page}");
    let amount = format!("{}.{:02}", product.price_cents / 100, product.price_cents % 100);
    assert!(page.contains(&format!("<span itemprop=\"price\" content=\"{amount}\">")), "{page}");
    assert!(page.contains("<p itemprop=\"description\">"), "{page}");
}

#[test]
fn an_opengraph_page_has_the_product_in_its_meta_tags() {
    let product = Product::get(43).expect("in the catalogue");
    let page = product.page();

    assert!(page.contains("<meta property=\"og:type\" content=\"product\">"), "{page}");
    assert!(page.contains(&format!("<meta property=\"og:title\" content=\"{}\">", product.name)), "{page}");
    let amount = format!("{}.{:02}", product.price_cents / 100, product.price_cents % 100);
    assert!(page.contains(&format!("<meta property=\"product:price:amount\" content=\"{amount}\">")), "{page}");
}

#[tokio::test]
async fn a_product_page_is_the_same_every_time_and_differs_between_products() {
    let target = TargetServer::start().await.expect("target starts");

    let first = get(&target, "/product/7").await.body;
    let again = get(&target, "/product/7").await.body;
    let other = get(&target, "/product/8").await.body;

    assert_eq!(first, again);
    assert_eq!(first, Product::get(7).expect("7 is in the catalogue").page());
    assert_ne!(first, other);
}

#[tokio::test]
async fn only_canonical_numbers_up_to_a_million_are_products() {
    let target = TargetServer::start().await.expect("target starts");

    for path in ["/product/0", "/product/1000000", "http://example.invalid/product/5"] {
        assert_eq!(get(&target, path).await.status, 200, "{path}");
    }
    for path in ["/product/1000001", "/product/4294967296", "/product/-1", "/product/+1", "/product/01", "/product/x"] {
        assert_eq!(get(&target, path).await.status, 404, "{path}");
    }
    assert_eq!(get(&target, "/product/").await.status, 404);
}

#[tokio::test]
async fn catalogue_lists_the_first_k_product_paths_one_per_line() {
    let target = TargetServer::start().await.expect("target starts");

    let listing = get(&target, "/catalogue?n=3").await;
    let empty = get(&target, "/catalogue?n=0").await;

    assert_eq!((listing.status, listing.content_type.as_str()), (200, "text/plain; charset=utf-8"));
    assert_eq!(listing.body, "/product/0\n/product/1\n/product/2\n");
    assert_eq!((empty.status, empty.body.as_str()), (200, ""));
}

#[tokio::test]
async fn every_listed_path_is_a_product_page() {
    let target = TargetServer::start().await.expect("target starts");

    let listing = get(&target, "/catalogue?n=12").await.body;

    for (number, path) in listing.lines().enumerate() {
        let page = get(&target, path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(&format!("<title>Product {number}</title>")), "{path}");
    }
}

#[tokio::test]
async fn catalogue_refuses_a_missing_or_too_large_count() {
    let target = TargetServer::start().await.expect("target starts");

    let whole = get(&target, "/catalogue?n=1000001").await;
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body.lines().count(), 1_000_001);
    assert_eq!(whole.body.lines().last(), Some("/product/1000000"));
    for path in ["/catalogue", "/catalogue?n=1000002", "/catalogue?n=-1", "/catalogue?n=many"] {
        assert_eq!(get(&target, path).await.status, 400, "{path}");
    }
}

#[test]
fn every_price_reads_back_as_the_products_amount_and_currency() {
    let mut formats = std::collections::BTreeSet::new();
    for number in (0..2_000).chain(Product::LAST - 10..=Product::LAST) {
        let product = Product::get(number).expect("in the catalogue");
        let price = normalize_price(&product.price).unwrap_or_else(|| panic!("no price in {:?}", product.price));
        assert_eq!((price.amount * 100.0).round() as u64, product.price_cents, "{:?}", product.price);
        assert_eq!(price.currency.as_deref(), Some(product.currency), "{:?}", product.price);
        formats.insert(product.price.replace(|c: char| c.is_ascii_digit(), "").replace(['.', ',', '\'', '\u{a0}'], ""));
    }
    // `$`, `€` after, `USD `, ` EUR`, `£`, `CHF `, ` kr`, `€ ` before.
    assert_eq!(formats.len(), 8, "{formats:?}");
}

#[test]
fn the_catalogue_ends_at_a_million() {
    assert!(Product::get(Product::LAST).is_some());
    assert!(Product::get(Product::LAST + 1).is_none());
}

#[tokio::test]
async fn a_discontinued_product_is_a_not_found_page_served_with_200() {
    let target = TargetServer::start().await.expect("target starts");

    let page = get(&target, "/discontinued/7").await;

    assert_eq!((page.status, page.body.as_str()), (200, harvester_testbed::SOFT_404_PAGE));
    assert!(page.body.contains("<title>Product not found</title>"));
}
