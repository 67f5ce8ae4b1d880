//! The `tether` command: the command line and the front ends that run the engine, the
//! local proxy and the terminal UI together. See `docs/architecture.md` for the crates
//! beneath it.
//!
//! - [`cli`]: the command line: its arguments (clap derive), and each subcommand as a thin
//!   script over the library crates.
//! - [`interactive`]: `tether` with no command: the TUI with engine and proxy inside.
//! - [`serve`]: `tether serve`, the engine and proxy without a terminal UI.
//! - [`stdio`]: `tether stdio`, the stdio ↔ HTTP bridge for command-launching clients.
//! - [`demo`]: `tether demo`, six simulated providers and a throwaway vault.
//! - [`doctor`]: `tether doctor`, every check with evidence and remedy.
//! - [`desktop`]: desktop notifications from the tether that serves the proxy.
//! - [`runtime`]: starting and stopping the engine and the local proxy, one way for all.
//! - [`logging`]: where the log goes (stderr, or a file under a terminal UI).
//! - [`errors`]: how a failed command ends, and which failures are the user's input.
//! - [`shutdown`]: waiting for Ctrl-C or SIGTERM.

pub mod cli;
pub mod demo;
pub mod desktop;
pub mod doctor;
pub mod errors;
pub mod interactive;
pub mod logging;
pub mod runtime;
pub mod serve;
pub mod service;
pub mod serving;
pub mod shutdown;
pub mod stdio;
