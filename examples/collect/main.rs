//! The main job, as the README's first command runs it: the `collect` command line of the
//! `harvester-collect` crate (crates/collect).
//!
//! ```sh
//! cargo run --release --example collect                       # the embedded demo
//! cargo run --release --example collect -- --proxies proxies.txt --urls urls.txt --out out.jsonl
//! ```

fn main() -> std::process::ExitCode {
    harvester_collect::cli::main()
}
