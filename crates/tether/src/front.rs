//! `tether` with no command: the terminal UI with the engine and the local proxy running
//! inside it — the way users leave tether open. If another tether process already serves
//! the proxy port, this one says so and watches the shared vault instead.

use std::net::SocketAddr;

use crate::commands::open_vault_quietly;
use crate::serve::ServeError;
use tether_core::config::Config;
use tether_core::engine::{Engine, EngineOptions, ProxyStatus};
use tether_core::paths::Paths;

pub async fn run_tui(theme: Option<String>) -> anyhow::Result<()> {
    let paths = Paths::discover()?;
    let config = Config::load(&paths)?;
    let _log = log_to_file(&paths)?;
    let vault = open_vault_quietly()?;
    let bound = match crate::serve::exposure(config.proxy.bind, &config.proxy) {
        Ok(warning) => {
            if let Some(warning) = warning {
                tracing::warn!("{warning}");
            }
            crate::serve::bind(config.proxy.bind, &vault).await
        }
        Err(reason) => Err(ServeError::Exposed(reason)),
    };
    let (listener, proxy) = match bound {
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
            proxy,
            ..EngineOptions::default()
        },
    )
    .await?;
    if let Some(listener) = listener {
        spawn_proxy(&engine, listener, &config);
    }
    let result = tether_tui::run(
        engine.handle(),
        tether_tui::TuiOptions::new(&config, &paths, theme),
    )
    .await;
    engine.save_client_activity().await;
    engine.shutdown();
    result
}

/// Serves the proxy in the background for as long as the process lives.
pub fn spawn_proxy(engine: &Engine, listener: tokio::net::TcpListener, config: &Config) {
    let engine = engine.clone();
    match tether_proxy::spawn(engine.clone(), config.proxy.clone(), listener) {
        Ok(mut proxy) => {
            tokio::spawn(async move {
                if let Err(e) = proxy.finished().await {
                    tracing::error!("the local proxy stopped: {e}");
                    engine.set_proxy(ProxyStatus::Off {
                        reason: format!("the local proxy stopped: {e}"),
                    });
                }
            });
        }
        Err(e) => engine.set_proxy(ProxyStatus::Off {
            reason: format!("the local proxy could not start: {e}"),
        }),
    }
}

/// While the TUI owns the terminal, logs go to `<state>/logs/tether.log`.
pub fn log_to_file(paths: &Paths) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let dir = paths.log_dir();
    tether_core::paths::ensure_private_dir(&dir)?;
    let file = tracing_appender::rolling::never(&dir, "tether.log");
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Ok(guard)
}

/// The address a demo or test proxy takes when the usual one is busy.
pub fn any_loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
