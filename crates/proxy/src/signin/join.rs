//! Joining a session tether began while its connection was signed out to the upstream,
//! once signed in: the client's own `initialize` sent upstream, then
//! `notifications/initialized`; from then on the client's session id stands for the
//! upstream's on every call.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::upstream::{Call, Patience, Target, Upstream, UpstreamError};
use tether_core::oauth::refresh::Current;

pub const SESSION: &str = "mcp-session-id";
pub const VERSION: &str = "mcp-protocol-version";

/// What the upstream gave the session.
#[derive(Debug, Clone)]
pub struct Joined {
    /// Its session id (none from an upstream without sessions).
    pub session: Option<HeaderValue>,
    /// The revision it agreed to.
    pub version: Option<HeaderValue>,
}

/// Why a session could not be joined.
#[derive(Debug)]
pub enum JoinError {
    /// The upstream refused the credential (401/403): the call itself will meet that, and
    /// learn from it, as any call does.
    Refused,
    Upstream(UpstreamError),
}

impl From<UpstreamError> for JoinError {
    fn from(e: UpstreamError) -> Self {
        JoinError::Upstream(e)
    }
}

/// Initializes a session upstream with the client's own `initialize` parameters.
pub async fn join(
    upstream: &Upstream,
    target: &Target,
    current: &Current,
    initialize: &Value,
) -> Result<Joined, JoinError> {
    let request = json!({
        "jsonrpc": "2.0",
        "id": "tether-sign-in",
        "method": "initialize",
        "params": initialize,
    });
    let (headers, answer) =
        exchange(upstream, target, current, &request, None, "initialize").await?;
    let message = first_message(&headers, &answer).ok_or_else(|| {
        UpstreamError::Failed("the upstream's answer to initialize was not JSON-RPC".to_string())
    })?;
    if let Some(error) = message.get("error") {
        return Err(JoinError::Upstream(UpstreamError::Failed(format!(
            "the upstream refused initialize: {}",
            tether_core::printable::printable(&error.to_string(), 200)
        ))));
    }
    let version = message
        .pointer("/result/protocolVersion")
        .and_then(Value::as_str)
        .and_then(|v| HeaderValue::from_str(v).ok());
    let joined = Joined {
        session: headers.get(SESSION).cloned(),
        version,
    };
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    exchange(
        upstream,
        target,
        current,
        &initialized,
        Some(&joined),
        "notifications/initialized",
    )
    .await?;
    Ok(joined)
}

/// One POST upstream with the connection's credential; the answer's head and whole body.
async fn exchange(
    upstream: &Upstream,
    target: &Target,
    current: &Current,
    message: &Value,
    joined: Option<&Joined>,
    method: &'static str,
) -> Result<(HeaderMap, Bytes), JoinError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    headers.insert("mcp-method", HeaderValue::from_static(method));
    if let Some(joined) = joined {
        if let Some(session) = &joined.session {
            headers.insert(SESSION, session.clone());
        }
        if let Some(version) = &joined.version {
            headers.insert(VERSION, version.clone());
        }
    }
    let body = Bytes::from(message.to_string());
    let credential = current
        .header()
        .map_err(|e| UpstreamError::Failed(e.to_string()))?;
    let call = Call {
        method: &Method::POST,
        headers: &headers,
        body: &body,
        credential,
        at: Instant::now(),
        patience: Patience::Bounded,
    };
    let answer = upstream.send(target, &call).await?;
    let status = answer.status();
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(JoinError::Refused);
    }
    let (parts, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| UpstreamError::Failed(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(JoinError::Upstream(UpstreamError::Failed(format!(
            "the upstream answered {method} with {status}"
        ))));
    }
    Ok((parts.headers, body))
}

/// The first JSON-RPC message of an answer, JSON or SSE.
fn first_message(headers: &HeaderMap, body: &[u8]) -> Option<Value> {
    let sse = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !sse {
        return serde_json::from_slice(body).ok();
    }
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_read_as_json_or_as_sse() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            first_message(&headers, br#"{"id":1,"result":{}}"#).unwrap()["id"],
            1
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        let sse = b"id: x\ndata:\n\nevent: message\ndata: {\"method\":\"notifications/message\"}\n\ndata: {\"id\":\"a\",\"result\":{\"protocolVersion\":\"2025-11-25\"}}\n\n";
        let m = first_message(&headers, sse).unwrap();
        assert_eq!(m["result"]["protocolVersion"], "2025-11-25");
    }
}
