//! `collect`: see `collect --help`, and the crate's documentation.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    harvester_collect::cli::main()
}
