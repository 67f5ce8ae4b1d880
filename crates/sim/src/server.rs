//! Starting and stopping a simulator: the shared state every handler sees, the router,
//! and the handle the caller keeps.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::admin::{self, Stats};
use super::faults::{self, FaultPlan};
use super::net::{ConnCutter, Connections, SimListener};
use super::profile::{DEVICE_GRANT, Policy, Profile};
use super::state::{Store, Totals};
use super::{SimError, SimOptions, authorize, device, mcp, metadata, register, token};

/// Fixed facts about one running simulator.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub profile: Profile,
    pub policy: Policy,
    pub time_scale: f64,
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub origin: String,
    /// `""` or `/oauth`.
    pub issuer_path: String,
    /// The issuer identifier, byte for byte as metadata and `iss` carry it.
    pub issuer: String,
    /// The protected resource: the exact MCP URL.
    pub resource: String,
    /// MCP needs no bearer token.
    pub open: bool,
    /// The device authorization grant (RFC 8628) is offered.
    pub device_flow: bool,
    /// Client ID Metadata Documents are accepted.
    pub cimd: bool,
}

impl Config {
    /// An authorization-server endpoint under the issuer, e.g. `token`.
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}{}/{}", self.origin, self.issuer_path, name)
    }

    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.origin)
    }

    /// The grant types this server honours: the profile's, plus the device grant when
    /// it is offered.
    pub fn grant_types(&self) -> Vec<&'static str> {
        let mut grants = self.policy.grant_types();
        if self.device_flow {
            grants.push(DEVICE_GRANT);
        }
        grants
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub cfg: Config,
    store: Mutex<Store>,
    faults: Mutex<FaultPlan>,
    /// Bumped whenever the plan is replaced, so calls held by a freeze look again.
    fault_changes: tokio::sync::watch::Sender<()>,
    pub shutdown: CancellationToken,
}

impl Shared {
    /// The store, locked. Never held across an `.await`.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultPlan> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the fault plan and wakes the calls a freeze holds.
    pub fn replace_faults(&self, plan: FaultPlan) {
        *self.faults() = plan;
        self.fault_changes.send_replace(());
    }

    pub fn fault_changes(&self) -> tokio::sync::watch::Receiver<()> {
        self.fault_changes.subscribe()
    }

    pub fn count(&self, f: impl FnOnce(&mut Totals)) {
        f(&mut self.store().totals);
    }
}

/// Milliseconds since the Unix epoch: the clock every expiry is measured on.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A running simulator. Dropping it stops the server abruptly; `shutdown` stops it
/// cleanly.
#[derive(Debug)]
pub struct SimHandle {
    base: Url,
    shared: Arc<Shared>,
    conns: Connections,
    task: Option<JoinHandle<()>>,
}

fn check_options(opts: &SimOptions) -> Result<String, SimError> {
    if !opts.time_scale.is_finite() || opts.time_scale < 1.0 {
        return Err(SimError::BadTimeScale(opts.time_scale));
    }
    let path = match &opts.issuer_path {
        None => String::new(),
        Some(p) => {
            let ok = p.starts_with('/')
                && p.len() > 1
                && !p.ends_with('/')
                && !p.contains(['?', '#', ' ', '%'])
                && !p.contains("//");
            if !ok {
                return Err(SimError::BadIssuerPath(p.clone()));
            }
            p.clone()
        }
    };
    if let Some(bad) = opts
        .faults
        .missing_metadata
        .iter()
        .find(|p| !p.starts_with('/'))
    {
        return Err(SimError::BadMetadataPath(bad.clone()));
    }
    Ok(path)
}

/// Binds 127.0.0.1 and serves the simulator until the handle is shut down or dropped.
pub async fn start(opts: SimOptions) -> Result<SimHandle, SimError> {
    let issuer_path = check_options(&opts)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .map_err(|source| SimError::Bind {
            port: opts.port,
            source,
        })?;
    let port = listener
        .local_addr()
        .map_err(|source| SimError::Bind {
            port: opts.port,
            source,
        })?
        .port();
    let origin = format!("http://127.0.0.1:{port}");
    let base = Url::parse(&origin).map_err(|e| SimError::Bind {
        port: opts.port,
        source: std::io::Error::other(e),
    })?;
    let policy = opts.profile.policy();
    let cfg = Config {
        profile: opts.profile,
        device_flow: opts.device_flow || policy.device_flow,
        policy,
        time_scale: opts.time_scale,
        issuer: format!("{origin}{issuer_path}"),
        resource: format!("{origin}/mcp"),
        origin,
        issuer_path,
        open: opts.open,
        cimd: opts.cimd,
    };
    let shared = Arc::new(Shared {
        cfg,
        store: Mutex::new(Store::default()),
        faults: Mutex::new(opts.faults),
        fault_changes: tokio::sync::watch::Sender::new(()),
        shutdown: CancellationToken::new(),
    });
    let conns = Connections::default();
    let app = router(shared.clone()).into_make_service_with_connect_info::<ConnCutter>();
    let listener = SimListener::new(listener, conns.clone());
    let stop = shared.shutdown.clone();
    let task = tokio::spawn(async move {
        // The listener retries failed accepts itself, so serving never returns an error
        // worth reporting.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(SimHandle {
        base,
        shared,
        conns,
        task: Some(task),
    })
}

fn router(shared: Arc<Shared>) -> Router {
    // A server with no sign-in has no authorization server: publishing its metadata made
    // Codex run a whole OAuth flow against an open MCP endpoint.
    let r = if shared.cfg.open {
        Router::new()
    } else {
        oauth_routes(&shared.cfg)
    };
    r.route("/mcp", post(mcp::post).get(mcp::get).delete(mcp::delete))
        .route("/__sim/stats", get(admin::stats))
        .route(
            "/__sim/faults",
            get(admin::get_faults).post(admin::set_faults),
        )
        .route("/__sim/revoke-all", post(admin::revoke_all))
        .route("/__sim/evict-access", post(admin::evict_access))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults::missing_metadata,
        ))
        .with_state(shared)
}

/// The discovery documents and the authorization server's endpoints.
fn oauth_routes(cfg: &Config) -> Router<Arc<Shared>> {
    let p = cfg.issuer_path.clone();
    let mut r = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        );
    let as_paths = if p.is_empty() {
        vec![
            "/.well-known/oauth-authorization-server".to_string(),
            "/.well-known/openid-configuration".to_string(),
        ]
    } else {
        vec![
            format!("/.well-known/oauth-authorization-server{p}"),
            format!("/.well-known/openid-configuration{p}"),
            format!("{p}/.well-known/openid-configuration"),
        ]
    };
    for path in as_paths {
        r = r.route(&path, get(metadata::authorization_server));
    }
    if cfg.device_flow {
        r = r
            .route(
                &format!("{p}/device_authorization"),
                post(device::authorization),
            )
            .route(&format!("{p}/device"), get(device::verify));
    }
    r.route(&format!("{p}/authorize"), get(authorize::authorize))
        .route(&format!("{p}/token"), post(token::token))
        .route(&format!("{p}/revoke"), post(token::revoke))
        .route(&format!("{p}/register"), post(register::register))
        .route(
            &format!("{p}/register/{{client_id}}"),
            get(register::read).delete(register::delete),
        )
}

impl SimHandle {
    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        url.set_path(path);
        url
    }

    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp` — also the protected resource.
    pub fn mcp_url(&self) -> Url {
        self.url("/mcp")
    }

    /// The origin, `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> Url {
        self.url("/")
    }

    /// The admin API's root, `http://127.0.0.1:PORT/__sim/`.
    pub fn admin_url(&self) -> Url {
        self.url("/__sim/")
    }

    /// The issuer identifier exactly as metadata and `iss` carry it (no trailing slash).
    pub fn issuer(&self) -> String {
        self.shared.cfg.issuer.clone()
    }

    pub fn profile(&self) -> Profile {
        self.shared.cfg.profile
    }

    /// The same numbers as `GET /__sim/stats`, without a round trip.
    pub fn stats(&self) -> Stats {
        admin::snapshot(&self.shared)
    }

    /// Replaces the fault plan, as `POST /__sim/faults` does.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.replace_faults(plan);
    }

    /// Stops accepting, ends open streams and waits (briefly) for connections to close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            // A client holding a connection open must not keep us alive.
            self.conns.cut_all();
            if tokio::time::timeout(Duration::from_secs(1), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        if let Some(task) = self.task.take() {
            self.conns.cut_all();
            task.abort();
        }
    }
}
