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
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, header};
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Frame, SizeHint};
use hyper_rustls::MaybeHttpsStream;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::framing::{Chunks, FramingError, FramingFields, READ_AHEAD, Step, fill};

/// An answer's head may not be larger than this.
const MAX_HEAD: usize = 64 * 1024;

/// …nor carry more header fields than this.
const MAX_HEADERS: usize = 100;

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

/// The byte stream of an upstream connection: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TokioIo<MaybeHttpsStream<TokioIo<TcpStream>>>>),
}

impl Stream {
    pub fn new(io: MaybeHttpsStream<TokioIo<TcpStream>>) -> Self {
        match io {
            MaybeHttpsStream::Http(tcp) => Stream::Plain(tcp.into_inner()),
            tls => Stream::Tls(Box::new(TokioIo::new(tls))),
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(io) => match io.inner() {
                MaybeHttpsStream::Http(tcp) => tcp.inner(),
                MaybeHttpsStream::Https(tls) => tls.inner().get_ref().0.inner().inner(),
            },
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(io) => Pin::new(io.as_mut()).poll_shutdown(cx),
        }
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

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// An answer's head, and whether the connection may carry another request after it.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
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

/// The request line, the headers that pass, `Host`, `User-Agent`, the credential and the
/// body's length, then the body.
fn write_request(out: &mut Vec<u8>, request: &Outgoing<'_>) {
    let line = |out: &mut Vec<u8>, name: &[u8], value: &[u8]| {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    };
    out.reserve(512 + request.body.len());
    out.extend_from_slice(request.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    line(out, b"host", request.host.as_bytes());
    line(out, b"user-agent", request.user_agent.as_bytes());
    for (name, value) in request.headers {
        if (request.passes)(name)
            && name != header::HOST
            && name != header::USER_AGENT
            && name != header::CONTENT_LENGTH
        {
            line(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some((name, value)) = request.credential {
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let carries_body = !request.body.is_empty()
        || matches!(*request.method, Method::POST | Method::PUT | Method::PATCH);
    if carries_body {
        line(
            out,
            b"content-length",
            itoa::Buffer::new().format(request.body.len()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body);
}

/// A header field kept from an answer's head: its name, and where its value lies in the
/// head's bytes.
type Kept = (HeaderName, std::ops::Range<usize>);

/// Parses an answer's head from the start of `read`: `None` while it is incomplete (`read`
/// untouched), else the head — `None` for an interim (1xx) answer, which is skipped — with
/// its bytes taken from `read`. The values of the headers kept share the head's bytes
/// (no copy); `kept` is scratch room, reused from call to call.
fn parse_head(
    read: &mut BytesMut,
    head_request: bool,
    keep: fn(&HeaderName) -> bool,
    kept: &mut Vec<Kept>,
) -> Result<Option<Option<Head>>, H1Error> {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let used = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        read,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(H1Error::Invalid(format!(
                "more than {MAX_HEADERS} header fields"
            )));
        }
        Err(e) => return Err(H1Error::Invalid(e.to_string())),
    };
    let code = parsed.code.unwrap_or_default();
    let status =
        StatusCode::from_u16(code).map_err(|_| H1Error::Invalid(format!("status {code}")))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(H1Error::Invalid(
            "it switches protocols, which an MCP request never asks for".into(),
        ));
    }
    if status.is_informational() {
        read.advance(used);
        return Ok(Some(None));
    }
    let start = read.as_ptr() as usize;
    kept.clear();
    let mut fields = FramingFields::new(parsed.version == Some(0));
    for field in parsed.headers.iter() {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| H1Error::Invalid(format!("header name '{}'", field.name)))?;
        fields
            .read(&name, field.value)
            .map_err(|why| H1Error::Invalid(why.into()))?;
        // A challenge is kept for the forwarder to read where it means something (it is
        // never passed on).
        let challenge = name == header::WWW_AUTHENTICATE
            && matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        if keep(&name) || challenge {
            let at = field.value.as_ptr() as usize - start;
            kept.push((name, at..at + field.value.len()));
        }
    }
    let no_body =
        head_request || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let close = fields.close || parsed.version != Some(1) && !fields.keep_alive;
    let framing = match (no_body, fields.chunked, fields.length) {
        (true, _, _) => Framing::Empty,
        (false, Some(true), _) => Framing::Chunked,
        (false, Some(false), _) => Framing::UntilClose,
        (false, None, Some(length)) => Framing::Length(length),
        (false, None, None) => Framing::UntilClose,
    };
    let bytes = read.split_to(used).freeze();
    let mut headers = HeaderMap::with_capacity(kept.len());
    for (name, at) in kept.drain(..) {
        // Framed by the transfer coding or the connection's end, a length is not the
        // body's (hyper states the right one, or chunks).
        if name == header::CONTENT_LENGTH
            && matches!(framing, Framing::Chunked | Framing::UntilClose)
        {
            continue;
        }
        let value = HeaderValue::from_maybe_shared(bytes.slice(at))
            .map_err(|_| H1Error::Invalid(format!("the value of '{name}'")))?;
        headers.append(name, value);
    }
    Ok(Some(Some(Head {
        status,
        headers,
        framing,
        keep_alive: !close && framing != Framing::UntilClose,
    })))
}

/// Where a connection goes once its answer has been read whole.
pub trait Home {
    fn take_back(self, conn: Box<Conn>);
}

/// An answer's body as the upstream sends it.
pub struct Body<H: Home> {
    /// Held while the body is being read.
    conn: Option<Box<Conn>>,
    state: State,
    keep_alive: bool,
    home: Option<H>,
    /// The body when it arrived with the head (most JSON answers): passed on as it is.
    whole: Option<Bytes>,
}

enum State {
    Length(u64),
    Chunked(Chunks),
    UntilClose,
    Done,
}

impl<H: Home> Body<H> {
    fn new(mut conn: Box<Conn>, framing: Framing, keep_alive: bool, home: H) -> Self {
        let mut body = Self {
            conn: None,
            state: State::Done,
            keep_alive,
            home: Some(home),
            whole: None,
        };
        match framing {
            Framing::Empty | Framing::Length(0) => {}
            Framing::Length(n) if conn.read.len() as u64 >= n => {
                body.whole = Some(conn.read.split_to(n as usize).freeze());
            }
            Framing::Length(n) => body.state = State::Length(n),
            Framing::Chunked => body.state = State::Chunked(Chunks::Size),
            Framing::UntilClose => body.state = State::UntilClose,
        }
        match body.state {
            State::Done => body.finish(conn),
            _ => body.conn = Some(conn),
        }
        body
    }

    /// The body is read whole: the connection goes home if it can carry another request.
    fn finish(&mut self, conn: Box<Conn>) {
        self.state = State::Done;
        if self.keep_alive
            && conn.read.is_empty()
            && let Some(home) = self.home.take()
        {
            home.take_back(conn);
        }
    }

    fn next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, H1Error>>> {
        if let Some(whole) = self.whole.take() {
            return Poll::Ready(Some(Ok(whole)));
        }
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let read = &mut conn.read;
            let data = match &mut self.state {
                State::Done => None,
                State::Length(left) if !read.is_empty() => {
                    let n = (*left).min(read.len() as u64);
                    *left -= n;
                    Some(read.split_to(n as usize).freeze())
                }
                State::Chunked(chunks) => match chunks.next(read)? {
                    Step::Data(data) => Some(data),
                    Step::End => {
                        let conn = self.conn.take().expect("held while reading");
                        self.finish(conn);
                        return Poll::Ready(None);
                    }
                    Step::More => None,
                },
                State::UntilClose if !read.is_empty() => Some(read.split().freeze()),
                State::Length(_) | State::UntilClose => None,
            };
            if let Some(data) = data {
                if matches!(self.state, State::Length(0)) {
                    let conn = self.conn.take().expect("held while reading");
                    self.finish(conn);
                }
                return Poll::Ready(Some(Ok(data)));
            }
            match ready!(fill(&mut conn.stream, &mut conn.read, cx)) {
                Ok(0) if matches!(self.state, State::UntilClose) => {
                    self.state = State::Done;
                    self.conn = None;
                    return Poll::Ready(None);
                }
                Ok(0) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(H1Error::ClosedMidAnswer)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.conn = None;
                    return Poll::Ready(Some(Err(H1Error::Io(e))));
                }
            }
        }
    }
}

impl<H: Home + Unpin> hyper::body::Body for Body<H> {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = self.get_mut();
        let next = this.next(cx);
        if let Poll::Ready(Some(Err(_))) = &next {
            this.state = State::Done;
            this.conn = None;
        }
        next.map(|frame| frame.map(|data| data.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.whole.is_none() && matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.whole, &self.state) {
            (Some(whole), _) => SizeHint::with_exact(whole.len() as u64),
            (None, State::Done) => SizeHint::with_exact(0),
            (None, State::Length(left)) => SizeHint::with_exact(*left),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_all(_: &HeaderName) -> bool {
        true
    }

    /// The head parsed from `wire`, and how many bytes of `wire` it left.
    fn head(wire: &str, head_request: bool) -> Result<(Option<Option<Head>>, usize), H1Error> {
        let mut read = BytesMut::from(wire);
        let head = parse_head(&mut read, head_request, keep_all, &mut Vec::new())?;
        Ok((head, read.len()))
    }

    fn complete(wire: &str) -> Head {
        head(wire, false).unwrap().0.unwrap().unwrap()
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 12\r\nx-a: b\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Length(12), true));
        assert_eq!(h.headers["content-length"], "12");
        assert_eq!(h.headers["x-a"], "b");
        let h = complete(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
        assert!(h.headers.get(header::CONTENT_LENGTH).is_none());
        let h = complete("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = complete("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = complete("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::Empty, true));
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", true)
            .unwrap()
            .0
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = complete("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
        assert!(!h.keep_alive);
        let h = complete("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 1\r\n\r\n");
        assert!(h.keep_alive);
    }

    #[test]
    fn a_challenge_is_kept_only_where_it_means_something() {
        let parse = |wire: &str| {
            let keep_none: fn(&HeaderName) -> bool = |_| false;
            let mut read = BytesMut::from(wire);
            let head = parse_head(&mut read, false, keep_none, &mut Vec::new());
            head.unwrap().unwrap().unwrap().headers
        };
        let challenge =
            "www-authenticate: Bearer error=\"invalid_token\"\r\ncontent-length: 0\r\n\r\n";
        for status in ["401 Unauthorized", "403 Forbidden"] {
            let headers = parse(&format!("HTTP/1.1 {status}\r\n{challenge}"));
            assert_eq!(headers.len(), 1, "{status}: {headers:?}");
            assert!(headers.contains_key("www-authenticate"), "{status}");
        }
        assert!(parse(&format!("HTTP/1.1 200 OK\r\n{challenge}")).is_empty());
    }

    #[test]
    fn interim_answers_are_skipped_and_partial_heads_wait() {
        let wire = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n";
        let (interim, left) = head(wire, false).unwrap();
        assert!(interim.unwrap().is_none());
        assert_eq!(left, "HTTP/1.1 200 OK\r\n".len());
        let partial = "HTTP/1.1 200 OK\r\ncontent-le";
        let (none, left) = head(partial, false).unwrap();
        assert!(none.is_none());
        assert_eq!(left, partial.len(), "nothing taken from a partial head");
    }

    #[test]
    fn unusable_heads_are_refused_with_the_reason() {
        for (wire, reason) in [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                "two different",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "Content-Length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1, 1\r\n\r\n",
                "Content-Length",
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                "switches protocols",
            ),
            ("HTTP/1.1 2000 OK\r\n\r\n", "status"),
            ("HTTX/1.1 200 OK\r\n\r\n", "not valid"),
        ] {
            let error = match head(wire, false) {
                Err(e) => e.to_string(),
                Ok(_) => panic!("accepted: {wire:?}"),
            };
            assert!(error.contains(reason), "{wire:?}: {error}");
        }
    }

    #[test]
    fn the_request_head_carries_only_what_passes_and_the_credential() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:7878"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer client-secret"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        let credential = (
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer upstream"),
        );
        let passes =
            |name: &HeaderName| matches!(name.as_str(), "host" | "accept" | "content-length");
        let mut out = Vec::new();
        write_request(
            &mut out,
            &Outgoing {
                method: &Method::POST,
                path: "/mcp?x=1",
                host: &HeaderValue::from_static("upstream.example"),
                user_agent: "tether/test",
                headers: &headers,
                passes,
                credential: Some(&credential),
                body: b"{}",
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /mcp?x=1 HTTP/1.1\r\nhost: upstream.example\r\nuser-agent: tether/test\r\naccept: application/json\r\nauthorization: Bearer upstream\r\ncontent-length: 2\r\n\r\n{}"
        );
    }
}
