//! The local proxy (DESIGN §7, SPEC §B): one stable MCP endpoint per connection for every
//! local client. `service(engine, config)` builds it; [`spawn`] serves it for `tether
//! serve`, the TUI and the stdio bridge.
//!
//! Routes: `/s/<secret>/mcp` (the secret in the path, for clients that cannot send
//! headers), `/c/<name>/mcp` (the secret as `Authorization: Bearer`), `/healthz`,
//! `/metrics`. Every request passes the Host/Origin guard before anything else.

mod forward;
mod guard;
mod metrics;
mod upstream;

use std::sync::Arc;

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, ServiceExt};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use metrics::{Metrics, slot};

use crate::config::ProxyConfig;
use crate::engine::Engine;

/// What every handler shares.
pub struct Proxy {
    engine: Engine,
    /// The one shared client toward upstream MCP servers.
    upstream: upstream::Upstream,
    config: Arc<ProxyConfig>,
    metrics: Arc<Metrics>,
}

/// A proxy serving on a thread of its own (see [`spawn`]). Dropping it leaves the proxy
/// serving until the process ends; [`Serving::stop`] stops it.
pub struct Serving {
    stop: CancellationToken,
    finished: Option<oneshot::Receiver<std::io::Result<()>>>,
}

/// Serves the proxy's routes on `listener` from a thread of its own with a
/// single-threaded runtime. Each call is then handled start to finish on one thread:
/// a multi-threaded runtime's hand-offs between workers cost more than the forwarding
/// itself (the proxy bench measured 10,100 calls/s on one core against 17,000), and
/// nothing else the process does — drawing the TUI, refreshing tokens — runs between a
/// call's read and its answer.
pub fn spawn(
    engine: Engine,
    config: ProxyConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<Serving> {
    let listener = listener.into_std()?;
    let stop = CancellationToken::new();
    let (done, finished) = oneshot::channel();
    let stopping = stop.clone();
    std::thread::Builder::new()
        .name("tether-proxy".to_string())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| runtime.block_on(serve(engine, config, listener, stopping)));
            let _ = done.send(served);
        })?;
    Ok(Serving {
        stop,
        finished: Some(finished),
    })
}

async fn serve(
    engine: Engine,
    config: ProxyConfig,
    listener: std::net::TcpListener,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    // Answers go out in several small writes (headers, then each streamed chunk): without
    // TCP_NODELAY, Nagle holds each behind the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY on a client connection: {e}");
        }
    });
    tokio::spawn(heartbeat());
    axum::serve(listener, service(engine, config).into_make_service())
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// Keeps a timer due within a second at all times. Every call sets an answer timeout due in
/// minutes; with an earlier timer already pending, setting it never has to wake the
/// runtime's driver through its event fd — two system calls saved per call, at the cost of
/// one wake-up a second.
async fn heartbeat() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
    }
}

impl Serving {
    /// Resolves if the proxy stops by itself (it cannot accept any more).
    pub async fn finished(&mut self) -> std::io::Result<()> {
        match self.finished.as_mut() {
            Some(finished) => {
                let result = finished.await.unwrap_or(Ok(()));
                self.finished = None;
                result
            }
            None => std::future::pending().await,
        }
    }

    /// Stops accepting and lets open requests finish for up to `drain`; whether they all
    /// did.
    pub async fn stop(mut self, drain: std::time::Duration) -> bool {
        self.stop.cancel();
        tokio::time::timeout(drain, self.finished()).await.is_ok()
    }
}

/// The proxy over `engine`: every request passes the Host/Origin guard; the MCP
/// endpoints are answered directly, the rest (`/healthz`, `/metrics`, unknown paths) by
/// an axum router.
pub fn service(engine: Engine, config: ProxyConfig) -> ProxyService {
    let proxy = Arc::new(Proxy {
        engine,
        upstream: upstream::Upstream::new(&config),
        metrics: Arc::new(Metrics::default()),
        config: Arc::new(config),
    });
    let rest = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .with_state(proxy.clone());
    ProxyService { proxy, rest }
}

/// See [`service`]. The MCP endpoints skip the router: on the hot path, its per-request
/// boxing and cloning cost more than the forwarding itself.
#[derive(Clone)]
pub struct ProxyService {
    proxy: Arc<Proxy>,
    rest: Router,
}

/// The two MCP endpoints.
enum Endpoint<'a> {
    /// `/s/<secret>/mcp`
    Secret(&'a str),
    /// `/c/<name>/mcp`
    Name(&'a str),
}

fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let segment = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("/mcp")
            .filter(|s| !s.is_empty() && !s.contains('/'))
    };
    segment("/s/")
        .map(Endpoint::Secret)
        .or_else(|| segment("/c/").map(Endpoint::Name))
}

impl tower_service::Service<Request> for ProxyService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(refused) = guard::refusal(&self.proxy.config, &request) {
            return Box::pin(std::future::ready(Ok(refused)));
        }
        let proxy = self.proxy.clone();
        match endpoint(request.uri().path()) {
            Some(Endpoint::Secret(secret)) => {
                let secret = secret.to_string();
                Box::pin(async move { Ok(by_secret(&proxy, &secret, request).await) })
            }
            Some(Endpoint::Name(name)) => {
                let name = name.to_string();
                Box::pin(async move { Ok(by_name(&proxy, &name, request).await) })
            }
            None => Box::pin(self.rest.call(request)),
        }
    }
}

async fn healthz(State(proxy): State<Arc<Proxy>>) -> Response {
    let store = proxy.engine.store();
    axum::Json(serde_json::json!({
        "status": "ok",
        "service": "tether",
        "version": env!("CARGO_PKG_VERSION"),
        "connections": store.connections().len(),
    }))
    .into_response()
}

async fn metrics_text(State(proxy): State<Arc<Proxy>>) -> Response {
    let store = proxy.engine.store();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        proxy.metrics.render(&store),
    )
        .into_response()
}

async fn by_secret(proxy: &Proxy, secret: &str, request: Request) -> Response {
    let found = {
        let store = proxy.engine.store();
        crate::access::find_secret(&store, secret)
            .map(|(c, label)| (c.name.to_string(), label.to_string()))
    };
    match found {
        Some((name, label)) => forward::forward(proxy, &name, &label, request).await,
        None => unauthorized(
            "this endpoint's secret is not valid (revoked, or mistyped): run `tether url NAME --client LABEL` for a new one",
        ),
    }
}

async fn by_name(proxy: &Proxy, name: &str, request: Request) -> Response {
    let label = {
        let store = proxy.engine.store();
        let Some(connection) = store.get(name) else {
            return forward::no_connection(name);
        };
        bearer(request.headers())
            .and_then(|s| crate::access::client_of(connection, s))
            .map(str::to_string)
    };
    match label {
        Some(label) => forward::forward(proxy, name, &label, request).await,
        None => unauthorized(&format!(
            "send this client's tether secret as 'Authorization: Bearer <secret>': run `tether url {name} --client LABEL`"
        )),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A local client without a valid secret. No `WWW-Authenticate` challenge: that would
/// send the client into an OAuth dance tether does not offer.
fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "downstream_unauthorized",
            "message": format!("tether: {message}"),
        })),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "tether: unknown path; MCP endpoints are /s/<secret>/mcp and /c/<name>/mcp",
    )
        .into_response()
}
