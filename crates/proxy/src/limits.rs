//! How many client connections the proxy holds open at once (`[proxy] max_connections`).
//! A connection over the cap is answered `503 Service Unavailable` with `Retry-After` and
//! a message naming the setting, then closed the lingering way — a client reads why,
//! rather than a bare reset it would retry at once. The cap being hit is logged once per
//! burst, not once per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Connections over the cap being answered at once; past this many, more are just closed.
const REFUSING_AT_MOST: usize = 64;

pub struct Cap {
    max: usize,
    open: Arc<AtomicUsize>,
    refusing: Arc<AtomicUsize>,
    /// Connections refused since the cap was last hit, while it is.
    burst: Option<u64>,
}

/// One open connection's place under the cap, given back when dropped.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Cap {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: Arc::default(),
            refusing: Arc::default(),
            burst: None,
        }
    }

    /// A place for a newly accepted connection, or `None` when the cap is reached.
    pub fn admit(&mut self) -> Option<Slot> {
        let open = self.open.load(Ordering::Acquire);
        if open >= self.max {
            match &mut self.burst {
                Some(refused) => *refused += 1,
                None => {
                    tracing::warn!(
                        "the proxy has {open} client connections open, its limit ([proxy] max_connections in config.toml): new ones are answered 503 until some close"
                    );
                    self.burst = Some(1);
                }
            }
            return None;
        }
        // The burst is over once well under the cap, so a count hovering at it is one burst.
        if let Some(refused) = self.burst
            && open < self.max - self.max / 10
        {
            tracing::info!(
                "the proxy accepts client connections again; {refused} were refused while it was full"
            );
            self.burst = None;
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        Some(Slot(self.open.clone()))
    }

    /// Answers a connection over the cap with 503 and closes it, in a task of its own.
    pub fn refuse(&self, mut tcp: TcpStream) {
        if self.refusing.fetch_add(1, Ordering::AcqRel) >= REFUSING_AT_MOST {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let refusing = self.refusing.clone();
        let max = self.max;
        tokio::spawn(async move {
            let message = format!(
                "tether: too many open connections (the limit is {max}, [proxy] max_connections in config.toml): close idle ones, or raise the limit\n"
            );
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{message}",
                message.len()
            );
            if tcp.write_all(answer.as_bytes()).await.is_ok() {
                super::linger::close(&mut tcp).await;
            }
            refusing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}
