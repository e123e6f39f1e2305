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
/// use harvester_testbed::Product;
///
/// let product = Product::get(42).expect("0..=1_000_000 are products");
/// assert_eq!(product.path(), "/product/42");
/// assert!(product.page().contains("<title>Product 42</title>"));
/// assert!(product.page().contains(&format!("<span class=\"price\">{}</span>", product.price)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// N, as in `/product/N` and `<title>Product N</title>`.
    pub number: u32,
    /// The name, as in `<h1 class="name">`: `Rustic Oak Table`.
    pub name: String,
    /// The price exactly as in `<span class="price">`, in one of the formats `$1,299.00`,
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
    /// tabs, newlines and non-breaking spaces.
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

    /// The product's HTML page, as the target serves it.
    pub fn page(&self) -> String {
        let mut spaces = Draws::new(u64::from(self.number) ^ 0x5eed);
        let mut messy = String::from("\n      ");
        for (index, word) in self.description.split(' ').enumerate() {
            if index > 0 {
                messy.push_str(pick(&mut spaces, &MESSY_SPACES));
            }
            messy.push_str(&escape_html(word));
        }
        messy.push_str("  \n    ");
        format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Product {number}</title></head>\n\
             <body>\n  <main class=\"product\" data-number=\"{number}\">\n    \
             <h1 class=\"name\">{name}</h1>\n    <span class=\"price\">{price}</span>\n    \
             <p class=\"description\">{messy}</p>\n  </main>\n</body>\n</html>\n",
            number = self.number,
            name = escape_html(&self.name),
            price = escape_html(&self.price),
        )
    }
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
