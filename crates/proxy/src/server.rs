//! HTTP/1.1 toward local clients, as the proxy's hot path needs it: a request head parsed
//! with `httparse` (hyper's own parser) into the `http` types the handler takes, its body
//! read whole (it is forwarded whole), the answer written with its head in one write —
//! the body too when it is already there — and a streamed answer (SSE) written chunk by
//! chunk as each piece arrives.
//!
//! hyper's server is general (upgrades, pipelined bodies, half-closed connections, a
//! dispatcher between them); the proxy bench measured it at more than a third of a
//! proxied call, and with it tether could not forward as fast as nginx. HTTP/2 clients
//! (who open with the HTTP/2 preface) are still served by hyper.
//!
//! What a request must be (RFC 9112): a request line and header fields `httparse`
//! accepts, at most 64 KiB and 100 fields (431 otherwise); a body framed by one
//! `Content-Length`, or by `Transfer-Encoding` ending in `chunked` and no
//! `Content-Length` (400 otherwise); `Expect: 100-continue` is answered before the body
//! is read. A body over `max_body_bytes` is refused with 413: one at most 1 MiB over the
//! limit is read to its end and dropped first, and the connection serves on; a larger one
//! (or one the client waits to be asked for with `Expect: 100-continue`) is answered at
//! once and the connection closed the lingering way (see `linger`), so a client still
//! sending reads the 413, never a reset. A connection with no request for
//! `idle_timeout_secs` is closed. A client that goes away while its call waits for the
//! upstream, or while an answer streams, drops the call and the upstream request with it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::http::{HeaderName, Method, StatusCode, Version};
use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::framing::{Chunks, READ_AHEAD, Step, fill};
use super::{Admitted, Answer, Handler, calls, forward};

mod answer;
#[cfg(test)]
mod differential;
mod head;
mod idle;
mod refusal;
#[cfg(test)]
mod tests;

use head::{Framing, Head, parse_head};

/// A request's head may not be larger than this…
const MAX_HEAD: usize = 64 * 1024;

/// …nor carry more header fields.
const MAX_HEADERS: usize = 100;

/// A refused body at most this much over the limit is read to its end (and dropped), so
/// the connection can carry the client's next request.
const DRAIN_AT_MOST: usize = 1 << 20;

/// Pipelined requests read while a call waits are kept up to this much.
const READ_WHILE_WAITING: usize = 64 * 1024;

/// A connection served by [`serve`], told to close by setting `closing` (see
/// `drain::Closing`).
pub struct Connection {
    run: Pin<Box<dyn Future<Output = Result<(), io::Error>> + Send>>,
    closing: Arc<AtomicBool>,
}

impl Connection {
    pub fn new(tcp: TcpStream, handler: Arc<Handler>) -> Self {
        let closing = Arc::new(AtomicBool::new(false));
        let run = Box::pin(serve(tcp, handler, closing.clone()));
        Self { run, closing }
    }
}

impl Future for Connection {
    type Output = Result<(), io::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.run.as_mut().poll(cx)
    }
}

impl super::drain::Closing for Connection {
    fn close_gracefully(self: Pin<&mut Self>) {
        self.closing.store(true, Ordering::SeqCst);
    }
}

/// What was read of a client connection, and the next answer being written.
struct Client {
    tcp: TcpStream,
    read: BytesMut,
    write: Vec<u8>,
    /// Scratch room for a request head's fields.
    kept: Vec<(HeaderName, std::ops::Range<usize>)>,
    /// The head of the request being served and its MCP fields, when calls are recorded.
    mcp: Option<crate::mcp::Noted>,
    /// How long a request may take to arrive once begun (`proxy.request_timeout_secs`):
    /// counted from the first wait for more of it, so a client trickling bytes cannot
    /// hold a connection and its buffers open forever. (An idle connection between
    /// requests is left open: clients keep them for their next call.)
    read_within: std::time::Duration,
    /// When the request being read must be whole.
    due: Option<tokio::time::Instant>,
    /// A connection with no request for this long is closed (`proxy.idle_timeout_secs`)…
    idle_within: std::time::Duration,
    /// …counted from here: its start, or the end of its last answer.
    idle_since: tokio::time::Instant,
    /// Set once and moved only when it fires (see `idle`).
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A body not taken: the answer saying why, and whether the body was read to its end (so
/// the connection can carry another request).
type BodyRefused = (Answer, bool);

/// Why a request cannot be served; the connection closes after the answer.
enum Refused {
    /// 400, with the reason.
    Bad(String),
    /// 431.
    HeadTooLarge,
    /// 408: the head did not arrive in time (`proxy.request_timeout_secs`).
    Slow,
}

async fn serve(tcp: TcpStream, handler: Arc<Handler>, closing: Arc<AtomicBool>) -> io::Result<()> {
    let mut client = Client {
        tcp,
        read: BytesMut::with_capacity(READ_AHEAD),
        write: Vec::with_capacity(4 * 1024),
        kept: Vec::with_capacity(16),
        mcp: handler.proxy.calls.is_some().then(Default::default),
        read_within: std::time::Duration::from_secs(
            handler.proxy.config.request_timeout_secs.max(1),
        ),
        due: None,
        idle_within: std::time::Duration::from_secs(handler.proxy.config.idle_timeout_secs.max(1)),
        idle_since: tokio::time::Instant::now(),
        idle_timer: None,
    };
    let limit = handler.proxy.config.max_body_bytes;
    loop {
        let head = match client.next_head(&closing).await? {
            None => return Ok(()),
            Some(Ok(head)) => head,
            Some(Err(refused)) => {
                let answer = match refused {
                    Refused::Bad(why) => bad_request(&why),
                    Refused::Slow => too_slow(),
                    Refused::HeadTooLarge => forward::own((
                        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                        format!(
                            "tether: the request head is larger than {MAX_HEAD} bytes or has more than {MAX_HEADERS} fields"
                        ),
                    )),
                };
                client
                    .answer(answer, false, Version::HTTP_11, true, None)
                    .await?;
                client.linger().await;
                return Ok(());
            }
        };
        let Head {
            mut parts,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        let head_only = parts.method == Method::HEAD;
        let version = parts.version;
        let admitted = match handler.admit(&parts).await {
            Ok(admitted) => admitted,
            Err(refused) => {
                // The body is not used: the refusal goes out at once, and what the client
                // still sends of the body is read and dropped as the connection closes.
                client
                    .answer(*refused, head_only, version, true, None)
                    .await?;
                client.linger().await;
                return Ok(());
            }
        };
        let body = match client.body(framing, limit, expect_continue).await? {
            Ok(body) => body,
            Err((refused, drained)) => {
                let close = !drained || !keep_alive || closing.load(Ordering::SeqCst);
                client
                    .answer(refused, head_only, version, close, None)
                    .await?;
                if close {
                    client.linger().await;
                    return Ok(());
                }
                client.due = None;
                client.idle_since = tokio::time::Instant::now();
                continue;
            }
        };
        client.due = None;
        if matches!(admitted, Admitted::Rest)
            && let Some(ends) = super::authz::Ends::of(&client.tcp)
        {
            parts.extensions.insert(ends);
        }
        let close = match admitted {
            Admitted::Call {
                store,
                connection,
                client: at,
            } => {
                let who = calls::Who {
                    store: &store,
                    connection,
                    client: at,
                };
                let Some((answer, forwarded)) =
                    client.unless_gone(handler.call(who, &parts, &body)).await
                else {
                    return Ok(());
                };
                let close = !keep_alive || closing.load(Ordering::SeqCst);
                match &handler.proxy.calls {
                    // Counted as it is written, recorded once written (or cut short).
                    Some(recorder) => {
                        let noted = client.mcp.as_mut().map(std::mem::take).unwrap_or_default();
                        let mut recording = calls::Recording::new(
                            recorder,
                            who,
                            &parts,
                            noted.values(),
                            &body,
                            &answer,
                            forwarded,
                        );
                        let tally = Some(&mut recording.tally);
                        client
                            .answer(answer, head_only, version, close, tally)
                            .await?;
                    }
                    None => {
                        client
                            .answer(answer, head_only, version, close, None)
                            .await?
                    }
                }
                close
            }
            admitted => {
                let Some(answer) = client
                    .unless_gone(handler.handle_read(admitted, parts, body))
                    .await
                else {
                    return Ok(());
                };
                let close = !keep_alive || closing.load(Ordering::SeqCst);
                client
                    .answer(answer, head_only, version, close, None)
                    .await?;
                close
            }
        };
        if close {
            return Ok(());
        }
        client.idle_since = tokio::time::Instant::now();
    }
}

impl Client {
    /// The next request's head: `None` when the client closes (or the proxy stops)
    /// between requests.
    async fn next_head(
        &mut self,
        closing: &AtomicBool,
    ) -> io::Result<Option<Result<Head, Refused>>> {
        loop {
            if !self.read.is_empty() {
                match parse_head(&mut self.read, &mut self.kept, self.mcp.as_mut()) {
                    Ok(Some(head)) => return Ok(Some(Ok(head))),
                    Ok(None) if self.read.len() >= MAX_HEAD => {
                        return Ok(Some(Err(Refused::HeadTooLarge)));
                    }
                    Ok(None) => {}
                    Err(refused) => return Ok(Some(Err(refused))),
                }
            } else if closing.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let read = if self.read.is_empty() {
                std::future::poll_fn(|cx| {
                    // Between requests, a stop closes the connection, as does idleness.
                    if closing.load(Ordering::SeqCst) {
                        return Poll::Ready(Ok(0));
                    }
                    match fill(&mut self.tcp, &mut self.read, cx) {
                        Poll::Pending if self.idle_over(cx) => Poll::Ready(Ok(0)),
                        read => read,
                    }
                })
                .await
            } else {
                self.fill_request().await
            };
            match read {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Ok(Some(Err(Refused::Slow)));
                }
                Err(e) if is_gone(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    /// The request's body, read whole; a refusal when it is too large or badly framed.
    async fn body(
        &mut self,
        framing: Framing,
        limit: usize,
        expect_continue: bool,
    ) -> io::Result<Result<Bytes, BodyRefused>> {
        if framing == Framing::Length(0) {
            return Ok(Ok(Bytes::new()));
        }
        if let Framing::Length(n) = framing
            && n > limit as u64
        {
            // A client waiting for 100 Continue sends no body: it is answered at once.
            let drained =
                !expect_continue && n <= (limit + DRAIN_AT_MOST) as u64 && self.skip(n).await;
            return Ok(Err((forward::too_large(limit), drained)));
        }
        if expect_continue {
            self.tcp.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
        }
        match framing {
            Framing::Length(n) => {
                let n = n as usize;
                while self.read.len() < n {
                    match self.fill_request().await {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                            return Ok(Err((too_slow(), false)));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(Ok(self.read.split_to(n).freeze()))
            }
            Framing::Chunked => {
                let mut chunks = Chunks::Size;
                let mut body = BytesMut::new();
                loop {
                    match chunks.next(&mut self.read) {
                        Ok(Step::Data(data)) if body.len() + data.len() > limit => {
                            let drained = self.skip_chunks(chunks).await;
                            return Ok(Err((forward::too_large(limit), drained)));
                        }
                        Ok(Step::Data(data)) => body.extend_from_slice(&data),
                        Ok(Step::End) => return Ok(Ok(body.freeze())),
                        Ok(Step::More) => match self.fill_request().await {
                            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                                return Ok(Err((too_slow(), false)));
                            }
                            Err(e) => return Err(e),
                        },
                        Err(e) => return Ok(Err((forward::unreadable(&e), false))),
                    }
                }
            }
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| fill(&mut self.tcp, &mut self.read, cx)).await
    }

    /// Reads more of the request being received: `TimedOut` once it is due.
    async fn fill_request(&mut self) -> io::Result<usize> {
        let within = self.read_within;
        let due = *self
            .due
            .get_or_insert_with(|| tokio::time::Instant::now() + within);
        tokio::time::timeout_at(due, self.fill())
            .await
            .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
    }

    /// `work`'s outcome, or `None` when the client goes away first (`work` is dropped).
    async fn unless_gone<T>(&mut self, work: impl Future<Output = T>) -> Option<T> {
        tokio::select! {
            biased;
            done = work => Some(done),
            () = self.gone() => None,
        }
    }

    /// Resolves when the client has gone away (its side closed or reset); what it sends
    /// meanwhile (a pipelined request) is kept for later.
    async fn gone(&mut self) {
        loop {
            if self.read.len() >= READ_WHILE_WAITING {
                return std::future::pending().await;
            }
            match self.fill().await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

/// The answer to a request that did not arrive whole in time.
fn too_slow() -> Answer {
    forward::own((
        StatusCode::REQUEST_TIMEOUT,
        "tether: the request did not arrive in time (proxy.request_timeout_secs in config.toml)",
    ))
}

fn bad_request(why: &str) -> Answer {
    forward::own((StatusCode::BAD_REQUEST, format!("tether: {why}")))
}

fn is_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Whether a new connection opens with the HTTP/2 preface (a client speaking HTTP/2
/// without TLS, by prior knowledge), which hyper's server takes. Looks without taking.
pub async fn opens_with_http2(tcp: &TcpStream) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut first = [0u8; 24];
    loop {
        if tcp.readable().await.is_err() {
            return false;
        }
        match tcp.peek(&mut first).await {
            Ok(0) | Err(_) => return false,
            Ok(n) if first[..n] != PREFACE[..n] => return false,
            Ok(n) if n == PREFACE.len() => return true,
            // A prefix of the preface so far: wait for the rest.
            Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
        }
    }
}
