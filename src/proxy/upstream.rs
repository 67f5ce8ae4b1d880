//! The one shared client toward upstream MCP servers, on the proxy's hot path: hyper's
//! pooled client (HTTP/1.1 and HTTP/2, keep-alive) over rustls with the platform's
//! certificate verifier, as the rest of tether uses. Every client call becomes exactly one
//! upstream request — no redirects followed, no retries here (the one retry after a 401
//! is the forwarder's decision). An upstream that connects slowly, sends no answer, or
//! falls silent mid-body for `upstream_timeout_secs` is given up on; an SSE stream that
//! keeps sending lasts as long as it likes.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderValue, Request, Response, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower_http::timeout::TimeoutBody;

use crate::config::ProxyConfig;

const USER_AGENT: &str = concat!("tether/", env!("CARGO_PKG_VERSION"));

/// An upstream answer whose body gives up after the idle timeout.
pub type UpstreamResponse = Response<TimeoutBody<Incoming>>;

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("timed out: no answer within {0} s")]
    Timeout(u64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("connection failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Upstream {
    pub fn new(config: &ProxyConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(crate::http::CONNECT_TIMEOUT));
        let https = HttpsConnectorBuilder::new()
            .try_with_platform_verifier()
            .expect("the TLS backend (platform certificate verifier) could not be initialised")
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Self {
            client,
            timeout: Duration::from_secs(config.upstream_timeout_secs.max(1)),
        }
    }

    /// Sends one request; its answer's head must arrive within the timeout.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<UpstreamResponse, UpstreamError> {
        request
            .headers_mut()
            .insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        let answer = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout(self.timeout.as_secs()))?
            .map_err(|e| describe(&e))?;
        Ok(answer.map(|body| TimeoutBody::new(self.timeout, body)))
    }
}

/// The error and its causes, most general first, each said once.
fn describe(e: &hyper_util::client::legacy::Error) -> UpstreamError {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.dedup();
    let text = if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    if e.is_connect() {
        UpstreamError::Connect(text)
    } else {
        UpstreamError::Failed(text)
    }
}
