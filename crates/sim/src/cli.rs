//! `tether sim`: run one simulated provider in the foreground until Ctrl-C or SIGTERM.

use std::io::Write;

use clap::Args;

use super::{FailKind, FaultPlan, Profile, SimOptions, start};

/// `tether sim`'s arguments.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// The provider whose token policy to reproduce: linear, github, notion, todoist,
    /// atlassian or generic.
    #[arg(long, value_name = "PROFILE", default_value = "generic")]
    pub profile: String,
    /// Port on 127.0.0.1; 0 picks any free port.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
    /// Divide every token lifetime by N (≥ 1): 1800 makes a 30-minute token last 1 s.
    #[arg(long, value_name = "N", default_value_t = 1.0)]
    pub time_scale: f64,
    /// Put the issuer under a path (e.g. /oauth) so discovery must use RFC 8414 path-insert.
    #[arg(long, value_name = "PATH")]
    pub issuer_path: Option<String>,
    /// Fail the next N token calls (see --fail-kind).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub fail_token_calls: u32,
    /// How failed token calls fail: 500, 429 (with Retry-After) or timeout (hang, then 500).
    #[arg(long, value_name = "KIND", default_value = "500")]
    pub fail_kind: String,
    /// How long a timeout fault hangs, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// The Retry-After a 429 fault sends, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Rotate on the next refresh but cut the connection instead of answering.
    #[arg(long)]
    pub drop_next_refresh: bool,
    /// Rotate on the next refresh, then hold the answer this many seconds (a client that
    /// dies meanwhile never learns the new token).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub hold_next_refresh: u64,
    /// Hold every token call unprocessed until the fault plan no longer freezes it
    /// (POST /__sim/faults).
    #[arg(long)]
    pub freeze_token_calls: bool,
    /// Reset the next N token connections unanswered, before any token logic runs.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub reset_token_calls: u32,
    /// Answer 404 on this metadata path (repeatable), e.g. /.well-known/oauth-authorization-server.
    #[arg(long, value_name = "PATH")]
    pub missing_metadata: Vec<String>,
    /// Serve MCP with no sign-in (a self-hosted server): no bearer token is asked for, and
    /// no OAuth metadata or authorization endpoint is published.
    #[arg(long)]
    pub no_auth: bool,
    /// Offer the device authorization grant (RFC 8628) with any profile (github offers it
    /// anyway). The verification page /device?user_code=CODE approves; &deny=1 denies.
    #[arg(long)]
    pub device_flow: bool,
    /// Accept Client ID Metadata Documents: a client_id that is a URL is the client its
    /// document describes (fetched when it first signs in).
    #[arg(long)]
    pub cimd: bool,
}

/// Turns the command line into options, naming the bad value and the fix on error.
pub fn options_from_args(args: &SimArgs) -> Result<SimOptions, super::SimError> {
    let profile: Profile = args.profile.parse()?;
    let fail_kind: FailKind = args.fail_kind.parse()?;
    if !args.time_scale.is_finite() || args.time_scale < 1.0 {
        return Err(super::SimError::BadTimeScale(args.time_scale));
    }
    Ok(SimOptions {
        profile,
        port: args.port,
        time_scale: args.time_scale,
        issuer_path: args.issuer_path.clone(),
        open: args.no_auth,
        device_flow: args.device_flow,
        cimd: args.cimd,
        faults: FaultPlan {
            fail_token_calls: args.fail_token_calls,
            fail_kind,
            timeout_secs: args.timeout_secs,
            retry_after_secs: args.retry_after_secs,
            drop_next_refresh: args.drop_next_refresh,
            hold_next_refresh_secs: args.hold_next_refresh,
            missing_metadata: args.missing_metadata.clone(),
            freeze_token_calls: args.freeze_token_calls,
            reset_token_calls: args.reset_token_calls,
            ..FaultPlan::default()
        },
    })
}

/// Prints the MCP URL on stdout (one line, flushed, for scripts) and the admin URL on
/// stderr, then serves until interrupted.
pub async fn run_cli(
    args: SimArgs,
    stop: impl std::future::Future<Output = std::io::Result<()>>,
) -> anyhow::Result<()> {
    let opts = options_from_args(&args)?;
    let profile = opts.profile;
    let handle = start(opts).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", handle.mcp_url())?;
        out.flush()?;
    }
    eprintln!(
        "tether-sim ({profile}: {}) — admin: {}stats",
        profile.description(),
        handle.admin_url()
    );
    stop.await?;
    handle.shutdown().await;
    Ok(())
}
