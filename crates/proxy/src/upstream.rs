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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri, header};
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tower_service::Service;

use super::h1;
use tether_core::config::ProxyConfig;
use tether_core::oauth::refresh::CredentialHeader;

mod idle;
mod payload;
mod pool;
mod target;

pub use idle::IdleTimeout;
pub use payload::Payload;
use pool::{Idle, Pool, Return, Sender};
use target::Origin;
pub use target::Target;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const USER_AGENT: &str = concat!("tether/", env!("CARGO_PKG_VERSION"));

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
