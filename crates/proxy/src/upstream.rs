//! The one shared client toward upstream MCP servers, on the proxy's hot path: HTTP/1.1
//! connections of tether's own (see `h1`) and hyper's HTTP/2 client connections, over
//! hyper-rustls's connector (rustls with the platform's certificate verifier, as the rest
//! of tether uses), kept alive in a small pool. Every client call becomes exactly one upstream request — no redirects followed,
//! no retries here (the one retry after a 401 is the forwarder's decision, and a kept-alive
//! connection the upstream closed while idle gets the request again on a new one, as
//! browsers do). An upstream that does not connect within `upstream_timeout_secs` is given
//! up on; so is one that sends no answer's head, or falls silent mid-body, for that long —
//! except on a `tools/call`: a tool may work for many minutes, the client has its own
//! timeout, and a client that goes away drops the call. An SSE stream that keeps sending
//! lasts as long as it likes.
//!
//! The pool is a `Vec` behind a mutex rather than hyper-util's general-purpose client:
//! a proxy has a handful of upstreams, and the general client's per-request clone, keyed
//! hash lookups and hand-offs cost more than the rest of a proxied call (see the proxy
//! bench).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http2;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::h1;
use tether_core::config::ProxyConfig;

mod idle;

pub use idle::IdleTimeout;
use tether_core::oauth::refresh::CredentialHeader;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USER_AGENT: &str = concat!("tether/", env!("CARGO_PKG_VERSION"));

/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An upstream answer's body: given up on after the idle timeout.
pub type UpstreamBody = IdleTimeout<Payload>;

/// Request headers passed upstream; everything else (cookies, the client's own
/// `Authorization`, hop-by-hop fields) stays here. `Host`, `User-Agent` and
/// `Content-Length` are tether's own.
pub fn passes_upstream(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "accept"
            | "content-type"
            | "mcp-session-id"
            | "mcp-protocol-version"
            | "last-event-id"
            | "mcp-method"
            | "mcp-name"
    ) || name.as_str().starts_with("mcp-param-")
}

/// Response headers passed back; an upstream `WWW-Authenticate` never is, so a client is
/// never sent into an OAuth dance of its own (the forwarder reads it, then drops it).
pub fn passes_downstream(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "content-type"
            | "date"
            | "content-length"
            | "mcp-session-id"
            | "mcp-protocol-version"
            | "cache-control"
            | "retry-after"
    )
}

/// One client call as it goes upstream.
pub struct Call<'a> {
    pub method: &'a Method,
    /// The client's headers; those [`passes_upstream`] refuses stay here.
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The connection's own credential.
    pub credential: Option<&'a CredentialHeader>,
    /// When the client's call arrived (the answer's timeout counts from it).
    pub at: Instant,
    /// How long the answer is waited for.
    pub patience: Patience,
}

/// How long an upstream's answer is waited for, by what the client is waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patience {
    /// Its beginning within `upstream_timeout_secs`, and no silence longer than that.
    Bounded,
    /// Its beginning within `upstream_timeout_secs`, then silence as long as the client
    /// waits: a stream of server messages is quiet between notifications.
    HeadOnly,
    /// As long as the client waits: a tool may work for many minutes.
    Unbounded,
}

/// An upstream answer.
pub type UpstreamResponse = Response<UpstreamBody>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A bounded call's answer did not begin in time; the upstream may be alive but slow.
    #[error("the server took longer than {0} s to answer")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("connection failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Upstream {
    connector: HttpsConnector<HttpConnector>,
    pool: Arc<Mutex<Pool>>,
    /// Upstream URLs already worked out, by URL.
    targets: Arc<Mutex<HashMap<String, Arc<Target>>>>,
    timeout: Duration,
}

/// At most this many upstream URLs are remembered (a connection's URL changes rarely;
/// past this the memory starts over).
const TARGETS_KEPT: usize = 256;

/// Where one upstream URL's requests go, worked out once: parsing a URL for every call
/// cost more than the rest of a request's head.
pub struct Target {
    origin: Origin,
    /// What an HTTP/2 request names: the whole URI.
    absolute: Uri,
    /// What an HTTP/1.1 request names: the path and query (the host goes in `Host`).
    path: String,
    host: HeaderValue,
}

impl Target {
    fn of(url: &str) -> Result<Self, UpstreamError> {
        let absolute: Uri = url
            .parse()
            .map_err(|e| UpstreamError::Failed(format!("the upstream URL is not usable: {e}")))?;
        let origin = origin(&absolute)?;
        let host = HeaderValue::from_str(&host(&origin))
            .map_err(|_| UpstreamError::Failed("the upstream host is not usable".into()))?;
        let path = absolute
            .path_and_query()
            .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
        Ok(Self {
            origin,
            absolute,
            path,
            host,
        })
    }
}

/// Where a connection goes.
#[derive(Clone, PartialEq, Eq)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
}

/// Kept-alive connections, and when next to forget the closed and the long idle.
#[derive(Default)]
struct Pool {
    idle: Vec<Idle>,
    next_prune: Option<Instant>,
}

/// Closed connections are never handed a request (they are not ready), so they are
/// forgotten in a sweep this often rather than looked for on every call.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// …or as soon as this many connections are kept.
const PRUNE_PAST: usize = 64;

/// A kept-alive connection: an idle HTTP/1.1 one, or a shared HTTP/2 one.
struct Idle {
    origin: Origin,
    sender: Sender,
    since: Instant,
}

enum Sender {
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
    pool: Arc<Mutex<Pool>>,
    origin: Origin,
    since: Instant,
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

/// An upstream answer's body, as either kind of connection delivers it.
pub enum Payload {
    Http1(h1::Body<Return>),
    Http2(Incoming),
}

impl Body for Payload {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            Payload::Http1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Payload::Http2(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Payload::Http1(body) => body.is_end_stream(),
            Payload::Http2(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Payload::Http1(body) => body.size_hint(),
            Payload::Http2(body) => body.size_hint(),
        }
    }
}

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(tether_core::http::CONNECT_TIMEOUT));
        let connector = HttpsConnectorBuilder::new()
            .try_with_platform_verifier()
            .expect("the TLS backend (platform certificate verifier) could not be initialised")
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        Self {
            connector,
            pool: Arc::default(),
            targets: Arc::default(),
            timeout: Duration::from_secs(config.upstream_timeout_secs.max(1)),
        }
    }

    /// Where requests for `url` go.
    pub fn target(&self, url: &url::Url) -> Result<Arc<Target>, UpstreamError> {
        let mut targets = self
            .targets
            .lock()
            .map_err(|_| UpstreamError::Failed("the upstream table is unusable".into()))?;
        if let Some(target) = targets.get(url.as_str()) {
            return Ok(target.clone());
        }
        let target = Arc::new(Target::of(url.as_str())?);
        if targets.len() >= TARGETS_KEPT {
            targets.clear();
        }
        targets.insert(url.to_string(), target.clone());
        Ok(target)
    }

    /// Sends one call to `target`, waiting for its answer as `call.patience` says.
    pub async fn send(
        &self,
        target: &Target,
        call: &Call<'_>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        if call.patience == Patience::Unbounded {
            let answer = self.exchange(target, call).await?;
            return Ok(answer.map(|body| IdleTimeout::new(body, None)));
        }
        let deadline = tokio::time::Instant::from_std(call.at) + self.timeout;
        let answer = tokio::time::timeout_at(deadline, self.exchange(target, call))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout.as_secs()))??;
        let silence = (call.patience == Patience::Bounded).then_some(self.timeout);
        Ok(answer.map(|body| IdleTimeout::new(body, silence)))
    }

    async fn exchange(
        &self,
        target: &Target,
        call: &Call<'_>,
    ) -> Result<Response<Payload>, UpstreamError> {
        let origin = &target.origin;
        let now = call.at;
        loop {
            let (sender, reused) = match self.take(origin, now) {
                Some(sender) => (sender, true),
                None => (self.connect_within(origin).await?, false),
            };
            let conn = match sender {
                Sender::Http1(conn) => conn,
                Sender::Http2(mut shared) => {
                    let answer = shared
                        .send_request(http2_request(target, call))
                        .await
                        .map_err(|e| UpstreamError::Failed(chain(&e)))?;
                    return Ok(answer.map(Payload::Http2));
                }
            };
            let request = h1::Outgoing {
                method: call.method,
                path: &target.path,
                host: &target.host,
                user_agent: USER_AGENT,
                headers: call.headers,
                passes: passes_upstream,
                credential: call.credential,
                body: call.body,
            };
            let home = Return {
                pool: self.pool.clone(),
                origin: origin.clone(),
                since: now,
            };
            match conn.exchange(&request, passes_downstream, home).await {
                Ok(answer) => return Ok(answer.map(Payload::Http1)),
                // The upstream closed this kept-alive connection while it sat idle (as
                // servers do after their keep-alive timeout) before any of the request
                // reached it: once more on another connection.
                Err(h1::H1Error::ClosedBeforeAnswer) if reused => continue,
                Err(e) => return Err(UpstreamError::Failed(e.to_string())),
            }
        }
    }

    /// A kept-alive connection to `origin` ready for a request; now and then, the ones
    /// that closed or sat idle too long are forgotten.
    fn take(&self, origin: &Origin, now: Instant) -> Option<Sender> {
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

    /// A new connection, given up on after the timeout whatever the call.
    async fn connect_within(&self, origin: &Origin) -> Result<Sender, UpstreamError> {
        tokio::time::timeout(self.timeout, self.connect(origin))
            .await
            .map_err(|_| {
                UpstreamError::Connect(format!("no connection within {} s", self.timeout.as_secs()))
            })?
    }

    /// A new connection. Boxed: the TLS handshake's state is large, and every call
    /// that reuses a connection would otherwise carry it.
    fn connect<'a>(
        &'a self,
        origin: &'a Origin,
    ) -> futures_util::future::BoxFuture<'a, Result<Sender, UpstreamError>> {
        Box::pin(self.open(origin))
    }

    async fn open(&self, origin: &Origin) -> Result<Sender, UpstreamError> {
        let uri = Uri::builder()
            .scheme(origin.scheme.clone())
            .authority(origin.authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| UpstreamError::Connect(e.to_string()))?;
        let io = self
            .connector
            .clone()
            .call(uri)
            .await
            .map_err(|e| UpstreamError::Connect(chain(&*e)))?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| UpstreamError::Connect(chain(&e)))?;
            tokio::spawn(connection);
            if let Ok(mut pool) = self.pool.lock() {
                pool.idle.push(Idle {
                    origin: origin.clone(),
                    sender: Sender::Http2(sender.clone()),
                    since: Instant::now(),
                });
            }
            Ok(Sender::Http2(sender))
        } else {
            Ok(Sender::Http1(h1::Conn::new(h1::Stream::new(io))))
        }
    }
}

/// An HTTP/2 request for `call`: the headers that pass, tether's `Host` and
/// `User-Agent`, and the credential.
fn http2_request(target: &Target, call: &Call<'_>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(call.body.clone()));
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = target.absolute.clone();
    let headers = request.headers_mut();
    for (name, value) in call.headers {
        if passes_upstream(name) {
            headers.append(name.clone(), value.clone());
        }
    }
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers.insert(header::HOST, target.host.clone());
    if let Some((name, value)) = call.credential {
        headers.insert(name.clone(), value.clone());
    }
    request
}

fn origin(uri: &Uri) -> Result<Origin, UpstreamError> {
    match (uri.scheme(), uri.authority()) {
        (Some(scheme), Some(authority)) => Ok(Origin {
            scheme: scheme.clone(),
            authority: authority.clone(),
        }),
        _ => Err(UpstreamError::Failed(format!(
            "the upstream URL '{uri}' has no scheme or host"
        ))),
    }
}

/// The `Host` header for `origin`: the host, and the port where it is not the scheme's
/// default.
fn host(origin: &Origin) -> String {
    let default = if origin.scheme == Scheme::HTTPS {
        443
    } else {
        80
    };
    match origin.authority.port_u16() {
        Some(port) if port != default => format!("{}:{port}", origin.authority.host()),
        _ => origin.authority.host().to_string(),
    }
}

/// The error and its causes, most general first, each said once.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    parts.join(": ")
}
