//! `tether serve`: the headless front end — the engine (refreshing every token ahead of
//! expiry) and the local proxy, logging to stderr, until Ctrl-C or SIGTERM. Under systemd
//! (`tether service`) it also reports readiness and feeds the watchdog.

use std::net::SocketAddr;
use std::time::Duration;

use crate::runtime::{self, Options, open_vault};
use crate::service::ManagerName;
use crate::service::notify::Notifier;
use tether_core::config::Config;
use tether_core::paths::Paths;

/// In-flight requests get this long to finish after a stop is asked.
const DRAIN: Duration = Duration::from_secs(10);

pub async fn run(
    bind_flag: Option<SocketAddr>,
    service: Option<ManagerName>,
) -> anyhow::Result<()> {
    let _log = crate::logging::to_stderr();
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let addr = bind_flag.unwrap_or(config.proxy.bind);
    // A TLS set-up that cannot work is said before anything starts.
    let scheme = match tether_proxy::tls::acceptor(&config.proxy) {
        Ok(Some(_)) => "https",
        Ok(None) => "http",
        Err(why) => return Err(crate::errors::BadInput(why).into()),
    };
    let claimed = runtime::claim(addr, &config.proxy, &vault).await?;
    if let Some(warning) = &claimed.warning {
        tether_core::say_err!("tether: warning: {warning}");
    }
    let addr = claimed.listener.local_addr()?;
    let notifier = Notifier::from_env();
    let options = Options {
        alive: notifier.as_ref().and_then(Notifier::keep_alive),
        service: service.map(|m| m.as_str().to_string()),
        notify: config.notifications.on(service.is_some()),
        calls: Options::recording(&config, false)?,
        ..Options::default()
    };
    let mut running = runtime::start(vault, &config.proxy, Ok(claimed.listener), options).await?;
    let connections = running
        .engine
        .handle()
        .state
        .borrow()
        .store
        .connections()
        .len();
    let serving = format!("serving {connections} connection(s) on {scheme}://{addr}");
    tether_core::say_err!("tether: {serving} (Ctrl-C stops)");
    tether_core::say!("{scheme}://{addr}");
    if let Some(notifier) = &notifier {
        notifier.ready(&serving);
    }
    let outcome = tokio::select! {
        reason = running.proxy_stopped() => Err(anyhow::anyhow!(reason)),
        signal = crate::shutdown::signal() => signal.map_err(anyhow::Error::from),
    };
    if let Some(notifier) = &notifier {
        notifier.stopping();
    }
    running.stop(DRAIN).await;
    outcome?;
    tether_core::say_err!("tether: stopped");
    Ok(())
}
