//! Calls through the proxy: what is kept of each (`CallRecord`), the recorder the proxy
//! hands each finished call to (`Recorder::record`: its line of the audit log, written at
//! once into a shared batch), and the collector that writes the batches to
//! `logs/calls.jsonl` (`log`) and keeps the engine's rings. A record never holds a header,
//! so never a token or an endpoint secret; bodies only with `[calls] capture = "full"`.

mod collect;
mod describe;
mod line;
pub mod log;
mod start;
pub mod tail;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::http::Method;
use serde::{Deserialize, Serialize};

pub use crate::config::{CallsConfig, Capture};
pub use collect::{Collector, RING, Rings};
pub use start::is_result;

/// Bytes of lines waiting for the collector; a line that would go past it is dropped (and
/// counted), never waited for. About 25,000 metadata lines: two seconds of a saturated proxy.
const PENDING_MAX: usize = 8 * 1024 * 1024;

/// Bytes of lines at which the call that crosses it wakes the collector before its tick: a
/// busy proxy's batches stay this small (about 1,000 lines), and so does its memory.
const WAKE_AT: usize = 256 * 1024;

/// Room each batch is made with: a batch woken at [`WAKE_AT`] never has to grow (and copy
/// itself) while the collector gets to it.
const BATCH: usize = WAKE_AT + 64 * 1024;

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
    /// The diagnosis tether named in the error's data (`error.data.diagnosis`), when the
    /// call failed because of the connection's auth state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<String>,
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

/// What the proxy knows of a call when its answer has been sent, borrowed from the call
/// itself: [`Recorder::record`] makes the record's line from it before the call's buffers
/// are released, so nothing is copied or kept past the call.
pub struct CallDraft<'a> {
    /// When the request had been read.
    pub started: Instant,
    pub connection: &'a str,
    pub client: &'a str,
    pub http: &'a Method,
    /// The MCP fields' values: `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`.
    pub protocol: Option<&'a [u8]>,
    pub mcp_method: Option<&'a [u8]>,
    pub mcp_name: Option<&'a [u8]>,
    pub request: &'a [u8],
    pub status: u16,
    pub first_byte: Duration,
    pub total: Duration,
    pub bytes_out: u64,
    pub streamed: bool,
    pub events: u32,
    pub refreshed: bool,
    pub retried: bool,
    /// The answer's first pieces, up to [`Recorder::keep`] bytes: where its error is. None
    /// of an answer that starts as a JSON-RPC result ([`is_result`]) is needed, but with
    /// `full` capture.
    pub response: &'a [Bytes],
}

/// The lines waiting for the collector, and what is kept to write the next ones.
struct Pending {
    lines: Vec<u8>,
    kept: line::Kept,
    clock: Clock,
}

/// The wall clock against the monotonic one, read again by the collector every batch: a
/// call's time is its start's distance from it, so recording a call reads no clock but
/// the one its duration needs, and a clock set or a machine woken from sleep is caught up
/// with within a batch.
#[derive(Clone, Copy)]
struct Clock {
    wall_ms: i64,
    at: Instant,
}

impl Clock {
    fn now() -> Self {
        let wall = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        Self {
            wall_ms: wall.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            at: Instant::now(),
        }
    }

    /// `when` in milliseconds since the Unix epoch.
    fn ms(&self, when: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match when.checked_duration_since(self.at) {
            Some(after) => self.wall_ms.saturating_add(ms(after)),
            None => self
                .wall_ms
                .saturating_sub(ms(self.at.duration_since(when))),
        }
    }
}

/// The proxy's side of the recording: each call's line goes into a batch the collector
/// takes every tick and writes with one system call. The collector holds the batch's lock
/// only to swap it for an empty one, so a call never waits on the log.
pub struct Recorder {
    pending: Mutex<Pending>,
    capture: Capture,
    keep: usize,
    max_body: usize,
    /// Most bytes waiting before lines are dropped.
    limit: usize,
    recorded: AtomicU64,
    dropped: AtomicU64,
    /// The collector's thread, woken when a batch reaches [`WAKE_AT`].
    collector: OnceLock<Thread>,
}

impl Recorder {
    fn new(config: &CallsConfig) -> Self {
        let full = config.capture == Capture::Full;
        Self {
            pending: Mutex::new(Pending {
                lines: Vec::with_capacity(BATCH),
                kept: line::Kept::default(),
                clock: Clock::now(),
            }),
            capture: config.capture,
            keep: if full {
                config.capture_max_bytes
            } else {
                describe::ERROR_WITHIN
            },
            max_body: config.capture_max_bytes,
            // A full capture's line holds two bodies: one of them always fits.
            limit: PENDING_MAX
                + if full {
                    2 * config.capture_max_bytes
                } else {
                    0
                },
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            collector: OnceLock::new(),
        }
    }

    /// How much of an answer a draft carries: enough to find its error, or with `full`
    /// capture everything kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    pub fn capture(&self) -> Capture {
        self.capture
    }

    /// Adds the call's line to the batch; a batch the collector has not taken for too long
    /// drops it (counted), so a call never waits.
    pub fn record(&self, draft: &CallDraft<'_>) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        let before = pending.lines.len();
        if before >= self.limit {
            drop(pending);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Pending { lines, kept, clock } = &mut *pending;
        let at_ms = clock.ms(draft.started);
        line::write_call(lines, draft, at_ms, self.capture, self.max_body, kept);
        let wake = before < WAKE_AT && lines.len() >= WAKE_AT;
        drop(pending);
        self.recorded.fetch_add(1, Ordering::Relaxed);
        if wake && let Some(collector) = self.collector.get() {
            collector.unpark();
        }
    }

    /// Swaps the batch for `empty` (cleared), returning the lines in `empty`.
    fn take(&self, empty: &mut Vec<u8>) {
        empty.clear();
        let clock = Clock::now();
        if let Ok(mut pending) = self.pending.lock() {
            std::mem::swap(&mut pending.lines, empty);
            pending.clock = clock;
        }
    }

    /// Calls recorded since start.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Calls dropped because the collector fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call's time is its start's distance from the clock's reading, whichever side of
    /// it the call started on.
    #[test]
    fn a_call_is_timed_from_the_clocks_last_reading() {
        let at = Instant::now();
        let clock = Clock {
            wall_ms: 1_700_000_000_000,
            at,
        };
        assert_eq!(clock.ms(at), 1_700_000_000_000);
        assert_eq!(
            clock.ms(at + Duration::from_millis(1_500)),
            1_700_000_001_500
        );
        if let Some(before) = at.checked_sub(Duration::from_millis(2_500)) {
            assert_eq!(clock.ms(before), 1_699_999_997_500);
        }
        // Read now, it tells the wall clock's time.
        let now = Clock::now();
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now.ms(Instant::now()) - wall).abs() < 1_000);
    }
}
