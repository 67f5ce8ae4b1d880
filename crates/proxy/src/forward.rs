//! Forwarding one request upstream with the connection's own credential: the buffered
//! body, the MCP headers both wire revisions use, never the client's `Authorization`;
//! the response streamed back as it arrives (SSE events are not buffered). An upstream
//! 401 gets one forced refresh and one retry; a connection that cannot authenticate is
//! answered with a JSON-RPC error that names the diagnosis and the fix.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::IntoResponse;
use bytes::BytesMut;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use serde_json::{Value, json};

use super::codes;
use super::upstream::{
    Call, Patience, Payload, Target, UpstreamError, UpstreamResponse, passes_downstream,
};
use super::{Answer, Proxy, Reply};
use tether_core::diagnosis::explain;
use tether_core::oauth::refresh::{AuthError, Current, Trigger};
use tether_core::oauth::www_authenticate;
use tether_core::vault::{Auth, Connection, DiagnosisCode, MAX_STEP_UPS};

/// JSON-RPC error codes tether answers with (implementation-defined range; the table is
/// in README.md).
const AUTH_ERROR: i64 = codes::AUTH.code;
const UPSTREAM_ERROR: i64 = codes::UNREACHABLE.code;
const UPSTREAM_TIMEOUT: i64 = codes::TIMEOUT.code;

/// Forwards one call whose body has been read whole, and counts it for its client.
pub async fn forward(
    proxy: &Proxy,
    connection: &Connection,
    label: &str,
    parts: &Parts,
    body: Bytes,
) -> Answer {
    let started = Instant::now();
    let name = connection.name.as_str();
    let response = forward_buffered(proxy, connection, parts, body, started).await;
    // An answer tether wrote itself stands for a failure (the upstream's are passed on).
    let ok = response.status().is_success() && matches!(response.body(), Reply::Upstream(_));
    proxy
        .engine
        .record_traffic(name, label, ok, started.elapsed());
    response
}

/// The answer to a request body over `proxy.max_body_bytes`.
pub fn too_large(limit: usize) -> Answer {
    own((
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "tether: the request body is larger than {limit} bytes (proxy.max_body_bytes in config.toml)"
        ),
    ))
}

/// The answer to a request body that could not be read (broken framing).
pub fn unreadable(reason: &dyn std::fmt::Display) -> Answer {
    own((
        StatusCode::BAD_REQUEST,
        format!("tether: the request body could not be read ({reason})"),
    ))
}

/// A local answer tether wrote itself.
pub fn own(response: impl IntoResponse) -> Answer {
    response.into_response().map(Reply::Own)
}

/// The answer for a connection name the vault does not hold (removed meanwhile, or
/// mistyped in `/c/<name>/mcp`).
pub fn no_connection(name: &str) -> Answer {
    own((
        StatusCode::NOT_FOUND,
        format!("tether has no connection named '{name}'"),
    ))
}

pub enum BodyError {
    TooLarge,
    Unreadable(hyper::Error),
}

/// The whole request body, refused once it passes `limit` bytes (at once when its
/// declared length does). A body that arrives in one piece — nearly every JSON-RPC
/// message — is passed on without a copy.
pub async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        discard_rest(&mut body).await;
        return Err(BodyError::TooLarge);
    }
    let mut first = Bytes::new();
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(BodyError::Unreadable)?.into_data() else {
            continue; // trailers
        };
        let total = first.len() + joined.as_ref().map_or(0, BytesMut::len) + data.len();
        if total > limit {
            discard_rest(&mut body).await;
            return Err(BodyError::TooLarge);
        }
        match &mut joined {
            Some(joined) => joined.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut both = BytesMut::with_capacity(total);
                both.extend_from_slice(&first);
                both.extend_from_slice(&data);
                first = Bytes::new();
                joined = Some(both);
            }
        }
    }
    Ok(joined.map_or(first, BytesMut::freeze))
}

/// Reads and drops what is left of a refused body — up to 1 MiB, for up to 5 s — so that
/// a client still sending it reads the refusal rather than a connection reset under its
/// feet.
async fn discard_rest(body: &mut Incoming) {
    const AT_MOST: usize = 1 << 20;
    let drain = async {
        let mut left = AT_MOST;
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, Bytes::len);
            if len >= left {
                return;
            }
            left -= len;
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
}

/// Removes every header `passes` refuses, in place: no new map for each call, and one
/// pass over the names for up to eight refused ones.
fn keep_only(headers: &mut HeaderMap, passes: fn(&HeaderName) -> bool) {
    const BATCH: usize = 8;
    loop {
        let mut refused: [Option<HeaderName>; BATCH] = Default::default();
        let mut found = 0;
        for name in headers.keys().filter(|k| !passes(k)).take(BATCH) {
            refused[found] = Some(name.clone());
            found += 1;
        }
        for name in refused.iter().flatten() {
            headers.remove(name);
        }
        if found < BATCH {
            return;
        }
    }
}

/// Drops a `Content-Length` that does not state `exact`, the body's real length (hyper
/// then states the right one).
fn keep_length_if(headers: &mut HeaderMap, exact: Option<u64>) {
    let stated = headers
        .get(header::CONTENT_LENGTH)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u64>().ok()));
    if let Some(stated) = stated
        && (stated.is_none() || stated != exact)
    {
        headers.remove(header::CONTENT_LENGTH);
    }
}

async fn forward_buffered(
    proxy: &Proxy,
    connection: &Connection,
    parts: &Parts,
    body: Bytes,
    at: Instant,
) -> Answer {
    let name = connection.name.as_str();
    let oauth = matches!(connection.auth, Auth::OAuth { .. });
    let api_key = matches!(connection.auth, Auth::ApiKey { .. });
    let target = match proxy.upstream.target(&connection.upstream) {
        Ok(target) => target,
        Err(e) => return unreachable(name, &e, parts, &body),
    };
    let current = match proxy.engine.credential(name).await {
        Ok(c) => c,
        Err(e) => return auth_failure(name, &e, parts, &body),
    };
    let mut result = send(proxy, &target, parts, &body, &current, at).await;
    // The generation of the token the answer in `result` was given to.
    let mut sent = current.generation;
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
        if fresh.generation > current.generation && current.revoked_early() {
            record_eviction(
                proxy,
                name,
                &current,
                challenge.error_description.as_deref(),
            );
        }
        sent = fresh.generation;
        result = send(proxy, &target, parts, &body, &fresh, Instant::now()).await;
    }
    match result {
        Ok(res) if res.status() == StatusCode::FORBIDDEN && oauth => {
            Box::pin(insufficient_scope(proxy, name, res, parts, &body)).await
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && oauth => {
            let e = AuthError::NeedsReauth {
                name: name.to_string(),
                diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
                detail: "the server refused a freshly refreshed token".to_string(),
            };
            // The client hears it must sign in again; `list`, `status` and the terminal UI
            // must say the same, not "healthy".
            let vault = proxy.engine.vault().clone();
            let refused = name.to_string();
            tokio::spawn(async move {
                tether_core::oauth::refresh::record_refused(&vault, &refused, sent).await;
            });
            auth_failure(name, &e, parts, &body)
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && api_key => {
            let message = format!(
                "tether: the upstream of '{name}' rejected its API key (401): replace the key with `tether remove {name}` and `tether add {name} … --api-key-env VAR`"
            );
            let data =
                json!({"connection": name, "diagnosis": DiagnosisCode::TokenEvicted.as_str()});
            let vault = proxy.engine.vault().clone();
            let name = name.to_string();
            tokio::spawn(async move {
                tether_core::oauth::refresh::record_key_rejected(&vault, &name).await;
            });
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
        Err(UpstreamError::Timeout(secs)) => timed_out(name, secs, parts, &body),
        Err(e) => unreachable(name, &e, parts, &body),
    }
}

/// How long a request's answer is waited for: a `tools/call` as long as its client waits;
/// the GET stream of server messages must begin in time, then may stay quiet (it is, between
/// notifications); anything else is bounded by `upstream_timeout_secs`.
fn patience(parts: &Parts, body: &[u8]) -> Patience {
    if parts.method == Method::GET {
        Patience::HeadOnly
    } else if calls_a_tool(parts, body) {
        Patience::Unbounded
    } else {
        Patience::Bounded
    }
}

/// Whether a request is a `tools/call`, by its `Mcp-Method` header (2026-07-28), else by
/// its body.
fn calls_a_tool(parts: &Parts, body: &[u8]) -> bool {
    const TOOLS_CALL: &str = "tools/call";
    if let Some(method) = parts.headers.get("mcp-method") {
        return method == TOOLS_CALL;
    }
    if parts.method != Method::POST {
        return false;
    }
    // Most calls are not tool calls: a byte search (SIMD) rules them out before a parse.
    let named = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
    if !named(b"tools/call") && !named(br"tools\/call") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<Message<'_>>>(body)
            .is_ok_and(|all| all.iter().any(|m| m.method.as_deref() == Some(TOOLS_CALL))),
        _ => serde_json::from_slice::<Message<'_>>(body)
            .is_ok_and(|m| m.method.as_deref() == Some(TOOLS_CALL)),
    }
}

async fn send(
    proxy: &Proxy,
    target: &Target,
    parts: &Parts,
    body: &Bytes,
    current: &Current,
    at: Instant,
) -> Result<UpstreamResponse, UpstreamError> {
    let credential = current
        .header()
        .map_err(|e| UpstreamError::Failed(e.into()))?;
    let call = Call {
        method: &parts.method,
        headers: &parts.headers,
        body,
        credential,
        at,
        patience: patience(parts, body),
    };
    proxy.upstream.send(target, &call).await
}

/// Streams the upstream answer back chunk by chunk; dropping the client's side drops
/// the upstream request too.
fn stream_back(mut res: UpstreamResponse) -> Answer {
    let exact = res.body().size_hint().exact();
    let status = res.status();
    let http2 = matches!(res.body().get_ref(), Payload::Http2(_));
    let headers = res.headers_mut();
    if http2 {
        keep_only(headers, passes_downstream);
        keep_length_if(headers, exact);
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // An HTTP/1.1 answer's head kept only what passes, and the challenge.
        headers.remove(header::WWW_AUTHENTICATE);
    }
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res.map(Reply::Upstream)
}

fn record_eviction(proxy: &Proxy, name: &str, rejected: &Current, description: Option<&str>) {
    let vault = proxy.engine.vault().clone();
    let name = name.to_string();
    let event = tether_core::oauth::refresh::eviction_event(rejected, description);
    tokio::spawn(async move {
        tether_core::oauth::refresh::record(&vault, &name, event).await;
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
) -> Answer {
    match request_id(parts, body) {
        Some(id) => own(axum::Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": code, "message": message, "data": data},
        }))),
        None => own((
            status,
            axum::Json(json!({"error": data, "message": message})),
        )),
    }
}

fn auth_failure(name: &str, error: &AuthError, parts: &Parts, body: &Bytes) -> Answer {
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
        other => (format!("tether: {other}"), other.diagnosis()),
    };
    let data = json!({
        "connection": name,
        "diagnosis": code.map(|c| c.as_str()),
    });
    rpc_error(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::for_diagnosis(code).code,
        message,
        data,
        parts,
        body,
    )
}

fn unreachable(name: &str, error: &UpstreamError, parts: &Parts, body: &Bytes) -> Answer {
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

/// A bounded call (not a tool call) whose answer did not begin within
/// `upstream_timeout_secs`: the upstream may well be up, only slow.
fn timed_out(name: &str, secs: u64, parts: &Parts, body: &Bytes) -> Answer {
    let message = format!(
        "tether: the upstream of '{name}' took longer than {secs} s to answer; if it is just slow, raise [proxy] upstream_timeout_secs in config.toml (tool calls are never cut)"
    );
    let data = json!({"connection": name, "error": "upstream_timeout"});
    rpc_error(
        StatusCode::GATEWAY_TIMEOUT,
        UPSTREAM_TIMEOUT,
        message,
        data,
        parts,
        body,
    )
}

/// A 403: passed on as it is unless it is `insufficient_scope`, which becomes a step-up —
/// the scopes wanted are recorded for the next sign-in — and an error saying so.
async fn insufficient_scope(
    proxy: &Proxy,
    name: &str,
    res: UpstreamResponse,
    parts: &Parts,
    body: &Bytes,
) -> Answer {
    let challenge = www_authenticate::bearer(res.headers()).unwrap_or_default();
    if challenge.error.as_deref() != Some("insufficient_scope") {
        return stream_back(res);
    }
    drop(res);
    let needed: Vec<String> = challenge
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let step = tether_core::oauth::authorize::want_scopes(
        proxy.engine.vault(),
        name,
        needed.clone(),
        challenge.error_description,
    )
    .await;
    let wanted = match &step {
        Ok(step) if !step.scopes.is_empty() => step.scopes.join(" "),
        _ => needed.join(" "),
    };
    let said = if wanted.is_empty() {
        String::new()
    } else {
        format!(": needs '{wanted}'")
    };
    let message = match &step {
        Ok(step) if step.to_ask().is_empty() && !step.scopes.is_empty() => format!(
            "tether: '{name}' still lacks scope '{wanted}' after {MAX_STEP_UPS} sign-ins that asked for it (insufficient_scope): the account may not be allowed it. `tether login {name} --scope \"{wanted}\"` asks once more."
        ),
        Ok(_) => format!(
            "tether: '{name}' needs re-authorization with more scope (insufficient_scope{said}). Run `tether login {name}` (it asks for that scope too) or press l in tether."
        ),
        Err(_) => format!(
            "tether: '{name}' needs re-authorization with more scope (insufficient_scope{said}). Run `tether login {name} --scope \"{wanted}\"` or press l in tether."
        ),
    };
    let data = json!({
        "connection": name,
        "diagnosis": DiagnosisCode::InsufficientScope.as_str(),
        "scope": wanted,
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

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(method: Method, mcp_method: Option<&str>) -> Parts {
        let mut request = Request::builder().method(method).uri("/s/x/mcp");
        if let Some(m) = mcp_method {
            request = request.header("mcp-method", m);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn tool_calls_are_told_by_header_else_by_body() {
        let post = parts(Method::POST, None);
        assert!(calls_a_tool(
            &post,
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#
        ));
        assert!(calls_a_tool(&post, br#" {"method":"tools\/call","id":1}"#));
        assert!(calls_a_tool(
            &post,
            br#"[{"method":"tools/list"},{"method":"tools/call"}]"#
        ));
        assert!(!calls_a_tool(
            &post,
            br#"{"method":"tools/list","params":{"x":"tools/call"}}"#
        ));
        assert!(!calls_a_tool(&post, b"{not json"));
        assert!(calls_a_tool(&parts(Method::POST, Some("tools/call")), b""));
        assert!(!calls_a_tool(
            &parts(Method::POST, Some("tools/list")),
            br#"{"method":"tools/call"}"#
        ));
        assert!(!calls_a_tool(&parts(Method::GET, None), b""));
        assert_eq!(patience(&parts(Method::GET, None), b""), Patience::HeadOnly);
        assert_eq!(
            patience(&post, br#"{"method":"tools/list"}"#),
            Patience::Bounded
        );
        assert_eq!(
            patience(&post, br#"{"method":"tools/call"}"#),
            Patience::Unbounded
        );
    }
}
