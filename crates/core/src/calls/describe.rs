//! Making a record of a draft: the method and the name from the request, the JSON-RPC
//! error from the answer — parsed only when a byte search says there may be one.

use std::borrow::Cow;

use serde::Deserialize;

use super::{CallDraft, CallRecord, Capture};
use crate::printable::printable;

/// Methods whose name is in their params: the body is read for it.
const NAMED: [&str; 5] = [
    "tools/call",
    "prompts/get",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
];

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<Params<'a>>,
    #[serde(borrow, default)]
    error: Option<RpcError<'a>>,
}

#[derive(Deserialize)]
struct Params<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RpcError<'a> {
    #[serde(default)]
    code: Option<i64>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
}

/// Every message of a body: one object, or a batch.
fn messages(body: &[u8]) -> Vec<Message<'_>> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).unwrap_or_default(),
        Some(b'{') => serde_json::from_slice(body)
            .map(|m| vec![m])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

pub(super) fn record(draft: CallDraft, capture: Capture, max: usize) -> CallRecord {
    let header = |v: &Option<axum::http::HeaderValue>, n| {
        v.as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|v| printable(v, n))
    };
    // The 2026-07-28 headers name the method and the tool: the body is read only
    // without them.
    let mut method = header(&draft.mcp_method, 80);
    let mut name = header(&draft.mcp_name, 120).filter(|n| !n.is_empty());
    let unnamed = method
        .as_deref()
        .is_none_or(|m| NAMED.contains(&m) && name.is_none());
    if unnamed && let Some(first) = messages(&draft.request).into_iter().next() {
        method = first.method.map(|m| printable(&m, 80)).or(method);
        name = first
            .params
            .and_then(|p| p.name.or(p.uri))
            .map(|n| printable(&n, 120));
    }
    let answer = joined(&draft.response);
    let (error_code, error_message) = error_of(&answer, draft.status);
    let full = capture == Capture::Full;
    let at_ms = draft
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    CallRecord {
        at_ms,
        connection: draft.connection,
        client: draft.client,
        http: draft.http.as_str().to_string(),
        method,
        name,
        protocol: header(&draft.protocol, 40),
        status: draft.status,
        error_code,
        error_message,
        first_byte_us: micros(draft.first_byte),
        total_us: micros(draft.total),
        bytes_in: draft.request.len() as u64,
        bytes_out: draft.bytes_out,
        streamed: draft.streamed,
        events: draft.events,
        refreshed: draft.refreshed,
        retried: draft.retried,
        request: full.then(|| cut(&draft.request, max)),
        response: (full && !answer.is_empty()).then(|| cut(&answer, max)),
    }
}

/// The answer's kept pieces as one slice (most answers are one piece: no copy).
fn joined(pieces: &[axum::body::Bytes]) -> Cow<'_, [u8]> {
    match pieces {
        [] => Cow::Borrowed(&[]),
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.concat()),
    }
}

/// At most `max` bytes of a body, as text.
fn cut(body: &[u8], max: usize) -> String {
    let mut text = String::from_utf8_lossy(&body[..body.len().min(max)]).into_owned();
    if body.len() > max {
        // A character cut in two shows as U+FFFD; say where the body was cut.
        text.push('…');
    }
    text
}

/// The JSON-RPC error in an answer (a JSON body, or an event stream's `data:` lines);
/// else, for an HTTP error, the start of its body.
fn error_of(answer: &[u8], status: u16) -> (Option<i64>, Option<String>) {
    if memchr::memmem::find(answer, b"\"error\"").is_some() {
        let rpc = messages(answer)
            .into_iter()
            .find_map(|m| m.error)
            .or_else(|| {
                answer
                    .split(|b| *b == b'\n')
                    .filter_map(|line| line.strip_prefix(b"data:"))
                    .flat_map(messages)
                    .find_map(|m| m.error)
            });
        if let Some(e) = rpc {
            return (e.code, e.message.map(|m| printable(&m, 200)));
        }
    }
    if status >= 400 && !answer.is_empty() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(400)]);
        return (None, Some(printable(text.trim(), 200)));
    }
    (None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(request: &str, response: &str, status: u16) -> CallDraft {
        CallDraft {
            at: std::time::SystemTime::now(),
            connection: "c".into(),
            client: "l".into(),
            http: axum::http::Method::POST,
            protocol: None,
            mcp_method: None,
            mcp_name: None,
            request: request.as_bytes().to_vec().into(),
            status,
            first_byte: std::time::Duration::ZERO,
            total: std::time::Duration::ZERO,
            bytes_out: response.len() as u64,
            streamed: false,
            events: 0,
            refreshed: false,
            retried: false,
            response: vec![response.as_bytes().to_vec().into()],
        }
    }

    #[test]
    fn names_the_tool_and_the_error() {
        let r = record(
            draft(
                r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#,
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"bad \\u001b[2J\"}}\n\n",
                200,
            ),
            Capture::Metadata,
            10,
        );
        assert_eq!(r.what(), "tools/call echo");
        assert_eq!(r.error_code, Some(-32602));
        assert_eq!(r.error_message.as_deref(), Some("bad \\x1b[2J"));
        assert_eq!(r.request, None);
    }

    #[test]
    fn full_capture_cuts_bodies() {
        let r = record(
            draft(
                r#"{"method":"resources/read","params":{"uri":"file:///a"}}"#,
                "{}",
                200,
            ),
            Capture::Full,
            8,
        );
        assert_eq!(r.name.as_deref(), Some("file:///a"));
        assert_eq!(r.request.as_deref(), Some("{\"method…"));
        assert_eq!(r.response.as_deref(), Some("{}"));
        assert!(!r.is_error());
    }
}
