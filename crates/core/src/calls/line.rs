//! A call's line of the audit log, written by hand straight from the call on the call's
//! thread: its start copied from the calls like it, its texts asked of `describe` as they
//! are written, its numbers and flags put together in room kept between calls.

use axum::http::Method;
use lexical_write_integer::ToLexical;

use super::describe::{self, Named, Text, plain, same};
use super::{CallDraft, Capture};
use crate::printable::printable;

/// More than most metadata lines take.
const LINE: usize = 512;

/// Line starts kept for the calls to come: more than the clients and methods one proxy
/// usually serves at once.
const STARTS: usize = 16;

/// What is kept from one line to the next: the starts of lines — `{"connection":…,
/// "client":…,"http":…,"method":…,"protocol":…,"status":…` — of the calls lately recorded,
/// one per client of a connection, method, protocol and status (its texts checked and
/// escaped once, the start is copied whole into each such call's line), and the room a
/// line's tail is put together in.
#[derive(Default)]
pub(super) struct Kept {
    starts: Vec<Start>,
    /// Where the next new start goes once `starts` is full.
    next: usize,
    tail: Tail,
}

struct Start {
    connection: Box<str>,
    client: Box<str>,
    http: Method,
    method: Box<[u8]>,
    protocol: Option<Box<[u8]>>,
    status: u16,
    line: Box<[u8]>,
}

impl Start {
    fn is_for(&self, d: &CallDraft<'_>, method: &[u8], protocol: Option<&[u8]>) -> bool {
        self.status == d.status
            && same(&self.method, method)
            && match (&self.protocol, protocol) {
                (Some(kept), Some(p)) => same(kept, p),
                (kept, p) => kept.is_none() && p.is_none(),
            }
            && same(self.client.as_bytes(), d.client.as_bytes())
            && same(self.connection.as_bytes(), d.connection.as_bytes())
            && self.http == *d.http
    }
}

impl Kept {
    /// The start of the line of `d` (named `n`), kept for the calls like it to come; `None`
    /// for a call whose method is not its header's (read from its body).
    fn start(&mut self, d: &CallDraft<'_>, n: &Named<'_>) -> Option<&[u8]> {
        let Some(Text::Raw(method, _)) = n.method else {
            return None;
        };
        let protocol = match n.protocol {
            None => None,
            Some(Text::Raw(p, _)) => Some(p),
            Some(Text::Any(_)) => return None,
        };
        let at = match self
            .starts
            .iter()
            .position(|s| s.is_for(d, method, protocol))
        {
            Some(at) => at,
            None => {
                let mut line = Vec::with_capacity(128);
                write_start(&mut line, d, n);
                let start = Start {
                    connection: d.connection.into(),
                    client: d.client.into(),
                    http: d.http.clone(),
                    method: method.into(),
                    protocol: protocol.map(Into::into),
                    status: d.status,
                    line: line.into(),
                };
                if self.starts.len() < STARTS {
                    self.starts.push(start);
                    self.starts.len() - 1
                } else {
                    let at = self.next;
                    self.next = (at + 1) % STARTS;
                    self.starts[at] = start;
                    at
                }
            }
        };
        Some(&self.starts[at].line)
    }
}

/// One call's line of JSON, written by hand straight from the call: one is written per
/// call, on the call's thread, and the derived serializer cost several times as much. Text
/// that needs no escaping (nearly all of it) is copied as it is; the line's start is copied
/// from `kept` when a call like it had one. `CallRecord`'s `Deserialize` reads it back
/// (tested below).
pub(super) fn write_call(
    out: &mut Vec<u8>,
    d: &CallDraft<'_>,
    at_ms: i64,
    capture: Capture,
    max_body: usize,
    kept: &mut Kept,
) {
    // Room for a metadata line at once, not a growth check that may move it per field.
    out.reserve(LINE);
    let named = describe::named(d);
    match kept.start(d, &named) {
        Some(start) => out.extend_from_slice(start),
        None => write_start(out, d, &named),
    }
    if let Some(m) = &named.name {
        out.extend_from_slice(b",\"name\":");
        record_text(out, m);
    }
    if let Some(failure) = describe::failure(d) {
        if let Some(code) = failure.code {
            out.extend_from_slice(b",\"error_code\":");
            out.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
        }
        if let Some(m) = &failure.message {
            out.extend_from_slice(b",\"error_message\":");
            text(out, m);
        }
        if let Some(m) = &failure.diagnosis {
            out.extend_from_slice(b",\"diagnosis\":");
            text(out, m);
        }
    }
    let micros = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let tail = &mut kept.tail;
    tail.len = 0;
    tail.put(b",\"at_ms\":");
    tail.number(at_ms);
    tail.put(b",\"first_byte_us\":");
    tail.number(micros(d.first_byte));
    tail.put(b",\"total_us\":");
    tail.number(micros(d.total));
    tail.put(b",\"bytes_in\":");
    tail.number(d.request.len() as u64);
    tail.put(b",\"bytes_out\":");
    tail.number(d.bytes_out);
    if d.streamed {
        tail.put(b",\"streamed\":true,\"events\":");
        tail.number(d.events);
    }
    if d.refreshed {
        tail.put(b",\"refreshed\":true");
    }
    if d.retried {
        tail.put(b",\"retried\":true");
    }
    if capture != Capture::Full {
        tail.put(b"}\n");
        out.extend_from_slice(tail.bytes());
        return;
    }
    out.extend_from_slice(tail.bytes());
    let (request, response) = describe::bodies(d, max_body);
    out.extend_from_slice(b",\"request\":");
    text(out, &request);
    if let Some(m) = &response {
        out.extend_from_slice(b",\"response\":");
        text(out, m);
    }
    out.extend_from_slice(b"}\n");
}

/// The numbers and flags that end every line, put together in room kept for it and copied
/// into the batch at once: the numbers are written where they go (`lexical-write-integer`),
/// not made elsewhere and copied, and no piece checks the batch's room.
struct Tail {
    bytes: [u8; TAIL],
    len: usize,
}

/// Room for every number and flag at their longest, and a number's whole room after them.
const TAIL: usize = 320;

impl Default for Tail {
    fn default() -> Self {
        Self {
            bytes: [0; TAIL],
            len: 0,
        }
    }
}

impl Tail {
    #[inline]
    fn put(&mut self, text: &[u8]) {
        self.bytes[self.len..self.len + text.len()].copy_from_slice(text);
        self.len += text.len();
    }

    #[inline]
    fn number<N: ToLexical>(&mut self, n: N) {
        self.len += n.to_lexical(&mut self.bytes[self.len..]).len();
    }

    fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Who called, what, and the answer's status: the fields many calls share.
fn write_start(out: &mut Vec<u8>, d: &CallDraft<'_>, n: &Named<'_>) {
    out.extend_from_slice(b"{\"connection\":");
    text(out, d.connection);
    out.extend_from_slice(b",\"client\":");
    text(out, d.client);
    out.extend_from_slice(b",\"http\":");
    text(out, d.http.as_str());
    if let Some(m) = &n.method {
        out.extend_from_slice(b",\"method\":");
        record_text(out, m);
    }
    if let Some(m) = &n.protocol {
        out.extend_from_slice(b",\"protocol\":");
        record_text(out, m);
    }
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(d.status).as_bytes());
}

#[inline]
fn record_text(out: &mut Vec<u8>, value: &Text<'_>) {
    match value {
        Text::Raw(bytes, max) if bytes.len() <= *max && plain(bytes) => {
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        Text::Raw(bytes, max) => {
            text(out, &printable(&String::from_utf8_lossy(bytes), *max));
        }
        Text::Any(value) => text(out, value),
    }
}

/// `value` as a JSON string: copied as it is when nothing needs escaping.
#[inline]
fn text(out: &mut Vec<u8>, value: &str) {
    if plain(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::body::Bytes;

    use super::*;
    use crate::calls::CallRecord;
    use crate::calls::log::read_lines;

    fn draft<'a>(response: &'a [Bytes]) -> CallDraft<'a> {
        CallDraft {
            started: Instant::now(),
            connection: "gh",
            client: "claude \"code\"",
            http: &Method::POST,
            protocol: Some(b"2025-06-18"),
            mcp_method: Some(b"tools/call"),
            mcp_name: Some(b"echo\x1b"),
            request: b"{}",
            status: 200,
            first_byte: Duration::from_micros(1),
            total: Duration::from_micros(2),
            bytes_out: 4,
            streamed: true,
            events: 5,
            refreshed: true,
            retried: true,
            response,
        }
    }

    /// Every field of a call's line reads back, texts that need it escaped or shown
    /// printable.
    #[test]
    fn a_line_reads_back_as_its_call() {
        let answer = [Bytes::from_static(
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32602,\"message\":\"bad\\nthing\",\"data\":{\"diagnosis\":\"invalid_grant.lost_response\"}}}\n\n",
        )];
        let d = draft(&answer);
        let mut line = Vec::new();
        write_call(
            &mut line,
            &d,
            1_700_000_000_123,
            Capture::Full,
            1024,
            &mut Kept::default(),
        );
        assert_eq!(line.last(), Some(&b'\n'));
        let back: CallRecord = serde_json::from_slice(&line).unwrap();
        let expected = CallRecord {
            at_ms: 1_700_000_000_123,
            connection: "gh".into(),
            client: "claude \"code\"".into(),
            http: "POST".into(),
            method: Some("tools/call".into()),
            name: Some(printable("echo\u{1b}", 120)),
            protocol: Some("2025-06-18".into()),
            status: 200,
            error_code: Some(-32602),
            error_message: Some(printable("bad\nthing", 200)),
            diagnosis: Some("invalid_grant.lost_response".into()),
            first_byte_us: 1,
            total_us: 2,
            bytes_in: 2,
            bytes_out: 4,
            streamed: true,
            events: 5,
            refreshed: true,
            retried: true,
            request: Some("{}".into()),
            response: Some(String::from_utf8(answer[0].to_vec()).unwrap()),
        };
        assert_eq!(back, expected);
        assert_eq!(back.name.as_deref(), Some("echo\\x1b"));
        // A call with nothing to tell but its numbers.
        let empty = CallDraft {
            connection: "",
            client: "",
            protocol: None,
            mcp_method: None,
            mcp_name: None,
            request: b"",
            streamed: false,
            refreshed: false,
            retried: false,
            ..draft(&[])
        };
        line.clear();
        write_call(
            &mut line,
            &empty,
            0,
            Capture::Metadata,
            0,
            &mut Kept::default(),
        );
        let back: CallRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            back,
            CallRecord {
                http: "POST".into(),
                status: 200,
                first_byte_us: 1,
                total_us: 2,
                bytes_out: 4,
                events: 0,
                ..CallRecord::default()
            }
        );
    }

    /// Every number at its longest, with every flag, fits the line's tail and reads back.
    #[test]
    fn the_longest_numbers_read_back() {
        let d = CallDraft {
            first_byte: Duration::MAX,
            total: Duration::MAX,
            bytes_out: u64::MAX,
            events: u32::MAX,
            ..draft(&[])
        };
        let mut line = Vec::new();
        write_call(
            &mut line,
            &d,
            i64::MIN,
            Capture::Metadata,
            0,
            &mut Kept::default(),
        );
        let back: CallRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (back.at_ms, back.first_byte_us, back.total_us),
            (i64::MIN, u64::MAX, u64::MAX)
        );
        assert_eq!((back.bytes_out, back.events), (u64::MAX, u32::MAX));
        assert!(back.streamed && back.refreshed && back.retried);
    }

    /// A line whose start was kept reads back as the same call's line written alone,
    /// whichever of the fields the start holds differ from the call before.
    #[test]
    fn kept_starts_belong_to_their_calls_only() {
        let mut kept = Kept::default();
        let (mut lines, mut alone) = (Vec::new(), Vec::new());
        for n in 0..3 * STARTS {
            let d = CallDraft {
                connection: ["c0", "c1", "c2"][n % 3],
                client: ["a", "b \"q\""][n % 2],
                http: if n % 5 == 0 {
                    &Method::GET
                } else {
                    &Method::POST
                },
                mcp_method: Some([&b"tools/list"[..], b"tools/call", b"ping", b"x\ty"][n % 4]),
                mcp_name: (n % 4 == 1).then_some(&b"echo"[..]),
                protocol: (n % 3 == 0).then_some(&b"2026-07-28"[..]),
                status: if n % 7 == 0 { 502 } else { 200 },
                ..draft(&[])
            };
            write_call(&mut lines, &d, n as i64, Capture::Metadata, 0, &mut kept);
            write_call(
                &mut alone,
                &d,
                n as i64,
                Capture::Metadata,
                0,
                &mut Kept::default(),
            );
        }
        let back: Vec<CallRecord> = read_lines(&lines[..]).collect();
        assert_eq!(back.len(), 3 * STARTS);
        assert_eq!(back, read_lines(&alone[..]).collect::<Vec<_>>());
        assert_eq!(back[3].method.as_deref(), Some("x\\x09y"));
        assert_eq!(kept.starts.len(), STARTS);
    }
}
