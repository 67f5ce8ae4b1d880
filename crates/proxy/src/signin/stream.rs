//! The SSE streams a signed-out endpoint holds open for its clients — a 2025 session's GET
//! stream, a 2026-07-28 client's `subscriptions/listen` — until the sign-in ends: then
//! each carries `notifications/tools/list_changed` and closes, and the client's next stream
//! (a GET reopened, a new listen) goes to the upstream like any call.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Answer;
use crate::forward::own;

/// A comment line this often keeps a quiet stream from being closed as idle.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How soon a client reopens its GET stream after tether closes it (SSE `retry`).
const REOPEN_MS: u32 = 250;

/// Which kind of stream, for what it is sent at the end.
pub enum Kind {
    /// A 2025 session's GET stream.
    Session,
    /// A `subscriptions/listen` stream: its request id, and whether it asked for tool
    /// list changes.
    Listen { id: Value, tools: bool },
}

/// One stream held open.
pub struct Held {
    pub kind: Kind,
    events: mpsc::Sender<Bytes>,
}

impl Held {
    /// Whether the client still reads it.
    pub fn open(&self) -> bool {
        !self.events.is_closed()
    }

    /// Tells the client at once that the tools changed (to the one sign-in tool).
    pub fn announce(&self) {
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let _ = self.events.try_send(event(&changed));
    }

    /// Sends the end of the wait: the tool list changed (where the client asked to hear
    /// of it), and for a listen stream its result; dropping `self` then closes the stream.
    pub fn signed_in(self) {
        let changed = "notifications/tools/list_changed";
        let messages = match &self.kind {
            Kind::Session => vec![json!({"jsonrpc": "2.0", "method": changed})],
            Kind::Listen { id, tools } => {
                let mut m = Vec::new();
                if *tools {
                    m.push(json!({
                        "jsonrpc": "2.0",
                        "method": changed,
                        "params": {"_meta": {"io.modelcontextprotocol/subscriptionId": id}},
                    }));
                }
                m.push(json!({"jsonrpc": "2.0", "id": id, "result": {}}));
                m
            }
        };
        for message in messages {
            let _ = self.events.try_send(event(&message));
        }
    }
}

/// One SSE event carrying `message`.
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("event: message\ndata: {message}\n\n"))
}

/// A stream held open, and the answer that carries it to the client. `first` is sent at
/// once (a listen stream's acknowledgment).
pub fn hold(kind: Kind, first: Option<Value>) -> (Held, Answer) {
    let (events, queue) = mpsc::channel::<Bytes>(8);
    let opening = match &first {
        Some(message) => event(message),
        None => Bytes::from(format!("retry: {REOPEN_MS}\n\n")),
    };
    let _ = events.try_send(opening);
    let mut tick = tokio::time::interval(KEEP_ALIVE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.reset();
    let stream = futures_util::stream::unfold((queue, tick), |(mut queue, mut tick)| async move {
        let chunk = tokio::select! {
            chunk = queue.recv() => chunk?,
            _ = tick.tick() => Bytes::from_static(b": keep-alive\n\n"),
        };
        Some((Ok::<_, Infallible>(chunk), (queue, tick)))
    });
    let mut answer = own((StatusCode::OK, Body::from_stream(stream)));
    let headers = answer.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    (Held { kind, events }, answer)
}
