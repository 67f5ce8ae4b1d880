//! Describing a finished call: the method and the name from the request's MCP headers (the
//! body is parsed only without them), the JSON-RPC error from the answer — parsed only when
//! a byte search says there may be one. The line's writer (`line::write_call`) asks for
//! what it writes, as it writes it: nothing is gathered in between, and a text is borrowed
//! from the call wherever it can be written as it is, so a call costs no allocation here.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::body::Bytes;
use memchr::memmem::Finder;
use serde::Deserialize;

use super::CallDraft;
use super::start::{is_result, named_at_start};
use crate::printable::printable;

/// Methods whose name is in their params: the body is read for it.
pub(super) const NAMED: [&str; 5] = [
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

/// A text of the record: as it came — a header's value, or a string of the body with no
/// escape in it — looked at only when written (as it is when [`plain`] and at most its
/// bound long, else shown printable and cut there; the start of a line kept for calls like
/// it is not written again, nor its texts looked at), or a text the body's parser decoded,
/// made printable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text<'a> {
    Raw(&'a [u8], usize),
    Any(String),
}

/// The texts naming a call: its method, the tool, prompt or resource it names, and its
/// protocol revision.
pub(super) struct Named<'a> {
    pub method: Option<Text<'a>>,
    pub name: Option<Text<'a>>,
    pub protocol: Option<Text<'a>>,
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
pub(super) struct Failure {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub diagnosis: Option<String>,
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

/// Whether two texts are the same, the short ones (nearly all: methods, dates, names)
/// told by two overlapping words each, without a call to `memcmp`.
#[inline]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let word = |t: &[u8], at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&t[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    let half = |t: &[u8], at: usize| {
        let mut four = [0; 4];
        four.copy_from_slice(&t[at..at + 4]);
        u32::from_le_bytes(four)
    };
    match a.len() {
        0..4 => a.iter().zip(b).all(|(x, y)| x == y),
        len @ 4..8 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        len @ 8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// A header's value as record text, at most `max` bytes shown.
#[inline]
fn header(value: Option<&[u8]>, max: usize) -> Option<Text<'_>> {
    let bytes = value?;
    (!bytes.is_empty()).then_some(Text::Raw(bytes, max))
}

/// The texts naming `draft`'s call.
pub(super) fn named<'a>(draft: &CallDraft<'a>) -> Named<'a> {
    // The 2026-07-28 headers name the method and the tool: the body is read only
    // without them.
    let mut method = header(draft.mcp_method, 80);
    let mut name = header(draft.mcp_name, 120);
    let unnamed = match &method {
        Some(Text::Raw(m, _)) => name.is_none() && NAMED.iter().any(|n| same(n.as_bytes(), m)),
        _ => true,
    };
    if unnamed && let Some((m, n)) = named_at_start(draft.request) {
        method = Some(Text::Raw(m, 80));
        name = n.filter(|n| !n.is_empty()).map(|n| Text::Raw(n, 120));
    } else if unnamed && let Some(first) = messages(draft.request).into_iter().next() {
        let shown = |text: Cow<'_, str>, max| Text::Any(printable(&text, max));
        method = first.method.map(|m| shown(m, 80)).or(method);
        name = first
            .params
            .and_then(|p| p.name.or(p.uri))
            .map(|n| shown(n, 120));
    }
    Named {
        method,
        name,
        protocol: header(draft.protocol, 40),
    }
}

/// The JSON-RPC error `draft`'s answer was, if it was one; for an HTTP error, the start of
/// its body.
pub(super) fn failure(draft: &CallDraft<'_>) -> Option<Failure> {
    // Nothing kept of a successful answer: a result.
    if draft.response.is_empty() && draft.status < 400 {
        return None;
    }
    error_of(&joined(draft.response), draft.status, draft.streamed)
}

/// With `full` capture, the request's and the answer's bodies, cut at `max` bytes.
pub(super) fn bodies<'a>(draft: &CallDraft<'a>, max: usize) -> (Cow<'a, str>, Option<String>) {
    let answer = joined(draft.response);
    let response = (!answer.is_empty()).then(|| cut(&answer, max).into_owned());
    (cut(draft.request, max), response)
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

/// The JSON-RPC error in an answer (a JSON body, or an event stream's `data:` lines);
/// else, for an HTTP error, the start of its body.
fn error_of(answer: &[u8], status: u16, streamed: bool) -> Option<Failure> {
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
            return Some(Failure {
                code: e.code,
                message: e.message.map(|m| printable(&m, 200)),
                diagnosis: e.data.and_then(|d| d.diagnosis).map(|d| printable(&d, 60)),
            });
        }
    }
    if status >= 400 && !answer.is_empty() {
        let text = String::from_utf8_lossy(&answer[..answer.len().min(400)]);
        return Some(Failure {
            message: Some(printable(text.trim(), 200)),
            ..Failure::default()
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{CallRecord, Capture, line};
    use super::*;

    /// The record of `draft`'s call, as its line reads back.
    fn record(draft: &CallDraft<'_>, capture: Capture, max: usize) -> CallRecord {
        let mut out = Vec::new();
        line::write_call(&mut out, draft, 0, capture, max, &mut Default::default());
        serde_json::from_slice(&out).unwrap()
    }

    fn draft<'a>(request: &'a str, response: &'a [Bytes], status: u16) -> CallDraft<'a> {
        CallDraft {
            started: std::time::Instant::now(),
            connection: "c",
            client: "l",
            http: &axum::http::Method::POST,
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
        let r = record(&d, Capture::Metadata, 10);
        assert_eq!((r.connection.as_str(), r.client.as_str()), ("c", "l"));
        assert_eq!(r.what(), "tools/call echo");
        assert_eq!(r.error_code, Some(-32602));
        assert_eq!(r.error_message.as_deref(), Some("bad \\x1b[2J"));
        assert_eq!(r.request, None);
    }

    #[test]
    fn the_headers_name_the_call_and_odd_values_are_escaped() {
        let mut d = draft("not json", &[], 200);
        (d.mcp_method, d.mcp_name, d.protocol) = (
            Some(&b"tools/call"[..]),
            Some(&b"say \"hi\""[..]),
            Some(&b"2026-07-28\t"[..]),
        );
        assert_eq!(named(&d).method, Some(Text::Raw(b"tools/call", 80)));
        let r = record(&d, Capture::Metadata, 10);
        assert_eq!(r.what(), "tools/call say \"hi\"");
        assert_eq!(r.protocol.as_deref(), Some("2026-07-28\\x09"));
    }

    /// Bodies as SDKs write them are named from their start, as the parser names them; any
    /// other body is left to the parser.
    #[test]
    fn a_body_is_named_from_its_start_as_the_parser_names_it() {
        let parsed = |body: &str| {
            let first = messages(body.as_bytes()).into_iter().next().unwrap();
            let name = first.params.and_then(|p| p.name.or(p.uri));
            (first.method.map(Cow::into_owned), name.map(Cow::into_owned))
        };
        let text = |t: &[u8]| String::from_utf8(t.to_vec()).unwrap();
        for body in [
            r#"{"method":"tools/list","jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"id":"a-1","jsonrpc":"2.0","method":"ping"}"#,
            r#"{ "jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": { "name": "echo", "arguments": {} } }"#,
            r#"{"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}},"jsonrpc":"2.0","id":2}"#,
            r#"{"method":"resources/read","params":{"uri":"file:///a b"},"jsonrpc":"2.0","id":3}"#,
            r#"{"method":"prompts/get","params":{"name":"é"},"jsonrpc":"2.0","id":-4}"#,
        ] {
            let (m, n) = named_at_start(body.as_bytes()).unwrap_or_else(|| panic!("{body}"));
            assert_eq!((Some(text(m)), n.map(text)), parsed(body), "{body}");
        }
        for body in [
            r#"{"method":"tools/call","params":{"_meta":{"progressToken":1},"name":"echo"}}"#,
            r#"{"method":"tools/\u0063all","params":{"name":"echo"}}"#,
            r#"{"method":"tools/call","params":{"name":"say \"hi\""}}"#,
            r#"{"params":{"name":"echo"},"method":"tools/call"}"#,
            r#"{"id":null,"method":"ping"}"#,
            r#"{"id":1.5,"method":"ping"}"#,
            r#"[{"method":"ping"}]"#,
            r#"{"jsonrpc":"1.0","method":"ping"}"#,
            "",
        ] {
            assert_eq!(named_at_start(body.as_bytes()), None, "{body}");
        }
        // Named from its start, a call's line reads as the parser's would.
        let d = draft(
            r#"{"method":"tools/call","params":{"name":"é\u0000"}}"#,
            &[],
            200,
        );
        assert_eq!(
            record(&d, Capture::Metadata, 10).name.as_deref(),
            Some("é\\x00")
        );
        let d = draft(r#"{"method":"tools/call","params":{"name":"ü"}}"#, &[], 200);
        assert_eq!(record(&d, Capture::Metadata, 10).what(), "tools/call ü");
    }

    #[test]
    fn an_error_split_across_pieces_is_found() {
        let answer = [
            Bytes::from_static(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"err"),
            Bytes::from_static(b"or\":{\"code\":-32000,\"message\":\"down\"}}"),
        ];
        let r = record(&draft("{}", &answer, 200), Capture::Metadata, 10);
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
            let r = record(&draft("{}", &answer, 200), Capture::Metadata, 10);
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
        let r = record(&draft("{}", &error, 200), Capture::Metadata, 10);
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
        let r = record(&d, Capture::Full, 8);
        assert_eq!(r.name.as_deref(), Some("file:///a"));
        assert_eq!(r.request.as_deref(), Some("{\"method…"));
        assert_eq!(r.response.as_deref(), Some("{}"));
        assert!(!r.is_error());
    }

    /// Texts of every length up to past the words' reach, differing in any one byte or
    /// in length, are told apart as `==` tells them.
    #[test]
    fn same_texts_are_told_as_equality_tells_them() {
        for len in 0..=20 {
            let text: Vec<u8> = (0..len as u8).map(|i| b'a' + i).collect();
            assert!(same(&text, &text.clone()));
            for at in 0..len {
                let mut other = text.clone();
                other[at] ^= 0x01;
                assert!(!same(&text, &other), "{text:?} {other:?}");
            }
            assert!(!same(&text, &text[..len.saturating_sub(1)]) || len == 0);
        }
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
