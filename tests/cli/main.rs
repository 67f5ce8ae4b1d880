//! The command line through the binary: connections, client files, the demo, doctor, the stdio bridge, the calls log, imports, the key and the vault, and the security checks.

#[path = "../support/mod.rs"]
mod support;

mod calls;
mod calls_follow;
mod cli;
mod clients;
mod demo;
mod doctor;
mod forecast;
mod import_clients;
mod import_mcp_remote;
mod keyring;
mod security;
mod stdio;
mod vault;
