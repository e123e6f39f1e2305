//! The operations kit against the real thing: `promtool` checks and unit-tests the rules in
//! `ops/prometheus`, then a real Prometheus scrapes a real collector (the built binary, on
//! loopback) while the rules run in it, and
//! - every series the rules and the Grafana dashboard (`ops/grafana/harvester.json`) name
//!   is served, with the labels they use;
//! - alerts fire in a run built to fire them: a provider whose proxies are all banned
//!   (`HarvesterProviderSuccessLow`) and a site that starts answering 404 to everything
//!   (`HarvesterAnomaly` on the error rate, and `HarvesterSiteFailing`);
//! - every query of every dashboard panel returns data.
//!
//! With `HARVESTER_DASHBOARD_SVG=path`, the dashboard is drawn from the run's own figures
//! into that file (the README's picture comes from here).

mod common;
use common::http_body;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use harvester_testbed::support::{ServerProcess, eventually, eventually_some, find_program};
use harvester_testbed::{FaultProxy, TargetServer};
use serde_json::Value;

fn ops(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ops").join(path)
}

fn promtool(args: &[&str]) -> String {
    let promtool = find_program("promtool").expect("promtool is installed (scripts/test.sh installs prometheus)");
    let output = Command::new(promtool).args(args).current_dir(ops("prometheus")).output().expect("promtool runs");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn the_rules_pass_promtool_check_and_their_unit_tests() {
    assert!(promtool(&["check", "rules", "harvester.rules.yml"]).contains("SUCCESS"));
    assert!(promtool(&["test", "rules", "harvester.rules.test.yml"]).contains("SUCCESS"));
}

/// Every alert of the rules file.
fn alert_names(rules: &str) -> BTreeSet<String> {
    rules.lines().filter_map(|line| line.trim().strip_prefix("- alert: ")).map(str::to_owned).collect()
}

#[test]
fn every_alert_has_a_unit_test_that_fires_it() {
    let rules = std::fs::read_to_string(ops("prometheus/harvester.rules.yml")).expect("rules");
    let tests = std::fs::read_to_string(ops("prometheus/harvester.rules.test.yml")).expect("rule tests");
    let tested: BTreeSet<String> = tests
        .split("alertname: ")
        .skip(1)
        .filter(|rest| rest.lines().nth(1).is_some_and(|next| next.contains("exp_alerts:") && !next.contains("[]")))
        .filter_map(|rest| rest.lines().next().map(|name| name.trim().to_owned()))
        .collect();
    let alerts = alert_names(&rules);
    // The degraded-site warning is the failing-site alert's lower band, tested not to fire
    // alongside it.
    let untested: Vec<_> = alerts.difference(&tested).filter(|name| *name != "HarvesterSiteDegraded").collect();
    assert!(untested.is_empty(), "alerts no unit test fires: {untested:?}");
}

/// Every query of the dashboard (its panel, the query with Grafana's `$__rate_interval`
/// made concrete, its legend).
fn dashboard_queries() -> Vec<(String, String, String)> {
    let dashboard: Value =
        serde_json::from_slice(&std::fs::read(ops("grafana/harvester.json")).expect("dashboard")).expect("JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "a dashboard of {} panels", panels.len());
    panels
        .iter()
        .flat_map(|panel| {
            let title = panel["title"].as_str().expect("a title").to_owned();
            panel["targets"]
                .as_array()
                .expect("targets")
                .iter()
                .map(move |target| {
                    let expr = target["expr"].as_str().expect("a query").replace("$__rate_interval", "15s");
                    (title.clone(), expr, target["legendFormat"].as_str().unwrap_or_default().to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Metric names in a PromQL expression (identifiers before `{`, `[`, `)` or the end that are
/// not functions, keywords or label names), recording rules (`a:b:c`) left out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "sum",
        "avg",
        "max",
        "min",
        "count",
        "by",
        "without",
        "rate",
        "increase",
        "deriv",
        "histogram_quantile",
        "and",
        "or",
        "unless",
        "le",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
    ];
    let mut names = BTreeSet::new();
    let mut in_braces = 0usize;
    // Inside `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`: label names.
    let mut in_grouping = false;
    let mut word = String::new();
    let mut chars = expr.chars().chain(std::iter::once(' '));
    while let Some(c) = chars.next() {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            let is_number = word.starts_with(|first: char| first.is_ascii_digit());
            let is_label = in_braces > 0 || in_grouping;
            if matches!(word.as_str(), "by" | "without" | "on" | "ignoring") {
                in_grouping = true;
            } else if !is_number && !is_label && !WORDS.contains(&word.as_str()) && !word.contains(':') && c != '(' {
                names.insert(word.clone());
            }
            word.clear();
        }
        match c {
            '{' => in_braces += 1,
            '}' => in_braces = in_braces.saturating_sub(1),
            ')' => in_grouping = false,
            '"' => {
                // A label value: skip to its closing quote.
                for next in chars.by_ref() {
                    if next == '"' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    names
}

/// `text` percent-encoded for a query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The result vector of an instant query (empty while Prometheus has nothing).
async fn query(prometheus: &str, expr: &str) -> Vec<Value> {
    let body = http_body(prometheus, &format!("/api/v1/query?query={}", encode(expr))).await;
    let Ok(reply) = serde_json::from_str::<Value>(&body) else { return Vec::new() };
    assert_ne!(reply["status"], "error", "{expr}: {reply}");
    reply["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The labels every series of `metric` must carry for the rules and the dashboard.
fn expected_labels(metric: &str) -> &'static [&'static str] {
    match metric {
        "data_collection_requests_total" => &["platform", "status", "instance", "job"],
        "data_collection_request_duration_seconds_bucket" => &["platform", "le"],
        "proxy_success_rate" => &["provider", "region"],
        "circuit_breaker_state" => &["host"],
        "processing_queue_depth" => &["queue_name"],
        "harvester_site_spend" | "harvester_site_ok_urls" => &["platform"],
        "harvester_proxy_spend" => &["provider"],
        "harvester_retry_retries_total" | "harvester_retry_budget_exhausted_total" => &["retry"],
        "harvester_anomaly_severity" => &["signal"],
        _ => &["instance"],
    }
}

/// The rules with every `for:` dropped, so that an alert fires on its first evaluation: the
/// `for` durations are promtool's to test, the expressions this run's.
fn rules_firing_at_once() -> String {
    std::fs::read_to_string(ops("prometheus/harvester.rules.yml"))
        .expect("rules")
        .lines()
        .filter(|line| !line.trim_start().starts_with("for:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_a_collector_fires_alerts_and_answers_every_dashboard_query() {
    let site = TargetServer::start().await.expect("site starts");
    let good = FaultProxy::slow(Duration::from_millis(5)).await.expect("proxy starts");
    let banning = [
        FaultProxy::banning_403().await.expect("proxy starts"),
        FaultProxy::banning_403().await.expect("proxy starts"),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let proxies = dir.path().join("proxies.txt");
    let mut list = format!("{} id=acme-1 provider=acme region=eu kind=residential cost=0.003\n", good.url());
    for (n, proxy) in banning.iter().enumerate() {
        list += &format!("{} id=umbrella-{n} provider=umbrella region=eu kind=datacenter cost=0.0005\n", proxy.url());
    }
    std::fs::write(&proxies, list).expect("write proxies");
    // Ten seconds of pages at 50 a second, then a site that answers 404 to everything.
    let urls = dir.path().join("urls.txt");
    let pages = (0..500).map(|n| format!("{}/product/{n}\n", site.url()));
    let gone = (0..5_000).map(|n| format!("{}/gone/{n}\n", site.url()));
    std::fs::write(&urls, pages.chain(gone).collect::<String>()).expect("write urls");
    let metrics_addr = format!("127.0.0.1:{}", harvester_testbed::free_port().expect("a free port"));
    let mut collector = tokio::process::Command::new(env!("CARGO_BIN_EXE_collect"))
        .arg("--urls")
        .arg(&urls)
        .arg("--proxies")
        .arg(&proxies)
        .arg("--out")
        .arg(dir.path().join("out.jsonl"))
        .args(["--rate", "50", "--max-attempts", "3", "--quiet", "--metrics-addr", &metrics_addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("collect starts");

    let rules = rules_firing_at_once();
    let target = metrics_addr.clone();
    let prometheus = ServerProcess::start("prometheus", move |dir: &Path, port: u16| -> Vec<OsString> {
        std::fs::write(dir.join("rules.yml"), &rules).expect("write rules");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: harvester\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        [
            format!("--config.file={}", dir.join("prometheus.yml").display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    });
    let api = prometheus.addr().to_string();
    let within = Duration::from_secs(90);

    // The collector is up and scraped.
    let api_ref = api.as_str();
    eventually(within, "Prometheus scrapes the collector", || async move {
        query(api_ref, "up{job=\"harvester\"} == 1").await.len() == 1
    })
    .await;

    // Alerts fire: every proxy of umbrella is banned; then the site fails everything.
    let fired = eventually_some(within, "the provider and anomaly alerts fire", || async move {
        let alerts = query(api_ref, "ALERTS{alertstate=\"firing\"}").await;
        let names: BTreeMap<String, Value> = alerts
            .into_iter()
            .map(|alert| {
                (alert["metric"]["alertname"].as_str().unwrap_or_default().to_owned(), alert["metric"].clone())
            })
            .collect();
        let wanted = ["HarvesterProviderSuccessLow", "HarvesterAnomaly", "HarvesterSiteFailing"];
        wanted.iter().all(|name| names.contains_key(*name)).then_some(names)
    })
    .await;
    assert_eq!(fired["HarvesterProviderSuccessLow"]["provider"], "umbrella");
    assert_eq!(fired["HarvesterAnomaly"]["signal"], "error_rate");
    assert!(!fired.contains_key("HarvesterCollectorDown"), "{fired:?}");

    // Every dashboard query answers, and every series the rules and the dashboard name is
    // there with its labels.
    let queries = dashboard_queries();
    for (title, expr, _) in &queries {
        let expr = expr.as_str();
        eventually(within, &format!("panel {title:?} has data: {expr}"), || async move {
            !query(api_ref, expr).await.is_empty()
        })
        .await;
    }
    let rules = std::fs::read_to_string(ops("prometheus/harvester.rules.yml")).expect("rules");
    let exprs: Vec<String> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr: "))
        .map(str::to_owned)
        .chain(queries.iter().map(|(_, expr, _)| expr.clone()))
        .collect();
    let mut names: BTreeSet<String> = exprs.iter().flat_map(|expr| metric_names(expr)).collect();
    // Multi-line recording rules are read from the file whole.
    names.extend(metric_names(&rules_block_exprs(&rules)));
    // Not in this run: `up` is Prometheus' own; a shared queue's depth needs --queue (its
    // series is checked in tests/deploy.rs and tests/queue.rs).
    names.remove("up");
    for name in &names {
        let series = query(api_ref, name).await;
        if series.is_empty() {
            let served = http_body(&metrics_addr, "/metrics").await;
            let lines: Vec<&str> = served.lines().filter(|line| line.contains(name.as_str())).take(3).collect();
            panic!(
                "{name} is not served (used by the rules or the dashboard); the collector: {:?}, its /metrics: {lines:?}",
                collector.try_wait()
            );
        }
        for label in expected_labels(name) {
            assert!(series.iter().all(|s| s["metric"].get(*label).is_some()), "{name} lacks label {label}: {series:?}");
        }
    }
    assert!(names.len() >= 12, "names read from the rules and the dashboard: {names:?}");

    if let Some(path) = std::env::var_os("HARVESTER_DASHBOARD_SVG") {
        draw_dashboard(api_ref, &queries, Path::new(&path)).await;
    }
    let _ = collector.start_kill();
    let _ = collector.wait().await;
    drop(prometheus);
}

/// The `expr: |` blocks of the rules file, joined.
fn rules_block_exprs(rules: &str) -> String {
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut out = String::new();
    // The indentation of the `expr: |` line while inside its block.
    let mut block: Option<usize> = None;
    for line in rules.lines() {
        match block {
            Some(at) if indent(line) > at && !line.trim_start().starts_with('#') => {
                out.push_str(line);
                out.push('\n');
            }
            _ => block = (line.trim() == "expr: |").then(|| indent(line)),
        }
    }
    out
}

/// A panel's title and its series: each a legend and its points (time, value).
type Panel = (String, Vec<(String, Vec<(f64, f64)>)>);

/// Draws each panel's series over the last minute from Prometheus into an SVG.
async fn draw_dashboard(prometheus: &str, queries: &[(String, String, String)], path: &Path) {
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let mut panels: BTreeMap<usize, Panel> = BTreeMap::new();
    let mut order = Vec::new();
    for (title, expr, legend) in queries {
        let index = match order.iter().position(|t| t == title) {
            Some(index) => index,
            None => {
                order.push(title.clone());
                order.len() - 1
            }
        };
        let path = format!("/api/v1/query_range?query={}&start={}&end={end}&step=1", encode(expr), end - 60);
        let body = http_body(prometheus, &path).await;
        let reply: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let entry = panels.entry(index).or_insert_with(|| (title.clone(), Vec::new()));
        for series in reply["data"]["result"].as_array().cloned().unwrap_or_default() {
            // The legend as Grafana shows it: `{{label}}` filled in from the series.
            let mut label = legend.clone();
            if let Some(labels) = series["metric"].as_object() {
                for (name, value) in labels {
                    label = label.replace(&format!("{{{{{name}}}}}"), value.as_str().unwrap_or_default());
                }
            }
            let points = series["values"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| Some((v[0].as_f64()?, v[1].as_str()?.parse::<f64>().ok()?)))
                        .filter(|(_, y)| y.is_finite())
                        .collect()
                })
                .unwrap_or_default();
            entry.1.push((if label.is_empty() { "all".to_owned() } else { label }, points));
        }
    }
    std::fs::write(path, svg(&panels)).expect("write the dashboard picture");
}

/// The panels as an SVG: two columns of small line charts, each with its series' legend.
fn svg(panels: &BTreeMap<usize, Panel>) -> String {
    const COLOURS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
    let (w, h) = (460.0, 190.0);
    let rows = panels.len().div_ceil(2);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>\n",
        2.0 * w + 30.0,
        rows as f64 * h + 20.0
    );
    for (index, (title, series)) in panels.values().enumerate() {
        let (x0, y0) = (10.0 + (index % 2) as f64 * (w + 10.0), 10.0 + (index / 2) as f64 * h);
        out += &format!(
            "<g transform=\"translate({x0},{y0})\"><rect width=\"{w}\" height=\"{}\" fill=\"white\" stroke=\"#ccc\"/>\n",
            h - 10.0
        );
        out += &format!("<text x=\"8\" y=\"16\" font-weight=\"bold\">{}</text>\n", escape(title));
        let points: Vec<&(f64, f64)> = series.iter().flat_map(|(_, p)| p).collect();
        let (t_min, t_max) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), (t, _)| (a.min(*t), b.max(*t)));
        let y_max = points.iter().map(|(_, y)| *y).fold(0.0f64, f64::max).max(1e-9);
        out += &format!(
            "<text x=\"{}\" y=\"34\" text-anchor=\"end\" fill=\"#666\">max {}</text>\n",
            w - 8.0,
            short(y_max)
        );
        let (px, py, pw, ph) = (40.0, 40.0, w - 60.0, h - 90.0);
        for (n, (label, points)) in series.iter().take(COLOURS.len()).enumerate() {
            let colour = COLOURS[n % COLOURS.len()];
            let path: Vec<String> = points
                .iter()
                .map(|(t, y)| {
                    let x = px + if t_max > t_min { (t - t_min) / (t_max - t_min) * pw } else { 0.0 };
                    format!("{x:.1},{:.1}", py + ph - y / y_max * ph)
                })
                .collect();
            out += &format!(
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                path.join(" ")
            );
            out += &format!(
                "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{}</text>\n",
                px + (n % 3) as f64 * 140.0,
                h - 30.0 + (n / 3) as f64 * 12.0,
                escape(label)
            );
        }
        out += &format!(
            "<line x1=\"{px}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/></g>\n",
            py + ph,
            px + pw,
            py + ph
        );
    }
    out + "</svg>\n"
}

fn short(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.4}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[test]
fn the_names_of_the_rules_file_are_metrics() {
    let rules = std::fs::read_to_string(ops("prometheus/harvester.rules.yml")).expect("rules");
    let names = metric_names(&rules_block_exprs(&rules));
    assert!(names.iter().all(|name| name.contains('_')), "{names:?}");
}

#[test]
fn metric_names_are_read_from_queries() {
    let names = metric_names(
        "sum by (platform) (rate(data_collection_requests_total{status=\"ok\"}[5m])) / harvester_pool_proxies and histogram_quantile(0.5, sum by (le, platform) (rate(x_bucket[1m]))) > 0.5",
    );
    assert_eq!(
        names,
        ["data_collection_requests_total", "harvester_pool_proxies", "x_bucket"]
            .map(str::to_owned)
            .into_iter()
            .collect()
    );
}
