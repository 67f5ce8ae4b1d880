//! `tether demo`: the whole product with no accounts. One simulated provider per provider
//! style runs in this process, each with a connection in a throwaway vault that is
//! deleted when the demo stops.

use std::io::Write;
use std::sync::Arc;

use chrono::Utc;
use futures_util::future::join_all;

use crate::errors::UserInput;
use crate::runtime::{self, Options, Running};
use tether_core::config::{Config, KeySourceChoice, ProxyConfig};
use tether_core::connections::AddAuth;
use tether_core::engine::{Engine, ProxyStatus};
use tether_core::oauth::authorize::{self, Browser, LoginOptions};
use tether_core::paths::Paths;
use tether_core::vault::{Auth, Connection, Event, EventKind, Store, Vault, VaultError};
use tether_sim::{self as sim, Profile, SimHandle, SimOptions};

/// A running demo: the simulators, the vault and the folder that holds it, and the engine
/// that keeps the connections authorized.
pub struct Demo {
    pub home: tempfile::TempDir,
    pub vault: Vault,
    pub providers: Vec<(Profile, SimHandle)>,
    pub engine: Engine,
    running: Running,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "time scale '{0}' is not allowed: use a number of 1 or more (120 makes a 1-hour token last 30 s)"
    )]
    BadTimeScale(f64),
    #[error("cannot create the demo's throwaway folder: {0}")]
    Home(std::io::Error),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Sim(#[from] sim::SimError),
    #[error("signing in to the simulated '{0}' failed: {1}")]
    Login(String, String),
    #[error("cannot start the demo's engine and proxy: {0:#}")]
    Start(anyhow::Error),
}

impl UserInput for DemoError {
    fn is_user_input(&self) -> bool {
        matches!(self, DemoError::BadTimeScale(_))
    }
}

impl Demo {
    /// Starts the six simulated providers and registers a connection to each.
    pub async fn start(time_scale: f64) -> Result<Self, DemoError> {
        if !time_scale.is_finite() || time_scale < 1.0 {
            return Err(DemoError::BadTimeScale(time_scale));
        }
        let home = tempfile::Builder::new()
            .prefix("tether-demo-")
            .tempdir()
            .map_err(DemoError::Home)?;
        let paths = Paths::under(home.path().to_path_buf());
        let mut config = Config::default();
        // A throwaway vault must never leave a key behind in the user's keyring.
        config.vault.key_source = KeySourceChoice::File;
        let vault = tokio::task::spawn_blocking(move || Vault::open(&paths, &config))
            .await
            .map_err(|e| VaultError::Task(e.to_string()))??;
        let mut providers = Vec::new();
        for profile in Profile::ALL {
            let handle = sim::start(SimOptions {
                time_scale,
                ..SimOptions::new(profile)
            })
            .await?;
            providers.push((profile, handle));
        }
        let connections: Vec<Connection> = providers
            .iter()
            .map(|(profile, handle)| demo_connection(*profile, handle))
            .collect();
        vault
            .transact_async(move |store: &mut Store| {
                for c in connections {
                    store.push(c);
                }
                Ok::<_, VaultError>(())
            })
            .await?;
        let http = tether_core::http::client();
        // The simulated servers consent automatically, so the demo signs in without a
        // browser; every connection is authorized before the demo says it is ready.
        let logins = providers.iter().map(|(profile, _)| {
            let options = LoginOptions {
                browser: Browser::Fetch,
                timeout: std::time::Duration::from_secs(20),
                ..LoginOptions::default()
            };
            authorize::login(
                &http,
                &vault,
                profile.as_str(),
                options,
                Arc::new(|_, _| {}),
            )
        });
        for (result, (profile, _)) in join_all(logins).await.into_iter().zip(&providers) {
            result.map_err(|e| DemoError::Login(profile.to_string(), e.to_string()))?;
        }
        // Its own proxy on a free port, so the demo never competes with a real tether.
        let listener = runtime::any_loopback().await.map_err(DemoError::Home)?;
        let options = Options {
            browser: Browser::Fetch,
            publish: false,
            // Kept for the demo's screens; its throwaway home gets no audit log.
            calls: Some(runtime::Recording {
                config: Default::default(),
                log_dir: None,
                rings: true,
            }),
            ..Options::default()
        };
        let running = runtime::start(
            vault.clone(),
            &ProxyConfig::default(),
            Ok(listener),
            options,
        )
        .await
        .map_err(DemoError::Start)?;
        Ok(Self {
            home,
            vault,
            providers,
            engine: running.engine.clone(),
            running,
        })
    }

    pub async fn stop(self) {
        self.running.stop(std::time::Duration::ZERO).await;
        for (_, handle) in self.providers {
            handle.shutdown().await;
        }
    }
}

/// Adds an OAuth connection to `upstream` and signs in without a browser, for servers
/// that consent automatically (the simulator); `progress` sees each login step.
pub async fn add_and_sign_in(
    http: &reqwest::Client,
    vault: &Vault,
    name: &str,
    upstream: url::Url,
    progress: authorize::Progress,
) -> Result<authorize::LoginOutcome, DemoError> {
    tether_core::connections::add(vault, name, upstream.as_str(), AddAuth::OAuth)
        .await
        .map_err(|e| DemoError::Login(name.to_string(), e.to_string()))?;
    sign_in(http, vault, name, progress).await
}

async fn sign_in(
    http: &reqwest::Client,
    vault: &Vault,
    name: &str,
    progress: authorize::Progress,
) -> Result<authorize::LoginOutcome, DemoError> {
    let options = LoginOptions {
        browser: Browser::Fetch,
        timeout: std::time::Duration::from_secs(20),
        ..LoginOptions::default()
    };
    authorize::login(http, vault, name, options, progress)
        .await
        .map_err(|e| DemoError::Login(name.to_string(), e.to_string()))
}

fn demo_connection(profile: Profile, handle: &SimHandle) -> Connection {
    let now = Utc::now();
    let name = profile
        .as_str()
        .parse()
        .expect("profile names are valid connection names");
    let mut c = Connection::new(
        name,
        handle.mcp_url(),
        Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        },
        now,
    );
    c.record(Event::new(
        now,
        EventKind::Added,
        format!("simulated {profile}: {}", profile.description()),
    ));
    c
}

// `tether demo`'s options (the command's description is on `cli::Command::Demo`).
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Run without a terminal UI (for scripts and tests): print the connections and their
    /// endpoints, then serve until Ctrl-C or SIGTERM.
    #[arg(long)]
    pub headless: bool,
    /// Divide every simulated token lifetime by N, so refreshes happen while you watch.
    #[arg(long, value_name = "N", default_value_t = 120.0)]
    pub time_scale: f64,
}

pub async fn run(args: DemoArgs, theme: Option<String>) -> anyhow::Result<()> {
    if !args.headless {
        let demo = Demo::start(args.time_scale).await?;
        // Logs stay in the throwaway folder with everything else the demo made.
        let _log = crate::logging::to_file(&Paths::under(demo.home.path().to_path_buf()))?;
        let paths = Paths::discover()?;
        let config = Config::load(&paths).unwrap_or_default();
        let options = tether_tui::TuiOptions::new(&config, &paths, theme);
        let result = tether_tui::run(demo.engine.handle(), options).await;
        demo.stop().await;
        return result;
    }
    let demo = Demo::start(args.time_scale).await?;
    print_summary(&demo, args.time_scale).await?;
    crate::shutdown::signal().await?;
    demo.stop().await;
    Ok(())
}

async fn print_summary(demo: &Demo, time_scale: f64) -> anyhow::Result<()> {
    let addr = match &demo.engine.handle().state.borrow().proxy {
        ProxyStatus::Serving { addr } => Some(*addr),
        _ => None,
    };
    let mut endpoints = Vec::new();
    for (profile, _) in &demo.providers {
        let (secret, _) =
            tether_core::access::endpoint_secret(&demo.vault, profile.as_str(), "demo").await?;
        endpoints.push(
            addr.map(|a| tether_core::access::path_endpoint(&format!("http://{a}"), &secret)),
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "tether demo: {} simulated providers, time scale ×{time_scale}",
        demo.providers.len()
    )?;
    for (profile, handle) in &demo.providers {
        writeln!(
            out,
            "  {:<10} {:<28} {}",
            profile.as_str(),
            handle.mcp_url(),
            profile.description()
        )?;
    }
    writeln!(out, "vault: {}", demo.vault.describe())?;
    let store = demo.vault.load()?;
    let now = Utc::now();
    for (c, endpoint) in store.connections().iter().zip(&endpoints) {
        let s = tether_core::summary::ConnectionSummary::of(c, now);
        writeln!(
            out,
            "  {:<10} {:<12} token expires in {:<9} local endpoint: {}",
            s.name,
            s.state,
            s.expires_in_seconds
                .map(tether_core::summary::duration)
                .unwrap_or_else(|| "never".into()),
            endpoint.as_deref().unwrap_or("-")
        )?;
    }
    writeln!(
        out,
        "ready — press Ctrl-C to stop (the throwaway vault is deleted)"
    )?;
    out.flush()?;
    Ok(())
}
