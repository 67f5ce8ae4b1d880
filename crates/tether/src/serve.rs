//! `tether serve`: the headless front end — the engine (refreshing every token ahead of
//! expiry) and the local proxy, logging to stderr, until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::commands::open_vault;
use tether_core::config::{Config, ProxyConfig};
use tether_core::engine::{Engine, EngineOptions, ProxyStatus};
use tether_core::paths::Paths;
use tether_core::presence::{self, Presence};
use tether_core::vault::Vault;

/// In-flight requests get this long to finish after a stop is asked.
const DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "another tether process already serves http://{0}: use that one, or start this one with --bind 127.0.0.1:PORT"
    )]
    AlreadyServed(SocketAddr),
    #[error("cannot serve the local proxy: {0}")]
    Taken(String),
    #[error(
        "cannot listen on {addr}: {source}; choose another address with --bind (or [proxy] bind in config.toml)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    /// A public address without `[proxy] public_names` (see [`exposure`]).
    #[error("{0}")]
    Exposed(String),
}

/// Binds `addr`, telling apart "a tether holding this vault serves it" from a port taken
/// by anything else — which is refused, never worked around by serving elsewhere, since
/// clients configured with this address would keep sending their secrets there.
pub async fn bind(addr: SocketAddr, vault: &Vault) -> Result<TcpListener, ServeError> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => {
            match presence::probe(addr, vault).await {
                Presence::Ours => Err(ServeError::AlreadyServed(addr)),
                Presence::Stranger(what) => {
                    Err(ServeError::Taken(presence::stranger_on(addr, &what)))
                }
                Presence::Nobody => Err(ServeError::Bind { addr, source }),
            }
        }
        Err(source) => Err(ServeError::Bind { addr, source }),
    }
}

/// Whether the proxy may listen on `addr`: on loopback, yes; elsewhere — reachable from
/// other machines — only with `[proxy] public_names`, since the Host guard accepts no other
/// name there (every request would get 403). `Ok` with a warning to show for a public
/// address, `Err` with the message naming the fix.
pub fn exposure(addr: SocketAddr, proxy: &ProxyConfig) -> Result<Option<String>, String> {
    if addr.ip().is_loopback() {
        return Ok(None);
    }
    if proxy.public_names.is_empty() {
        return Err(format!(
            "{addr} is reachable from other machines, and the proxy accepts no Host name there but loopback ones: list the names clients use to reach it under [proxy] public_names in config.toml (e.g. public_names = [\"tether.example.com\"]), or bind a loopback address such as 127.0.0.1:7878"
        ));
    }
    Ok(Some(format!(
        "serving on {addr}, reachable from other machines: only requests naming loopback or {} in Host are accepted, each with its client's secret",
        proxy.public_names.join(", ")
    )))
}

pub async fn run(bind_flag: Option<SocketAddr>) -> anyhow::Result<()> {
    let _log_guard = init_logging();
    let vault = open_vault()?;
    let config = Config::load(&Paths::discover()?)?;
    let addr = bind_flag.unwrap_or(config.proxy.bind);
    match exposure(addr, &config.proxy) {
        Ok(None) => {}
        Ok(Some(warning)) => tether_core::say_err!("tether: warning: {warning}"),
        Err(message) => return Err(crate::commands::bad_input(message)),
    }
    let listener = bind(addr, &vault).await?;
    let addr = listener.local_addr()?;
    let engine = Engine::start(
        vault,
        tether_core::http::client(),
        EngineOptions {
            proxy: ProxyStatus::Serving { addr },
            ..EngineOptions::default()
        },
    )
    .await?;
    let mut proxy = tether_proxy::spawn(engine.clone(), config.proxy.clone(), listener)?;
    let connections = engine.handle().state.borrow().store.connections().len();
    tether_core::say_err!(
        "tether: serving {connections} connection(s) on http://{addr} (Ctrl-C stops)"
    );
    tether_core::say!("http://{addr}");
    tokio::select! {
        result = proxy.finished() => result?,
        _ = crate::shutdown::signal() => {
            if !proxy.stop(DRAIN).await {
                tracing::warn!("requests still open after {DRAIN:?} were cut off");
            }
        }
    }
    engine.save_client_activity().await;
    engine.shutdown();
    tether_core::say_err!("tether: stopped");
    Ok(())
}

/// Log lines held for a slow stderr before new ones are dropped. The queue's slots are
/// allocated and touched up front: the library's default (128,000 lines) alone kept 4 MB
/// resident in an idle `tether serve`.
const LOG_QUEUE_LINES: usize = 8_192;

/// Logs to stderr through a background writer: a slow or stalled stderr (a full pipe)
/// drops log lines instead of stalling the proxy.
fn init_logging() -> tracing_appender::non_blocking::WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true)
        .finish(std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
    guard
}
