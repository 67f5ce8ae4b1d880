//! Describing a draft: the method and the name from the request, the JSON-RPC error from
//! the answer — parsed only when a byte search says there may be one. The description
//! ([`Line`]) borrows from the draft wherever the text is already printable, so a call
//! that only goes to the audit log costs no allocation here.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;
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

/// Built once: building a searcher costs more than most searches.
static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));

/// A call as the log writes it and the ring keeps it, borrowing what it can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line<'a> {
    pub at_ms: i64,
    pub connection: &'a str,
    pub client: &'a str,
    pub http: &'a str,
    pub method: Option<Cow<'a, str>>,
    pub name: Option<Cow<'a, str>>,
    pub protocol: Option<Cow<'a, str>>,
    pub status: u16,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub first_byte_us: u64,
    pub total_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub streamed: bool,
    pub events: u32,
    pub refreshed: bool,
    pub retried: bool,
    pub request: Option<Cow<'a, str>>,
    pub response: Option<String>,
}

impl Line<'_> {
    pub fn to_record(&self) -> CallRecord {
        let owned = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_string);
        CallRecord {
            at_ms: self.at_ms,
            connection: self.connection.to_string(),
            client: self.client.to_string(),
            http: self.http.to_string(),
            method: owned(&self.method),
            name: owned(&self.name),
            protocol: owned(&self.protocol),
            status: self.status,
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            first_byte_us: self.first_byte_us,
            total_us: self.total_us,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            streamed: self.streamed,
            events: self.events,
            refreshed: self.refreshed,
            retried: self.retried,
            request: owned(&self.request),
            response: self.response.clone(),
        }
    }
}

impl CallRecord {
    /// The record as a [`Line`], to write it.
    pub fn line(&self) -> Line<'_> {
        fn borrowed(v: &Option<String>) -> Option<Cow<'_, str>> {
            v.as_deref().map(Cow::Borrowed)
        }
        Line {
            at_ms: self.at_ms,
            connection: &self.connection,
            client: &self.client,
            http: &self.http,
            method: borrowed(&self.method),
            name: borrowed(&self.name),
            protocol: borrowed(&self.protocol),
            status: self.status,
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            first_byte_us: self.first_byte_us,
            total_us: self.total_us,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            streamed: self.streamed,
            events: self.events,
            refreshed: self.refreshed,
            retried: self.retried,
            request: borrowed(&self.request),
            response: self.response.clone(),
        }
    }
}

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

/// `text` as [`printable`] makes it, borrowed when it is printable ASCII already.
fn shown(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max && text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(printable(text, max))
    }
}

fn header(value: Option<&axum::http::HeaderValue>, max: usize) -> Option<Cow<'_, str>> {
    let text = value?.to_str().ok()?;
    (!text.is_empty()).then(|| shown(text, max))
}

pub(super) fn describe(draft: &CallDraft, capture: Capture, max: usize) -> Line<'_> {
    let (connection, client) = draft.names();
    // The 2026-07-28 headers name the method and the tool: the body is read only
    // without them.
    let mut method = header(draft.mcp_method.as_ref(), 80);
    let mut name = header(draft.mcp_name.as_ref(), 120);
    let unnamed = method
        .as_deref()
        .is_none_or(|m| NAMED.contains(&m) && name.is_none());
    if unnamed && let Some(first) = messages(&draft.request).into_iter().next() {
        method = first
            .method
            .map(|m| Cow::Owned(printable(&m, 80)))
            .or(method);
        name = first
            .params
            .and_then(|p| p.name.or(p.uri))
            .map(|n| Cow::Owned(printable(&n, 120)));
    }
    let answer = joined(draft);
    let (error_code, error_message) = error_of(&answer, draft.status, draft.streamed);
    let full = capture == Capture::Full;
    let at_ms = draft
        .at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    Line {
        at_ms,
        connection,
        client,
        http: draft.http.as_str(),
        method,
        name,
        protocol: header(draft.protocol.as_ref(), 40),
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
        response: (full && !answer.is_empty()).then(|| cut(&answer, max).into_owned()),
    }
}

/// The answer's kept pieces as one slice (most answers are one piece: no copy).
fn joined(draft: &CallDraft) -> Cow<'_, [u8]> {
    match (&draft.response, draft.response_more.as_slice()) {
        (None, _) => Cow::Borrowed(&[]),
        (Some(one), []) => Cow::Borrowed(one),
        (Some(one), more) => {
            let mut all = one.to_vec();
            for piece in more {
                all.extend_from_slice(piece);
            }
            Cow::Owned(all)
        }
    }
}

/// At most `max` bytes of a body, as text.
fn cut(body: &[u8], max: usize) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    if body.len() > max {
        // A character cut in two shows as U+FFFD; say where the body was cut.
        return Cow::Owned(text.into_owned() + "…");
    }
    text
}

/// Where `"error"` can be in a JSON answer that is a JSON-RPC error: its key comes after
/// `jsonrpc` and `id` at most, long before a result's text (which may well say "error").
const ERROR_WITHIN: usize = 256;

/// The JSON-RPC error in an answer (a JSON body, or an event stream's `data:` lines);
/// else, for an HTTP error, the start of its body.
fn error_of(answer: &[u8], status: u16, streamed: bool) -> (Option<i64>, Option<String>) {
    let head = if streamed {
        answer
    } else {
        &answer[..answer.len().min(ERROR_WITHIN)]
    };
    if ERROR.find(head).is_some() {
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
    use std::sync::Arc;

    use super::*;
    use crate::vault::{ClientAccess, Store};

    fn draft(request: &str, response: &str, status: u16) -> CallDraft {
        let mut connection = crate::vault::Connection::new(
            "c".parse().unwrap(),
            url::Url::parse("https://example.com/mcp").unwrap(),
            crate::vault::Auth::None,
            chrono::Utc::now(),
        );
        connection.access.push(ClientAccess {
            label: "l".to_string(),
            secret_hash: [0; 32],
            created_at: chrono::Utc::now(),
            last_seen: None,
            nonce: Vec::new(),
            derived_for: None,
        });
        CallDraft {
            at: std::time::SystemTime::now(),
            store: Arc::new(Store::from_connections(vec![connection])),
            connection: 0,
            client: 0,
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
            response: Some(response.as_bytes().to_vec().into()),
            response_more: Vec::new(),
        }
    }

    #[test]
    fn names_the_tool_and_the_error() {
        let d = draft(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#,
            "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"bad \\u001b[2J\"}}\n\n",
            200,
        );
        let r = describe(&d, Capture::Metadata, 10).to_record();
        assert_eq!((r.connection.as_str(), r.client.as_str()), ("c", "l"));
        assert_eq!(r.what(), "tools/call echo");
        assert_eq!(r.error_code, Some(-32602));
        assert_eq!(r.error_message.as_deref(), Some("bad \\x1b[2J"));
        assert_eq!(r.request, None);
    }

    #[test]
    fn full_capture_cuts_bodies() {
        let d = draft(
            r#"{"method":"resources/read","params":{"uri":"file:///a"}}"#,
            "{}",
            200,
        );
        let r = describe(&d, Capture::Full, 8).to_record();
        assert_eq!(r.name.as_deref(), Some("file:///a"));
        assert_eq!(r.request.as_deref(), Some("{\"method…"));
        assert_eq!(r.response.as_deref(), Some("{}"));
        assert!(!r.is_error());
        assert_eq!(r.line().to_record(), r);
    }
}
