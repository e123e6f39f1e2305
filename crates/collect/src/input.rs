//! What the job reads: the URL list and the proxy list. Both are checked whole before any work
//! starts, and a problem is reported with the file and line at fault.

use std::collections::HashSet;
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

/// Parses a URL list: one URL per line, blank lines and comments skipped, every line
/// checked (the first bad one is reported with its number). A comment starts with a `#`
/// at the start of a line or after white space; a `#` inside a URL is its fragment.
pub fn parse_urls(text: &str, path: &Path) -> Result<UrlList, InputError> {
    let mut list = UrlList::default();
    let mut seen = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        let line = without_comment(line.trim_start_matches('\u{feff}')).trim();
        if line.is_empty() {
            continue;
        }
        let target = Target::parse(line).map_err(|reason| InputError::BadUrl {
            path: path.to_owned(),
            line: index + 1,
            reason,
        })?;
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

/// One line of a URL list: its URL, `None` for a blank or comment line, or what is wrong.
pub fn parse_line(line: &str) -> Result<Option<Target>, String> {
    let line = without_comment(line.trim_start_matches('\u{feff}')).trim();
    if line.is_empty() { Ok(None) } else { Target::parse(line).map(Some) }
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

/// Reads and parses the URL list at `path`.
pub fn read_urls(path: &Path) -> Result<UrlList, InputError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| InputError::Unreadable { path: path.to_owned(), source })?;
    parse_urls(&text, path)
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
