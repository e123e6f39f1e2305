//! The product catalogue of the target site: a million and one products whose pages are made
//! up from their number alone, so a test knows what `/product/N` shows without fetching it.
//! Prices come in the formats real shops use and descriptions in messy whitespace, which is
//! what a collector's cleaning steps are for.

use std::fmt::Write as _;

/// Name parts; a product is called `{adjective} {material} {item}`.
const ADJECTIVES: [&str; 16] = [
    "Sturdy",
    "Compact",
    "Classic",
    "Rustic",
    "Modern",
    "Foldable",
    "Deluxe",
    "Vintage",
    "Portable",
    "Elegant",
    "Rugged",
    "Minimal",
    "Cosy",
    "Sleek",
    "Handmade",
    "Ergonomic",
];
const MATERIALS: [&str; 16] = [
    "Oak",
    "Walnut",
    "Steel",
    "Bamboo",
    "Linen",
    "Wool",
    "Copper",
    "Glass",
    "Leather",
    "Ceramic",
    "Marble",
    "Cotton",
    "Aluminium",
    "Cork",
    "Pine",
    "Brass",
];
const ITEMS: [&str; 16] = [
    "Table", "Chair", "Lamp", "Shelf", "Desk", "Stool", "Bench", "Mirror", "Cabinet", "Rug", "Vase", "Clock", "Basket",
    "Kettle", "Tray", "Bookcase",
];
/// Sentences of a description, two different ones per product.
const FEATURES: [&str; 8] = [
    "Built to last for years of daily use.",
    "Ships flat and assembles in minutes.",
    "Finished by hand in a small workshop.",
    "Fits neatly into small apartments.",
    "Every surface has a water-resistant coating.",
    "Comes with a two-year warranty.",
    "Made from responsibly sourced materials.",
    "Easy to clean with a damp cloth.",
];
/// What stands between two words of a description on the page; the clean description has
/// one plain space there.
const MESSY_SPACES: [&str; 8] = [" ", " ", " ", "  ", "\n        ", " \t", "\u{a0}", "   "];
/// A price is 1.00 plus up to one of these many cents, so that cheap, middling and dear
/// products (up to 15,000.99) are equally common and small amounts show up too.
const PRICE_SPANS: [u64; 3] = [10_000, 100_000, 1_500_000];

/// One product of the catalogue that [`crate::TargetServer`] serves at `/product/N`: what its
/// page shows. [`Product::get`] makes it from the number; the same number always gives the
/// same product.
///
/// ```
/// use harvester_testbed::{Markup, Product};
///
/// let product = Product::get(40).expect("0..=1_000_000 are products");
/// assert_eq!(product.path(), "/product/40");
/// assert!(product.page().contains("<title>Product 40</title>"));
/// assert_eq!(product.markup(), Markup::Classes);
/// assert!(product.page().contains(&format!("<span class=\"price\">{}</span>", product.price)));
/// assert_eq!(Product::get(41).map(|p| p.markup()), Some(Markup::JsonLd));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// N, as in `/product/N` and `<title>Product N</title>`.
    pub number: u32,
    /// The name, as the page shows it (`<h1 class="name">`, `og:title`…): `Rustic Oak Table`.
    pub name: String,
    /// The price exactly as the page shows it (`<span class="price">`; the visible price of
    /// the microdata and OpenGraph pages too), in one of the formats `$1,299.00`,
    /// `1.299,00 €`, `USD 1299`, `1299.00 EUR`, `£1,299.00`, `CHF 1'299.00`,
    /// `1 299,00 kr` (non-breaking space) and `€ 1.299`, depending on the number.
    pub price: String,
    /// The price's amount in hundredths of the currency's main unit: 129900 for all of the
    /// above.
    pub price_cents: u64,
    /// The ISO 4217 code of the price's currency (`"USD"`, `"EUR"`, `"GBP"`, `"CHF"`), or
    /// `"kr"` for the Scandinavian krona/krone, which the text does not tell apart.
    pub currency: &'static str,
    /// The description with its whitespace cleaned up: trimmed, one space between words. The
    /// page has the same words in `<p class="description">` separated by runs of spaces,
    /// tabs, newlines and non-breaking spaces (the JSON-LD and OpenGraph pages have it
    /// clean).
    pub description: String,
}

impl Product {
    /// The highest product number; the catalogue holds `0..=LAST`.
    pub const LAST: u32 = 1_000_000;

    /// Product `number`, or `None` above [`Product::LAST`].
    pub fn get(number: u32) -> Option<Product> {
        if number > Self::LAST {
            return None;
        }
        let mut draws = Draws::new(u64::from(number));
        let name =
            format!("{} {} {}", pick(&mut draws, &ADJECTIVES), pick(&mut draws, &MATERIALS), pick(&mut draws, &ITEMS));
        let span = PRICE_SPANS[draws.below(PRICE_SPANS.len() as u64) as usize];
        let cents = 100 + draws.below(span);
        let (price, price_cents, currency) = format_price(cents, draws.below(8));
        let first = draws.below(FEATURES.len() as u64) as usize;
        let second = (first + 1 + draws.below(FEATURES.len() as u64 - 1) as usize) % FEATURES.len();
        let description = format!("{name}, for every room. {} {}", FEATURES[first], FEATURES[second]);
        Some(Product { number, name, price, price_cents, currency, description })
    }

    /// The product for the last segment of `/product/N`: decimal digits without sign or
    /// leading zero, so every product has exactly one path.
    pub(crate) fn from_path_segment(segment: &str) -> Option<Product> {
        let canonical = !segment.is_empty()
            && segment.bytes().all(|byte| byte.is_ascii_digit())
            && (segment == "0" || !segment.starts_with('0'));
        if canonical { Product::get(segment.parse().ok()?) } else { None }
    }

    /// `/product/N`.
    pub fn path(&self) -> String {
        format!("/product/{}", self.number)
    }

    /// How its page carries it: the markups take turns by number (`N % 4`: 0 classes,
    /// 1 JSON-LD, 2 microdata, 3 OpenGraph), so that a run over consecutive products meets
    /// every one.
    pub fn markup(&self) -> Markup {
        match self.number % 4 {
            0 => Markup::Classes,
            1 => Markup::JsonLd,
            2 => Markup::Microdata,
            _ => Markup::OpenGraph,
        }
    }

    /// The product's HTML page, as the target serves it: `<title>Product N</title>`, and the
    /// product in its [`markup`](Self::markup).
    pub fn page(&self) -> String {
        let number = self.number;
        let name = escape_html(&self.name);
        let price = escape_html(&self.price);
        let messy = self.messy_description();
        // Structured data states the amount for machines (a `.` before the cents) and an ISO
        // code, which `kr` is not: such a page leaves the currency out, as real ones do.
        let amount = format!("{}.{:02}", self.price_cents / 100, self.price_cents % 100);
        let iso = (self.currency != "kr").then_some(self.currency);
        let head = |extra: &str| {
            format!(
                "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Product {number}</title>{extra}</head>\n"
            )
        };
        match self.markup() {
            Markup::Classes => format!(
                "{head}<body>\n  <main class=\"product\" data-number=\"{number}\">\n    \
                 <h1 class=\"name\">{name}</h1>\n    <span class=\"price\">{price}</span>\n    \
                 <p class=\"description\">{messy}</p>\n  </main>\n</body>\n</html>\n",
                head = head(""),
            ),
            Markup::JsonLd => {
                let currency = iso.map(|code| format!(",\"priceCurrency\":\"{code}\"")).unwrap_or_default();
                let json = format!(
                    "{{\"@context\":\"https://schema.org\",\"@graph\":[\
                     {{\"@type\":\"BreadcrumbList\",\"itemListElement\":[{{\"@type\":\"ListItem\",\"position\":1,\"name\":\"Home\"}}]}},\
                     {{\"@type\":\"Product\",\"name\":{},\"description\":{},\"sku\":\"{number}\",\
                     \"offers\":{{\"@type\":\"Offer\",\"price\":\"{amount}\"{currency},\
                     \"availability\":\"https://schema.org/InStock\"}}}}]}}",
                    json_string(&self.name),
                    json_string(&self.description),
                );
                // A page rendered by script: the body holds no product at all.
                format!(
                    "{head}<body>\n  <div id=\"app\" data-number=\"{number}\"></div>\n  \
                     <script src=\"/static/app.js\"></script>\n</body>\n</html>\n",
                    head = head(&format!("\n<script type=\"application/ld+json\">{}</script>\n", escape_script(&json))),
                )
            }
            Markup::Microdata => {
                let currency = iso
                    .map(|code| format!("\n      <meta itemprop=\"priceCurrency\" content=\"{code}\">"))
                    .unwrap_or_default();
                format!(
                    "{head}<body>\n  <main itemscope itemtype=\"https://schema.org/Product\" data-number=\"{number}\">\n    \
                     <h1 itemprop=\"name\">{name}</h1>\n    \
                     <div itemprop=\"brand\" itemscope itemtype=\"https://schema.org/Brand\"><span itemprop=\"name\">Testbed</span></div>\n    \
                     <div itemprop=\"offers\" itemscope itemtype=\"https://schema.org/Offer\">\n      \
                     <span itemprop=\"price\" content=\"{amount}\">{price}</span>{currency}\n    </div>\n    \
                     <p itemprop=\"description\">{messy}</p>\n  </main>\n</body>\n</html>\n",
                    head = head(""),
                )
            }
            Markup::OpenGraph => {
                let currency = iso
                    .map(|code| format!("\n<meta property=\"product:price:currency\" content=\"{code}\">"))
                    .unwrap_or_default();
                let meta = format!(
                    "\n<meta property=\"og:type\" content=\"product\">\n<meta property=\"og:title\" content=\"{name}\">\n\
                     <meta property=\"og:description\" content=\"{description}\">\n\
                     <meta property=\"product:price:amount\" content=\"{amount}\">{currency}\n",
                    description = escape_html(&self.description),
                );
                format!(
                    "{head}<body>\n  <div class=\"pdp\" data-number=\"{number}\">\n    \
                     <div class=\"pdp-title\">{name}</div>\n    <div class=\"pdp-price\">{price}</div>\n  </div>\n</body>\n</html>\n",
                    head = head(&meta),
                )
            }
        }
    }

    /// The description with the messy whitespace of the page.
    fn messy_description(&self) -> String {
        let mut spaces = Draws::new(u64::from(self.number) ^ 0x5eed);
        let mut messy = String::from("\n      ");
        for (index, word) in self.description.split(' ').enumerate() {
            if index > 0 {
                messy.push_str(pick(&mut spaces, &MESSY_SPACES));
            }
            messy.push_str(&escape_html(word));
        }
        messy.push_str("  \n    ");
        messy
    }
}

/// How a product page of the catalogue carries the product: real shops use each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Markup {
    /// The visible page only: `<h1 class="name">`, `<span class="price">` (the price as
    /// shown, e.g. `1.299,00 €`) and `<p class="description">` (messy whitespace).
    Classes,
    /// schema.org JSON-LD alone, a `Product` in an `@graph` with an `Offer` (`price` as
    /// `1299.00`, `priceCurrency`); the body is an empty script-rendered shell.
    JsonLd,
    /// schema.org microdata: a `Product` scope with `name`, a `Brand` scope with a `name` of
    /// its own, an `Offer` scope (`price` shown as text, stated in `content`;
    /// `priceCurrency`) and a messy `description`.
    Microdata,
    /// OpenGraph and product meta tags (`og:title`, `og:description`,
    /// `product:price:amount`, `product:price:currency`) over a body of unnamed classes.
    OpenGraph,
}

/// The body of `/catalogue?n=K`: the paths of products `0..count`, one per line.
pub(crate) fn listing(count: u32) -> String {
    let mut paths = String::with_capacity(count as usize * 16);
    for number in 0..count {
        let _ = writeln!(paths, "/product/{number}");
    }
    paths
}

/// The price text for `cents` in format `format` (0..8), with the amount it shows (whole-unit
/// formats drop the cents) and the currency.
fn format_price(cents: u64, format: u64) -> (String, u64, &'static str) {
    let (units, hundredths) = (cents / 100, cents % 100);
    match format {
        0 => (format!("${}.{hundredths:02}", grouped(units, ",")), cents, "USD"),
        1 => (format!("{},{hundredths:02} €", grouped(units, ".")), cents, "EUR"),
        2 => (format!("USD {units}"), units * 100, "USD"),
        3 => (format!("{units}.{hundredths:02} EUR"), cents, "EUR"),
        4 => (format!("£{}.{hundredths:02}", grouped(units, ",")), cents, "GBP"),
        5 => (format!("CHF {}.{hundredths:02}", grouped(units, "'")), cents, "CHF"),
        6 => (format!("{},{hundredths:02} kr", grouped(units, "\u{a0}")), cents, "kr"),
        _ => (format!("€ {}", grouped(units, ".")), units * 100, "EUR"),
    }
}

/// `1299000` → `1,299,000` with `separator` `,`.
fn grouped(units: u64, separator: &str) -> String {
    let digits = units.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * separator.len());
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push_str(separator);
        }
        out.push(digit);
    }
    out
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// JSON inside `<script>`: a `</` would end the script early.
fn escape_script(json: &str) -> String {
    json.replace("</", "<\\/")
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

fn pick<'a>(draws: &mut Draws, choices: &[&'a str]) -> &'a str {
    choices[draws.below(choices.len() as u64) as usize]
}

/// A splitmix64 sequence: the same seed gives the same draws on every platform and version,
/// which a random number crate does not promise.
struct Draws(u64);

impl Draws {
    fn new(seed: u64) -> Self {
        Draws(seed)
    }

    /// A number in `0..bound` (`bound` > 0); the slight bias of the modulo does not matter here.
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}
