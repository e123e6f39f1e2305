//! The proxy-selection simulator: every balancer of the pool, side by side with round robin
//! and an oracle that knows each proxy's true success per site, through seeded worlds in
//! virtual time.
//!
//! ```sh
//! cargo run --release --example select                  # 3 seeds, 200 proxies, 10 virtual minutes
//! cargo run --release --example select -- --seeds 1,2,3,4,5 --proxies 500 --out target/select --per-site
//! ```
//!
//! Prints a Markdown table (attempt success, its ratio to the oracle, the share of the
//! round-robin-to-oracle gap closed, successes per virtual second against the oracle,
//! cost per URL against round robin, attempts per URL, and how long each balancer takes
//! to recover at the site that changes its mind halfway) and writes it with an SVG chart
//! to `--out` (default `target/select`). See `harvester_testbed::sim` for the world.
//! `--per-site` adds per-world tables (success per site, attempts by class and kind of
//! proxy, recovery); `--figures` prints the default balancer's figures for
//! `scripts/bench.sh`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use harvester_testbed::sim::{self, WorldConfig};

struct Args {
    seeds: Vec<u64>,
    config: WorldConfig,
    out: PathBuf,
    per_site: bool,
    figures: bool,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        seeds: vec![1, 2, 3],
        config: WorldConfig::default(),
        out: PathBuf::from("target/select"),
        per_site: false,
        figures: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |text: String| text.parse::<u64>().map_err(|_| format!("{flag}: {text:?} is not a whole number"));
        match flag.as_str() {
            "--seeds" => {
                args.seeds = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|_| format!("--seeds: {s:?} is not a whole number")))
                    .collect::<Result<_, _>>()?;
            }
            "--proxies" => args.config.proxies = number(value()?)? as usize,
            "--concurrency" => args.config.concurrency = number(value()?)? as usize,
            "--seconds" => {
                let secs = number(value()?)?;
                args.config.duration = Duration::from_secs(secs);
                args.config.regime_change = Duration::from_secs(secs / 2);
            }
            "--out" => args.out = PathBuf::from(value()?),
            "--per-site" => args.per_site = true,
            "--figures" => args.figures = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.seeds.is_empty() || args.config.proxies == 0 || args.config.concurrency == 0 {
        return Err("--seeds, --proxies and --concurrency need at least one".to_owned());
    }
    if args.config.duration < Duration::from_secs(40) {
        return Err("--seconds must be at least 40".to_owned());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("select: {message}");
            }
            eprintln!(
                "usage: select [--seeds 1,2,3] [--proxies 200] [--concurrency 64] [--seconds 600] [--out DIR] [--per-site]"
            );
            return ExitCode::from(2);
        }
    };
    let c = &args.config;
    println!(
        "{} proxies, {} in flight, {} virtual s (change at {} s), seeds {:?}",
        c.proxies,
        c.concurrency,
        c.duration.as_secs(),
        c.regime_change.as_secs(),
        args.seeds
    );
    let comparison = match sim::compare(&args.config, &args.seeds, &sim::contenders()) {
        Ok(comparison) => comparison,
        Err(e) => {
            eprintln!("select: {e}");
            return ExitCode::FAILURE;
        }
    };
    let table = comparison.table();
    println!("{table}");
    if args.per_site {
        println!("recovery at the shifting site, seconds:\n{}", comparison.recovery_table());
        for seed in comparison.seeds() {
            println!("attempt success per site, seed {seed}:\n{}", comparison.per_site_table(seed));
            println!("attempts by class of proxy, seed {seed}:\n{}", comparison.per_class_table(seed));
            println!("attempts by kind of proxy, seed {seed}:\n{}", comparison.per_kind_table(seed));
        }
    }
    if let Err(e) = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::fs::write(args.out.join("selection.md"), &table))
        .and_then(|()| std::fs::write(args.out.join("selection.svg"), sim::chart(&comparison)))
    {
        eprintln!("select: cannot write to {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    println!("written: {0}/selection.md, {0}/selection.svg", args.out.display());
    if args.figures {
        print_figures(&comparison);
    }
    ExitCode::SUCCESS
}

/// The default balancer's figures against DESIGN.md's targets, as the `FIGURE` lines
/// `scripts/bench.sh` collects: the mean over the seeded worlds and the worst world.
fn print_figures(comparison: &sim::Comparison) {
    let Some(s) = comparison.summary(sim::DEFAULT) else { return };
    let worlds = comparison.seeds().len();
    let figure = |case: &str, ours: f64, unit: &str, target: &str| {
        println!("FIGURE\tselection\t{case}\t{ours}\t-\t-\t{unit}\t{target}");
    };
    figure(&format!("attempt success ÷ oracle, mean of {worlds} worlds"), s.vs_oracle.0, "×", ">=0.97");
    figure("attempt success ÷ oracle, worst world", s.vs_oracle.1, "×", ">=0.97");
    figure(&format!("round-robin-to-oracle gap closed, mean of {worlds} worlds"), s.gap_closed.0, "×", ">=0.7");
    figure("round-robin-to-oracle gap closed, worst world", s.gap_closed.1, "×", ">=0.7");
    figure(&format!("successes per second ÷ oracle, mean of {worlds} worlds"), s.throughput_vs_oracle.0, "×", ">=0.95");
    figure("successes per second ÷ oracle, worst world", s.throughput_vs_oracle.1, "×", ">=0.95");
    figure(&format!("cost per URL ÷ round robin, mean of {worlds} worlds"), s.cost_vs_round_robin.0, "×", "<=0.8");
    figure("cost per URL ÷ round robin, worst world", s.cost_vs_round_robin.1, "×", "<=0.8");
    if let Some(recovery) = s.recovery_secs {
        figure("back within 5 % after the site changes, slowest world", recovery, "s", "<=60");
    }
}
