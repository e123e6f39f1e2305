//! Loading proxy lists from text, JSON and TOML: what is accepted, and how bad lines are reported.

use std::path::PathBuf;

use harvester_proxypool::list::{ListError, Location, ProxyList, RejectReason};
use harvester_proxypool::{Proxy, ProxyError, ProxyKind, Scheme};
use proptest::prelude::*;

fn reasons(err: &ListError) -> Vec<(usize, String)> {
    err.rejected().iter().map(|r| (r.location.number(), r.reason.to_string())).collect()
}

fn ids(proxies: &[Proxy]) -> Vec<&str> {
    proxies.iter().map(|p| p.id().as_str()).collect()
}

// ---------------------------------------------------------------- text

#[test]
fn text_line_is_a_url_followed_by_metadata() {
    let text = "socks5h://alice:s3cret@gate.example.com:7000 id=eu-1 region=eu provider=acme kind=Residential \
                tags=fast,sticky cost=0.002 max_sessions=20 weight=3\n";

    let proxies = ProxyList::parse_text(text).expect("valid list");

    let [proxy] = proxies.as_slice() else { panic!("one proxy expected, got {proxies:?}") };
    assert_eq!((proxy.scheme(), proxy.host(), proxy.port()), (Scheme::Socks5h, "gate.example.com", 7000));
    assert_eq!(proxy.credentials().map(|c| (c.username(), c.password())), Some(("alice", "s3cret")));
    let meta = proxy.meta();
    assert_eq!(proxy.id().as_str(), "eu-1");
    assert_eq!((meta.region.as_deref(), meta.provider.as_deref()), (Some("eu"), Some("acme")));
    assert_eq!(meta.kind, Some(ProxyKind::Residential));
    assert_eq!(meta.tags.iter().map(String::as_str).collect::<Vec<_>>(), ["fast", "sticky"]);
    assert_eq!((meta.cost_per_request, meta.max_sessions, meta.weight), (0.002, Some(20), 3));
}

#[test]
fn metadata_is_optional_and_defaults_apply() {
    let proxies = ProxyList::parse_text("http://10.0.0.1:8080").expect("valid list");

    assert_eq!(proxies[0].meta(), &Default::default());
    assert_eq!(proxies[0].id().as_str(), "10.0.0.1:8080");
}

#[test]
fn cost_per_request_may_be_written_cost() {
    let proxies = ProxyList::parse_text("http://h:1 cost=0.5\nhttp://h:2 cost_per_request=0.25").expect("valid list");

    let costs: Vec<f64> = proxies.iter().map(|p| p.meta().cost_per_request).collect();
    assert_eq!(costs, [0.5, 0.25]);
}

#[test]
fn blank_lines_and_comment_lines_are_skipped() {
    let text = "\n# a comment\n   \n\t# indented comment\nhttp://h:1\n\n";

    assert_eq!(ids(&ProxyList::parse_text(text).expect("valid list")), ["h:1"]);
}

#[test]
fn a_token_starting_with_hash_starts_a_trailing_comment() {
    let text = "http://h:1 region=eu # region=us colour=red, anything goes here\nhttp://h:2 #region=us";

    let proxies = ProxyList::parse_text(text).expect("comments are ignored");

    assert_eq!(proxies[0].meta().region.as_deref(), Some("eu"));
    assert_eq!(proxies[1].meta().region, None);
}

#[test]
fn a_hash_inside_a_token_is_not_a_comment() {
    let proxies = ProxyList::parse_text("http://h:1 tags=a#b,c id=x#1").expect("valid list");

    assert!(proxies[0].meta().tags.contains("a#b"));
    assert_eq!(proxies[0].id().as_str(), "x#1");
}

#[test]
fn crlf_line_endings_and_surrounding_whitespace_are_accepted() {
    let text = "  http://h:1 region=eu  \r\n\thttp://h:2\t weight=2\r\n# comment\r\n\r\n";

    let proxies = ProxyList::parse_text(text).expect("valid list");

    assert_eq!(ids(&proxies), ["h:1", "h:2"]);
    assert_eq!(proxies[0].meta().region.as_deref(), Some("eu"));
    assert_eq!(proxies[1].meta().weight, 2);
}

#[test]
fn a_leading_byte_order_mark_is_ignored() {
    assert_eq!(ids(&ProxyList::parse_text("\u{feff}http://h:1\n").expect("valid list")), ["h:1"]);
}

#[test]
fn an_empty_list_is_valid() {
    assert!(ProxyList::parse_text("").expect("valid").is_empty());
    assert!(ProxyList::parse_text("# only comments\n\n").expect("valid").is_empty());
}

#[test]
fn strict_mode_reports_every_bad_line_with_its_number() {
    let text = "http://h:1\nhttp://h:99999\nhttp://h:3\nftp://h:4\nhttp://h:5 colour=red\n";

    let err = ProxyList::parse_text(text).expect_err("three bad lines");

    assert_eq!(
        reasons(&err),
        [
            (2, "port 99999 out of range 1..=65535".to_owned()),
            (4, "unsupported scheme 'ftp': expected http, https, socks5 or socks5h".to_owned()),
            (
                5,
                "unknown key 'colour': expected id, region, provider, kind, tags, cost_per_request, max_sessions or weight"
                    .to_owned()
            ),
        ]
    );
    assert!(err.to_string().starts_with("proxy list has 3 bad lines:\n  line 2: port 99999 out of range"), "{err}");
}

#[test]
fn one_bad_line_reads_as_a_single_error() {
    let err = ProxyList::parse_text("http://h:1\n\n# x\nhttp://h:99999").expect_err("bad port");

    assert_eq!(err.to_string(), "proxy list line 4: port 99999 out of range 1..=65535");
}

#[test]
fn a_proxy_whose_url_the_http_stack_would_drop_is_refused_naming_its_line() {
    let password = "s".repeat(70_000);
    let text = format!("http://10.0.0.1:3128\nhttp://user:{password}@10.0.0.2:3128 id=long\n");
    let err = ProxyList::parse_text(&text).expect_err("a 70 000-byte password");
    assert_eq!(
        err.to_string(),
        format!("proxy list line 2: the proxy URL is longer than {} bytes", Proxy::MAX_URL_LEN)
    );
    assert!(!err.to_string().contains("sss"));
}

#[test]
fn a_long_list_of_bad_lines_is_shown_in_part_but_kept_in_full() {
    let text = "http://h:0\n".repeat(50);

    let err = ProxyList::parse_text(&text).expect_err("all bad");

    assert_eq!(err.rejected().len(), 50);
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 1 + 20 + 1, "{shown}");
    assert!(shown.ends_with("… and 30 more"), "{shown}");
}

#[test]
fn each_kind_of_bad_line_names_its_reason() {
    let cases = [
        ("ftp://h:1", "unsupported scheme 'ftp': expected http, https, socks5 or socks5h"),
        ("h:1", "missing scheme: expected http://, https://, socks5:// or socks5h://"),
        ("http://h:70000", "port 70000 out of range 1..=65535"),
        ("http://h:port", "invalid port: expected a number from 1 to 65535"),
        ("http://bad_host!:1", "invalid host: not a host name or IP address"),
        ("http://h:1 region", "expected key=value metadata after the URL"),
        ("http://h:1 =eu", "expected key=value metadata after the URL"),
        ("http://h:1 cost=cheap", "cost_per_request must be a number"),
        ("http://h:1 cost=-0.5", "cost_per_request -0.5 must be a finite number >= 0"),
        ("http://h:1 weight=1.5", "weight must be a whole number from 1 to 4294967295"),
        ("http://h:1 weight=0", "weight must be at least 1"),
        ("http://h:1 max_sessions=-1", "max_sessions must be a whole number from 1 to 4294967295"),
        ("http://h:1 max_sessions=0", "max_sessions must be at least 1 (leave it out for no limit)"),
        ("http://h:1 kind=cloud", "unknown kind 'cloud': expected residential, datacenter or mobile"),
        ("http://h:1 region=", "region must not be blank"),
        ("http://h:1 tags=a,,b", "tags must not be blank"),
        ("http://h:1 region=eu region=us", "region is given more than once"),
        ("http://h:1 cost=1 cost_per_request=2", "cost_per_request is given more than once"),
        ("http://h:1 url=http://h:2", "url is given more than once"),
    ];
    for (line, expected) in cases {
        let loaded = ProxyList::parse_text_lenient(line);
        let [rejected] = loaded.rejected.as_slice() else { panic!("{line:?} should be rejected, got {loaded:?}") };
        assert_eq!(rejected.location, Location::Line(1), "{line:?}");
        assert_eq!(rejected.reason.to_string(), expected, "{line:?}");
    }
}

#[test]
fn reasons_are_typed_for_callers_that_match_on_them() {
    let loaded = ProxyList::parse_text_lenient("http://h:99999\nhttp://h:1 weight=x\nhttp://h:2 kind=cloud");

    let reasons: Vec<&RejectReason> = loaded.rejected.iter().map(|r| &r.reason).collect();
    assert!(matches!(reasons[0], RejectReason::Proxy(ProxyError::PortOutOfRange(Some(99999)))));
    assert!(matches!(reasons[1], RejectReason::InvalidValue { key: "weight", .. }));
    assert!(matches!(reasons[2], RejectReason::Proxy(ProxyError::UnknownKind(kind)) if kind == "cloud"));
}

#[test]
fn an_unknown_key_is_quoted_only_when_short_and_plain() {
    let long_key = "k".repeat(100);
    let text = format!("http://h:1 {long_key}=1\nhttp://h:2 colour/région=1\n");

    let loaded = ProxyList::parse_text_lenient(&text);

    assert_eq!(loaded.rejected[0].reason, RejectReason::UnknownKey(format!("{}…", "k".repeat(32))));
    assert_eq!(loaded.rejected[1].reason, RejectReason::UnknownKey("***".to_owned()));
}

#[test]
fn lenient_mode_keeps_good_lines_and_returns_rejected_ones() {
    let text = "http://h:1\nhttp://h:99999\n# comment\nhttp://h:3 region=eu\nhttp://h:4 kind=cloud\n";

    let loaded = ProxyList::parse_text_lenient(text);

    assert_eq!(ids(&loaded.proxies), ["h:1", "h:3"]);
    let lines: Vec<Location> = loaded.rejected.iter().map(|r| r.location).collect();
    assert_eq!(lines, [Location::Line(2), Location::Line(5)]);
}

#[test]
fn duplicate_id_names_the_first_line() {
    let text = "http://h:1 id=a\nhttp://h:2 id=b\n\nhttp://h:3 id=a\n";

    let err = ProxyList::parse_text(text).expect_err("duplicate id");

    assert_eq!(err.to_string(), "proxy list line 4: duplicate proxy id 'a': already used at line 1");
}

#[test]
fn the_same_proxy_twice_is_a_duplicate_of_its_derived_id() {
    let loaded = ProxyList::parse_text_lenient("http://u:p@h:1\nhttp://u:p@h:1\nhttp://v:p@h:1\n");

    assert_eq!(loaded.proxies.len(), 2, "a different user on the same gateway is another proxy");
    assert!(matches!(&loaded.rejected[0].reason, RejectReason::DuplicateId { first: Location::Line(1), .. }));
}

#[test]
fn a_rejected_line_does_not_claim_its_id() {
    let loaded = ProxyList::parse_text_lenient("http://h:0 id=a\nhttp://h:1 id=a\n");

    assert_eq!(ids(&loaded.proxies), ["a"]);
    assert_eq!(loaded.rejected[0].location, Location::Line(1));
}

#[test]
fn credentials_cut_by_a_space_are_refused_without_quoting_them() {
    // The URL token ends at the space, so "http://user:12" would read as host "user", port 12.
    let loaded = ProxyList::parse_text_lenient("http://user:12 34@h:1\nhttp://user:pa #ss@h:1\n");

    assert_eq!(loaded.rejected[0].reason, RejectReason::SplitCredentials);
    assert_eq!(loaded.rejected[1].reason, RejectReason::Proxy(ProxyError::InvalidPort));
}

#[test]
fn a_password_with_an_unencoded_at_then_a_space_is_refused_without_echoing_a_piece() {
    // The URL token is "http://user:p@ss" (host "ss"); "wo=rd@h:1" would read as the
    // unknown key "wo", a piece of the password.
    let text = "http://user:p@ss wo=rd@h:1\nhttp://user:x@y z@h:1 id=a\n";
    let loaded = ProxyList::parse_text_lenient(text);

    assert_eq!(loaded.rejected.len(), 2);
    for rejected in &loaded.rejected {
        assert_eq!(rejected.reason, RejectReason::SplitCredentials);
        let shown = rejected.to_string();
        for piece in ["wo", "rd", "p@ss", "x@y", "user"] {
            assert!(!shown.contains(piece), "{piece:?} shown in {shown:?}");
        }
    }
    let strict = ProxyList::parse_text(text).expect_err("refused").to_string();
    assert!(!strict.contains("wo") && !strict.contains("rd@"), "{strict}");
}

#[test]
fn an_at_sign_in_a_comment_is_just_a_comment() {
    let proxies = ProxyList::parse_text("http://h:1 # ask ops@example.com").expect("valid list");

    assert_eq!(ids(&proxies), ["h:1"]);
}

#[test]
fn a_misplaced_scheme_does_not_quote_the_userinfo_before_it() {
    let loaded = ProxyList::parse_text_lenient("user:pass@http://h:1\n");

    assert_eq!(loaded.rejected[0].reason, RejectReason::Proxy(ProxyError::UnsupportedScheme("***".to_owned())));
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_array_of_objects_becomes_proxies() {
    let json = r#"[
        {"url": "socks5://u:p@10.0.0.1:1080", "id": "a", "region": "us", "provider": "acme", "kind": "mobile",
         "tags": ["fast", "sticky"], "cost_per_request": 0.01, "max_sessions": 4, "weight": 2},
        {"url": "http://10.0.0.2:8080", "cost": 1}
    ]"#;

    let proxies = ProxyList::parse_json(json).expect("valid list");

    assert_eq!(ids(&proxies), ["a", "10.0.0.2:8080"]);
    let meta = proxies[0].meta();
    assert_eq!(
        (meta.region.as_deref(), meta.provider.as_deref(), meta.kind),
        (Some("us"), Some("acme"), Some(ProxyKind::Mobile))
    );
    assert_eq!(meta.tags.len(), 2);
    assert_eq!((meta.cost_per_request, meta.max_sessions, meta.weight), (0.01, Some(4), 2));
    assert_eq!(proxies[1].meta().cost_per_request, 1.0);
}

#[test]
fn json_list_may_be_wrapped_in_a_proxies_object() {
    let proxies = ProxyList::parse_json(r#"{"proxies": [{"url": "http://h:1"}]}"#).expect("valid list");

    assert_eq!(ids(&proxies), ["h:1"]);
}

#[test]
fn json_null_is_the_same_as_leaving_a_field_out() {
    let proxies =
        ProxyList::parse_json(r#"[{"url": "http://h:1", "region": null, "max_sessions": null, "tags": null}]"#)
            .expect("valid list");

    assert_eq!(proxies[0].meta(), &Default::default());
}

#[test]
fn json_entry_errors_name_the_entry_and_field_without_quoting_values() {
    let json = r#"[
        {"url": "http://h:1"},
        {"url": "http://h:99999"},
        {"url": "http://h:3", "weight": "heavy"},
        {"url": "http://h:4", "tags": "a,b"},
        {"url": "http://h:5", "colour": "red"},
        {"region": "eu"},
        "http://h:7",
        {"url": 8},
        {"url": "http://h:9", "kind": "cloud"},
        {"url": "http://h:10", "cost_per_request": -1},
        {"url": "http://h:11", "id": "x"},
        {"url": "http://h:12", "id": "x"}
    ]"#;

    let err = ProxyList::parse_json(json).expect_err("bad entries");

    let expected = [
        (2, "port 99999 out of range 1..=65535"),
        (3, "weight must be a whole number from 1 to 4294967295"),
        (4, "tags must be a list of strings (comma-separated in a text list)"),
        (
            5,
            "unknown key 'colour': expected id, region, provider, kind, tags, cost_per_request, max_sessions or weight",
        ),
        (6, "missing url"),
        (7, "expected an object (a table in TOML) with a url and optional metadata"),
        (8, "url must be a proxy URL string"),
        (9, "unknown kind 'cloud': expected residential, datacenter or mobile"),
        (10, "cost_per_request -1 must be a finite number >= 0"),
        (12, "duplicate proxy id 'x': already used at entry 11"),
    ];
    let expected: Vec<(usize, String)> = expected.into_iter().map(|(n, s)| (n, s.to_owned())).collect();
    assert_eq!(reasons(&err), expected);
    assert!(err.to_string().starts_with("proxy list has 10 bad entries:\n  entry 2: port 99999"), "{err}");
}

#[test]
fn json_lenient_mode_parses_each_entry_on_its_own() {
    let json = r#"[{"url": "http://h:1"}, {"url": "http://h:2", "weight": [1]}, {"url": "http://h:3"}]"#;

    let loaded = ProxyList::parse_json_lenient(json).expect("valid JSON");

    assert_eq!(ids(&loaded.proxies), ["h:1", "h:3"]);
    assert_eq!(
        loaded.rejected[0].to_string(),
        "proxy list entry 2: weight must be a whole number from 1 to 4294967295"
    );
}

#[test]
fn json_syntax_error_reports_line_and_column() {
    let json = "[\n  {\"url\": \"http://h:1\"}\n  {\"url\": \"http://h:2\"}\n]";

    let err = ProxyList::parse_json_lenient(json).expect_err("missing comma");

    assert!(matches!(err, ListError::Syntax { line: 3, column: 3, .. }), "{err:?}");
    assert_eq!(err.to_string(), "proxy list is not valid JSON at line 3, column 3: expected `,` or `]`");
}

#[test]
fn json_top_level_must_be_a_list_of_proxies() {
    for json in [r#"{"url": "http://h:1"}"#, r#"{"proxies": [], "extra": 1}"#, "42", r#"{"proxies": {}}"#] {
        let err = ProxyList::parse_json(json).expect_err(json);
        assert!(matches!(err, ListError::Shape { .. }), "{json}: {err:?}");
    }
    assert!(ProxyList::parse_json("[]").expect("empty list").is_empty());
}

// ---------------------------------------------------------------- TOML

#[test]
fn toml_proxy_tables_become_proxies() {
    let toml = r#"
        [[proxy]]
        url = "socks5h://u:p@10.0.0.1:1080"
        id = "a"
        region = "us"
        provider = "acme"
        kind = "datacenter"
        tags = ["fast"]
        cost_per_request = 0.5
        max_sessions = 8
        weight = 4

        [[proxy]]
        url = "http://10.0.0.2:8080"
        cost = 2   # an integer cost is fine
    "#;

    let proxies = ProxyList::parse_toml(toml).expect("valid list");

    assert_eq!(ids(&proxies), ["a", "10.0.0.2:8080"]);
    let meta = proxies[0].meta();
    assert_eq!(
        (meta.region.as_deref(), meta.provider.as_deref(), meta.kind),
        (Some("us"), Some("acme"), Some(ProxyKind::Datacenter))
    );
    assert_eq!((meta.cost_per_request, meta.max_sessions, meta.weight), (0.5, Some(8), 4));
    assert_eq!(proxies[1].meta().cost_per_request, 2.0);
}

#[test]
fn toml_entry_errors_name_the_entry() {
    let toml = r#"
        [[proxy]]
        url = "http://h:1"
        id = "a"

        [[proxy]]
        url = "http://h:99999"

        [[proxy]]
        url = "http://h:3"
        max_sessions = 5000000000

        [[proxy]]
        url = "http://h:4"
        id = "a"

        [[proxy]]
        url = "http://h:5"
        kind = 3
    "#;

    let loaded = ProxyList::parse_toml_lenient(toml).expect("valid TOML");

    assert_eq!(ids(&loaded.proxies), ["a"]);
    let shown: Vec<String> = loaded.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "proxy list entry 2: port 99999 out of range 1..=65535",
            "proxy list entry 3: max_sessions must be a whole number from 1 to 4294967295",
            "proxy list entry 4: duplicate proxy id 'a': already used at entry 1",
            "proxy list entry 5: kind must be one of residential, datacenter or mobile",
        ]
    );
}

#[test]
fn toml_syntax_error_reports_line_and_column() {
    let toml = "[[proxy]]\nurl = \"http://h:1\"\nweight = \n";

    let err = ProxyList::parse_toml(toml).expect_err("missing value");

    assert!(matches!(err, ListError::Syntax { line: 3, .. }), "{err:?}");
    assert!(err.to_string().starts_with("proxy list is not valid TOML at line 3, column "), "{err}");
}

#[test]
fn toml_top_level_holds_only_proxy_tables() {
    for toml in ["[proxy]\nurl = \"http://h:1\"\n", "name = \"pool\"\n[[proxy]]\nurl = \"http://h:1\"\n"] {
        let err = ProxyList::parse_toml(toml).expect_err(toml);
        assert!(matches!(err, ListError::Shape { .. }), "{toml}: {err:?}");
    }
    assert!(ProxyList::parse_toml("").expect("empty list").is_empty());
}

// ---------------------------------------------------------------- files

/// A file in the temp directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("harvester-list-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("temp dir is writable");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn load_path_picks_the_format_by_extension() {
    let text = TempFile::new("proxies.txt", "http://h:1\n");
    let json = TempFile::new("proxies.JSON", r#"[{"url": "http://h:2"}]"#);
    let toml = TempFile::new("proxies.toml", "[[proxy]]\nurl = \"http://h:3\"\n");

    for (file, id) in [(&text, "h:1"), (&json, "h:2"), (&toml, "h:3")] {
        assert_eq!(ids(&ProxyList::load_path(&file.0).expect("valid file")), [id]);
    }
}

#[test]
fn load_path_lenient_returns_the_rejected_lines() {
    let file = TempFile::new("mixed.txt", "http://h:1\nhttp://h:0\n");

    let loaded = ProxyList::load_path_lenient(&file.0).expect("readable");

    assert_eq!((loaded.proxies.len(), loaded.rejected.len()), (1, 1));
}

#[test]
fn an_unreadable_file_is_an_io_error_naming_the_path() {
    let path = std::env::temp_dir().join("harvester-list-no-such-file.txt");

    let err = ProxyList::load_path(&path).expect_err("missing file");

    assert!(matches!(&err, ListError::Io { path: p, .. } if *p == path), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot read proxy list {}: ", path.display())), "{err}");
}

// ---------------------------------------------------------------- no input makes a parser panic

/// Lines the lenient text parser must account for: not blank, not a comment.
fn content_lines(input: &str) -> usize {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    input.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).count()
}

fn from_fragments(fragments: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(fragments), 0..60).prop_map(|parts| parts.concat())
}

const TEXT_FRAGMENTS: &[&str] = &[
    "http://",
    "https://",
    "socks5://",
    "socks5h://",
    "ftp://",
    "@",
    ":",
    "[",
    "]",
    "::1",
    "#",
    " #",
    "=",
    " ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "0",
    "1",
    "8080",
    "99999",
    "65536",
    "h",
    "10.0.0.1",
    "user",
    "pa%20ss",
    "%zz",
    "/",
    "?",
    "kind=",
    "mobile",
    "region=",
    "id=",
    "tags=",
    ",",
    "cost=",
    "-1",
    "1e309",
    "NaN",
    "max_sessions=",
    "weight=",
    "url=",
    "é",
    "\u{feff}",
    "\u{85}",
    "\0",
];

const JSON_FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"url\"",
    "\"proxies\"",
    "\"http://u:p@h:1\"",
    "\"http://h:99999\"",
    "\"kind\"",
    "\"mobile\"",
    "\"tags\"",
    "[\"a\"]",
    "\"weight\"",
    "0",
    "1",
    "-1",
    "1e400",
    "18446744073709551616",
    "null",
    "true",
    "\"id\"",
    "\"x\"",
    " ",
    "\n",
    "\"",
    "\\",
];

const TOML_FRAGMENTS: &[&str] = &[
    "[[proxy]]",
    "[proxy]",
    "\n",
    "url = ",
    "\"http://u:p@h:1\"",
    "\"http://h:99999\"",
    "kind = ",
    "\"mobile\"",
    "tags = ",
    "[\"a\", 1]",
    "weight = ",
    "0",
    "5000000000",
    "cost = ",
    "nan",
    "-inf",
    "1.5",
    "id = ",
    "\"x\"",
    "1979-05-27T07:32:00Z",
    "{",
    "}",
    "=",
    "\"",
    "'",
    "#",
    " ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn text_parsing_never_panics_and_accounts_for_every_line(
        input in prop_oneof![any::<String>(), from_fragments(TEXT_FRAGMENTS)]
    ) {
        let loaded = ProxyList::parse_text_lenient(&input);
        prop_assert_eq!(loaded.proxies.len() + loaded.rejected.len(), content_lines(&input));
        match ProxyList::parse_text(&input) {
            Ok(proxies) => {
                prop_assert!(loaded.rejected.is_empty());
                prop_assert_eq!(proxies, loaded.proxies);
            }
            // Compared as text: a rejected `cost=NaN` carries NaN, which is not equal to itself.
            Err(err) => prop_assert_eq!(format!("{:?}", err.rejected()), format!("{:?}", loaded.rejected)),
        }
    }

    #[test]
    fn json_parsing_never_panics_and_strict_agrees_with_lenient(
        input in prop_oneof![any::<String>(), from_fragments(JSON_FRAGMENTS)]
    ) {
        let lenient = ProxyList::parse_json_lenient(&input);
        let strict = ProxyList::parse_json(&input);
        if let (Ok(loaded), Ok(proxies)) = (&lenient, &strict) {
            prop_assert!(loaded.rejected.is_empty());
            prop_assert_eq!(proxies, &loaded.proxies);
        }
        if let Ok(serde_json::Value::Array(entries)) = serde_json::from_str::<serde_json::Value>(&input) {
            let loaded = lenient.expect("a JSON array is a list");
            prop_assert_eq!(loaded.proxies.len() + loaded.rejected.len(), entries.len());
        }
    }

    #[test]
    fn toml_parsing_never_panics_and_strict_agrees_with_lenient(
        input in prop_oneof![any::<String>(), from_fragments(TOML_FRAGMENTS)]
    ) {
        let lenient = ProxyList::parse_toml_lenient(&input);
        let strict = ProxyList::parse_toml(&input);
        if let (Ok(loaded), Ok(proxies)) = (&lenient, &strict) {
            prop_assert!(loaded.rejected.is_empty());
            prop_assert_eq!(proxies, &loaded.proxies);
        }
    }

    #[test]
    fn proxy_url_parsing_never_panics(input in prop_oneof![any::<String>(), from_fragments(TEXT_FRAGMENTS)]) {
        let _ = Proxy::parse(&input);
    }
}

// ---------------------------------------------------------------- secrets in bad lines

/// Credentials drawn from letters that no message of ours uses together, and the
/// characters that cut or split a line: white space, `@`, `=`, `#`, `:`, `/`, `%`.
fn secret() -> impl Strategy<Value = String> {
    let letters = || "[QVWXZ]{1,8}";
    prop_oneof![
        prop::collection::vec(
            prop::sample::select(&['Q', 'V', 'W', 'X', 'Z', '@', ' ', '=', '#', ':', '/', '%', '\t'][..]),
            1..24
        )
        .prop_map(|chars| chars.into_iter().collect()),
        // The shapes that cut a line where it hurts: `a@b c=d`, `a b@c`, `a #b`.
        (letters(), letters(), letters(), letters()).prop_map(|(a, b, c, d)| format!("{a}@{b} {c}={d}")),
        (letters(), letters(), letters()).prop_map(|(a, b, c)| format!("{a} {b}@{c}")),
        (letters(), letters()).prop_map(|(a, b)| format!("{a} #{b}")),
    ]
}

/// Every 4-character window of `secret` with at least two of its letters: what could
/// not appear in a message by chance.
fn pieces(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(4)
        .filter(|w| w.iter().filter(|c| c.is_ascii_uppercase()).count() >= 2)
        .map(|w| w.iter().collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// However a user name or password is mangled (unencoded, cut by white space, with
    /// `@` or `=` inside), what is said about the line never shows a piece of it.
    #[test]
    fn no_error_about_a_line_shows_a_piece_of_its_credentials(
        user in secret(),
        password in secret(),
        scheme in prop::sample::select(&["http", "socks5h", "https"][..]),
        tail in prop::sample::select(&["", " id=a", " region=eu # note", " kind=bogus", " wat=1"][..]),
    ) {
        let line = format!("{scheme}://{user}:{password}@h.example:8080{tail}\n");
        let mut said = Vec::new();
        let loaded = ProxyList::parse_text_lenient(&line);
        said.extend(loaded.rejected.iter().map(|r| format!("{r} {r:?}")));
        said.extend(loaded.proxies.iter().map(|p| format!("{p} {p:?} {}", p.id())));
        if let Err(e) = ProxyList::parse_text(&line) {
            said.push(format!("{e} {e:?}"));
        }
        let json = serde_json::json!([{ "url": format!("{scheme}://{user}:{password}@h.example:8080"), "id": 7 }]).to_string();
        if let Err(e) = ProxyList::parse_json(&json) {
            said.push(format!("{e} {e:?}"));
        }
        if let Err(e) = Proxy::parse(line.trim_end()) {
            said.push(format!("{e} {e:?}"));
        }
        for piece in pieces(&user).into_iter().chain(pieces(&password)) {
            for text in &said {
                prop_assert!(!text.contains(&piece), "{piece:?} of the credentials in {text:?}");
            }
        }
    }
}
