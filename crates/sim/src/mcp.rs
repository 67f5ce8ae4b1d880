//! The MCP endpoint (Streamable HTTP): bearer checks with RFC 6750 challenges, JSON-RPC
//! dispatch, sessions for the 2025 revisions, and the JSON-or-SSE choice by `Accept`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::server::{Shared, now_ms};
use super::state::{LOG_LEVELS, Session, secret};
use super::{sse, tools};

pub(crate) const SUPPORTED_VERSIONS: [&str; 4] =
    ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];
const LATEST: &str = "2026-07-28";
/// Revisions from this one on have no sessions, GET streams or DELETE.
const STATELESS_FROM: &str = "2026-07-28";
const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// The JSON-RPC error code for a standard header that disagrees with the body (SEP-2243).
const HEADER_MISMATCH: i64 = -32020;
/// How often an open GET stream carries a server notification.
const STREAM_TICK: Duration = Duration::from_secs(2);

/// Who the bearer token belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub client_id: String,
    pub scope: String,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A 401 or 403 with a Bearer challenge (RFC 6750 §3).
pub(crate) fn challenge(status: StatusCode, params: &[(&str, &str)], body: Value) -> Response {
    let rendered: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", v.replace(['"', '\\'], "'")))
        .collect();
    let mut resp = (status, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", rendered.join(", "))) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn is_loopback_name(host: Option<&str>) -> bool {
    matches!(host, Some("127.0.0.1") | Some("localhost") | Some("[::1]"))
}

/// Browsers on other sites must not reach a loopback server (DNS rebinding): the `Host`
/// must name this machine, and a present `Origin` too.
fn host_and_origin_allowed(headers: &HeaderMap) -> bool {
    let host_ok = header_str(headers, "host").is_none_or(|host| {
        url::Url::parse(&format!("http://{host}")).is_ok_and(|u| is_loopback_name(u.host_str()))
    });
    let origin_ok = header_str(headers, "origin")
        .is_none_or(|origin| url::Url::parse(origin).is_ok_and(|u| is_loopback_name(u.host_str())));
    host_ok && origin_ok
}

/// Checks the bearer token; counts the request, and the 401 if there is one.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
    shared.count(|t| t.mcp_requests += 1);
    if !host_and_origin_allowed(headers) {
        return Err(Box::new(
            (StatusCode::FORBIDDEN, "host or origin not allowed").into_response(),
        ));
    }
    let cfg = &shared.cfg;
    if cfg.open {
        return Ok(Caller {
            client_id: "anonymous".into(),
            scope: cfg.policy.scopes_supported.join(" "),
        });
    }
    let metadata = cfg.resource_metadata_url();
    let token = header_str(headers, "authorization")
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let result = match token {
        // RFC 6750 §3.1: no credentials, no error code.
        None => Err(Box::new(challenge(
            StatusCode::UNAUTHORIZED,
            &[
                ("resource_metadata", &metadata),
                ("scope", cfg.policy.default_scope),
            ],
            json!({ "error": "unauthorized", "error_description": "authorization required" }),
        ))),
        Some(token) => {
            let store = shared.store();
            match store.check_access(&token, &cfg.resource, now_ms()) {
                Ok(t) => Ok(Caller {
                    client_id: t.client_id.clone(),
                    scope: t.scope.clone(),
                }),
                Err(why) => Err(Box::new(challenge(
                    StatusCode::UNAUTHORIZED,
                    &[
                        ("error", "invalid_token"),
                        ("error_description", &why),
                        ("resource_metadata", &metadata),
                    ],
                    json!({ "error": "invalid_token", "error_description": why }),
                ))),
            }
        }
    };
    if result.is_err() {
        shared.count(|t| t.mcp_401s += 1);
    }
    result
}

fn rpc_error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let body = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

/// What the client's `Accept` allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepts {
    pub json: bool,
    pub sse: bool,
}

fn accepts(headers: &HeaderMap) -> Accepts {
    let Some(accept) = header_str(headers, "accept") else {
        return Accepts {
            json: true,
            sse: false,
        };
    };
    let types: Vec<String> = accept
        .split(',')
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    let any = types.iter().any(|t| t == "*/*");
    Accepts {
        json: any
            || types
                .iter()
                .any(|t| t == "application/json" || t == "application/*"),
        sse: types.iter().any(|t| t == "text/event-stream"),
    }
}

/// The session named by the request, or the error the transport spec asks for.
fn check_session(shared: &Shared, headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    if let Some(version) = header_str(headers, VERSION_HEADER)
        && !SUPPORTED_VERSIONS.contains(&version)
    {
        return Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            &format!("unsupported MCP-Protocol-Version '{version}'"),
        )));
    }
    match header_str(headers, SESSION_HEADER) {
        // Like the reference SDK's server, any supported version is taken within a session.
        Some(id) if shared.store().sessions.contains_key(id) => Ok(Some(id.to_string())),
        Some(_) => Err(Box::new(rpc_error(
            StatusCode::NOT_FOUND,
            Value::Null,
            -32001,
            "session not found: initialize again",
        ))),
        None if header_str(headers, VERSION_HEADER).is_some_and(|v| v >= STATELESS_FROM) => {
            Ok(None)
        }
        None => Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            "Mcp-Session-Id header is required",
        ))),
    }
}

pub(crate) async fn post(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match authorize(&shared, &headers) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return rpc_error(StatusCode::BAD_REQUEST, Value::Null, -32700, "parse error"),
    };
    if msg.is_array() {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            "JSON-RPC batches are not supported",
        );
    }
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            -32600,
            "invalid request",
        );
    }
    let method = msg.get("method").and_then(Value::as_str);
    let id = msg.get("id").cloned();
    if let Err(why) = check_standard_headers(&headers, &msg) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            id.unwrap_or(Value::Null),
            HEADER_MISMATCH,
            &format!("HeaderMismatch: {why}"),
        );
    }
    let (Some(method), Some(id)) = (method, id) else {
        // A notification or a response: accepted, nothing to answer.
        return StatusCode::ACCEPTED.into_response();
    };
    let accept = accepts(&headers);
    if !accept.json && !accept.sse {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            id,
            -32600,
            "Accept must list application/json and text/event-stream",
        );
    }
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    if method == "initialize" {
        return initialize(&shared, id, &params, accept).await;
    }
    let session = match check_session(&shared, &headers) {
        Ok(session) => session,
        Err(resp) => return *resp,
    };
    let modern = header_str(&headers, VERSION_HEADER).is_some_and(|v| v >= STATELESS_FROM);
    let outcome = match method {
        "ping" => tools::Outcome::Result(json!({})),
        "server/discover" => tools::Outcome::Result(server_description(&shared, LATEST)),
        "tools/list" => tools::Outcome::Result(tools::list()),
        "tools/call" => tools::call(&shared, &caller, &params),
        "logging/setLevel" => set_log_level(&shared, session.as_deref(), &params),
        _ => tools::Outcome::Error(-32601, format!("method not found: {method}")),
    };
    let outcome = if modern {
        outcome.typed(method == "tools/list")
    } else {
        outcome
    };
    match (outcome, session) {
        (tools::Outcome::Reconnect(result), Some(session)) if accept.sse => {
            close_before_answering(&shared, &session, id, result)
        }
        (outcome, _) => tools::respond(&shared, id, outcome, accept).await,
    }
}

/// Whether the session still wants `info` messages (it has not raised its level above).
fn wants_info(shared: &Shared, session: &str) -> bool {
    let info = LOG_LEVELS.iter().position(|l| *l == "info");
    shared
        .store()
        .sessions
        .get(session)
        .is_none_or(|s| s.log_level <= info)
}

/// `logging/setLevel`: the session's stream then carries only messages at least this
/// severe. A stateless request has no session to remember it in; it is accepted.
fn set_log_level(shared: &Shared, session: Option<&str>, params: &Value) -> tools::Outcome {
    let asked = params.get("level").and_then(Value::as_str);
    let Some(level) = asked.and_then(|l| LOG_LEVELS.iter().position(|known| *known == l)) else {
        return tools::Outcome::Error(
            -32602,
            format!("'level' must be one of: {}", LOG_LEVELS.join(", ")),
        );
    };
    if let Some(id) = session
        && let Some(s) = shared.store().sessions.get_mut(id)
    {
        s.log_level = Some(level);
    }
    tools::Outcome::Result(json!({}))
}

/// SEP-2243: from 2026-07-28 on, `Mcp-Method` must repeat the body's method and `Mcp-Name`
/// its tool or prompt name or resource URI, byte for byte once surrounding whitespace is
/// trimmed; earlier revisions are only held to a header they chose to send.
fn check_standard_headers(headers: &HeaderMap, msg: &Value) -> Result<(), String> {
    let required = header_str(headers, VERSION_HEADER).is_some_and(|v| v >= STATELESS_FROM);
    let params = msg.get("params");
    let name = match msg.get("method").and_then(Value::as_str) {
        Some("tools/call" | "prompts/get") => params.and_then(|p| p.get("name")),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            params.and_then(|p| p.get("uri"))
        }
        _ => None,
    };
    let pairs = [
        ("Mcp-Method", msg.get("method").and_then(Value::as_str)),
        ("Mcp-Name", name.and_then(Value::as_str)),
    ];
    for (header, body) in pairs {
        let Some(body) = body else { continue };
        match header_str(headers, header).map(str::trim) {
            Some(sent) if sent != body => {
                return Err(format!(
                    "{header} '{sent}' does not match the body's '{body}'"
                ));
            }
            None if required => return Err(format!("{header} header is missing")),
            _ => {}
        }
    }
    Ok(())
}

/// `test_reconnection` over SSE: a priming event, then the stream closes; the result is
/// owed to whoever reopens the session's stream with that event's id.
fn close_before_answering(shared: &Shared, session: &str, id: Value, result: Value) -> Response {
    let event_id = secret("evt", "resume");
    if let Some(s) = shared.store().sessions.get_mut(session) {
        s.owed
            .insert(event_id.clone(), tools::message(&id, Ok(result)));
    }
    let (tx, resp) = sse::channel();
    // The channel holds 16 events; the priming one always fits. Dropping `tx` closes it.
    let _ = tx.try_send(sse::priming(&event_id));
    resp
}

fn server_description(shared: &Shared, version: &str) -> Value {
    json!({
        "protocolVersion": version,
        "capabilities": { "tools": { "listChanged": false }, "logging": {} },
        "serverInfo": {
            "name": format!("tether-sim-{}", shared.cfg.profile),
            "version": env!("CARGO_PKG_VERSION"),
        },
        "instructions": format!(
            "Simulated {} MCP server: {}",
            shared.cfg.profile,
            shared.cfg.profile.description()
        ),
    })
}

async fn initialize(shared: &Shared, id: Value, params: &Value, accept: Accepts) -> Response {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .unwrap_or(LATEST);
    let result = server_description(shared, version);
    let mut resp = tools::respond(shared, id, tools::Outcome::Result(result), accept).await;
    if version < STATELESS_FROM {
        let session = secret("mcp", "session");
        let mut store = shared.store();
        store.totals.sessions_begun += 1;
        store.sessions.insert(
            session.clone(),
            Session {
                ended: CancellationToken::new(),
                owed: Default::default(),
                log_level: None,
            },
        );
        drop(store);
        if let Ok(v) = HeaderValue::from_str(&session) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
    }
    resp
}

/// The server-to-client stream of a session: a priming event, then a log notification
/// every few seconds until the session ends or the server stops.
pub(crate) async fn get(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(resp) = authorize(&shared, &headers) {
        return *resp;
    }
    if header_str(&headers, SESSION_HEADER).is_none()
        && header_str(&headers, VERSION_HEADER).is_some_and(|v| v >= STATELESS_FROM)
    {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    if !accepts(&headers).sse {
        return (
            StatusCode::NOT_ACCEPTABLE,
            "Accept must list text/event-stream",
        )
            .into_response();
    }
    let session = match check_session(&shared, &headers) {
        Ok(Some(s)) => s,
        Ok(None) => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
        Err(resp) => return *resp,
    };
    let resumed_after = header_str(&headers, "last-event-id");
    let (ended, owed) = match shared.store().sessions.get_mut(&session) {
        Some(s) => (
            s.ended.clone(),
            resumed_after.and_then(|e| s.owed.remove(e)),
        ),
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let (tx, resp) = sse::channel();
    let stop = shared.shutdown.clone();
    tokio::spawn(async move {
        if tx.send(sse::priming(0)).await.is_err() {
            return;
        }
        if let Some(message) = owed
            && tx.send(sse::event("resumed", &message)).await.is_err()
        {
            return;
        }
        for n in 1u64.. {
            tokio::select! {
                _ = tokio::time::sleep(STREAM_TICK) => {}
                _ = ended.cancelled() => return,
                _ = stop.cancelled() => return,
            }
            if !wants_info(&shared, &session) {
                continue;
            }
            let note = json!({
                "jsonrpc": "2.0",
                "method": "notifications/message",
                "params": { "level": "info", "logger": "tether-sim", "data": format!("tick {n}") },
            });
            if tx.send(sse::event(n, &note)).await.is_err() {
                return;
            }
        }
    });
    resp
}

pub(crate) async fn delete(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(resp) = authorize(&shared, &headers) {
        return *resp;
    }
    let Some(id) = header_str(&headers, SESSION_HEADER) else {
        return (StatusCode::BAD_REQUEST, "Mcp-Session-Id header is required").into_response();
    };
    let mut store = shared.store();
    match store.sessions.remove(id) {
        Some(s) => {
            store.totals.sessions_ended += 1;
            s.ended.cancel();
            StatusCode::NO_CONTENT.into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
