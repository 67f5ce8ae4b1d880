//! Closing a client connection without losing the answer just written to it ("lingering
//! close", RFC 9112 §9.6). Closing a socket with unread data from the client makes Linux
//! send a reset, and a reset makes the client's system drop what it had received but not
//! yet read — the answer, typically a 413 for a body the client is still sending. So the
//! proxy first ends its own side (the client reads the answer, then the end), then reads
//! and drops whatever the client still sends until it closes too, for a bounded time.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a closing connection keeps reading what the client still sends.
pub const LINGER: Duration = Duration::from_secs(5);

/// Ends the proxy's side of `tcp`, then reads and drops what the client sends until it
/// closes its side, for up to [`LINGER`].
pub async fn close(tcp: &mut TcpStream) {
    if tcp.shutdown().await.is_err() {
        return;
    }
    // Only closing connections come here: the hot path allocates nothing for it.
    let mut sink = vec![0u8; 16 * 1024];
    let drain = async { while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
