//! `tether` with no command: the terminal UI with the engine and the local proxy running
//! inside it — the way users leave tether open. If another tether process already serves
//! the proxy port, this one says so and watches the shared vault instead.

use crate::runtime::{self, Options, open_vault_quietly};
use tether_core::config::Config;
use tether_core::paths::Paths;

pub async fn run_tui(theme: Option<String>) -> anyhow::Result<()> {
    let paths = Paths::discover()?;
    let config = Config::load(&paths)?;
    let _log = crate::logging::to_file(&paths)?;
    let vault = open_vault_quietly()?;
    // A tether already serving this vault elsewhere (the service on its own address) is
    // watched, not competed with.
    let claimed = match crate::serving::running(&vault).await {
        Some(r) if r.addr != config.proxy.bind => Err(runtime::ServeError::AlreadyServed(r.addr)),
        _ => runtime::claim(config.proxy.bind, &config.proxy, &vault).await,
    };
    let listener = claimed.map(|c| {
        if let Some(warning) = c.warning {
            tracing::warn!("{warning}");
        }
        c.listener
    });
    let options = Options {
        notify: config.notifications.on(false),
        calls: Options::recording(&config, true)?,
        ..Options::default()
    };
    let running = runtime::start(vault, &config.proxy, listener, options).await?;
    let result = tether_tui::run(
        running.engine.handle(),
        tether_tui::TuiOptions::new(&config, &paths, theme),
    )
    .await;
    // Quitting the UI must not wait on clients' open streams.
    running.stop(std::time::Duration::ZERO).await;
    result
}
