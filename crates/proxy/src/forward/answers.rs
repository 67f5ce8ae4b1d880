//! The answers tether writes itself instead of passing the upstream's on: a refused body,
//! an unknown connection, and the errors a client's assistant can read — JSON-RPC errors
//! that name the connection, the diagnosis and the fix.

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::codes;
use crate::upstream::UpstreamError;
use crate::{Answer, Reply};
use tether_core::diagnosis::explain;
use tether_core::oauth::refresh::AuthError;
use tether_core::vault::DiagnosisCode;

/// JSON-RPC error codes tether answers with (implementation-defined range; the table is
/// in README.md).
pub(super) const AUTH_ERROR: i64 = codes::AUTH.code;
const UPSTREAM_ERROR: i64 = codes::UNREACHABLE.code;
const UPSTREAM_TIMEOUT: i64 = codes::TIMEOUT.code;

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
pub(super) fn rpc_error(
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

pub(super) fn auth_failure(name: &str, error: &AuthError, parts: &Parts, body: &Bytes) -> Answer {
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

pub(super) fn unreachable(
    name: &str,
    error: &UpstreamError,
    parts: &Parts,
    body: &Bytes,
) -> Answer {
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
pub(super) fn timed_out(name: &str, secs: u64, parts: &Parts, body: &Bytes) -> Answer {
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
