//! The kept-alive upstream connections: idle HTTP/1.1 ones taken for one request at a time
//! and given back once their answer was read whole, shared HTTP/2 ones, and the sweep that
//! forgets the closed and the long idle.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;

use super::Upstream;
use super::target::Origin;
use crate::h1;

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Kept-alive connections, and when next to forget the closed and the long idle.
#[derive(Default)]
pub(super) struct Pool {
    pub(super) idle: Vec<Idle>,
    next_prune: Option<Instant>,
}

/// Closed connections are never handed a request (they are not ready), so they are
/// forgotten in a sweep this often rather than looked for on every call.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// …or as soon as this many connections are kept.
const PRUNE_PAST: usize = 64;

/// A kept-alive connection: an idle HTTP/1.1 one, or a shared HTTP/2 one.
pub(super) struct Idle {
    pub(super) origin: Origin,
    pub(super) sender: Sender,
    pub(super) since: Instant,
}

pub(super) enum Sender {
    Http1(Box<h1::Conn>),
    /// Shared by every request to its origin (HTTP/2 multiplexes).
    Http2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(conn) => conn.looks_closed(),
            Sender::Http2(s) => s.is_closed(),
        }
    }
}

/// Where an HTTP/1.1 connection goes back once its answer was read whole.
pub struct Return {
    pub(super) pool: Arc<Mutex<Pool>>,
    pub(super) origin: Origin,
    pub(super) since: Instant,
}

impl h1::Home for Return {
    fn take_back(self, conn: Box<h1::Conn>) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.idle.push(Idle {
                origin: self.origin,
                sender: Sender::Http1(conn),
                since: self.since,
            });
        }
    }
}

impl Upstream {
    /// A kept-alive connection to `origin` ready for a request; now and then, the ones
    /// that closed or sat idle too long are forgotten.
    pub(super) fn take(&self, origin: &Origin, now: Instant) -> Option<Sender> {
        let mut pool = self.pool.lock().ok()?;
        if pool.next_prune.is_none_or(|at| now >= at) || pool.idle.len() >= PRUNE_PAST {
            pool.idle
                .retain(|idle| !idle.sender.is_closed() && now - idle.since < IDLE_TIMEOUT);
            pool.next_prune = Some(now + PRUNE_EVERY);
        }
        let idle = &mut pool.idle;
        loop {
            let i = idle.iter().position(|idle| {
                idle.origin == *origin
                    && match &idle.sender {
                        Sender::Http1(_) => true,
                        Sender::Http2(shared) => shared.is_ready(),
                    }
            })?;
            match &idle[i].sender {
                Sender::Http2(shared) => {
                    // Shared, so it stays; in use, so its idle time starts again.
                    let shared = Sender::Http2(shared.clone());
                    idle[i].since = now;
                    return Some(shared);
                }
                // Closed by the upstream while idle: forgotten.
                Sender::Http1(conn) if conn.looks_closed() => {
                    idle.swap_remove(i);
                }
                Sender::Http1(_) => return Some(idle.swap_remove(i).sender),
            }
        }
    }
}
