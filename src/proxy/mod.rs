//! The local proxy (DESIGN §7, SPEC §B): one stable MCP endpoint per connection for every
//! local client. `router(engine, config)` builds it; `tether serve` and the TUI serve it.
//!
//! Routes: `/s/<secret>/mcp` (the secret in the path, for clients that cannot send
//! headers), `/c/<name>/mcp` (the secret as `Authorization: Bearer`), `/healthz`,
//! `/metrics`. Every request passes the Host/Origin guard before anything else.

mod forward;
mod guard;
mod metrics;
mod upstream;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

pub use metrics::Metrics;

use crate::config::ProxyConfig;
use crate::engine::Engine;

/// What every handler shares.
#[derive(Clone)]
pub struct Proxy {
    engine: Engine,
    /// The one shared client toward upstream MCP servers.
    upstream: upstream::Upstream,
    config: Arc<ProxyConfig>,
    metrics: Arc<Metrics>,
}

/// The proxy's routes over `engine`.
pub fn router(engine: Engine, config: ProxyConfig) -> Router {
    let proxy = Proxy {
        engine,
        upstream: upstream::Upstream::new(&config),
        metrics: Arc::new(Metrics::default()),
        config: Arc::new(config),
    };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/s/{secret}/mcp", any(by_secret))
        .route("/c/{name}/mcp", any(by_name))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            proxy.clone(),
            guard::host_and_origin,
        ))
        .with_state(proxy)
}

async fn healthz(State(proxy): State<Proxy>) -> Response {
    let store = proxy.engine.store();
    axum::Json(serde_json::json!({
        "status": "ok",
        "service": "tether",
        "version": env!("CARGO_PKG_VERSION"),
        "connections": store.connections().len(),
    }))
    .into_response()
}

async fn metrics_text(State(proxy): State<Proxy>) -> Response {
    let store = proxy.engine.store();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        proxy.metrics.render(&store),
    )
        .into_response()
}

async fn by_secret(
    State(proxy): State<Proxy>,
    Path(secret): Path<String>,
    request: Request,
) -> Response {
    let store = proxy.engine.store();
    match crate::access::find_secret(&store, &secret) {
        Some((c, label)) => {
            let (name, label) = (c.name.to_string(), label.to_string());
            forward::forward(&proxy, &name, &label, request).await
        }
        None => unauthorized(
            "this endpoint's secret is not valid (revoked, or mistyped): run `tether url NAME --client LABEL` for a new one",
        ),
    }
}

async fn by_name(
    State(proxy): State<Proxy>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let store = proxy.engine.store();
    let Some(connection) = store.get(&name) else {
        return (
            StatusCode::NOT_FOUND,
            format!("tether has no connection named '{name}'"),
        )
            .into_response();
    };
    let label = bearer(request.headers()).and_then(|s| crate::access::client_of(connection, s));
    match label {
        Some(label) => {
            let label = label.to_string();
            forward::forward(&proxy, &name, &label, request).await
        }
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
