//! tether: authorize each remote MCP server once, keep its tokens fresh, and serve every
//! MCP client a stable local endpoint.
//!
//! Module map (dependencies point one way: front ends → engine → oauth → vault):
//! - [`cli`]: the command line (clap derive).
//! - [`commands`]: each subcommand, a thin script over the library.
//! - [`demo`]: `tether demo`, six simulated providers and a throwaway vault.
//! - [`shutdown`]: waiting for Ctrl-C or SIGTERM.
//! - [`diagnosis`]: each diagnosis code's explanation and remedy.
//! - [`engine`]: connections at run time; the state, events and commands front ends use.
//! - [`paths`]: where files live (`TETHER_HOME` or the XDG folders).
//! - [`config`]: `config.toml`, defaults → file → environment.
//! - [`sim`]: the provider simulator (OAuth server + MCP server with per-provider
//!   policies and faults); shares no code with the client side.
//! - [`secret`]: the masked `Secret` newtype every token and key travels in.
//! - [`tui`]: the terminal UI, a front end over the engine's handle.
//! - [`vault`]: the encrypted, transactional store (a leaf: no protocol, no screen).
//! - [`view`]: what `list` and `status` show, secrets masked.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod diagnosis;
pub mod engine;
pub mod paths;
pub mod secret;
pub mod shutdown;
pub mod sim;
pub mod tui;
pub mod vault;
pub mod view;
