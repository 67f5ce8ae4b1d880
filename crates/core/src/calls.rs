//! Calls through the proxy: what is kept of each (`CallRecord`), the draft the proxy
//! hands over without waiting (`Recorder::send`), and the collector that turns drafts
//! into records for the engine's ring and the audit log `logs/calls.jsonl` (`log`).
//! A record never holds a header, so never a token or an endpoint secret; bodies only with
//! `[calls] capture = "full"`.

mod collect;
mod describe;
pub mod log;
pub mod tail;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{HeaderValue, Method};
use serde::{Deserialize, Serialize};

use crate::vault::Store;

pub use crate::config::{CallsConfig, Capture};
pub use collect::{Collector, RING, Rings};
pub use describe::Line;

/// Drafts waiting for the collector; one more is dropped (and counted), never waited for.
const QUEUE: usize = 4096;

/// One JSON-RPC request through the proxy, as `tether calls`, the TUI and the audit log
/// show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallRecord {
    /// When the request was read, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub connection: String,
    /// The local client's label.
    pub client: String,
    /// The HTTP method (POST for a JSON-RPC message, GET for the server's stream).
    pub http: String,
    /// The JSON-RPC method (the first one of a batch).
    pub method: Option<String>,
    /// The tool, prompt (`params.name`) or resource (`params.uri`) it names.
    pub name: Option<String>,
    /// `MCP-Protocol-Version` as the client sent it.
    pub protocol: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The JSON-RPC error of the answer, if it was one.
    pub error_code: Option<i64>,
    /// That error's message, or the start of a non-JSON error answer (printable, bounded).
    pub error_message: Option<String>,
    /// From the request read to the answer's head.
    pub first_byte_us: u64,
    /// From the request read to the answer's last byte.
    pub total_us: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Whether the answer was an event stream (SSE), and how many events it carried.
    pub streamed: bool,
    pub events: u32,
    /// Whether tether refreshed the token for this call (the upstream refused it), and
    /// whether it sent the request again.
    pub refreshed: bool,
    pub retried: bool,
    /// With `capture = "full"`: the bodies, cut at `capture_max_bytes`.
    pub request: Option<String>,
    pub response: Option<String>,
}

impl CallRecord {
    /// Whether the call failed: an HTTP error or a JSON-RPC error.
    pub fn is_error(&self) -> bool {
        self.status >= 400 || self.error_code.is_some()
    }

    /// `tools/call echo`, or the method alone.
    pub fn what(&self) -> String {
        let method = self.method.as_deref().unwrap_or(&self.http);
        match &self.name {
            Some(name) => format!("{method} {name}"),
            None => method.to_string(),
        }
    }
}

/// What the proxy knows of a call when its answer has been sent; the collector makes the
/// record from it, off the call's path. It holds what the call already had — the vault
/// snapshot that names the connection and client, the request's headers and body, the
/// answer's first pieces — so handing it over copies nothing.
pub struct CallDraft {
    pub at: SystemTime,
    /// The vault as the call saw it, and the connection's and client's positions in it.
    pub store: Arc<Store>,
    pub connection: usize,
    pub client: usize,
    pub http: Method,
    pub protocol: Option<HeaderValue>,
    pub mcp_method: Option<HeaderValue>,
    pub mcp_name: Option<HeaderValue>,
    pub request: Bytes,
    pub status: u16,
    pub first_byte: Duration,
    pub total: Duration,
    pub bytes_out: u64,
    pub streamed: bool,
    pub events: u32,
    pub refreshed: bool,
    pub retried: bool,
    /// The answer's first pieces, up to [`Recorder::keep`] bytes: where its error is.
    pub response: Option<Bytes>,
    pub response_more: Vec<Bytes>,
}

impl CallDraft {
    /// The connection's and the client's names.
    pub fn names(&self) -> (&str, &str) {
        let c = self.store.connections().get(self.connection);
        let name = c.map_or("", |c| c.name.as_str());
        let label = c
            .and_then(|c| c.access.get(self.client))
            .map_or("", |a| a.label.as_str());
        (name, label)
    }
}

/// The proxy's side of the recording: a bounded queue to the collector.
pub struct Recorder {
    tx: SyncSender<CallDraft>,
    capture: Capture,
    keep: usize,
    dropped: AtomicU64,
}

impl Recorder {
    /// How much of an answer a draft carries: enough to find its error, or with `full`
    /// capture everything kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    pub fn capture(&self) -> Capture {
        self.capture
    }

    /// Hands a draft over; a full queue drops it (counted), so a call never waits.
    pub fn send(&self, draft: CallDraft) {
        if self.tx.try_send(draft).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Drafts dropped because the collector fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
