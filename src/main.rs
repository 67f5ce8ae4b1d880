//! The `tether` binary: parse the command line and hand it to the library.

use clap::Parser;

fn main() {
    let _cli = tether::cli::Cli::parse();
}
