//! Forwarding one request upstream with the connection's own credential: the buffered
//! body, the MCP headers both wire revisions use, never the client's `Authorization`;
//! the response streamed back as it arrives (SSE events are not buffered). An upstream
//! 401 gets one forced refresh and one retry; a connection that cannot authenticate is
//! answered with a JSON-RPC error that names the diagnosis and the fix.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::Proxy;
use super::upstream::{UpstreamError, UpstreamResponse};
use crate::diagnosis::explain;
use crate::oauth::refresh::{AuthError, Credential, Current, Trigger};
use crate::oauth::www_authenticate;
use crate::vault::{Auth, DiagnosisCode, Event, EventKind, Evidence, Store, VaultError};

/// JSON-RPC error codes tether answers with (implementation-defined range).
const AUTH_ERROR: i64 = -32001;
const UPSTREAM_ERROR: i64 = -32002;

/// Request headers passed upstream; everything else (cookies, the client's own
/// `Authorization`) stays here.
fn passes_upstream(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "accept"
            | "content-type"
            | "mcp-session-id"
            | "mcp-protocol-version"
            | "last-event-id"
            | "mcp-method"
            | "mcp-name"
    ) || name.as_str().starts_with("mcp-param-")
}

/// Response headers passed back; an upstream `WWW-Authenticate` never is, so a client is
/// never sent into an OAuth dance of its own.
fn passes_downstream(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-type"
            | "mcp-session-id"
            | "mcp-protocol-version"
            | "cache-control"
            | "retry-after"
    )
}

pub async fn forward(proxy: &Proxy, name: &str, label: &str, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let response = match axum::body::to_bytes(body, proxy.config.max_body_bytes).await {
        Ok(body) => forward_buffered(proxy, name, &parts, body).await,
        Err(_) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "tether: the request body is larger than {} bytes (proxy.max_body_bytes in config.toml)",
                proxy.config.max_body_bytes
            ),
        )
            .into_response(),
    };
    let ok = response.status().is_success() && !response.headers().contains_key("x-tether-error");
    proxy.metrics.observe(name, label, ok, started.elapsed());
    proxy.engine.record_traffic(name, label, ok);
    response
}

/// The answer for a connection name the vault does not hold (removed meanwhile, or
/// mistyped in `/c/<name>/mcp`).
pub fn no_connection(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("tether has no connection named '{name}'"),
    )
        .into_response()
}

async fn forward_buffered(proxy: &Proxy, name: &str, parts: &Parts, body: Bytes) -> Response {
    let store = proxy.engine.store();
    let Some(connection) = store.get(name) else {
        return no_connection(name);
    };
    let upstream = connection.upstream.clone();
    let oauth = matches!(connection.auth, Auth::OAuth { .. });
    let api_key = matches!(connection.auth, Auth::ApiKey { .. });
    let current = match proxy.engine.credential(name).await {
        Ok(c) => c,
        Err(e) => return auth_failure(name, &e, parts, &body),
    };
    let mut result = send(proxy, &upstream, parts, body.clone(), &current).await;
    if oauth
        && let Ok(res) = &result
        && res.status() == StatusCode::UNAUTHORIZED
    {
        let Some(manager) = proxy.engine.manager(name) else {
            return auth_failure(name, &AuthError::NotFound(name.to_string()), parts, &body);
        };
        let challenge = www_authenticate::bearer(res.headers()).unwrap_or_default();
        // Another request may have refreshed since this one took its token: then this
        // only picks up the newer token.
        // Boxed: rare, and large enough that every call would otherwise carry its state.
        let refreshed = Box::pin(manager.refresh(Trigger::Rejected {
            seen: current.generation,
        }));
        let fresh = match refreshed.await {
            Ok(fresh) => fresh,
            Err(e) => return auth_failure(name, &e, parts, &body),
        };
        if fresh.generation > current.generation && well_before_expiry(&current) {
            record_eviction(
                proxy,
                name,
                &current,
                challenge.error_description.as_deref(),
            );
        }
        result = send(proxy, &upstream, parts, body.clone(), &fresh).await;
    }
    match result {
        Ok(res) if res.status() == StatusCode::FORBIDDEN => {
            insufficient_scope(name, res, parts, &body)
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && oauth => {
            let e = AuthError::NeedsReauth {
                name: name.to_string(),
                diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
                detail: "the server refused a freshly refreshed token".to_string(),
            };
            auth_failure(name, &e, parts, &body)
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && api_key => {
            let message = format!(
                "tether: the upstream of '{name}' rejected its API key (401): replace the key with `tether remove {name}` and `tether add {name} … --api-key-env VAR`"
            );
            let data =
                json!({"connection": name, "diagnosis": DiagnosisCode::TokenEvicted.as_str()});
            rpc_error(
                StatusCode::BAD_GATEWAY,
                AUTH_ERROR,
                message,
                data,
                parts,
                &body,
            )
        }
        Ok(res) => stream_back(res),
        Err(e) => unreachable(name, &e, parts, &body),
    }
}

async fn send(
    proxy: &Proxy,
    upstream: &url::Url,
    parts: &Parts,
    body: Bytes,
    current: &Current,
) -> Result<UpstreamResponse, UpstreamError> {
    let mut req = axum::http::Request::new(http_body_util::Full::new(body));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = upstream
        .as_str()
        .parse()
        .map_err(|e| UpstreamError::Failed(format!("the upstream URL is not usable: {e}")))?;
    let headers = req.headers_mut();
    for (k, v) in parts.headers.iter().filter(|(k, _)| passes_upstream(k)) {
        headers.append(k, v.clone());
    }
    let credential = match &current.credential {
        Credential::Bearer(token) => Some((
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", token.expose())),
        )),
        Credential::Header { name, value } => Some((
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| UpstreamError::Failed(format!("'{name}' is not a header name")))?,
            HeaderValue::from_str(value.expose()),
        )),
        Credential::None => None,
    };
    if let Some((name, value)) = credential {
        let mut value = value.map_err(|_| {
            UpstreamError::Failed("the credential cannot be sent as a header".to_string())
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    proxy.upstream.send(req).await
}

/// Streams the upstream answer back chunk by chunk; dropping the client's side drops
/// the upstream request too.
fn stream_back(res: UpstreamResponse) -> Response {
    let status = res.status();
    let mut headers = HeaderMap::new();
    for (k, v) in res.headers().iter().filter(|(k, _)| passes_downstream(k)) {
        headers.append(k.clone(), v.clone());
    }
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    let mut response = Response::new(Body::new(res.into_body()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A token rejected with more than a quarter of its lifetime left was revoked early
/// (a per-user token cap, typically), not merely expired.
fn well_before_expiry(current: &Current) -> bool {
    let Some(expires) = current.expires_at else {
        return true;
    };
    let life = expires - current.obtained_at;
    expires - Utc::now() > life / 4
}

fn record_eviction(proxy: &Proxy, name: &str, rejected: &Current, description: Option<&str>) {
    let vault = proxy.engine.vault().clone();
    let name = name.to_string();
    let left = rejected
        .expires_at
        .map(|at| crate::view::duration((at - Utc::now()).num_seconds().max(0)))
        .unwrap_or_else(|| "no expiry".to_string());
    let mut evidence = vec![
        Evidence::new("status", "401 invalid_token"),
        Evidence::new("generation", rejected.generation.to_string()),
        Evidence::new("time left", left.clone()),
    ];
    if let Some(d) = description {
        evidence.push(Evidence::new(
            "error_description",
            crate::oauth::token::printable(d, 200),
        ));
    }
    tokio::spawn(async move {
        let _ = vault
            .transact_async(move |store: &mut Store| {
                if let Some(c) = store.get_mut(&name) {
                    let mut event = Event::new(
                        Utc::now(),
                        EventKind::Rejected,
                        format!(
                            "the upstream revoked the access token early ({left} left); refreshed"
                        ),
                    );
                    event.diagnosis = Some(DiagnosisCode::TokenEvicted);
                    event.evidence = evidence;
                    c.record(event);
                }
                Ok::<_, VaultError>(())
            })
            .await;
    });
}

/// The JSON-RPC `id` of a request body, if it is a single request.
fn request_id(parts: &Parts, body: &Bytes) -> Option<Value> {
    if parts.method != Method::POST {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    object.get("method")?;
    object.get("id").cloned()
}

/// An error the client's assistant can read: a JSON-RPC error for a JSON-RPC request,
/// else `status` with the same message as JSON.
fn rpc_error(
    status: StatusCode,
    code: i64,
    message: String,
    data: Value,
    parts: &Parts,
    body: &Bytes,
) -> Response {
    let mut response = match request_id(parts, body) {
        Some(id) => axum::Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message, "data": data},
        }))
        .into_response(),
        None => (
            status,
            axum::Json(json!({"error": data, "message": message})),
        )
            .into_response(),
    };
    response
        .headers_mut()
        .insert("x-tether-error", HeaderValue::from_static("1"));
    response
}

fn auth_failure(name: &str, error: &AuthError, parts: &Parts, body: &Bytes) -> Response {
    let (message, code) = match error {
        AuthError::NeedsReauth { diagnosis, .. } => (
            format!("tether: {}", explain(*diagnosis).sentence_for(name)),
            Some(*diagnosis),
        ),
        AuthError::NeedsLogin(_) => (
            format!(
                "tether: '{name}' is not authorized yet. Run `tether login {name}` or press l in tether."
            ),
            None,
        ),
        AuthError::Unavailable { detail, .. } => (
            format!(
                "tether: '{name}' cannot refresh its token right now ({detail}); tether keeps retrying — try again shortly."
            ),
            Some(DiagnosisCode::UpstreamUnreachable),
        ),
        other => (format!("tether: {other}"), None),
    };
    let data = json!({
        "connection": name,
        "diagnosis": code.map(|c| c.as_str()),
    });
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        AUTH_ERROR,
        message,
        data,
        parts,
        body,
    )
}

fn unreachable(name: &str, error: &UpstreamError, parts: &Parts, body: &Bytes) -> Response {
    let message = format!(
        "tether: the upstream of '{name}' is unreachable ({error}); tether passes requests on as soon as it answers"
    );
    let data =
        json!({"connection": name, "diagnosis": DiagnosisCode::UpstreamUnreachable.as_str()});
    rpc_error(
        StatusCode::BAD_GATEWAY,
        UPSTREAM_ERROR,
        message,
        data,
        parts,
        body,
    )
}

fn insufficient_scope(name: &str, res: UpstreamResponse, parts: &Parts, body: &Bytes) -> Response {
    let challenge = www_authenticate::bearer(res.headers()).unwrap_or_default();
    if challenge.error.as_deref() != Some("insufficient_scope") {
        return stream_back(res);
    }
    let needed = challenge.scope.unwrap_or_default();
    let message = format!(
        "tether: '{name}' needs re-authorization with more scope (insufficient_scope{}). Run `tether login {name} --scope \"{needed}\"` or press l in tether.",
        if needed.is_empty() {
            String::new()
        } else {
            format!(": needs '{needed}'")
        }
    );
    let data = json!({
        "connection": name,
        "diagnosis": DiagnosisCode::InsufficientScope.as_str(),
        "scope": needed,
    });
    rpc_error(
        StatusCode::FORBIDDEN,
        AUTH_ERROR,
        message,
        data,
        parts,
        body,
    )
}
