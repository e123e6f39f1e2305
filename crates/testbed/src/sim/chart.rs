//! The comparison drawn as one SVG: attempt success per balancer, and the shifting site's
//! success over time around its change. Plain SVG text, no fonts or plotting crate needed.

use std::fmt::Write;

use super::{Comparison, DEFAULT, ORACLE, ROUND_ROBIN};

const WIDTH: f64 = 920.0;
const HEIGHT: f64 = 700.0;
const LEFT: f64 = 250.0;
const RIGHT: f64 = 40.0;

/// Balancers drawn in the time panel, with their colours.
const LINES: [(&str, &str); 5] = [
    (ORACLE, "#222222"),
    (DEFAULT, "#1b9e77"),
    ("p2c", "#7570b3"),
    ("adaptive_quality", "#d95f02"),
    (ROUND_ROBIN, "#e7298a"),
];

fn colour(name: &str) -> &'static str {
    LINES.iter().find(|(n, _)| *n == name).map_or("#999999", |(_, c)| c)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The comparison as an SVG document: bars of mean attempt success per contender (with
/// the cost per URL relative to round robin beside each), and below, for the first seed,
/// each main balancer's attempt success at the shifting site per 10 s, around its change.
pub fn chart(comparison: &Comparison) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r##"<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##);
    let seeds = comparison.seeds();
    let _ = write!(
        svg,
        r#"<text x="20" y="24" font-size="15" font-weight="bold">Attempt success by balancer (mean of {} seeded worlds; cost per URL ÷ round robin in brackets)</text>"#,
        seeds.len()
    );
    bars(&mut svg, comparison, 40.0, 300.0);
    timeline(&mut svg, comparison, 395.0, 670.0);
    svg.push_str("</svg>\n");
    svg
}

fn bars(svg: &mut String, comparison: &Comparison, top: f64, bottom: f64) {
    let summaries = comparison.summaries();
    if summaries.is_empty() {
        return;
    }
    let plot = WIDTH - LEFT - RIGHT;
    let row = (bottom - top) / summaries.len() as f64;
    let x = |v: f64| LEFT + plot * v.clamp(0.0, 1.0);
    for tick in 0..=10 {
        let v = f64::from(tick) / 10.0;
        let _ = write!(
            svg,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{bottom}" stroke="#e5e5e5"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle" fill="#555">{v:.1}</text>"##,
            x(v),
            bottom + 14.0
        );
    }
    for (n, s) in summaries.iter().enumerate() {
        let y = top + row * n as f64 + row * 0.15;
        let h = row * 0.7;
        let fill = colour(&s.name);
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text><rect x="{LEFT}" y="{y:.1}" width="{:.1}" height="{h:.1}" fill="{fill}"/><text x="{:.1}" y="{:.1}">{:.3} ({:.2}×)</text>"#,
            LEFT - 8.0,
            y + h * 0.7,
            escape(&s.name),
            x(s.attempt_success) - LEFT,
            x(s.attempt_success) + 5.0,
            y + h * 0.7,
            s.attempt_success,
            s.cost_vs_round_robin.0,
        );
    }
}

fn timeline(svg: &mut String, comparison: &Comparison, top: f64, bottom: f64) {
    let Some(&seed) = comparison.seeds().first() else { return };
    let Some(reference) = comparison.run(ORACLE, seed).or_else(|| comparison.runs.first()) else { return };
    let buckets = reference.timeline.len().max(1);
    let plot = WIDTH - LEFT - RIGHT;
    let x = |b: f64| LEFT + plot * b / buckets as f64;
    let y = |v: f64| bottom - (bottom - top) * v.clamp(0.0, 1.0);
    let host = reference.shifting_site.and_then(|s| reference.hosts.get(s)).cloned().unwrap_or_default();
    let _ = write!(
        svg,
        r##"<text x="20" y="{:.1}" font-size="15" font-weight="bold">Attempt success at {} per {:.0} s (seed {seed})</text><text x="20" y="{:.1}" fill="#555">At the dashed line the site turns from banning datacenter proxies to banning residential ones.</text>"##,
        top - 30.0,
        escape(&host),
        super::BUCKET_SECS,
        top - 12.0
    );
    for tick in 0..=5 {
        let v = f64::from(tick) / 5.0;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#e5e5e5"/><text x="{2:.1}" y="{3:.1}" text-anchor="end" fill="#555">{v:.1}</text>"##,
            y(v),
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(v) + 4.0
        );
    }
    let change = reference.regime_change / super::BUCKET_SECS;
    let _ = write!(
        svg,
        r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{bottom}" stroke="#aa0000" stroke-dasharray="4 3"/><text x="{1:.1}" y="{2:.1}" fill="#aa0000">change at {3:.0} s</text>"##,
        x(change),
        x(change) + 4.0,
        bottom - 8.0,
        reference.regime_change
    );
    for step in [0usize, buckets / 2, buckets] {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{:.0} s</text>"##,
            x(step as f64),
            bottom + 14.0,
            step as f64 * super::BUCKET_SECS
        );
    }
    for (n, (name, stroke)) in LINES.iter().enumerate() {
        let Some(run) = comparison.run(name, seed) else { continue };
        let mut points = String::new();
        for (b, v) in run.shifting_series().iter().enumerate() {
            if let Some(v) = v {
                let _ = write!(points, "{:.1},{:.1} ", x(b as f64 + 0.5), y(*v));
            }
        }
        let _ = write!(
            svg,
            r#"<polyline points="{points}" fill="none" stroke="{stroke}" stroke-width="2"/><rect x="20" y="{0:.1}" width="14" height="4" fill="{stroke}"/><text x="40" y="{1:.1}">{2}</text>"#,
            top + 14.0 + 18.0 * n as f64,
            top + 19.0 + 18.0 * n as f64,
            escape(name)
        );
    }
}
