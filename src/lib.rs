//! tether: authorize each remote MCP server once, keep its tokens fresh, and serve every
//! MCP client a stable local endpoint.
//!
//! Module map (dependencies point one way: front ends → engine → oauth → vault):
//! - [`access`]: downstream clients' labelled secrets (derived, stored as hashes).
//! - [`cli`]: the command line (clap derive).
//! - [`clients`]: MCP clients' configuration files: locations, safe edits, drift.
//! - [`commands`]: each subcommand, a thin script over the library.
//! - [`demo`]: `tether demo`, six simulated providers and a throwaway vault.
//! - [`serve`]: `tether serve`, the engine and proxy without a terminal UI.
//! - [`stdio`]: `tether stdio`, the stdio ↔ HTTP bridge for command-launching clients.
//! - [`shutdown`]: waiting for Ctrl-C or SIGTERM.
//! - [`diagnosis`]: each diagnosis code's explanation and remedy.
//! - [`doctor`]: `tether doctor`, every check with evidence and remedy.
//! - [`import`]: `tether import mcp-remote`, other tools' stored logins brought into the vault.
//! - [`engine`]: connections at run time; the state, events and commands front ends use.
//! - [`oauth`]: the OAuth client side: discovery, registration, login, refresh.
//! - [`http`]: the one shared HTTP client toward upstream servers.
//! - [`proxy`]: the local MCP endpoints: guard, forwarding, metrics.
//! - [`front`]: `tether` with no command: the TUI with engine and proxy inside.
//! - [`paths`]: where files live (`TETHER_HOME` or the XDG folders).
//! - [`printable`]: server text made safe to show (control characters escaped).
//! - [`presence`]: proving the tether on the proxy port holds this vault before using it.
//! - [`config`]: `config.toml`, defaults → file → environment.
//! - [`sim`]: the provider simulator (OAuth server + MCP server with per-provider
//!   policies and faults); shares no code with the client side.
//! - [`oauth`]: tether as an OAuth client toward upstream MCP servers (discovery,
//!   `WWW-Authenticate` challenges); knows no screen and no server.
//! - [`secret`]: the masked `Secret` newtype every token and key travels in.
//! - [`tui`]: the terminal UI, a front end over the engine's handle.
//! - [`vault`]: the encrypted, transactional store (a leaf: no protocol, no screen).
//! - [`view`]: what `list` and `status` show, secrets masked.

pub mod access;
pub mod cli;
pub mod clients;
pub mod commands;
pub mod config;
pub mod demo;
pub mod diagnosis;
pub mod doctor;
pub mod engine;
pub mod front;
pub mod http;
pub mod import;
pub mod oauth;
pub mod paths;
pub mod presence;
pub mod printable;
pub mod proxy;
pub mod secret;
pub mod serve;
pub mod shutdown;
pub mod sim;
pub mod stdio;
pub mod tui;
pub mod vault;
pub mod view;
