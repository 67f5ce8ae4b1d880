//! Describing a finished call: the method and the name from the request's MCP headers (the
//! body is parsed only without them), the JSON-RPC error from the answer — parsed only when
//! a byte search says there may be one. The description ([`Line`]) borrows from the call
//! wherever the text can be written as it is, so a call costs no allocation here.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::HeaderValue;
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

/// Most of an answer a metadata draft carries (a JSON-RPC error is near its start).
pub(super) const ERROR_WITHIN: usize = 16 * 1024;

/// Built once: building a searcher costs more than most searches.
static ERROR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));

/// A call as the log writes it, borrowing what it can.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Line<'a> {
    pub at_ms: i64,
    pub connection: &'a str,
    pub client: &'a str,
    pub http: &'a str,
    pub method: Option<Text<'a>>,
    pub name: Option<Text<'a>>,
    pub protocol: Option<Text<'a>>,
    pub status: u16,
    pub error_code: Option<i64>,
    pub error_message: Option<String>,
    pub diagnosis: Option<String>,
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

/// A text of the record: a header's value as it came, looked at only when written (as it
/// is when [`plain`] and at most its bound long, else shown printable and cut there) — the
/// start of a line kept for calls like it is not written again, nor its texts looked at —
/// or any text, escaped as JSON when written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text<'a> {
    Header(&'a [u8], usize),
    Any(Cow<'a, str>),
}

impl Text<'_> {
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            Text::Header(bytes, max) if bytes.len() <= *max && plain(bytes) => {
                String::from_utf8_lossy(bytes)
            }
            Text::Header(bytes, max) => {
                Cow::Owned(printable(&String::from_utf8_lossy(bytes), *max))
            }
            Text::Any(text) => Cow::Borrowed(text),
        }
    }
}

impl Line<'_> {
    pub fn to_record(&self) -> CallRecord {
        let owned = |v: &Option<Text<'_>>| v.as_ref().map(|t| t.as_str().into_owned());
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
            diagnosis: self.diagnosis.clone(),
            first_byte_us: self.first_byte_us,
            total_us: self.total_us,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            streamed: self.streamed,
            events: self.events,
            refreshed: self.refreshed,
            retried: self.retried,
            request: self.request.as_deref().map(str::to_string),
            response: self.response.clone(),
        }
    }
}

impl CallRecord {
    /// The record as a [`Line`], to write it.
    pub fn line(&self) -> Line<'_> {
        fn any(v: &Option<String>) -> Option<Text<'_>> {
            v.as_deref().map(|t| Text::Any(Cow::Borrowed(t)))
        }
        Line {
            at_ms: self.at_ms,
            connection: &self.connection,
            client: &self.client,
            http: &self.http,
            method: any(&self.method),
            name: any(&self.name),
            protocol: any(&self.protocol),
            status: self.status,
            error_code: self.error_code,
            error_message: self.error_message.clone(),
            diagnosis: self.diagnosis.clone(),
            first_byte_us: self.first_byte_us,
            total_us: self.total_us,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            streamed: self.streamed,
            events: self.events,
            refreshed: self.refreshed,
            retried: self.retried,
            request: self.request.as_deref().map(Cow::Borrowed),
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
    #[serde(borrow, default)]
    data: Option<ErrorData<'a>>,
}

/// What tether puts in the data of an error it writes itself.
#[derive(Deserialize)]
struct ErrorData<'a> {
    #[serde(borrow, default)]
    diagnosis: Option<Cow<'a, str>>,
}

/// A JSON-RPC error as the record keeps it.
#[derive(Default)]
struct Failure {
    code: Option<i64>,
    message: Option<String>,
    diagnosis: Option<String>,
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

/// Whether `text` can go into a JSON string as it is and be shown as it is: printable
/// ASCII, no `"` or `\`. Every text of every record passes here, so it looks at eight
/// bytes at a time.
#[inline]
pub(super) fn plain(text: &[u8]) -> bool {
    let Some(last) = text.len().checked_sub(8) else {
        // Shorter than a word: a byte at a time.
        return text.iter().fold(true, |ok, &b| {
            ok & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
        });
    };
    let word = |at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&text[at..at + 8]);
        odd_bytes(u64::from_le_bytes(eight))
    };
    // Whole words, then the last eight bytes (overlapping the words before: no copy).
    let mut odd = word(last);
    for at in (0..last).step_by(8) {
        odd |= word(at);
    }
    odd == 0
}

/// Nonzero when a byte of `w` is not plain: below 0x20, 0x7f or above, `"` or `\`. Each
/// test is the classic "has a byte less than / more than / equal to" of Sean Anderson's
/// bit hacks: a carry can only mark a byte next to one already marked, so "any" is exact.
fn odd_bytes(w: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w;
    let control = below(w, 0x20);
    let delete_or_more = w.wrapping_add(ONES) | w;
    let quote = below(w ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(w ^ (ONES * u64::from(b'\\')), 1);
    (control | delete_or_more | quote | backslash) & HIGH
}

/// A header's value as record text, at most `max` bytes shown.
#[inline]
fn header(value: Option<&HeaderValue>, max: usize) -> Option<Text<'_>> {
    let bytes = value?.as_bytes();
    (!bytes.is_empty()).then_some(Text::Header(bytes, max))
}

pub(super) fn describe<'a>(draft: &CallDraft<'a>, capture: Capture, max: usize) -> Line<'a> {
    // The 2026-07-28 headers name the method and the tool: the body is read only
    // without them.
    let mut method = header(draft.mcp_method, 80);
    let mut name = header(draft.mcp_name, 120);
    let unnamed = match &method {
        Some(Text::Header(m, _)) => name.is_none() && NAMED.iter().any(|n| n.as_bytes() == *m),
        _ => true,
    };
    if unnamed && let Some(first) = messages(draft.request).into_iter().next() {
        let shown = |text: Cow<'_, str>, max| Text::Any(Cow::Owned(printable(&text, max)));
        method = first.method.map(|m| shown(m, 80)).or(method);
        name = first
            .params
            .and_then(|p| p.name.or(p.uri))
            .map(|n| shown(n, 120));
    }
    let answer = joined(draft.response);
    let failure = error_of(&answer, draft.status, draft.streamed);
    let full = capture == Capture::Full;
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    Line {
        // The recorder's clock tells it.
        at_ms: 0,
        connection: draft.connection,
        client: draft.client,
        http: draft.http,
        method,
        name,
        protocol: header(draft.protocol, 40),
        status: draft.status,
        error_code: failure.code,
        error_message: failure.message,
        diagnosis: failure.diagnosis,
        first_byte_us: micros(draft.first_byte),
        total_us: micros(draft.total),
        bytes_in: draft.request.len() as u64,
        bytes_out: draft.bytes_out,
        streamed: draft.streamed,
        events: draft.events,
        refreshed: draft.refreshed,
        retried: draft.retried,
        request: full.then(|| cut(draft.request, max)),
        response: (full && !answer.is_empty()).then(|| cut(&answer, max).into_owned()),
    }
}

/// The answer's kept pieces as one slice (most answers are one piece: no copy).
fn joined(pieces: &[Bytes]) -> Cow<'_, [u8]> {
    match pieces {
        [] => Cow::Borrowed(&[]),
        [one] => Cow::Borrowed(one),
        more => Cow::Owned(more.concat()),
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
const ERROR_KEY_WITHIN: usize = 256;

/// Whether a JSON answer is a JSON-RPC result, told by its start as SDKs write one —
/// `"result"` first, or after `"jsonrpc":"2.0"` and the id in either order (sorted keys put
/// the id first) — which costs less than the search for `"error"`; any other start is
/// searched.
fn is_result(answer: &[u8]) -> bool {
    let Some(mut rest) = answer.strip_prefix(b"{") else {
        return false;
    };
    for _ in 0..3 {
        if rest.starts_with(b"\"result\":") {
            return true;
        }
        rest = if let Some(after) = rest.strip_prefix(b"\"jsonrpc\":\"2.0\",") {
            after
        } else if let Some(id) = rest.strip_prefix(b"\"id\":") {
            match after_id(id) {
                Some(after) => after,
                None => return false,
            }
        } else {
            return false;
        };
    }
    false
}

/// What follows an id (a number, or a string with no escape in it) and its comma.
fn after_id(id: &[u8]) -> Option<&[u8]> {
    let end = match id.split_first() {
        Some((b'"', text)) => match memchr::memchr2(b'"', b'\\', text) {
            Some(at) if text[at] == b'"' => at + 2,
            _ => return None,
        },
        _ => id
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b'-'))
            .unwrap_or(id.len()),
    };
    (end > 0 && id.get(end) == Some(&b',')).then(|| &id[end + 1..])
}

/// The JSON-RPC error in an answer (a JSON body, or an event stream's `data:` lines);
/// else, for an HTTP error, the start of its body.
fn error_of(answer: &[u8], status: u16, streamed: bool) -> Failure {
    let head = if streamed {
        answer
    } else if is_result(answer) {
        &[]
    } else {
        &answer[..answer.len().min(ERROR_KEY_WITHIN)]
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
            return Failure {
                code: e.code,
                message: e.message.map(|m| printable(&m, 200)),
                diagnosis: e.data.and_then(|d| d.diagnosis).map(|d| printable(&d, 60)),
            };
        }
    }
    if status >= 400 && !answer.is_empty() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(400)]);
        return Failure {
            message: Some(printable(text.trim(), 200)),
            ..Failure::default()
        };
    }
    Failure::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(request: &'a str, response: &'a [Bytes], status: u16) -> CallDraft<'a> {
        CallDraft {
            started: std::time::Instant::now(),
            connection: "c",
            client: "l",
            http: "POST",
            protocol: None,
            mcp_method: None,
            mcp_name: None,
            request: request.as_bytes(),
            status,
            first_byte: std::time::Duration::ZERO,
            total: std::time::Duration::ZERO,
            bytes_out: response.iter().map(|p| p.len() as u64).sum(),
            streamed: false,
            events: 0,
            refreshed: false,
            retried: false,
            response,
        }
    }

    #[test]
    fn names_the_tool_and_the_error() {
        let answer = [Bytes::from_static(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"bad \\u001b[2J\"}}\n\n",
        )];
        let d = draft(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}}"#,
            &answer,
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
    fn the_headers_name_the_call_and_odd_values_are_escaped() {
        let (method, name, protocol) = (
            HeaderValue::from_static("tools/call"),
            HeaderValue::from_static("say \"hi\""),
            HeaderValue::from_bytes(b"2026-07-28\t").unwrap(),
        );
        let mut d = draft("not json", &[], 200);
        (d.mcp_method, d.mcp_name, d.protocol) = (Some(&method), Some(&name), Some(&protocol));
        let line = describe(&d, Capture::Metadata, 10);
        assert_eq!(line.method, Some(Text::Header(b"tools/call", 80)));
        let r = line.to_record();
        assert_eq!(r.what(), "tools/call say \"hi\"");
        assert_eq!(r.protocol.as_deref(), Some("2026-07-28\\x09"));
    }

    #[test]
    fn an_error_split_across_pieces_is_found() {
        let answer = [
            Bytes::from_static(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"err"),
            Bytes::from_static(b"or\":{\"code\":-32000,\"message\":\"down\"}}"),
        ];
        let r = describe(&draft("{}", &answer, 200), Capture::Metadata, 10).to_record();
        assert_eq!(r.error_code, Some(-32000));
        assert_eq!(r.error_message.as_deref(), Some("down"));
        assert!(r.is_error());
    }

    #[test]
    fn a_result_is_told_by_its_start_and_anything_else_is_searched() {
        for result in [
            &br#"{"jsonrpc":"2.0","id":12,"result":{"text":"error"}}"#[..],
            br#"{"jsonrpc":"2.0","id":"a-1","result":{}}"#,
            br#"{"result":{"error":1},"jsonrpc":"2.0","id":1}"#,
            br#"{"id":7,"jsonrpc":"2.0","result":{"tools":[]}}"#,
        ] {
            assert!(is_result(result), "{result:?}");
            let answer = [Bytes::from_static(result)];
            let r = describe(&draft("{}", &answer, 200), Capture::Metadata, 10);
            assert_eq!(r.error_code, None);
        }
        for other in [
            &br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"x"}}"#[..],
            br#"{"jsonrpc":"2.0","id":"a\"","result":{}}"#,
            br#"{"jsonrpc":"2.0","id":,"result":{}}"#,
            br#"{"id":1,"jsonrpc":"2.0","error":{"code":-2}}"#,
            br#"{"id":1,"id":2,"id":3,"result":{}}"#,
            b"",
        ] {
            assert!(!is_result(other), "{other:?}");
        }
        let error = [Bytes::from_static(
            br#"{"id":1,"jsonrpc":"2.0","error":{"code":-2}}"#,
        )];
        let r = describe(&draft("{}", &error, 200), Capture::Metadata, 10);
        assert_eq!(r.error_code, Some(-2));
    }

    #[test]
    fn full_capture_cuts_bodies() {
        let answer = [Bytes::from_static(b"{}")];
        let d = draft(
            r#"{"method":"resources/read","params":{"uri":"file:///a"}}"#,
            &answer,
            200,
        );
        let r = describe(&d, Capture::Full, 8).to_record();
        assert_eq!(r.name.as_deref(), Some("file:///a"));
        assert_eq!(r.request.as_deref(), Some("{\"method…"));
        assert_eq!(r.response.as_deref(), Some("{}"));
        assert!(!r.is_error());
        assert_eq!(r.line().to_record(), r);
    }

    #[test]
    fn plain_text_is_printable_ascii_without_quotes_or_backslashes() {
        assert!(plain(b"tools/call 2026-07-28 a_b.c~"));
        for odd in [
            &b"a\"b"[..],
            b"a\\b",
            b"a\tb",
            b"a\x7fb",
            "é".as_bytes(),
            b"\x1b[2J",
        ] {
            assert!(!plain(odd), "{odd:?}");
        }
        assert!(plain(b""));
        // Every byte value at every place of texts up to three words long, next to
        // neighbours that could hide it (a carry from 0xff, a borrow into 0x20).
        let one = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
        for len in 1..=24 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b' ', b'~', b'!', b'#', b'[', b']'] {
                        let mut text = vec![fill; len];
                        text[at] = b;
                        assert_eq!(plain(&text), one(b), "{text:?}");
                    }
                }
            }
        }
    }
}
