//! Starting and stopping tether: the engine that keeps every connection's tokens fresh and
//! the local proxy that serves them. The TUI, `serve`, the stdio bridge and the demo all
//! start this way, so a proxy that cannot start, or stops by itself, is handled alike
//! everywhere: the engine's state says so (every front end shows it) and the log says why.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::errors::UserInput;
use tether_core::config::{CallsConfig, Config, ProxyConfig};
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

/// The store `--store` chose, over `TETHER_STORE` and `[store] url`.
static STORE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records the command line's `--store`, for every vault this process opens.
pub fn choose_store(url: Option<String>) {
    if let Some(url) = url {
        let _ = STORE.set(url);
    }
}

/// The configuration every command runs with: `config.toml`, the environment, then the
/// command line's store.
pub fn config(paths: &Paths) -> anyhow::Result<Config> {
    let mut config = Config::load(paths)?;
    if let Some(url) = STORE.get() {
        config.store.url = Some(url.clone());
    }
    Ok(config)
}

/// Opens the vault without printing: the TUI shows the key warning in its header.
pub fn open_vault_quietly() -> anyhow::Result<Vault> {
    let paths = Paths::discover()?;
    let config = config(&paths)?;
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

/// How the engine and the proxy run.
pub struct Options {
    /// Refresh tokens ahead of expiry in the background.
    pub schedule: bool,
    /// How logins started from a front end reach the browser.
    pub browser: Browser,
    /// Called from the proxy's own thread about once a second while it serves (a service
    /// manager's watchdog).
    pub alive: Option<tether_proxy::Alive>,
    /// The service manager running this process (`systemd`, `launchd`), if any: recorded
    /// for `tether service status` and the TUI.
    pub service: Option<String>,
    /// Tell other processes where this one serves (`serving.json`); off for the demo's
    /// and the stdio bridge's private proxies.
    pub publish: bool,
    /// Send desktop notifications while this process serves the proxy (`desktop.rs`).
    pub notify: bool,
    /// Record the calls through the proxy (`[calls]`).
    pub calls: Option<Recording>,
}

/// How the calls through the proxy are recorded.
pub struct Recording {
    pub config: CallsConfig,
    /// The audit log's folder (`<state>/logs`), if there is to be one.
    pub log_dir: Option<std::path::PathBuf>,
    /// Keep the newest calls in memory: a front end of this process shows them.
    pub rings: bool,
}

impl Options {
    /// Records calls as `config` says, into the audit log in the state folder's `logs/`,
    /// and in memory when a front end of this process shows them (`rings`).
    pub fn recording(config: &Config, rings: bool) -> anyhow::Result<Option<Recording>> {
        Ok(Some(Recording {
            config: config.calls.clone(),
            log_dir: Some(tether_core::paths::Paths::discover()?.log_dir()),
            rings,
        }))
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            schedule: true,
            browser: Browser::System,
            alive: None,
            service: None,
            publish: true,
            notify: false,
            calls: None,
        }
    }
}

/// The engine and, when it could listen, the proxy, running until [`Running::stop`].
pub struct Running {
    pub engine: Engine,
    proxy: Option<ProxyTask>,
    /// The vault whose `serving.json` names this process.
    published: Option<Vault>,
    notifier: Option<tokio::task::JoinHandle<()>>,
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
        Err(ServeError::AlreadyServed(addr)) => {
            let service = crate::serving::read(&vault)
                .filter(|r| r.addr == addr)
                .and_then(|r| r.service);
            (None, ProxyStatus::ServedElsewhere { addr, service })
        }
        Err(e) => (
            None,
            ProxyStatus::Off {
                reason: e.to_string(),
            },
        ),
    };
    let published = match &listener {
        Some(l) if options.publish => {
            crate::serving::Record::this_process(l.local_addr()?, options.service.clone())
                .publish(&vault);
            Some(vault.clone())
        }
        _ => None,
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
    if let (Some(_), Some(calls)) = (&listener, &options.calls) {
        engine.start_calls(&calls.config, calls.log_dir.clone(), calls.rings);
    }
    let proxy = match listener {
        Some(listener) => serve(&engine, proxy, listener, options.alive),
        None => None,
    };
    let notifier = options
        .notify
        .then(|| crate::desktop::spawn(engine.handle()));
    Ok(Running {
        engine,
        proxy,
        published,
        notifier,
    })
}

/// Serves the proxy on a task that tells the engine if it stops by itself.
fn serve(
    engine: &Engine,
    config: &ProxyConfig,
    listener: TcpListener,
    alive: Option<tether_proxy::Alive>,
) -> Option<ProxyTask> {
    let spawned = tether_proxy::spawn_watched(engine.clone(), config.clone(), listener, alive);
    let mut serving = match spawned {
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
        if let Some(notifier) = &self.notifier {
            notifier.abort();
        }
        if let Some(proxy) = self.proxy {
            let _ = proxy.stop.send(drain);
            let _ = proxy.task.await;
        }
        if let Some(vault) = &self.published {
            crate::serving::Record::withdraw(vault);
        }
        self.engine.save_client_activity().await;
        self.engine.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixDatagram;
    use std::sync::Arc;

    use super::*;
    use tether_core::config::KeySourceChoice;

    /// The keep-alives a service manager's watchdog needs come from the proxy's own thread:
    /// a real datagram socket stands in for the manager, and once the proxy stops, so do
    /// they.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keep_alives_stop_when_the_proxy_stops() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path().join("home"));
        let mut config = Config::default();
        config.vault.key_source = KeySourceChoice::File;
        let vault = Vault::open(&paths, &config).unwrap();
        let manager = UnixDatagram::bind(dir.path().join("notify")).unwrap();
        manager
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let to = dir.path().join("notify");
        let sender = UnixDatagram::unbound().unwrap();
        let proxy_thread = Arc::new(std::sync::Mutex::new(None));
        let seen = proxy_thread.clone();
        let alive: tether_proxy::Alive = Arc::new(move || {
            *seen.lock().unwrap() = std::thread::current().name().map(str::to_string);
            let _ = sender.send_to(b"WATCHDOG=1\n", &to);
        });
        let options = Options {
            alive: Some(alive),
            publish: false,
            ..Options::default()
        };
        let listener = any_loopback().await.unwrap();
        let running = start(vault, &config.proxy, Ok(listener), options)
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..2 {
            let n = manager
                .recv(&mut buf)
                .expect("a keep-alive while the proxy runs");
            assert_eq!(&buf[..n], b"WATCHDOG=1\n");
        }
        assert_eq!(
            proxy_thread.lock().unwrap().as_deref(),
            Some("tether-proxy"),
            "sent from the proxy's own thread"
        );
        running.stop(Duration::ZERO).await;
        manager.set_nonblocking(true).unwrap();
        while manager.recv(&mut buf).is_ok() {}
        manager.set_nonblocking(false).unwrap();
        assert!(
            manager.recv(&mut buf).is_err(),
            "no keep-alive within 3 s of the proxy stopping"
        );
    }
}
