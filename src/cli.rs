//! The command line: every subcommand and option, as clap derive types.

use clap::{Args, Parser, Subcommand};

/// Authorize each remote MCP server once; tether keeps its tokens fresh and serves every
/// MCP client a stable local endpoint.
#[derive(Debug, Parser)]
#[command(name = "tether", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a connection to a remote MCP server.
    ///
    /// Without --api-key-env or --no-auth the connection uses OAuth and is authorized
    /// later with `tether login NAME`.
    Add(AddArgs),
    /// List every connection with its state.
    List {
        /// Print JSON instead of a table (secrets are masked).
        #[arg(long)]
        json: bool,
    },
    /// Show one connection in detail: auth, token, registrations, history.
    Status {
        /// The connection's name.
        name: String,
        /// Print JSON instead of text (secrets are masked).
        #[arg(long)]
        json: bool,
    },
    /// Remove a connection and everything tether keeps for it.
    Remove {
        /// The connection's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A short name used in URLs and commands: 1–32 characters from a-z, 0-9 and '-'.
    pub name: String,
    /// The MCP endpoint, e.g. https://mcp.linear.app/mcp (plain http only for loopback).
    pub url: String,
    /// Authenticate with an API key read from this environment variable (never from argv).
    #[arg(long, value_name = "VAR", conflicts_with = "no_auth")]
    pub api_key_env: Option<String>,
    /// Header that carries the API key, optionally with a value prefix:
    /// "Authorization: Bearer" (default), "X-API-Key", "Authorization: Token".
    #[arg(long, value_name = "NAME[: PREFIX]", requires = "api_key_env")]
    pub header: Option<String>,
    /// The upstream needs no authentication.
    #[arg(long)]
    pub no_auth: bool,
}
