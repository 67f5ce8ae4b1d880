//! HTTP/1.1 toward an upstream, as the proxy's hot path needs it: the request head
//! written straight from the client's headers into one buffer with the body (one write),
//! the answer's head parsed with `httparse` (hyper's own parser) keeping only the headers
//! a client is passed, and the body handed on piece by piece as it arrives — chunked
//! framing decoded, each piece passed at once, so SSE events are not held back.
//!
//! hyper's client connections are general: a task per connection, a channel for the
//! request, another for the answer, another for its body, and a full header map each
//! way. A proxy that only relays needs none of that, and the proxy bench measured it:
//! hyper's HTTP/1.1 client was more than a third of the instructions of a whole proxied
//! call. HTTP/2 upstreams keep hyper's client (see `upstream`).
//!
//! Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; a
//! `Transfer-Encoding` ending in `chunked` is decoded; any other `Transfer-Encoding`, or
//! neither header, reads to the end of the connection; differing `Content-Length`s are
//! refused. A connection goes back to the pool only when its answer was read to the last
//! byte with nothing after it and the upstream did not ask to close it.

use std::io;
use std::task::Context;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response};
use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::framing::{FramingError, READ_AHEAD, fill};

mod body;
#[cfg(test)]
mod differential;
mod parse;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod wire;
mod write;

pub use body::{Body, Home};
use parse::{Head, Kept, parse_head};
pub use stream::Stream;
use write::write_request;

/// An answer's head may not be larger than this.
const MAX_HEAD: usize = 64 * 1024;

/// A write buffer that grew past this (a large request body) is let go after the write.
const KEEP_WRITE_ROOM: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The connection was closed or reset before any of the answer arrived — on a
    /// kept-alive connection, typically because the upstream closed it while idle.
    #[error("the upstream closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("the upstream closed the connection in the middle of its answer")]
    ClosedMidAnswer,
    #[error("the upstream's answer is not valid HTTP/1.1: {0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl From<FramingError> for H1Error {
    fn from(e: FramingError) -> Self {
        H1Error::Invalid(e.0.to_string())
    }
}

/// An idle HTTP/1.1 connection to an upstream.
pub struct Conn {
    stream: Stream,
    /// What was read and not yet used.
    read: BytesMut,
    /// The next request's head and body, written at once.
    write: Vec<u8>,
    /// Scratch room for parsing answers' heads.
    kept: Vec<Kept>,
}

/// One request toward the upstream.
pub struct Outgoing<'a> {
    pub method: &'a Method,
    /// The path and query.
    pub path: &'a str,
    pub host: &'a HeaderValue,
    pub user_agent: &'static str,
    /// The client's headers; only those `passes` lets through are sent.
    pub headers: &'a HeaderMap,
    pub passes: fn(&HeaderName) -> bool,
    /// The connection's own credential.
    pub credential: Option<&'a (HeaderName, HeaderValue)>,
    pub body: &'a [u8],
}

impl Conn {
    /// Boxed once for its life: answers and the pool move it around as a pointer.
    pub fn new(stream: Stream) -> Box<Self> {
        Box::new(Self {
            stream,
            read: BytesMut::with_capacity(READ_AHEAD),
            write: Vec::with_capacity(1024),
            kept: Vec::with_capacity(16),
        })
    }

    /// Whether the upstream has closed this idle connection (or sent something it should
    /// not have): its socket is readable. Asks the runtime's readiness, no system call.
    pub fn looks_closed(&self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        !self.read.is_empty() || self.stream.tcp().poll_read_ready(&mut cx).is_ready()
    }

    /// Sends `request` and reads the answer's head; the body follows through the returned
    /// answer, which gives the connection to `home` once the body has been read whole.
    /// The headers kept are those `keep` accepts.
    pub async fn exchange<H: Home>(
        mut self: Box<Self>,
        request: &Outgoing<'_>,
        keep: fn(&HeaderName) -> bool,
        home: H,
    ) -> Result<Response<Body<H>>, H1Error> {
        self.write.clear();
        write_request(&mut self.write, request);
        if let Err(e) = self.stream.write_all(&self.write).await {
            return Err(match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    H1Error::ClosedBeforeAnswer
                }
                _ => H1Error::Io(e),
            });
        }
        if self.write.capacity() > KEEP_WRITE_ROOM {
            // A large body passed once is not kept for the connection's life.
            self.write = Vec::with_capacity(1024);
        }
        let head = self.read_head(request.method == Method::HEAD, keep).await?;
        let mut answer = Response::new(());
        *answer.status_mut() = head.status;
        *answer.headers_mut() = head.headers;
        let body = Body::new(self, head.framing, head.keep_alive, home);
        Ok(answer.map(|()| body))
    }

    async fn read_head(
        &mut self,
        head_request: bool,
        keep: fn(&HeaderName) -> bool,
    ) -> Result<Head, H1Error> {
        let mut any = false;
        loop {
            if !self.read.is_empty() {
                any = true;
                if let Some(head) = parse_head(&mut self.read, head_request, keep, &mut self.kept)?
                {
                    match head {
                        Some(head) => return Ok(head),
                        None => continue, // an interim (1xx) answer
                    }
                }
                if self.read.len() >= MAX_HEAD {
                    return Err(H1Error::Invalid(format!(
                        "its head is larger than {MAX_HEAD} bytes"
                    )));
                }
            }
            let read = std::future::poll_fn(|cx| fill(&mut self.stream, &mut self.read, cx)).await;
            match read {
                Ok(0) if any => return Err(H1Error::ClosedMidAnswer),
                Ok(0) => return Err(H1Error::ClosedBeforeAnswer),
                Ok(_) => {}
                Err(e) if !any && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(H1Error::ClosedBeforeAnswer);
                }
                Err(e) => return Err(H1Error::Io(e)),
            }
        }
    }
}
