//! The provider simulator: on one loopback port, an OAuth 2.1 authorization server and
//! an MCP server (Streamable HTTP) whose token policy follows a chosen provider profile,
//! with fault knobs for tests and `tether demo`. It shares no code with tether's own
//! OAuth client, so the two cannot agree on a bug.
//!
//! Routes on `http://127.0.0.1:PORT` (`{iss}` is the issuer path, empty by default):
//! - `/.well-known/oauth-protected-resource[/mcp]` — RFC 9728
//! - `/.well-known/oauth-authorization-server{iss}`, `/.well-known/openid-configuration{iss}`
//!   and, for a path issuer, `{iss}/.well-known/openid-configuration` — RFC 8414 / OIDC
//! - `{iss}/register` (POST), `{iss}/register/{client_id}` (GET, DELETE) — RFC 7591 / 7592
//! - `{iss}/authorize` (GET, automatic consent), `{iss}/token`, `{iss}/revoke` — RFC 6749 / 7009
//! - with the device flow: `{iss}/device_authorization` (POST) and `{iss}/device` (GET, the
//!   verification page: approves `?user_code=…`, denies with `&deny=1`) — RFC 8628
//! - `/mcp` (POST, GET, DELETE) — MCP Streamable HTTP
//! - `/__sim/stats` (GET), `/__sim/faults` (GET, POST), `/__sim/revoke-all` and
//!   `/__sim/evict-access` (POST) — admin

mod admin;
mod authorize;
mod cli;
mod device;
mod faults;
mod mcp;
mod metadata;
mod net;
mod params;
mod profile;
mod register;
mod server;
mod sse;
mod state;
mod token;
mod tools;

pub use admin::{ClientStats, Stats};
pub use cli::{SimArgs, run_cli};
pub use faults::{FailKind, FaultPlan};
pub use profile::Profile;
pub use server::{SimHandle, start};
pub use state::Totals;

/// How to run one simulated provider.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub profile: Profile,
    /// 0 = any free port.
    pub port: u16,
    /// Every token and client lifetime is divided by this (≥ 1): with 1800 a
    /// 30-minute token lives one second.
    pub time_scale: f64,
    /// Faults armed from the start; the admin API can change them later.
    pub faults: FaultPlan,
    /// A path such as `/oauth` makes the issuer `http://127.0.0.1:PORT/oauth`, so
    /// discovery must use the RFC 8414 path-insert form; `None`: the issuer is the origin.
    pub issuer_path: Option<String>,
    /// Serve MCP with no sign-in at all, as a self-hosted server on a trusted machine
    /// does: every request is answered without a bearer token, and there is no
    /// authorization server (no metadata, no OAuth endpoints, no `WWW-Authenticate`).
    pub open: bool,
    /// Offer the device authorization grant (RFC 8628) whatever the profile; the github
    /// profile offers it anyway.
    pub device_flow: bool,
    /// Accept Client ID Metadata Documents: a `client_id` that is a URL names the client
    /// its document (fetched at `/authorize`) describes.
    pub cimd: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            profile: Profile::Generic,
            port: 0,
            time_scale: 1.0,
            faults: FaultPlan::default(),
            issuer_path: None,
            open: false,
            device_flow: false,
            cimd: false,
        }
    }
}

impl SimOptions {
    pub fn new(profile: Profile) -> Self {
        SimOptions {
            profile,
            ..SimOptions::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "unknown profile '{0}': use one of linear, github, notion, todoist, atlassian, generic"
    )]
    UnknownProfile(String),
    #[error("unknown fault kind '{0}': use 500, 429 or timeout")]
    UnknownFailKind(String),
    #[error(
        "time scale '{0}' is not allowed: use a number of 1 or more (1800 makes a 30-minute token last 1 second)"
    )]
    BadTimeScale(f64),
    #[error(
        "issuer path '{0}' is not allowed: use a path such as /oauth (leading slash, no trailing slash, no query)"
    )]
    BadIssuerPath(String),
    #[error(
        "missing-metadata path '{0}' is not a path: use one such as /.well-known/oauth-authorization-server"
    )]
    BadMetadataPath(String),
    #[error(
        "could not listen on 127.0.0.1:{port}: {source}; pick another --port, or 0 for any free port"
    )]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    /// Whether the command line named a bad value (as opposed to the port being taken).
    pub fn is_user_input(&self) -> bool {
        !matches!(self, SimError::Bind { .. })
    }
}
