//! The record of a call through the proxy: [`Tallied`] wraps an answer's body, counts what
//! passes through it (bytes, SSE events) and keeps its first pieces, and when the answer is
//! done — sent whole, or dropped because the client went away — hands the draft to the
//! engine's collector (`tether_core::calls`), which never makes the call wait.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Bytes;
use axum::http::header;
use axum::http::request::Parts;
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

/// What the forwarding learned of a call on the way.
#[derive(Default, Clone, Copy)]
pub struct Trace {
    pub refreshed: bool,
    pub retried: bool,
}

/// An answer's body, counted as it goes out.
pub struct Tallied {
    inner: Reply,
    draft: Option<CallDraft>,
    started: Instant,
    recorder: Arc<Recorder>,
    /// Bytes of the answer kept in the draft so far.
    kept: usize,
    /// Whether the last byte seen was a line break (an SSE event ends with a blank line).
    after_newline: bool,
}

/// Wraps `answer` so its call is recorded once it has been sent.
pub fn tally(
    recorder: &Arc<Recorder>,
    answer: Answer,
    who: Who<'_>,
    parts: &Parts,
    body: Bytes,
    started: Instant,
    trace: Trace,
) -> Answer {
    let first_byte = started.elapsed();
    let now = std::time::SystemTime::now();
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
    let streamed = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let draft = CallDraft {
        at: now.checked_sub(first_byte).unwrap_or(now),
        store: who.store.clone(),
        connection: who.connection,
        client: who.client,
        http: parts.method.clone(),
        protocol,
        mcp_method: method,
        mcp_name: name,
        request: body,
        status: answer.status().as_u16(),
        first_byte,
        total: std::time::Duration::ZERO,
        bytes_out: 0,
        streamed,
        events: 0,
        refreshed: trace.refreshed,
        retried: trace.retried,
        response: None,
        response_more: Vec::new(),
    };
    answer.map(|inner| {
        Reply::Tallied(Box::new(Tallied {
            inner,
            draft: Some(draft),
            started,
            recorder: recorder.clone(),
            kept: 0,
            after_newline: false,
        }))
    })
}

impl Tallied {
    fn count(&mut self, data: &Bytes) {
        let Some(draft) = &mut self.draft else {
            return;
        };
        draft.bytes_out += data.len() as u64;
        if self.kept < self.recorder.keep() {
            self.kept += data.len();
            // A reference to the piece, not a copy.
            if draft.response.is_none() {
                draft.response = Some(data.clone());
            } else {
                draft.response_more.push(data.clone());
            }
        }
        if draft.streamed {
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
                    draft.events += 1;
                }
            }
            self.after_newline = data.last() == Some(&b'\n');
        }
    }
}

impl Drop for Tallied {
    fn drop(&mut self) {
        if let Some(mut draft) = self.draft.take() {
            draft.total = self.started.elapsed();
            self.recorder.send(draft);
        }
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
