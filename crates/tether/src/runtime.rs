//! Starting and stopping tether: the engine that keeps every connection's tokens fresh and
//! the local proxy that serves them. The TUI, `serve`, the stdio bridge and the demo all
//! start this way, so a proxy that cannot start, or stops by itself, is handled alike
//! everywhere: the engine's state says so (every front end shows it) and the log says why.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::errors::UserInput;
use tether_core::config::{Config, ProxyConfig};
use tether_core::engine::{Engine, EngineOptions, ProxyStatus};
use tether_core::oauth::authorize::Browser;
use tether_core::paths::Paths;
use tether_core::presence::{self, Presence};
use tether_core::vault::Vault;

/// Opens the vault as every command does, printing the key-fallback warning once.
pub fn open_vault() -> anyhow::Result<Vault> {
    let vault = open_vault_quietly()?;
    if let Some(warning) = vault.key_source().fallback_warning() {
        tether_core::say_err!("tether: warning: {warning}");
    }
    Ok(vault)
}

/// Opens the vault without printing: the TUI shows the key warning in its header.
pub fn open_vault_quietly() -> anyhow::Result<Vault> {
    let paths = Paths::discover()?;
    let config = Config::load(&paths)?;
    Ok(Vault::open(&paths, &config)?)
}

/// Why the proxy cannot listen where it was asked to.
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

impl UserInput for ServeError {
    fn is_user_input(&self) -> bool {
        matches!(self, ServeError::Exposed(_))
    }
}

/// The proxy's listening socket, and a warning to show when it is reachable from other
/// machines.
pub struct Claimed {
    pub listener: TcpListener,
    pub warning: Option<String>,
}

/// Takes `addr` for the proxy: refused when it is public without `[proxy] public_names`,
/// or held by anything but a tether holding this vault — never worked around by serving
/// elsewhere, since clients configured with this address would keep sending their secrets
/// there.
pub async fn claim(
    addr: SocketAddr,
    proxy: &ProxyConfig,
    vault: &Vault,
) -> Result<Claimed, ServeError> {
    let warning = exposure(addr, proxy).map_err(ServeError::Exposed)?;
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(source) if source.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(match presence::probe(addr, vault).await {
                Presence::Ours => ServeError::AlreadyServed(addr),
                Presence::Stranger(what) => ServeError::Taken(presence::stranger_on(addr, &what)),
                Presence::Nobody => ServeError::Bind { addr, source },
            });
        }
        Err(source) => return Err(ServeError::Bind { addr, source }),
    };
    Ok(Claimed { listener, warning })
}

/// A free loopback port, for a proxy no client is configured with: the demo's, or the
/// stdio bridge's own when no tether serves.
pub async fn any_loopback() -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
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

/// How the engine runs.
pub struct Options {
    /// Refresh tokens ahead of expiry in the background.
    pub schedule: bool,
    /// How logins started from a front end reach the browser.
    pub browser: Browser,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            schedule: true,
            browser: Browser::System,
        }
    }
}

/// The engine and, when it could listen, the proxy, running until [`Running::stop`].
pub struct Running {
    pub engine: Engine,
    proxy: Option<ProxyTask>,
}

struct ProxyTask {
    stop: oneshot::Sender<Duration>,
    /// `Some(reason)` once the proxy has stopped by itself.
    stopped: watch::Receiver<Option<String>>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts the engine over `vault`, and the proxy on `listener` when there is one. Where
/// there is none, the engine's proxy status tells why: another tether holding this vault
/// serves the address (the front end watches it), or the error that kept it from
/// listening.
pub async fn start(
    vault: Vault,
    proxy: &ProxyConfig,
    listener: Result<TcpListener, ServeError>,
    options: Options,
) -> anyhow::Result<Running> {
    let (listener, status) = match listener {
        Ok(l) => {
            let addr = l.local_addr()?;
            (Some(l), ProxyStatus::Serving { addr })
        }
        Err(ServeError::AlreadyServed(addr)) => (None, ProxyStatus::ServedElsewhere { addr }),
        Err(e) => (
            None,
            ProxyStatus::Off {
                reason: e.to_string(),
            },
        ),
    };
    let engine = Engine::start(
        vault,
        tether_core::http::client(),
        EngineOptions {
            schedule: options.schedule,
            browser: options.browser,
            proxy: status,
        },
    )
    .await?;
    let proxy = match listener {
        Some(listener) => serve(&engine, proxy, listener),
        None => None,
    };
    Ok(Running { engine, proxy })
}

/// Serves the proxy on a task that tells the engine if it stops by itself.
fn serve(engine: &Engine, config: &ProxyConfig, listener: TcpListener) -> Option<ProxyTask> {
    let mut serving = match tether_proxy::spawn(engine.clone(), config.clone(), listener) {
        Ok(serving) => serving,
        Err(e) => {
            let reason = format!("the local proxy could not start: {e}");
            tracing::error!("{reason}");
            engine.set_proxy(ProxyStatus::Off { reason });
            return None;
        }
    };
    let (stop, stop_asked) = oneshot::channel::<Duration>();
    let (stopped_tx, stopped) = watch::channel(None);
    let engine = engine.clone();
    let task = tokio::spawn(async move {
        tokio::select! {
            result = serving.finished() => {
                let reason = match result {
                    Ok(()) => "the local proxy stopped".to_string(),
                    Err(e) => format!("the local proxy stopped: {e}"),
                };
                tracing::error!("{reason}");
                engine.set_proxy(ProxyStatus::Off { reason: reason.clone() });
                let _ = stopped_tx.send(Some(reason));
            }
            drain = stop_asked => {
                let drain = drain.unwrap_or_default();
                if !serving.stop(drain).await {
                    tracing::warn!("requests still open after {drain:?} were cut off");
                }
            }
        }
    });
    Some(ProxyTask {
        stop,
        stopped,
        task,
    })
}

impl Running {
    /// The address the proxy of this process listens on, if it serves.
    pub fn serving(&self) -> Option<SocketAddr> {
        match &self.engine.handle().state.borrow().proxy {
            ProxyStatus::Serving { addr } if self.proxy.is_some() => Some(*addr),
            _ => None,
        }
    }

    /// Resolves with the reason if this process's proxy stops by itself; never, while it
    /// serves or when there is none.
    pub async fn proxy_stopped(&mut self) -> String {
        let Some(proxy) = self.proxy.as_mut() else {
            return std::future::pending().await;
        };
        match proxy.stopped.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops the proxy (requests in flight get `drain` to finish), saves what clients did
    /// and stops the engine.
    pub async fn stop(self, drain: Duration) {
        if let Some(proxy) = self.proxy {
            let _ = proxy.stop.send(drain);
            let _ = proxy.task.await;
        }
        self.engine.save_client_activity().await;
        self.engine.shutdown();
    }
}
