//! tether's core: everything about connections that needs no screen and no local endpoint.
//! The proxy (`tether-proxy`), the terminal UI (`tether-tui`) and the command line
//! (`tether`) are built on it; it knows none of them. See `docs/architecture.md`.
//!
//! Module map (dependencies point one way: engine → oauth → vault):
//! - [`engine`]: connections at run time; the state, events and commands front ends use.
//! - [`oauth`]: tether as an OAuth client toward upstream MCP servers: discovery,
//!   registration, login, refresh, `WWW-Authenticate` challenges.
//! - [`vault`]: the encrypted, transactional store (a leaf: no protocol, no screen).
//! - [`connections`]: adding and removing connections, for the command line and the UI alike.
//! - [`access`]: downstream clients' labelled secrets (derived, stored as hashes).
//! - [`alerts`]: what deserves a desktop notification, each cause keyed to be said once.
//! - [`clients`]: MCP clients' configuration files: locations, safe edits, drift.
//! - [`import`]: other tools' stored logins brought into the vault.
//! - [`diagnosis`]: each diagnosis code's explanation and remedy.
//! - [`forecast`]: when a connection's login will die, from what servers said.
//! - [`summary`]: what `list` and `status` show, secrets masked.
//! - [`http`]: the one shared HTTP client toward upstream servers.
//! - [`presence`]: proving the tether on the proxy port holds this vault before using it.
//! - [`config`]: `config.toml`, defaults → file → environment.
//! - [`paths`]: where files live (`TETHER_HOME` or the XDG folders).
//! - [`printable`]: server text made safe to show (control characters escaped).
//! - [`secret`]: the masked `Secret` newtype every token and key travels in.

pub mod access;
pub mod alerts;
pub mod calls;
pub mod clients;
pub mod config;
pub mod connections;
pub mod diagnosis;
pub mod engine;
pub mod forecast;
pub mod http;
pub mod import;
pub mod local_auth;
pub mod oauth;
pub mod paths;
pub mod presence;
pub mod printable;
pub mod secret;
pub mod summary;
pub mod vault;
