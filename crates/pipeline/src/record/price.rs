use serde::{Deserialize, Serialize};

/// A price read from text by [`normalize_price`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// The amount, in the currency's main unit (never negative).
    pub amount: f64,
    /// The ISO 4217 code when the text names or implies one (`"EUR"` for `€`, `"USD"` for
    /// a bare `$`), `"kr"` for the Scandinavian krona/krone (which one cannot be told), or
    /// `None` when the text shows no currency.
    pub currency: Option<String>,
}

/// Reads a price from scraped text: `"$1,299.00"`, `"1.299,00 €"`, `"USD 12"`,
/// `"12.50 EUR"`, `"€ 5"`, `"1 299,95 kr"`, `"CHF 1'299.50"`.
///
/// The amount is the first number in the text. Within it, spaces (normal, non-breaking,
/// thin) and apostrophes followed by exactly three digits group thousands. Of `.` and `,`:
///
/// - when both occur, the last one is the decimal separator and the other groups thousands
///   (`1.299,00` and `1,299.00` are both 1299);
/// - when one occurs several times, it groups thousands (`1,299,000`), unless its last group
///   is not three digits long, then that last one is the decimal separator (`1.299.5`);
/// - when one occurs once, it is the decimal separator unless exactly three digits follow
///   it: `12,50` is 12.5 but `1,299` and `1.299` are 1299 (prices rarely have three
///   decimals), except after a lone `0` (`0.299`).
///
/// Signs are ignored. Returns `None` when the text holds no digit or the amount is not
/// finite. Never panics.
///
/// ```
/// use harvester_pipeline::record::normalize_price;
///
/// let price = normalize_price("1.299,00 €").expect("a price");
/// assert_eq!(price.amount, 1299.0);
/// assert_eq!(price.currency.as_deref(), Some("EUR"));
/// ```
pub fn normalize_price(text: &str) -> Option<Price> {
    let (start, end) = number_span(text)?;
    let amount = parse_amount(&text[start..end])?;
    let currency = currency_of(&text[..start], &text[end..]);
    Some(Price { amount, currency })
}

fn is_group_mark(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}' | '\'' | '\u{2019}')
}

/// Byte range of the first number, separators included, trailing punctuation excluded.
fn number_span(text: &str) -> Option<(usize, usize)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let mut end = start;
    for (offset, c) in text[start..].char_indices() {
        let rest = &text[start + offset + c.len_utf8()..];
        let accept = if c.is_ascii_digit() {
            true
        } else if c == '.' || c == ',' {
            rest.starts_with(|d: char| d.is_ascii_digit())
        } else if is_group_mark(c) {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            digits == 3
        } else {
            false
        };
        if !accept {
            break;
        }
        end = start + offset + c.len_utf8();
    }
    Some((start, end))
}

fn parse_amount(number: &str) -> Option<f64> {
    let number: String = number.chars().filter(|c| !is_group_mark(*c)).collect();
    let last = number.rfind(['.', ',']);
    let plain = match last {
        None => number,
        Some(at) => {
            let mark = number.as_bytes()[at];
            let other = if mark == b'.' { b',' } else { b'.' };
            let (head, tail) = (&number[..at], &number[at + 1..]);
            let mixed = head.bytes().any(|b| b == other);
            let repeated = head.bytes().any(|b| b == mark);
            let decimal = if mixed {
                true
            } else if repeated {
                tail.len() != 3
            } else {
                tail.len() != 3 || head == "0"
            };
            let digits: String = head.chars().filter(char::is_ascii_digit).collect();
            if decimal { format!("{digits}.{tail}") } else { format!("{digits}{tail}") }
        }
    };
    let amount: f64 = plain.parse().ok()?;
    amount.is_finite().then_some(amount)
}

/// ISO 4217 codes recognised as words, in capitals only (`TRY` is a code, `try` a word).
const CODES: &[&str] = &[
    "USD", "EUR", "GBP", "JPY", "CNY", "CHF", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "ISK", "PLN", "CZK", "HUF",
    "RON", "BGN", "INR", "BRL", "MXN", "ARS", "CLP", "COP", "RUB", "UAH", "TRY", "ZAR", "KRW", "HKD", "SGD", "TWD",
    "THB", "IDR", "MYR", "PHP", "VND", "ILS", "AED", "SAR",
];

/// Symbols, the longer ones first so `US$` wins over `$`.
const SYMBOLS: &[(&str, &str)] = &[
    ("US$", "USD"),
    ("CA$", "CAD"),
    ("C$", "CAD"),
    ("AU$", "AUD"),
    ("A$", "AUD"),
    ("NZ$", "NZD"),
    ("HK$", "HKD"),
    ("R$", "BRL"),
    ("$", "USD"),
    ("€", "EUR"),
    ("£", "GBP"),
    ("¥", "JPY"),
    ("₹", "INR"),
    ("₽", "RUB"),
    ("₩", "KRW"),
    ("₺", "TRY"),
    ("₴", "UAH"),
    ("₪", "ILS"),
    ("zł", "PLN"),
    ("Kč", "CZK"),
];

fn currency_of(before: &str, after: &str) -> Option<String> {
    let words = || {
        before
            .split(|c: char| !c.is_alphabetic())
            .chain(after.split(|c: char| !c.is_alphabetic()))
            .filter(|w| !w.is_empty())
    };
    if let Some(code) = words().find_map(|w| CODES.iter().find(|code| **code == w)) {
        return Some((*code).to_owned());
    }
    if let Some((_, code)) = SYMBOLS.iter().find(|(symbol, _)| before.contains(symbol) || after.contains(symbol)) {
        return Some((*code).to_owned());
    }
    words().any(|w| w.eq_ignore_ascii_case("kr")).then(|| "kr".to_owned())
}
