//! The record of a call through the proxy: a [`Tally`] counts what of the answer's body goes
//! out (bytes, SSE events) and keeps its first pieces, and when the answer is done — sent
//! whole, or cut short because the client went away — the call goes to the engine's
//! recorder (`tether_core::calls`), which writes its line at once into a batch and never
//! makes the call wait. The line is made before the call's buffers are released, so none
//! of them outlives the call.
//!
//! tether's own HTTP/1.1 server counts as it writes and records from the call's own
//! variables ([`Recording`], nothing boxed or copied); an answer hyper's server writes
//! (HTTP/2 clients) is wrapped in a [`Tallied`] body that does the same.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use hyper::body::{Frame, SizeHint};
use tether_core::calls::{self, CallDraft, Capture, Recorder};
use tether_core::vault::Store;

use crate::{Answer, Reply, mcp};

/// Which connection and client a call is for: their positions in the vault snapshot the
/// call was admitted with (the record takes the snapshot, not copies of the names).
#[derive(Clone, Copy)]
pub struct Who<'a> {
    pub store: &'a Arc<Store>,
    pub connection: usize,
    pub client: usize,
}

/// What the forwarding learned of a call by the time its answer's head was ready.
#[derive(Clone, Copy)]
pub struct Forwarded {
    /// When the request had been read.
    pub started: Instant,
    /// How long the answer's head took.
    pub first_byte: Duration,
    pub trace: Trace,
}

/// What the forwarding did on the way.
#[derive(Default, Clone, Copy)]
pub struct Trace {
    pub refreshed: bool,
    pub retried: bool,
}

/// An answer's body, counted as it goes out.
pub struct Tally {
    keep: usize,
    /// Whether a successful answer that starts as a JSON-RPC result is let go (no bodies
    /// captured): it has no error to find.
    results_go: bool,
    status: u16,
    streamed: bool,
    bytes_out: u64,
    events: u32,
    /// The answer's first pieces (references, not copies), up to [`Recorder::keep`] bytes:
    /// the first alone (most answers are one piece: no allocation), or all of them.
    first: Option<Bytes>,
    pieces: Vec<Bytes>,
    kept: usize,
    /// Whether the last byte seen was a line break (an SSE event ends with a blank line).
    after_newline: bool,
}

impl Tally {
    /// For `answer`, whose body is about to go out through hyper's server.
    pub fn new<B>(recorder: &Recorder, answer: &axum::http::Response<B>) -> Self {
        let mut tally = Self::of_status(recorder, answer.status());
        // The answer has a few fields: a look at each costs less than a lookup by name.
        tally.streamed = answer.headers().iter().any(|(field, value)| {
            field == header::CONTENT_TYPE && value.as_bytes().starts_with(b"text/event-stream")
        });
        tally
    }

    /// For an answer with `status` whose head tether's own server writes: the writer,
    /// which looks at each of its fields anyway, says whether it is an event stream
    /// ([`Tally::event_stream`]).
    fn of_status(recorder: &Recorder, status: StatusCode) -> Self {
        let results_go = recorder.capture() != Capture::Full;
        Self::keeping(recorder.keep(), results_go, status.as_u16())
    }

    /// Keeping up to `keep` bytes of the answer (none of a successful result when
    /// `results_go`).
    fn keeping(keep: usize, results_go: bool, status: u16) -> Self {
        Self {
            keep,
            results_go,
            status,
            streamed: false,
            bytes_out: 0,
            events: 0,
            first: None,
            pieces: Vec::new(),
            kept: 0,
            after_newline: false,
        }
    }

    /// The answer is an event stream: its events are counted.
    pub fn event_stream(&mut self) {
        self.streamed = true;
    }

    /// Counts a piece of the body on its way out.
    pub fn count(&mut self, data: &Bytes) {
        self.bytes_out += data.len() as u64;
        if self.kept == 0
            && self.results_go
            && !self.streamed
            && self.status < 400
            && calls::is_result(data)
        {
            // Nothing of it is kept.
            self.kept = self.keep;
        }
        if self.kept < self.keep {
            self.kept += data.len();
            // A reference to the piece, not a copy.
            match self.first.take() {
                None if self.pieces.is_empty() => self.first = Some(data.clone()),
                first => {
                    self.pieces.extend(first);
                    self.pieces.push(data.clone());
                }
            }
        }
        if self.streamed {
            self.count_events(data);
        }
    }

    fn count_events(&mut self, data: &[u8]) {
        // Blank lines (`\n\n`, also inside `\r\n\r\n`) end events.
        for at in memchr::memchr_iter(b'\n', data) {
            let before = match at {
                0 => self.after_newline,
                _ => {
                    data[at - 1] == b'\n'
                        || (data[at - 1] == b'\r' && at >= 2 && data[at - 2] == b'\n')
                }
            };
            if before {
                self.events += 1;
            }
        }
        self.after_newline = data.last() == Some(&b'\n');
    }

    fn response(&self) -> &[Bytes] {
        match &self.first {
            Some(first) => std::slice::from_ref(first),
            None => &self.pieces,
        }
    }
}

/// Hands a finished call to the recorder.
#[allow(clippy::too_many_arguments)]
fn record(
    recorder: &Recorder,
    who: Who<'_>,
    http: &Method,
    mcp: [Option<&[u8]>; 3],
    request: &[u8],
    forwarded: &Forwarded,
    tally: &Tally,
) {
    let c = who.store.connections().get(who.connection);
    let draft = CallDraft {
        started: forwarded.started,
        connection: c.map_or("", |c| c.name.as_str()),
        client: c
            .and_then(|c| c.access.get(who.client))
            .map_or("", |a| a.label.as_str()),
        http,
        protocol: mcp[0],
        mcp_method: mcp[1],
        mcp_name: mcp[2],
        request,
        status: tally.status,
        first_byte: forwarded.first_byte,
        total: forwarded.started.elapsed(),
        bytes_out: tally.bytes_out,
        streamed: tally.streamed,
        events: tally.events,
        refreshed: forwarded.trace.refreshed,
        retried: forwarded.trace.retried,
        response: tally.response(),
    };
    recorder.record(&draft);
}

/// A call whose answer tether's own server is writing, borrowed from the server's
/// variables: recorded when dropped — once the answer is written, or when the client went
/// away (or the proxy stopped) while it was.
pub struct Recording<'a> {
    recorder: &'a Recorder,
    who: Who<'a>,
    parts: &'a Parts,
    /// Its MCP fields' values, as the server noted them.
    mcp: [Option<&'a [u8]>; 3],
    request: &'a [u8],
    forwarded: Forwarded,
    pub tally: Tally,
}

impl<'a> Recording<'a> {
    pub fn new(
        recorder: &'a Recorder,
        who: Who<'a>,
        parts: &'a Parts,
        mcp: [Option<&'a [u8]>; 3],
        request: &'a [u8],
        answer: &Answer,
        forwarded: Forwarded,
    ) -> Self {
        Self {
            recorder,
            who,
            parts,
            mcp,
            request,
            forwarded,
            tally: Tally::of_status(recorder, answer.status()),
        }
    }
}

impl Drop for Recording<'_> {
    fn drop(&mut self) {
        record(
            self.recorder,
            self.who,
            &self.parts.method,
            self.mcp,
            self.request,
            &self.forwarded,
            &self.tally,
        );
    }
}

/// An answer's body, counted as it goes out through hyper's server, and recorded when
/// dropped; it holds what the record needs, as the request is gone by then.
pub struct Tallied {
    inner: Reply,
    recorder: Arc<Recorder>,
    store: Arc<Store>,
    connection: usize,
    client: usize,
    http: Method,
    mcp: [Option<HeaderValue>; 3],
    request: Bytes,
    forwarded: Forwarded,
    tally: Tally,
}

/// Wraps `answer` so its call is recorded once it has been sent.
pub fn tally(
    recorder: &Arc<Recorder>,
    answer: Answer,
    who: Who<'_>,
    parts: &Parts,
    body: Bytes,
    forwarded: Forwarded,
) -> Answer {
    let tally = Tally::new(recorder, &answer);
    let mcp = mcp::fields(&parts.headers).map(|v| v.cloned());
    answer.map(|inner| {
        Reply::Tallied(Box::new(Tallied {
            inner,
            recorder: recorder.clone(),
            store: who.store.clone(),
            connection: who.connection,
            client: who.client,
            http: parts.method.clone(),
            mcp,
            request: body,
            forwarded,
            tally,
        }))
    })
}

impl Drop for Tallied {
    fn drop(&mut self) {
        let who = Who {
            store: &self.store,
            connection: self.connection,
            client: self.client,
        };
        record(
            &self.recorder,
            who,
            &self.http,
            self.mcp
                .each_ref()
                .map(|v| v.as_ref().map(HeaderValue::as_bytes)),
            &self.request,
            &self.forwarded,
            &self.tally,
        );
    }
}

impl hyper::body::Body for Tallied {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.tally.count(data);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(results_go: bool, streamed: bool) -> Tally {
        let mut tally = Tally::keeping(1024, results_go, 200);
        tally.streamed = streamed;
        tally
    }

    /// A result is counted but none of it kept (it has no error to find), unless bodies
    /// are captured; an error, or an answer whose start says nothing, is kept to be read.
    #[test]
    fn a_result_is_counted_and_let_go_and_anything_else_kept() {
        let result = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let error = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-1}}"#);
        let mut t = tally(true, false);
        t.count(&result);
        t.count(&error);
        assert_eq!(t.bytes_out, (result.len() + error.len()) as u64);
        assert!(t.response().is_empty());
        let mut t = tally(false, false);
        t.count(&result);
        assert_eq!(t.response(), std::slice::from_ref(&result));
        let mut t = tally(true, false);
        t.count(&error);
        t.count(&result);
        assert_eq!(t.response(), [error.clone(), result.clone()]);
        // An event stream's results are read for the errors among them, and an HTTP
        // error's body is kept to show its start.
        let mut t = tally(true, true);
        t.count(&result);
        assert_eq!(t.response(), std::slice::from_ref(&result));
        let mut t = Tally::keeping(1024, true, 502);
        t.count(&result);
        assert_eq!(t.response(), [result]);
    }
}
