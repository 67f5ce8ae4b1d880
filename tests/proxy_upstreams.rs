//! How `tether serve` talks to upstreams it does not control: an HTTPS upstream that
//! speaks HTTP/2 (as most remote MCP servers do), trusted through the platform's
//! certificate store, and an HTTP/1.1 upstream that closes every connection after one
//! answer. Both are written here over real sockets; tether is the real binary.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{Home, Serve, secret_for};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOOLS: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#;

/// What the HTTPS upstream saw of each request.
#[derive(Debug, Clone)]
struct Seen {
    version: Version,
    authority: Option<String>,
    authorization: Option<String>,
}

#[derive(Default)]
struct Upstream {
    connections: AtomicUsize,
    requests: Mutex<Vec<Seen>>,
}

/// A certificate for `localhost`, and its PEM (the test's own certificate store).
fn certificate() -> (
    tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    String,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let pem = cert.pem();
    let der = cert.der().clone();
    let key =
        tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    (der, key, pem)
}

/// An HTTPS MCP-like upstream offering HTTP/2 and HTTP/1.1 by ALPN: `tools/list` gets
/// JSON, `tools/call` a three-event SSE stream.
async fn https_upstream(
    cert: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
) -> (u16, Arc<Upstream>) {
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = Arc::new(Upstream::default());
    let seen = state.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                seen.connections.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(move |req| answer(seen.clone(), req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, state)
}

async fn answer(
    seen: Arc<Upstream>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| header("host"));
    seen.requests.lock().unwrap().push(Seen {
        version: req.version(),
        authority,
        authorization: header("authorization"),
    });
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let streamed = body.windows(12).any(|w| w == b"\"tools/call\"");
    let response = if streamed {
        let events: String = (1..=3)
            .map(|i| format!("id: {i}\nevent: message\ndata: {{\"n\":{i}}}\n\n"))
            .collect();
        Response::builder()
            .header("content-type", "text/event-stream")
            .body(Full::new(Bytes::from(events)))
    } else {
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(TOOLS.as_bytes())))
    };
    Ok(response.unwrap())
}

async fn call(url: &str, method: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method}))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_reached_over_http2_with_one_connection() {
    let (cert, key, pem) = certificate();
    let (port, upstream) = https_upstream(cert, key).await;
    let home = Home::new();
    let store = home.path().join("trusted.pem");
    std::fs::write(&store, pem).unwrap();
    let url = format!("https://localhost:{port}/mcp");
    let added = home
        .cmd()
        .args(["add", "remote", &url, "--api-key-env", "REMOTE_KEY"])
        .env("REMOTE_KEY", "remote-api-key-0123456789")
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let secret = secret_for(&home, "remote", "test");
    // The platform's store, as every TLS client on Linux reads it, holds this
    // certificate alone.
    let serve = Serve::start_env(&home, &[("SSL_CERT_FILE", store.to_str().unwrap())]);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);

    let (status, body) = call(&endpoint, "tools/list").await;
    assert_eq!((status, body.as_str()), (200, TOOLS));
    let calls: Vec<_> = (0..19).map(|_| call(&endpoint, "tools/list")).collect();
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, body.as_str()), (200, TOOLS));
    }
    let (status, stream) = call(&endpoint, "tools/call").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect();
    assert_eq!(ids, ["1", "2", "3"], "{stream}");

    let seen = upstream.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), 21, "one upstream request per call");
    for s in &seen {
        assert_eq!(s.version, Version::HTTP_2, "{s:?}");
        assert_eq!(s.authority.as_deref(), Some(&*format!("localhost:{port}")));
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer remote-api-key-0123456789")
        );
    }
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "HTTP/2 carries every call on one connection"
    );
    let log = serve.stop();
    assert!(!log.contains("remote-api-key-0123456789"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_named_not_bypassed() {
    let (cert, key, _) = certificate();
    let (port, upstream) = https_upstream(cert, key).await;
    let home = Home::new();
    let url = format!("https://localhost:{port}/mcp");
    home.run(&["add", "remote", &url, "--no-auth"]).ok();
    let secret = secret_for(&home, "remote", "test");
    // The system's usual store, which does not hold the test's certificate.
    let serve = Serve::start(&home);
    let (status, body) = call(&format!("{}/s/{secret}/mcp", serve.base), "tools/list").await;
    assert_eq!(status, 200, "a JSON-RPC error, not an HTTP failure: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        message.to_lowercase().contains("certificate"),
        "names the certificate problem: {message}"
    );
    assert!(upstream.requests.lock().unwrap().is_empty());
}

/// An HTTP/1.1 upstream that answers one request per connection, then closes it
/// without saying so (no `Connection: close`), as servers with short keep-alive do.
async fn closing_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = tcp.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    read.extend_from_slice(&buf[..n]);
                    if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&read[..end]).to_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        if read.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{TOOLS}",
                    TOOLS.len()
                );
                let _ = tcp.write_all(answer.as_bytes()).await;
            });
        }
    });
    (port, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_closing_each_connection_costs_no_call() {
    let (port, requests) = closing_upstream().await;
    let home = Home::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    home.run(&["add", "short", &url, "--no-auth"]).ok();
    let secret = secret_for(&home, "short", "test");
    let serve = Serve::start(&home);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    for i in 0..30 {
        let (status, body) = call(&endpoint, "tools/list").await;
        assert_eq!((status, body.as_str()), (200, TOOLS), "call {i}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 30, "never sent twice");
    serve.stop();
}
