//! The `tether` binary: parse the command line and hand it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = tether::cli::Cli::parse();
    tether::cli::run(cli)
}
