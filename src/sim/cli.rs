//! `tether sim`: run one simulated provider in the foreground until Ctrl-C or SIGTERM.

use std::io::Write;

use crate::cli::SimArgs;

use super::{FailKind, FaultPlan, Profile, SimOptions, start};

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
pub async fn run_cli(args: SimArgs) -> anyhow::Result<()> {
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
    crate::shutdown::signal().await?;
    handle.shutdown().await;
    Ok(())
}
