//! The local proxy: one stable MCP endpoint per connection for every
//! local client. [`spawn`] serves it — for `tether serve`, the TUI and the stdio bridge —
//! with tether's own HTTP/1.1 server (`server`), or hyper's for a client that opens with
//! the HTTP/2 preface.
//!
//! Routes: `/s/<secret>/mcp` (the secret in the path, for clients that cannot send
//! headers), `/c/<name>/mcp` (the secret as `Authorization: Bearer`, or signed in to
//! tether itself: `authz`), answered directly; `/healthz`, `/metrics`, tether's own
//! authorization server and anything else by an axum router. Every request passes the
//! Host/Origin guard before anything else; pages from `[proxy] allowed_origins` get CORS on
//! the MCP endpoints (`cors`).

mod accept;
mod authz;
mod calls;
pub mod codes;
mod cors;
mod drain;
mod forward;
mod framing;
mod freshness;
mod guard;
mod h1;
mod limits;
mod linger;
mod mcp;
mod metrics;
mod server;
mod signin;
pub mod tls;
mod upstream;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper::body::{Frame, Incoming, SizeHint};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

use tether_core::config::ProxyConfig;
use tether_core::engine::Engine;
use tether_core::vault::Store;

/// What every handler shares.
pub struct Proxy {
    engine: Engine,
    /// The one shared client toward upstream MCP servers.
    upstream: upstream::Upstream,
    config: Arc<ProxyConfig>,
    /// Endpoints of connections awaiting a sign-in (see `signin`).
    signin: signin::SignIn,
    /// The port this proxy listens on, part of its proof of presence.
    port: u16,
    /// Where each call's record goes; `None` with `[calls] capture = "off"`.
    calls: Option<Arc<tether_core::calls::Recorder>>,
}

/// A proxy serving on a thread of its own (see [`spawn`]). Dropping it leaves the proxy
/// serving until the process ends; [`Serving::stop`] stops it.
pub struct Serving {
    stop: CancellationToken,
    finished: Option<oneshot::Receiver<std::io::Result<()>>>,
}

/// Serves the proxy's routes on `listener` from a thread of its own with a
/// single-threaded runtime. Each call is then handled start to finish on one thread:
/// a multi-threaded runtime's hand-offs between workers cost more than the forwarding
/// itself (the proxy bench measured 10,100 calls/s on one core against 17,000), and
/// nothing else the process does — drawing the TUI, refreshing tokens — runs between a
/// call's read and its answer.
pub fn spawn(
    engine: Engine,
    config: ProxyConfig,
    listener: tokio::net::TcpListener,
) -> std::io::Result<Serving> {
    spawn_watched(engine, config, listener, None)
}

/// Called about once a second from the proxy's own thread while it can still run tasks: a
/// service manager's watchdog is fed from here, so a wedged proxy stops feeding it and is
/// restarted.
pub type Alive = Arc<dyn Fn() + Send + Sync>;

/// [`spawn`], calling `alive` from the proxy's thread about once a second.
pub fn spawn_watched(
    engine: Engine,
    config: ProxyConfig,
    listener: tokio::net::TcpListener,
    alive: Option<Alive>,
) -> std::io::Result<Serving> {
    let listener = listener.into_std()?;
    let stop = CancellationToken::new();
    let (done, finished) = oneshot::channel();
    let stopping = stop.clone();
    std::thread::Builder::new()
        .name("tether-proxy".to_string())
        .spawn(move || {
            let served = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|runtime| {
                    runtime.block_on(accept::serve(engine, config, listener, stopping, alive))
                });
            let _ = done.send(served);
        })?;
    Ok(Serving {
        stop,
        finished: Some(finished),
    })
}

impl Serving {
    /// Resolves if the proxy stops by itself (it cannot accept any more).
    pub async fn finished(&mut self) -> std::io::Result<()> {
        match self.finished.as_mut() {
            Some(finished) => {
                let result = finished.await.unwrap_or(Ok(()));
                self.finished = None;
                result
            }
            None => std::future::pending().await,
        }
    }

    /// Stops accepting and lets open requests finish for up to `drain`; whether they all
    /// did.
    pub async fn stop(mut self, drain: std::time::Duration) -> bool {
        self.stop.cancel();
        tokio::time::timeout(drain, self.finished()).await.is_ok()
    }
}

/// What the proxy answers with.
pub type Answer = Response<Reply>;

/// An answer's body: the upstream's, streamed through as it arrives, or one tether
/// wrote itself.
pub enum Reply {
    Upstream(upstream::UpstreamBody),
    Own(Body),
    /// Either, counted for the call's record as it goes out (`calls`).
    Tallied(Box<calls::Tallied>),
}

impl hyper::body::Body for Reply {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            Reply::Upstream(body) => Pin::new(body).poll_frame(cx),
            Reply::Own(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Reply::Tallied(body) => Pin::new(body.as_mut()).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Upstream(body) => body.is_end_stream(),
            Reply::Own(body) => body.is_end_stream(),
            Reply::Tallied(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Upstream(body) => body.size_hint(),
            Reply::Own(body) => body.size_hint(),
            Reply::Tallied(body) => body.size_hint(),
        }
    }
}

/// The proxy over `engine`: every request passes the Host/Origin guard; the MCP
/// endpoints are answered directly, the rest (`/healthz`, `/metrics`, unknown paths) by
/// an axum router (on the hot path, a router's per-request boxing and cloning cost more
/// than the forwarding itself).
fn handler(engine: Engine, config: ProxyConfig, port: u16) -> Handler {
    let fresh = freshness::Freshness::new(&engine);
    let upstream = upstream::Upstream::new(&config);
    let proxy = Arc::new(Proxy {
        signin: signin::SignIn::new(&engine, &upstream, &config),
        calls: engine.call_recorder(),
        engine,
        upstream,
        config: Arc::new(config),
        port,
    });
    let rest = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text));
    let rest = authz::routes(rest, &proxy.config)
        .fallback(not_found)
        .with_state(proxy.clone());
    Handler { proxy, rest, fresh }
}

struct Handler {
    proxy: Arc<Proxy>,
    rest: Router,
    fresh: freshness::Freshness,
}

/// The two MCP endpoints.
enum Endpoint<'a> {
    /// `/s/<secret>/mcp`
    Secret(&'a str),
    /// `/c/<name>/mcp`
    Name(&'a str),
}

fn endpoint(path: &str) -> Option<Endpoint<'_>> {
    let segment = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("/mcp")
            .filter(|s| !s.is_empty() && !s.contains('/'))
    };
    segment("/s/")
        .map(Endpoint::Secret)
        .or_else(|| segment("/c/").map(Endpoint::Name))
}

/// What a request's head alone settles: who may send it, and where it goes. Decided
/// before its body is read, so a body from a client without a valid secret is never
/// buffered.
enum Admitted {
    /// An MCP call from client `client` of connection `connection` (positions in
    /// `store`, the one consistent view of the vault for the whole call).
    Call {
        store: Arc<Store>,
        connection: usize,
        client: usize,
    },
    /// A CORS preflight to an MCP endpoint from a page of a granted origin.
    Preflight,
    /// Anything else: `/healthz`, `/metrics`, unknown paths.
    Rest,
}

impl Handler {
    /// A request as hyper's server delivers it (HTTP/2 clients).
    async fn handle(&self, request: Request<Incoming>, ends: Option<authz::Ends>) -> Answer {
        let (mut parts, body) = request.into_parts();
        let admitted = match self.admit(&parts).await {
            Ok(admitted) => admitted,
            Err(refused) => return *refused,
        };
        if let (Admitted::Rest, Some(ends)) = (&admitted, ends) {
            parts.extensions.insert(ends);
        }
        match forward::read_body(body, self.proxy.config.max_body_bytes).await {
            Ok(body) => self.handle_read(admitted, parts, body).await,
            Err(forward::BodyError::TooLarge) => {
                forward::too_large(self.proxy.config.max_body_bytes)
            }
            Err(forward::BodyError::Unreadable(e)) => forward::unreadable(&e),
        }
    }

    /// Whether a request may be served, from its head alone: the Host/Origin guard first,
    /// then the client's secret against the vault as it is now (a client revoked a moment
    /// ago is refused); the refusal when not. A secret or connection not known is looked
    /// for once more if the vault changed meanwhile: `tether url` or `tether stdio` may
    /// have created it a moment ago.
    async fn admit(&self, parts: &Parts) -> Result<Admitted, Box<Answer>> {
        self.fresh.ensure(&self.proxy.engine).await;
        let first = self.admit_now(parts);
        let unknown = matches!(&first, Err(refused) if matches!(
            refused.status(),
            StatusCode::UNAUTHORIZED | StatusCode::NOT_FOUND
        ));
        if !unknown {
            return first;
        }
        // (The refusal is not kept across the wait: an answer's body is not `Sync`.)
        drop(first);
        self.proxy.engine.reload_if_changed().await;
        let second = self.admit_now(parts);
        if matches!(&second, Err(refused) if refused.status() == StatusCode::UNAUTHORIZED) {
            self.count_refusal(parts);
        }
        second
    }

    /// A refused endpoint secret, counted by the engine (a client that keeps sending one
    /// is told about once); a name in the path counts only when it is a connection's.
    fn count_refusal(&self, parts: &Parts) {
        let store = self.proxy.engine.store();
        let named = match endpoint(parts.uri.path()) {
            Some(Endpoint::Name(name)) => store.get(name).map(|c| c.name.as_str()),
            _ => None,
        };
        self.proxy.engine.record_refused_secret(named);
    }

    /// [`Handler::admit`] against the vault as the engine holds it; a refusal the page of
    /// a granted origin may read.
    fn admit_now(&self, parts: &Parts) -> Result<Admitted, Box<Answer>> {
        let mut admitted = self.decide(parts);
        if let Err(refused) = &mut admitted
            && parts.headers.contains_key(header::ORIGIN)
        {
            cors::from_page(&self.proxy.config, &parts.headers, refused);
        }
        admitted
    }

    fn decide(&self, parts: &Parts) -> Result<Admitted, Box<Answer>> {
        let proxy = &*self.proxy;
        if let Some(refused) = guard::refusal(&proxy.config, &parts.headers, &parts.uri) {
            return Err(Box::new(forward::own(refused)));
        }
        let Some(endpoint) = endpoint(parts.uri.path()) else {
            return Ok(Admitted::Rest);
        };
        if parts.method == Method::OPTIONS
            && cors::is_preflight(&parts.headers)
            && cors::granted(&proxy.config, &parts.headers).is_some()
        {
            return Ok(Admitted::Preflight);
        }
        let store = proxy.engine.store();
        let found = match endpoint {
            Endpoint::Secret(secret) => tether_core::access::find_secret(&store, secret).ok_or_else(|| {
                unauthorized(
                    "this endpoint's secret is not valid (revoked, or mistyped): run `tether url NAME --client LABEL` for a new one",
                )
            })?,
            Endpoint::Name(name) => {
                let presented = bearer(&parts.headers);
                store
                    .position(name)
                    .and_then(|c| {
                        let client = tether_core::access::client_of(&store.connections()[c], presented?)?;
                        Some((c, client))
                    })
                    .ok_or_else(|| {
                        let mut refused = name_refused(&store, name, presented);
                        authz::challenge_refused(&proxy.config, parts, name, presented, &mut refused);
                        refused
                    })?
            }
        };
        let (connection, client) = found;
        Ok(Admitted::Call {
            store,
            connection,
            client,
        })
    }

    /// An MCP call, its body read whole: forwarded, with CORS for a page. What the
    /// forwarding learned comes back for the call's record.
    async fn call(
        &self,
        who: calls::Who<'_>,
        parts: &Parts,
        body: &Bytes,
    ) -> (Answer, calls::Forwarded) {
        let connection = &who.store.connections()[who.connection];
        let label = connection.access[who.client].label.as_str();
        let (mut answer, forwarded) =
            forward::forward(&self.proxy, connection, label, parts, body).await;
        // CORS is the MCP endpoints', and only a page's (a request with `Origin`).
        if parts.headers.contains_key(header::ORIGIN) {
            cors::from_page(&self.proxy.config, &parts.headers, &mut answer);
        }
        (answer, forwarded)
    }

    /// An admitted request, its body read whole.
    async fn handle_read(&self, admitted: Admitted, parts: Parts, body: Bytes) -> Answer {
        match admitted {
            Admitted::Call {
                store,
                connection,
                client,
            } => {
                let who = calls::Who {
                    store: &store,
                    connection,
                    client,
                };
                let (answer, forwarded) = self.call(who, &parts, &body).await;
                match &self.proxy.calls {
                    Some(recorder) => calls::tally(recorder, answer, who, &parts, body, forwarded),
                    None => answer,
                }
            }
            Admitted::Preflight => cors::preflight(&self.proxy.config, &parts.headers),
            Admitted::Rest => {
                let mut rest = self.rest.clone();
                let request = Request::from_parts(parts, Body::from(body));
                match rest.call(request).await {
                    Ok(response) => response.map(Reply::Own),
                    Err(never) => match never {},
                }
            }
        }
    }
}

/// Liveness, and with `?challenge=…` the proof that this proxy holds the caller's vault
/// (see `presence`): callers send nothing else until they have checked it.
async fn healthz(
    State(proxy): State<Arc<Proxy>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    let store = proxy.engine.store();
    let mut body = serde_json::json!({
        "status": "ok",
        "service": "tether",
        "version": env!("CARGO_PKG_VERSION"),
        "connections": store.connections().len(),
    });
    if let Some(challenge) = query.get(tether_core::presence::CHALLENGE_PARAM)
        && challenge.len() <= tether_core::presence::MAX_CHALLENGE_LEN
    {
        let key = proxy.engine.vault().presence_key();
        body["proof"] = tether_core::presence::answer(key, challenge, proxy.port).into();
    }
    axum::Json(body).into_response()
}

async fn metrics_text(
    State(proxy): State<Arc<Proxy>>,
    headers: HeaderMap,
) -> axum::response::Response {
    let store = proxy.engine.store();
    let own = bearer(&headers).and_then(|s| tether_core::access::find_secret(&store, s));
    let scope = match own {
        _ if proxy.config.metrics_public => metrics::Scope::All,
        Some((connection, _)) => {
            metrics::Scope::Connection(store.connections()[connection].name.as_str())
        }
        None => metrics::Scope::Totals,
    };
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics::render(&proxy.engine.traffic(), &store, scope),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The refusal on `/c/<name>/mcp` without a secret valid for `name`. A caller holding no
/// valid secret at all is told the same whether `name` exists or not, so names cannot be
/// probed; one holding another connection's secret is told precisely.
fn name_refused(store: &Store, name: &str, presented: Option<&str>) -> Box<Answer> {
    let holder = presented.is_some_and(|s| tether_core::access::find_secret(store, s).is_some());
    if holder && store.position(name).is_none() {
        return Box::new(forward::no_connection(name));
    }
    let name = tether_core::printable::printable(name, 80);
    if holder {
        return unauthorized(&format!(
            "this secret is another connection's: send one of '{name}' (run `tether url {name} --client LABEL`)"
        ));
    }
    unauthorized(&format!(
        "send this client's tether secret as 'Authorization: Bearer <secret>': run `tether url {name} --client LABEL`"
    ))
}

/// A local client without a valid secret. On `/c/<name>/mcp` the caller adds the
/// challenge that starts a sign-in to tether (`challenge`); `/s/<secret>/mcp` has none: its
/// secret is the address itself.
fn unauthorized(message: &str) -> Box<Answer> {
    Box::new(forward::own((
        StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "downstream_unauthorized",
            "message": format!("tether: {message}"),
        })),
    )))
}

async fn not_found() -> axum::response::Response {
    (
        StatusCode::NOT_FOUND,
        "tether: unknown path; MCP endpoints are /s/<secret>/mcp and /c/<name>/mcp",
    )
        .into_response()
}
