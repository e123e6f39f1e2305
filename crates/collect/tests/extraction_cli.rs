//! `--extract-rules` on the command line: documented in `--help`, and a bad rule file refused
//! with exit code 2 before any work, naming the file, the host and what is wrong.

mod common;
use common::{run, write};

use std::path::Path;

#[test]
fn help_explains_the_rule_file() {
    let output = run(&["--help"]);

    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for part in ["--extract-rules <FILE>", "[hosts.\"shop.example.com\"]", "JSON-LD, microdata, OpenGraph"] {
        assert!(help.contains(part), "--help does not say {part:?}:\n{help}");
    }
}

#[test]
fn a_bad_rule_file_is_refused_with_code_2_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let urls = write(dir.path(), "urls.txt", "http://127.0.0.1:9/a\n");
    let proxies = write(dir.path(), "proxies.txt", "http://127.0.0.1:9 id=x\n");
    let bad_selector = write(dir.path(), "bad-selector.toml", "[hosts.\"shop.example\"]\nprice = \"span..price\"\n");
    let unknown_field = write(dir.path(), "unknown-field.toml", "[hosts.\"shop.example\"]\nprise = \"span.price\"\n");
    let out = dir.path().join("out.jsonl");
    let p = |path: &Path| path.to_str().expect("utf-8 path").to_owned();
    let cases = [
        (
            p(&bad_selector),
            format!(
                "extraction rules {}: host \"shop.example\": price: bad CSS selector \"span..price\"",
                p(&bad_selector)
            ),
        ),
        (
            p(&unknown_field),
            format!("extraction rules {}: host \"shop.example\": unknown field `prise`", p(&unknown_field)),
        ),
        ("/nonexistent/rules.toml".to_owned(), "--extract-rules /nonexistent/rules.toml: cannot read it".to_owned()),
    ];
    for (rules, expected) in cases {
        let output = run(&[
            "--urls",
            &p(&urls),
            "--proxies",
            &p(&proxies),
            "--extract-rules",
            &rules,
            "--out",
            &p(&out),
            "--quiet",
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{rules}: {stderr}");
        assert!(stderr.contains(&expected), "{rules}: expected {expected:?} in {stderr}");
        assert!(!out.exists(), "{rules}: nothing may be written before the rules are known good");
    }
}
