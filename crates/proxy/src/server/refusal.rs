//! What becomes of a request's body the proxy does not take: read to its end and dropped
//! when that is cheap (the connection then carries the client's next request), else left
//! to the lingering close, which reads and drops it after the answer has gone out.

use bytes::Buf;

use super::{Chunks, Client, DRAIN_AT_MOST, Step};

impl Client {
    /// Reads and drops the next `n` bytes of the request (a body with a declared length);
    /// whether they all arrived within the request's time.
    pub(super) async fn skip(&mut self, n: u64) -> bool {
        let mut left = n;
        loop {
            let here = left.min(self.read.len() as u64);
            self.read.advance(here as usize);
            left -= here;
            if left == 0 {
                return true;
            }
            if !matches!(self.fill_request().await, Ok(n) if n > 0) {
                return false;
            }
        }
    }

    /// Reads and drops the rest of a chunked body whose decoding stands at `chunks`, up to
    /// [`DRAIN_AT_MOST`] of it; whether it ended within that and the request's time.
    pub(super) async fn skip_chunks(&mut self, mut chunks: Chunks) -> bool {
        let mut dropped = 0;
        loop {
            match chunks.next(&mut self.read) {
                Ok(Step::Data(data)) => {
                    dropped += data.len();
                    if dropped > DRAIN_AT_MOST {
                        return false;
                    }
                }
                Ok(Step::End) => return true,
                Ok(Step::More) => {
                    if !matches!(self.fill_request().await, Ok(n) if n > 0) {
                        return false;
                    }
                }
                Err(_) => return false,
            }
        }
    }

    /// Closes the connection after its last answer without the answer being lost to a
    /// reset (see `proxy::linger`).
    pub(super) async fn linger(&mut self) {
        self.read.clear();
        crate::linger::close(&mut self.tcp).await;
    }
}
