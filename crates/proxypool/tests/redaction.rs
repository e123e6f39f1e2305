//! Credentials never leave a `Proxy`: not through `Debug`, `Display`, serialization or any error.
//!
//! Every artefact the crate can show a user is rendered into one list and checked in one loop;
//! to cover a new artefact (pool stats, a new error), add it to `rendered_artefacts`.

use std::fmt::{Debug, Display};

use std::time::Duration;

use harvester_proxypool::list::{ListError, Loaded, ProxyList};
use harvester_proxypool::{Outcome, PoolConfig, Proxy, ProxyMeta, ProxyPool, RequestContext, Requirements};

const USER: &str = "user-XYZZY";
const PASSWORD: &str = "Pa55-w0rd-XYZZY";
/// In both the user name and the password, so a leaked fragment of either is caught too.
const MARKER: &str = "xyzzy";

/// Every way a user can see a proxy or a list error, as `(what it is, how it renders)`.
#[derive(Default)]
struct Artefacts(Vec<(String, String)>);

impl Artefacts {
    fn debug(&mut self, what: impl Into<String>, value: &impl Debug) {
        self.0.push((format!("Debug of {}", what.into()), format!("{value:?}")));
        // The alternate form lays fields out differently; check it too.
        let last = &self.0[self.0.len() - 1].0;
        self.0.push((format!("{last} (alternate)"), format!("{value:#?}")));
    }

    fn shown(&mut self, what: impl Into<String>, value: &(impl Debug + Display)) {
        let what = what.into();
        self.debug(what.clone(), value);
        self.0.push((format!("Display of {what}"), value.to_string()));
    }

    fn list_result(&mut self, what: &str, result: Result<Vec<Proxy>, ListError>) {
        match result {
            Ok(proxies) => self.debug(format!("{what}: proxies"), &proxies),
            Err(err) => self.shown(format!("{what}: error"), &err),
        }
    }

    fn loaded(&mut self, what: &str, result: Result<Loaded, ListError>) {
        match result {
            Ok(loaded) => {
                for rejected in &loaded.rejected {
                    self.shown(format!("{what}: rejected {}", rejected.location), rejected);
                    self.shown(format!("{what}: reason at {}", rejected.location), &rejected.reason);
                }
                self.debug(format!("{what}: loaded"), &loaded);
            }
            Err(err) => self.shown(format!("{what}: lenient error"), &err),
        }
    }
}

fn with_credentials(template: &str) -> String {
    let line = template.replace("USER", USER).replace("PASSWORD", PASSWORD);
    assert!(line.to_lowercase().contains(MARKER), "test input must hold credentials: {line}");
    line
}

/// Text lines holding the credentials, each bad (or duplicated) in its own way.
const TEXT_LINES: &[&str] = &[
    "http://USER:PASSWORD@10.0.0.1:99999",
    // The '@host' part is missing: the user name reads as the host, a numeric password as
    // the port. Neither may be echoed.
    "http://USER:98765432",
    "http://USER:PASSWORD@10.0.0.1:port",
    "ftp://USER:PASSWORD@10.0.0.1:21",
    "USER:PASSWORD@http://10.0.0.1:80",
    "USER:PASSWORD@10.0.0.1:80",
    "10.0.0.1:8080:USER:PASSWORD",
    "http://USER:PASSWORD@bad_host!:80",
    "http://USER:PASSWORD@[::1:80",
    "http://USER:PASSWORD@10.0.0.1:80/path",
    "http://USER:Pa55#w0rd-XYZZY@10.0.0.1:80",
    "http://USER:Pa55/w0rd-XYZZY@10.0.0.1:80",
    "http://USER:PASSWORD%zz@10.0.0.1:80",
    "http://:PASSWORD@10.0.0.1:80",
    "http://USER:PASSWORD@10.0.0.1:80 colour=blue",
    "http://USER:PASSWORD@10.0.0.1:80 region",
    "http://USER:PASSWORD@10.0.0.1:80 weight=heavy",
    "http://USER:PASSWORD@10.0.0.1:80 cost=-1",
    "http://USER:PASSWORD@10.0.0.1:80 kind=cloud",
    "http://USER:PASSWORD@10.0.0.1:80 region=eu region=us",
    "http://USER:PASSWORD@10.0.0.2:80 id=dup",
    "http://USER:PASSWORD@10.0.0.3:80 id=dup",
    "http://USER:PASSWORD@10.0.0.4:80",
    "http://USER:PASSWORD@10.0.0.4:80",
    // Credentials cut at a space or a comment: every fragment may be part of the password.
    "http://USER:Pa55 w0rd-XYZZY@10.0.0.5:80",
    "http://USER:Pa55 #w0rd-XYZZY@10.0.0.5:80",
    "http://USER:1234 PASSWORD=x@10.0.0.5:80",
    "http://USER:1234 region=PASSWORD@10.0.0.5:80",
    "http://USER:1234 PASSWORD",
    "http://USER: PASSWORD@10.0.0.5:80",
];

const JSON_ENTRIES: &[&str] = &[
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:99999"}"#,
    r#"{"url": "http://USER:98765432"}"#,
    r#"{"url": "ftp://USER:PASSWORD@10.0.0.1:21"}"#,
    r#"{"url": "USER:PASSWORD@http://10.0.0.1:80"}"#,
    r#"{"url": "http://USER:PASSWORD@bad_host!:80"}"#,
    r#"{"url": "http://USER:Pa55 w0rd-XYZZY@10.0.0.1:port"}"#,
    r#"{"url": ["http://USER:PASSWORD@10.0.0.1:80"]}"#,
    r#""http://USER:PASSWORD@10.0.0.1:80""#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "colour": "http://USER:PASSWORD@x"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "weight": "http://USER:PASSWORD@x"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "cost": "PASSWORD"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "tags": ["PASSWORD", 1]}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "kind": "cloud"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.1:80", "region": {"x": "PASSWORD"}}"#,
    r#"{"region": "eu", "provider": "USER:PASSWORD"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.2:80", "id": "dup"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.3:80", "id": "dup"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.4:80"}"#,
    r#"{"url": "http://USER:PASSWORD@10.0.0.4:80"}"#,
];

const TOML_ENTRIES: &[&str] = &[
    r#"url = "http://USER:PASSWORD@10.0.0.1:99999""#,
    r#"url = "http://USER:98765432""#,
    r#"url = "ftp://USER:PASSWORD@10.0.0.1:21""#,
    r#"url = "USER:PASSWORD@http://10.0.0.1:80""#,
    r#"url = ["http://USER:PASSWORD@10.0.0.1:80"]"#,
    "url = \"http://USER:PASSWORD@10.0.0.1:80\"\ncolour = \"PASSWORD\"",
    "url = \"http://USER:PASSWORD@10.0.0.1:80\"\nweight = \"http://USER:PASSWORD@x\"",
    "url = \"http://USER:PASSWORD@10.0.0.1:80\"\nkind = \"cloud\"",
    "url = \"http://USER:PASSWORD@10.0.0.2:80\"\nid = \"dup\"",
    "url = \"http://USER:PASSWORD@10.0.0.3:80\"\nid = \"dup\"",
];

/// Documents that do not parse at all, with the credentials next to the error.
const SYNTAX_ERRORS: &[(&str, &str)] = &[
    ("json", r#"[{"url": "http://USER:PASSWORD@10.0.0.1:80" "id": "a"}]"#),
    ("json", r#"[{"url": "http://USER:PASSWORD@10.0.0.1:80"#),
    ("json", r#"[{"url": http://USER:PASSWORD@10.0.0.1:80}]"#),
    ("json", r#"{"proxies": [], "http://USER:PASSWORD@10.0.0.1:80": 1}"#),
    ("toml", "[[proxy]]\nurl = \"http://USER:PASSWORD@10.0.0.1:80"),
    ("toml", "[[proxy]]\nurl = http://USER:PASSWORD@10.0.0.1:80"),
    ("toml", "[[proxy]]\nurl = \"http://USER:PASSWORD@10.0.0.1:80\"\nurl = \"http://USER:PASSWORD@h:1\""),
    ("toml", "[[proxy]]\n\"http://USER:PASSWORD@h:1\" = 1\n\"http://USER:PASSWORD@h:1\" = 2"),
    ("toml", "secret = \"http://USER:PASSWORD@h:1\"\n[[proxy]]\nurl = \"http://h:1\""),
];

fn rendered_artefacts() -> Artefacts {
    let mut artefacts = Artefacts::default();

    let proxy = Proxy::parse(&with_credentials("socks5h://USER:PASSWORD@10.0.0.9:1080")).expect("valid proxy");
    artefacts.shown("a proxy", &proxy);
    artefacts.0.push(("serde_json of a proxy".into(), serde_json::to_string(&proxy).expect("serializable")));
    artefacts.0.push(("id of a proxy".into(), proxy.id().to_string()));
    artefacts.0.push(("URL without credentials".into(), proxy.url_without_credentials()));
    artefacts.debug("credentials", &proxy.credentials().expect("has credentials"));

    let text: Vec<String> = TEXT_LINES.iter().map(|line| with_credentials(line)).collect();
    let text = text.join("\r\n");
    artefacts.list_result("text list", ProxyList::parse_text(&text));
    artefacts.loaded("text list", Ok(ProxyList::parse_text_lenient(&text)));

    let json: Vec<String> = JSON_ENTRIES.iter().map(|entry| with_credentials(entry)).collect();
    let json = format!("[\n{}\n]", json.join(",\n"));
    artefacts.list_result("JSON list", ProxyList::parse_json(&json));
    artefacts.loaded("JSON list", ProxyList::parse_json_lenient(&json));

    let toml: Vec<String> =
        TOML_ENTRIES.iter().map(|entry| format!("[[proxy]]\n{}\n", with_credentials(entry))).collect();
    let toml = toml.concat();
    artefacts.list_result("TOML list", ProxyList::parse_toml(&toml));
    artefacts.loaded("TOML list", ProxyList::parse_toml_lenient(&toml));

    // The pool: its Debug, its errors, leases, and the stats it reports after traffic.
    let pool = ProxyPool::builder().config(PoolConfig::default()).build().expect("valid config");
    let meta = ProxyMeta { max_sessions: Some(1), ..ProxyMeta::default() };
    pool.add(Proxy::with_meta(&with_credentials("http://USER:PASSWORD@10.0.0.10:3128"), meta).expect("valid"))
        .expect("fresh pool");
    let lease =
        pool.acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example")).expect("one proxy");
    artefacts.debug("a lease", &lease);
    artefacts
        .shown("a pool error", &pool.acquire(&Requirements::ANY, &RequestContext::new()).expect_err("at max sessions"));
    lease.report(Outcome::ban(Duration::from_millis(5), None));
    for _ in 0..5 {
        pool.acquire(&Requirements::ANY, &RequestContext::new())
            .expect("not banned for other hosts")
            .report(Outcome::timeout(Duration::from_secs(1)));
    }
    artefacts.debug("a pool", &pool);
    artefacts.debug("pool stats", &pool.stats());
    artefacts.0.push(("serde_json of pool stats".into(), serde_json::to_string(&pool.stats()).expect("serializable")));
    let empty = pool
        .acquire(&Requirements::ANY, &RequestContext::new().target_host("shop.example"))
        .expect_err("ejected and banned");
    artefacts.shown("an error naming ejected and banned proxies", &empty);

    for (format, document) in SYNTAX_ERRORS {
        let document = with_credentials(document);
        let (strict, lenient) = match *format {
            "json" => (ProxyList::parse_json(&document), ProxyList::parse_json_lenient(&document)),
            _ => (ProxyList::parse_toml(&document), ProxyList::parse_toml_lenient(&document)),
        };
        let what = format!("{format} document {document:?}");
        assert!(strict.is_err(), "{what} should not parse");
        artefacts.list_result(&what, strict);
        artefacts.loaded(&what, lenient);
    }

    artefacts
}

#[test]
fn credentials_never_appear_in_any_rendered_artefact() {
    assert!(USER.to_lowercase().contains(MARKER) && PASSWORD.to_lowercase().contains(MARKER));

    let artefacts = rendered_artefacts();

    assert!(artefacts.0.len() > 100, "the artefact list lost entries: {}", artefacts.0.len());
    for (what, rendered) in &artefacts.0 {
        // Lower-cased, because hosts are lower-cased when parsed and a cut-off user name may
        // end up as one.
        assert!(!rendered.to_lowercase().contains(MARKER), "{what} leaks credentials:\n{rendered}");
        assert!(!rendered.contains("98765432"), "{what} leaks a numeric password:\n{rendered}");
    }
}
