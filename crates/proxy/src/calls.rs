//! The record of a call through the proxy: [`Tallied`] wraps an answer's body, counts what
//! passes through it (bytes, SSE events) and keeps its first pieces, and when the answer is
//! done — sent whole, or dropped because the client went away — hands the call to the
//! engine's recorder (`tether_core::calls`), which writes its line at once into a batch
//! and never makes the call wait. The line is made before the call's buffers are released,
//! so none of them outlives the call.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use hyper::body::{Frame, SizeHint};
use tether_core::calls::{CallDraft, Recorder};
use tether_core::vault::Store;

use crate::{Answer, Reply};

/// Which connection and client a call is for: their positions in the vault snapshot the
/// call was admitted with (the record takes the snapshot, not copies of the names).
#[derive(Clone, Copy)]
pub struct Who<'a> {
    pub store: &'a Arc<Store>,
    pub connection: usize,
    pub client: usize,
}

/// When a call's request was read, and how long its answer's head took.
#[derive(Clone, Copy)]
pub struct Timing {
    pub started: Instant,
    pub first_byte: Duration,
}

/// What the forwarding learned of a call on the way.
#[derive(Default, Clone, Copy)]
pub struct Trace {
    pub refreshed: bool,
    pub retried: bool,
}

/// An answer's body, counted as it goes out.
pub struct Tallied {
    inner: Reply,
    recorder: Arc<Recorder>,
    store: Arc<Store>,
    connection: usize,
    client: usize,
    http: Method,
    protocol: Option<HeaderValue>,
    method: Option<HeaderValue>,
    name: Option<HeaderValue>,
    request: Bytes,
    at: SystemTime,
    started: Instant,
    first_byte: Duration,
    status: u16,
    streamed: bool,
    trace: Trace,
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

/// Wraps `answer` so its call is recorded once it has been sent; `timing.first_byte` is
/// now, as the caller just measured it (a clock read less).
pub fn tally(
    recorder: &Arc<Recorder>,
    answer: Answer,
    who: Who<'_>,
    parts: &Parts,
    body: Bytes,
    timing: Timing,
    trace: Trace,
) -> Answer {
    let Timing {
        started,
        first_byte,
    } = timing;
    let now = SystemTime::now();
    // One pass over the request's fields for the three the record names (a lookup by name
    // hashes it, three times over).
    let (mut protocol, mut method, mut name) = (None, None, None);
    for (field, value) in &parts.headers {
        match field.as_str() {
            "mcp-protocol-version" => protocol = Some(value.clone()),
            "mcp-method" => method = Some(value.clone()),
            "mcp-name" => name = Some(value.clone()),
            _ => {}
        }
    }
    // The answer has a few fields: a look at each costs less than a lookup by name.
    let streamed = answer.headers().iter().any(|(field, value)| {
        field == header::CONTENT_TYPE && value.as_bytes().starts_with(b"text/event-stream")
    });
    let status = answer.status().as_u16();
    answer.map(|inner| {
        Reply::Tallied(Box::new(Tallied {
            inner,
            recorder: recorder.clone(),
            store: who.store.clone(),
            connection: who.connection,
            client: who.client,
            http: parts.method.clone(),
            protocol,
            method,
            name,
            request: body,
            at: now.checked_sub(first_byte).unwrap_or(now),
            started,
            first_byte,
            status,
            streamed,
            trace,
            bytes_out: 0,
            events: 0,
            first: None,
            pieces: Vec::new(),
            kept: 0,
            after_newline: false,
        }))
    })
}

impl Tallied {
    fn count(&mut self, data: &Bytes) {
        self.bytes_out += data.len() as u64;
        if self.kept < self.recorder.keep() {
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
    }
}

impl Drop for Tallied {
    fn drop(&mut self) {
        let c = self.store.connections().get(self.connection);
        let draft = CallDraft {
            at: self.at,
            connection: c.map_or("", |c| c.name.as_str()),
            client: c
                .and_then(|c| c.access.get(self.client))
                .map_or("", |a| a.label.as_str()),
            http: self.http.as_str(),
            protocol: self.protocol.as_ref(),
            mcp_method: self.method.as_ref(),
            mcp_name: self.name.as_ref(),
            request: &self.request,
            status: self.status,
            first_byte: self.first_byte,
            total: self.started.elapsed(),
            bytes_out: self.bytes_out,
            streamed: self.streamed,
            events: self.events,
            refreshed: self.trace.refreshed,
            retried: self.trace.retried,
            response: match &self.first {
                Some(first) => std::slice::from_ref(first),
                None => &self.pieces,
            },
        };
        self.recorder.record(&draft);
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
            self.count(data);
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
