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

use axum::http::request::Parts;
use axum::http::uri::Uri;
use axum::http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Version, header,
};
use bytes::{Bytes, BytesMut};
use hyper::body::Body as _;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::framing::{Chunks, FramingFields, READ_AHEAD, Step, fill};
use super::{Answer, Handler, forward};

mod idle;
mod refusal;

/// A request's head may not be larger than this…
const MAX_HEAD: usize = 64 * 1024;

/// …nor carry more header fields.
const MAX_HEADERS: usize = 100;

/// A refused body at most this much over the limit is read to its end (and dropped), so
/// the connection can carry the client's next request.
const DRAIN_AT_MOST: usize = 1 << 20;

/// A streamed answer is written once this much of it is waiting.
const WRITE_AT: usize = 64 * 1024;

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

/// How a request's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
struct Head {
    parts: Parts,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

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
                client.answer(answer, false, Version::HTTP_11, true).await?;
                client.linger().await;
                return Ok(());
            }
        };
        let Head {
            parts,
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
                client.answer(*refused, head_only, version, true).await?;
                client.linger().await;
                return Ok(());
            }
        };
        let body = match client.body(framing, limit, expect_continue).await? {
            Ok(body) => body,
            Err((refused, drained)) => {
                let close = !drained || !keep_alive || closing.load(Ordering::SeqCst);
                client.answer(refused, head_only, version, close).await?;
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
        let call = handler.handle_read(admitted, parts, body);
        let answer = tokio::select! {
            biased;
            answer = call => answer,
            () = client.gone() => return Ok(()),
        };
        let close = !keep_alive || closing.load(Ordering::SeqCst);
        client.answer(answer, head_only, version, close).await?;
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
                match parse_head(&mut self.read, &mut self.kept) {
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

    /// Writes `answer`: its head, then its body — in the same write when the body is
    /// already there, else piece by piece as it arrives (chunked when its length is not
    /// known). A client that goes away meanwhile ends the answer.
    async fn answer(
        &mut self,
        answer: Answer,
        head_only: bool,
        version: Version,
        close: bool,
    ) -> io::Result<()> {
        let (parts, mut body) = answer.into_parts();
        let status = parts.status;
        let no_body = head_only
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let exact = body.size_hint().exact();
        let chunked = !no_body && exact.is_none() && version == Version::HTTP_11;
        // An HTTP/1.0 client learns where a body of unknown length ends by the close.
        let close = close || (!no_body && exact.is_none() && !chunked);
        // An HTTP/1.0 client keeps the connection only when the answer says so.
        let connection = if close {
            Some("close")
        } else if version == Version::HTTP_10 {
            Some("keep-alive")
        } else {
            None
        };
        write_head(
            &mut self.write,
            status,
            &parts.headers,
            exact,
            no_body,
            chunked,
            connection,
        );
        if no_body {
            return self.flush().await;
        }
        loop {
            // What is there already goes out with what is waiting; only an answer that
            // has to wait for more is written first.
            let frame =
                match std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut body).poll_frame(cx)))
                    .await
                {
                    Poll::Ready(frame) => frame,
                    Poll::Pending => {
                        self.flush().await?;
                        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
                        tokio::select! {
                            biased;
                            frame = next => frame,
                            () = self.gone() => return Err(io::ErrorKind::ConnectionAborted.into()),
                        }
                    }
                };
            match frame {
                None => break,
                Some(Err(e)) => {
                    // The upstream failed mid-answer: the client sees it cut short.
                    tracing::debug!("an answer's body failed: {e}");
                    self.flush().await?;
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers are not passed on
                    };
                    if data.is_empty() {
                        continue;
                    }
                    if chunked {
                        let mut hex = [0u8; 16];
                        self.write.extend_from_slice(hex_len(&mut hex, data.len()));
                        self.write.extend_from_slice(b"\r\n");
                        self.write.extend_from_slice(&data);
                        self.write.extend_from_slice(b"\r\n");
                    } else {
                        self.write.extend_from_slice(&data);
                    }
                    if self.write.len() >= WRITE_AT {
                        self.flush().await?;
                    }
                }
            }
            if body.is_end_stream() {
                break;
            }
        }
        if chunked {
            self.write.extend_from_slice(b"0\r\n\r\n");
        }
        self.flush().await
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.write.is_empty() {
            self.tcp.write_all(&self.write).await?;
            self.write.clear();
        }
        if self.write.capacity() > WRITE_AT * 2 {
            self.write = Vec::with_capacity(4 * 1024);
        }
        Ok(())
    }
}

/// `n` in lowercase hexadecimal, as a chunk's size line wants it.
fn hex_len(buf: &mut [u8; 16], mut n: usize) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[n % 16];
        n /= 16;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// The status line, the answer's headers (its own framing fields replaced by the ones
/// this write uses), and the blank line.
fn write_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    exact: Option<u64>,
    no_body: bool,
    chunked: bool,
    connection: Option<&str>,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        let framing = *name == header::TRANSFER_ENCODING
            || *name == header::CONNECTION
            || name.as_str() == "keep-alive";
        if framing {
            continue;
        }
        if *name == header::CONTENT_LENGTH {
            // A HEAD answer's length describes the body it does not carry.
            if !no_body {
                continue;
            }
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !no_body {
        if let Some(n) = exact {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        } else if chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        }
    }
    if let Some(connection) = connection {
        out.extend_from_slice(b"connection: ");
        out.extend_from_slice(connection.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a request head from the start of `read`: `None` while it is incomplete (`read`
/// untouched), else the head with its bytes taken from `read`, header values sharing them.
fn parse_head(
    read: &mut BytesMut,
    kept: &mut Vec<(HeaderName, std::ops::Range<usize>)>,
) -> Result<Option<Head>, Refused> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let used = match parsed.parse_with_uninit_headers(read, &mut slots) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refused::HeadTooLarge),
        Err(e) => {
            return Err(Refused::Bad(format!(
                "the request is not valid HTTP/1.1 ({e})"
            )));
        }
    };
    let method = Method::from_bytes(parsed.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refused::Bad("the request method is not valid".into()))?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let start = read.as_ptr() as usize;
    let target = parsed.path.unwrap_or_default();
    let target_at =
        target.as_ptr() as usize - start..target.as_ptr() as usize - start + target.len();
    kept.clear();
    let mut fields = FramingFields::new(version == Version::HTTP_10);
    let mut expect_continue = false;
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| Refused::Bad(format!("the header name '{}' is not valid", field.name)))?;
        fields
            .read(&name, field.value)
            .map_err(|why| Refused::Bad(why.into()))?;
        if name == header::EXPECT {
            expect_continue = field.value.eq_ignore_ascii_case(b"100-continue");
        }
        let at = field.value.as_ptr() as usize - start;
        kept.push((name, at..at + field.value.len()));
    }
    let close = fields.close || (version == Version::HTTP_10 && !fields.keep_alive);
    let framing = match (fields.chunked, fields.length) {
        (Some(true), None) => Framing::Chunked,
        (Some(true), Some(_)) => {
            return Err(Refused::Bad(
                "both Transfer-Encoding and Content-Length: send one".into(),
            ));
        }
        (Some(false), _) => {
            return Err(Refused::Bad(
                "a Transfer-Encoding that does not end in chunked".into(),
            ));
        }
        (None, length) => Framing::Length(length.unwrap_or(0)),
    };
    let bytes = read.split_to(used).freeze();
    let uri = Uri::from_maybe_shared(bytes.slice(target_at))
        .map_err(|_| Refused::Bad("the request target is not a valid URI".into()))?;
    let mut headers = HeaderMap::with_capacity(kept.len());
    for (name, at) in kept.drain(..) {
        let value = HeaderValue::from_maybe_shared(bytes.slice(at))
            .map_err(|_| Refused::Bad(format!("the value of '{name}' is not valid")))?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    let (parts, ()) = request.into_parts();
    Ok(Some(Head {
        parts,
        framing,
        keep_alive: !close,
        expect_continue,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn head(wire: &str) -> Result<Option<Head>, Refused> {
        parse_head(&mut BytesMut::from(wire), &mut Vec::new())
    }

    fn refused(wire: &str) -> String {
        match head(wire) {
            Err(Refused::Bad(why)) => why,
            Err(Refused::HeadTooLarge) => "too large".into(),
            Err(Refused::Slow) => "slow".into(),
            Ok(_) => panic!("accepted: {wire:?}"),
        }
    }

    #[test]
    fn a_request_head_becomes_the_handlers_parts() {
        let h = head("POST /s/abc/mcp?x=1 HTTP/1.1\r\nHost: 127.0.0.1:7878\r\nContent-Length: 12\r\nMcp-Method: tools/list\r\n\r\n{}")
            .ok()
            .flatten()
            .unwrap();
        assert_eq!(h.parts.method, Method::POST);
        assert_eq!(h.parts.uri.path(), "/s/abc/mcp");
        assert_eq!(h.parts.uri.query(), Some("x=1"));
        assert_eq!(h.parts.headers["host"], "127.0.0.1:7878");
        assert_eq!(h.parts.headers["mcp-method"], "tools/list");
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(12), true));
        let h = head("GET / HTTP/1.0\r\n\r\n").ok().flatten().unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 closes unless asked not to");
        let h =
            head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
                .ok()
                .flatten()
                .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.expect_continue);
        assert!(
            head("POST / HTTP/1.1\r\nHost: a\r\n")
                .ok()
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn ambiguous_framing_is_refused_with_the_reason() {
        assert!(
            refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
                .contains("two different")
        );
        assert!(
            refused("POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .contains("both")
        );
        assert!(
            refused("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")
                .contains("does not end in chunked")
        );
        assert!(refused("POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\n").contains("not a number"));
        assert!(refused("P@ST / HTTP/1.1\r\n\r\n").contains("not valid"));
    }

    #[test]
    fn chunk_sizes_are_hexadecimal() {
        let mut buf = [0u8; 16];
        assert_eq!(hex_len(&mut buf, 0), b"0");
        assert_eq!(hex_len(&mut buf, 255), b"ff");
        assert_eq!(hex_len(&mut buf, 4096), b"1000");
    }

    #[test]
    fn the_answer_head_states_the_framing_this_write_uses() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        let mut out = Vec::new();
        write_head(&mut out, StatusCode::OK, &headers, None, false, true, None);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let mut out = Vec::new();
        write_head(
            &mut out,
            StatusCode::OK,
            &headers,
            Some(2),
            false,
            false,
            Some("close"),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 2\r\nconnection: close\r\n\r\n"
        );
    }
}
