//! `tether serve`: the headless front end — the engine (refreshing every token ahead of
//! expiry) and the local proxy, logging to stderr, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use crate::runtime::{self, Options, open_vault};
use tether_core::config::Config;
use tether_core::paths::Paths;

/// In-flight requests get this long to finish after a stop is asked.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(bind_flag: Option<SocketAddr>) -> anyhow::Result<()> {
    let _log = crate::logging::to_stderr();
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let addr = bind_flag.unwrap_or(config.proxy.bind);
    let claimed = runtime::claim(addr, &config.proxy, &vault).await?;
    if let Some(warning) = &claimed.warning {
        tether_core::say_err!("tether: warning: {warning}");
    }
    let addr = claimed.listener.local_addr()?;
    let mut running = runtime::start(
        vault,
        &config.proxy,
        Ok(claimed.listener),
        Options::default(),
    )
    .await?;
    let connections = running
        .engine
        .handle()
        .state
        .borrow()
        .store
        .connections()
        .len();
    tether_core::say_err!(
        "tether: serving {connections} connection(s) on http://{addr} (Ctrl-C stops)"
    );
    tether_core::say!("http://{addr}");
    let outcome = tokio::select! {
        reason = running.proxy_stopped() => Err(anyhow::anyhow!(reason)),
        signal = crate::shutdown::signal() => signal.map_err(anyhow::Error::from),
    };
    running.stop(DRAIN).await;
    outcome?;
    tether_core::say_err!("tether: stopped");
    Ok(())
}
