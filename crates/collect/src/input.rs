//! What the job reads: the URL list and the proxy list. Both are checked whole before any work
//! starts, and a problem is reported with the file and line at fault. The URL list is
//! streamed ([`UrlLines`], over a [`LineReader`] that holds one line at a time), never read
//! whole.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use harvester_proxypool::Proxy;
use harvester_proxypool::list::{ListError, ProxyList};
use thiserror::Error;

/// A URL to collect, as read from the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as written (trimmed); it is also the key of its output line.
    pub url: Arc<str>,
    /// Its host, lower-case: the key of the per-host rate limit and circuit breaker.
    pub host: Arc<str>,
}

impl Target {
    /// Checks that `text` is an absolute `http` or `https` URL with a host.
    pub fn parse(text: &str) -> Result<Target, String> {
        let uri: http::Uri = text.parse().map_err(|e| format!("not a URL ({e})"))?;
        match uri.scheme_str() {
            Some("http" | "https") => {}
            Some(other) => return Err(format!("scheme {other:?} is not http or https")),
            None => return Err("not an absolute URL (it needs http:// or https://)".to_owned()),
        }
        let host = harvester_core::host::of_uri(&uri).filter(|h| !h.is_empty()).ok_or("the URL has no host")?;
        Ok(Target { url: Arc::from(text), host: Arc::from(&*host) })
    }
}

/// Why an input file was refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line of the URL list is not a URL we can collect.
    #[error("{path} line {line}: {reason}")]
    BadUrl {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The URL list holds no URL.
    #[error("{path}: no URL to collect (empty, or only comments)")]
    NoUrls {
        /// The file.
        path: PathBuf,
    },
    /// The proxy list was refused (its error names every bad line).
    #[error("{path}: {source}")]
    BadProxies {
        /// The file.
        path: PathBuf,
        /// The lines at fault.
        source: ListError,
    },
    /// The proxy list holds no proxy.
    #[error("{path}: no proxy in the list")]
    NoProxies {
        /// The file.
        path: PathBuf,
    },
}

/// The URLs of a list, in order, and how many repeated ones were left out.
#[derive(Debug, Clone, Default)]
pub struct UrlList {
    /// Each URL once, in the order first seen.
    pub targets: Vec<Target>,
    /// Lines repeating an earlier URL: collected once, reported once.
    pub duplicates: usize,
}

/// Parses a URL list held in memory: one URL per line, blank lines and comments skipped,
/// every line checked (the first bad one is reported with its number). A comment starts
/// with a `#` at the start of a line or after white space; a `#` inside a URL is its
/// fragment. The `--urls` file is not read this way but streamed ([`UrlLines`]).
pub fn parse_urls(text: &str, path: &Path) -> Result<UrlList, InputError> {
    let mut list = UrlList::default();
    let mut seen = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let bad = |reason| InputError::BadUrl { path: path.to_owned(), line: index + 1, reason };
        let Some(target) = parse_line(line).map_err(bad)? else { continue };
        if seen.insert(target.url.clone()) {
            list.targets.push(target);
        } else {
            list.duplicates += 1;
        }
    }
    if list.targets.is_empty() {
        return Err(InputError::NoUrls { path: path.to_owned() });
    }
    Ok(list)
}

/// One line of a URL list: its URL, `None` for a blank or comment line, or why it is not a
/// URL we can collect.
pub fn parse_line(line: &str) -> Result<Option<Target>, String> {
    let line = without_comment(line.trim_start_matches('\u{feff}')).trim();
    if line.is_empty() {
        return Ok(None);
    }
    Target::parse(line).map(Some)
}

/// `line` up to its comment: a `#` at the start or after white space.
fn without_comment(line: &str) -> &str {
    let mut previous = None;
    for (at, c) in line.char_indices() {
        if c == '#' && previous.is_none_or(char::is_whitespace) {
            return &line[..at];
        }
        previous = Some(c);
    }
    line
}

/// Reads and parses the URL list at `path`, whole, into memory. A run streams its list
/// instead ([`UrlLines`]).
pub fn read_urls(path: &Path) -> Result<UrlList, InputError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| InputError::Unreadable { path: path.to_owned(), source })?;
    parse_urls(&text, path)
}

/// The longest line of a URL list: a URL is at most 64 KiB (`http::Uri`'s own limit), so a
/// longer line is refused without being held whole.
pub const MAX_URL_LINE: usize = 64 * 1024;

/// The URLs of a list file, streamed: one [`Target`] per URL line, in order, repeats
/// included, each bad line an [`InputError::BadUrl`] with its number. Memory stays at one
/// line whatever the file's size.
///
/// ```no_run
/// # fn main() -> Result<(), harvester_collect::input::InputError> {
/// let mut urls = harvester_collect::input::UrlLines::open("urls.txt".as_ref())?;
/// while let Some((line, target)) = urls.next_url()? {
///     println!("line {line}: {}", target.url);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct UrlLines {
    path: PathBuf,
    lines: LineReader<BufReader<File>>,
}

impl UrlLines {
    /// Opens the list at `path`.
    pub fn open(path: &Path) -> Result<Self, InputError> {
        let file = File::open(path).map_err(|source| InputError::Unreadable { path: path.to_owned(), source })?;
        Ok(UrlLines { path: path.to_owned(), lines: LineReader::new(BufReader::with_capacity(64 * 1024, file)) })
    }

    /// The next URL and its line number, or `None` at the end of the file.
    pub fn next_url(&mut self) -> Result<Option<(usize, Target)>, InputError> {
        loop {
            let line = match self.lines.next_line(MAX_URL_LINE) {
                Ok(Some(line)) => line,
                Ok(None) => return Ok(None),
                Err(LineError::Read(source)) => {
                    return Err(InputError::Unreadable { path: self.path.clone(), source });
                }
                Err(LineError::TooLong { line }) => {
                    let reason = format!("longer than {MAX_URL_LINE} bytes: not a URL");
                    return Err(InputError::BadUrl { path: self.path.clone(), line, reason });
                }
            };
            let number = line.number;
            let bad = |reason| InputError::BadUrl { path: self.path.clone(), line: number, reason };
            let text = std::str::from_utf8(line.bytes).map_err(|_| bad("not UTF-8 text".to_owned()))?;
            if let Some(target) = parse_line(text).map_err(bad)? {
                return Ok(Some((number, target)));
            }
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One line of a file, as read by a [`LineReader`].
#[derive(Debug)]
pub struct RawLine<'a> {
    /// Its number, from 1.
    pub number: usize,
    /// Where it starts in the file, in bytes.
    pub offset: u64,
    /// Its bytes, without the newline.
    pub bytes: &'a [u8],
    /// Whether a newline ends it (the last line of a file may lack one).
    pub ended: bool,
}

/// Why a [`LineReader`] gave no line.
#[derive(Debug)]
pub enum LineError {
    /// The file could not be read.
    Read(std::io::Error),
    /// Line `line` is longer than the limit asked for.
    TooLong {
        /// Its number, from 1.
        line: usize,
    },
}

/// Reads a file line by line as bytes, numbering the lines and refusing one longer than a
/// limit before it is held whole: the URL list and the `--out` of a resumed run are read
/// this way, one line in memory at a time.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    line: Vec<u8>,
    number: usize,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    /// Reads from `inner`, from its current position (counted as offset 0, line 1).
    pub fn new(inner: R) -> Self {
        LineReader { inner, line: Vec::new(), number: 0, offset: 0 }
    }

    /// The next line, or `None` at the end; a line longer than `max` bytes is refused.
    pub fn next_line(&mut self, max: usize) -> Result<Option<RawLine<'_>>, LineError> {
        self.line.clear();
        let start = self.offset;
        let mut ended = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Read(e)),
            };
            if available.is_empty() {
                break;
            }
            let (take, found) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (available.len(), false),
            };
            let content = if found { take - 1 } else { take };
            if self.line.len() + content > max {
                return Err(LineError::TooLong { line: self.number + 1 });
            }
            self.line.extend_from_slice(&available[..content]);
            self.inner.consume(take);
            self.offset += take as u64;
            if found {
                ended = true;
                break;
            }
        }
        if !ended && self.line.is_empty() {
            return Ok(None);
        }
        self.number += 1;
        Ok(Some(RawLine { number: self.number, offset: start, bytes: &self.line, ended }))
    }

    /// Whether the reader is at the end of its input.
    pub fn at_end(&mut self) -> std::io::Result<bool> {
        self.inner.fill_buf().map(<[u8]>::is_empty)
    }
}

/// Reads the proxy list at `path` in the format its extension names (text, `.json`, `.toml`),
/// refusing it whole if any line is bad.
pub fn read_proxies(path: &Path) -> Result<Vec<Proxy>, InputError> {
    if let Err(source) = std::fs::metadata(path) {
        return Err(InputError::Unreadable { path: path.to_owned(), source });
    }
    let proxies =
        ProxyList::load_path(path).map_err(|source| InputError::BadProxies { path: path.to_owned(), source })?;
    if proxies.is_empty() {
        return Err(InputError::NoProxies { path: path.to_owned() });
    }
    Ok(proxies)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn urls(text: &str) -> Result<Vec<String>, String> {
        parse_urls(text, Path::new("urls.txt"))
            .map(|list| list.targets.iter().map(|t| t.url.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn comments_start_at_a_hash_after_white_space_and_fragments_stay() {
        let text = "# heading\nhttp://a.test/1   # a comment\nhttp://a.test/2#section\n\thttp://a.test/3\t#tab\n";
        assert_eq!(
            urls(text),
            Ok(vec!["http://a.test/1".to_owned(), "http://a.test/2#section".to_owned(), "http://a.test/3".to_owned()])
        );
        assert_eq!(urls("http://a.test/1 not-a-comment\n").map_err(|e| e.contains("line 1")), Err(true));
    }

    const URL_FRAGMENTS: &[&str] = &[
        "http://",
        "https://",
        "ftp://",
        "127.0.0.1",
        "[::1]",
        ":8080",
        ":99999",
        "/a",
        "?q=1",
        "#",
        " #",
        "#frag",
        " ",
        "\t",
        "\n",
        "\r\n",
        "\u{feff}",
        "@",
        "%",
        "é",
        "a.test",
        "//",
        "\0",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Any text: a list whose every URL line is counted once (kept or a repeat), or
        /// a refusal that names a line of the file; never a panic.
        #[test]
        fn any_text_is_a_list_or_a_refusal_naming_a_line(
            text in prop_oneof![
                any::<String>(),
                prop::collection::vec(prop::sample::select(URL_FRAGMENTS), 0..40).prop_map(|parts| parts.concat()),
            ]
        ) {
            let lines = text.lines().filter(|line| !without_comment(line.trim_start_matches('\u{feff}')).trim().is_empty()).count();
            match parse_urls(&text, Path::new("urls.txt")) {
                Ok(list) => prop_assert_eq!(list.targets.len() + list.duplicates, lines),
                Err(InputError::BadUrl { line, .. }) => prop_assert!((1..=text.lines().count()).contains(&line)),
                Err(InputError::NoUrls { .. }) => prop_assert_eq!(lines, 0),
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The streamed list reads every text as the whole-text parser does: the same URLs
        /// in the same order with their repeats, or a refusal of the same line.
        #[test]
        fn the_streamed_list_agrees_with_the_parser(
            parts in prop::collection::vec(prop::sample::select(URL_FRAGMENTS), 0..40)
        ) {
            let text = parts.concat();
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("urls.txt");
            std::fs::write(&path, &text).expect("write");
            let mut streamed = Vec::new();
            let streamed = UrlLines::open(&path).and_then(|mut lines| {
                while let Some((_, target)) = lines.next_url()? {
                    streamed.push(target.url.to_string());
                }
                Ok(streamed)
            });
            match (parse_urls(&text, &path), streamed) {
                (Ok(list), Ok(streamed)) => {
                    let mut seen = HashSet::new();
                    let firsts: Vec<String> = streamed.iter().filter(|url| seen.insert(url.as_str())).cloned().collect();
                    prop_assert_eq!(list.targets.iter().map(|t| t.url.to_string()).collect::<Vec<_>>(), firsts);
                    prop_assert_eq!(list.duplicates, streamed.len() - seen.len());
                }
                (Err(InputError::NoUrls { .. }), Ok(streamed)) => prop_assert!(streamed.is_empty()),
                (Err(InputError::BadUrl { line: a, .. }), Err(InputError::BadUrl { line: b, .. })) => prop_assert_eq!(a, b),
                (parsed, streamed) => prop_assert!(false, "parsed {parsed:?}, streamed {streamed:?}"),
            }
        }
    }

    #[test]
    fn a_line_too_long_for_a_url_is_refused_with_its_number_without_being_held() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("urls.txt");
        let long = format!("http://a.test/1\nhttp://a.test/{}\n", "x".repeat(MAX_URL_LINE));
        std::fs::write(&path, long).expect("write");
        let mut lines = UrlLines::open(&path).expect("opens");
        assert!(matches!(lines.next_url(), Ok(Some((1, _)))));
        match lines.next_url() {
            Err(e @ InputError::BadUrl { line: 2, .. }) => assert!(e.to_string().contains("longer than"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_refused_with_its_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("urls.txt");
        std::fs::write(&path, b"http://a.test/1\n\xff\xfe\n").expect("write");
        let mut lines = UrlLines::open(&path).expect("opens");
        assert!(matches!(lines.next_url(), Ok(Some((1, _)))));
        assert!(matches!(lines.next_url(), Err(InputError::BadUrl { line: 2, .. })));
    }

    /// The lists of the README's quick start, read from the README itself, parse as shown.
    #[test]
    fn the_readme_quick_start_lists_parse() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).expect("README");
        let block = |file: &str| {
            let start = format!("cat > {file} <<'LIST'\n");
            let from = readme.find(&start).map(|at| at + start.len()).expect("the quick start writes the file");
            let len = readme[from..].find("LIST\n").expect("the heredoc ends");
            readme[from..from + len].to_owned()
        };
        assert_eq!(
            urls(&block("urls.txt")),
            Ok(vec!["https://shop.example/product/1".to_owned(), "https://shop.example/product/2".to_owned()])
        );
        let proxies = ProxyList::parse_text(&block("proxies.txt")).expect("the README's proxy list parses");
        assert_eq!(proxies.len(), 2);
    }
}
