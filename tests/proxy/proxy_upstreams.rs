//! How `tether serve` talks to upstreams it does not control: an HTTPS upstream that
//! speaks HTTP/2 (as most remote MCP servers do) or only HTTP/1.1, trusted through the
//! platform's certificate store; HTTP/1.1 upstreams that close connections after one
//! answer or after a short idle time; and every framing an HTTP/1.1 answer may take,
//! well-formed and not. All are written here over real sockets; tether is the real binary.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{Home, Serve, secret_for};

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

/// An HTTPS MCP-like upstream offering the protocols in `alpn`: `tools/list` gets JSON,
/// `tools/call` a three-event SSE stream.
async fn https_upstream(
    cert: tokio_rustls::rustls::pki_types::CertificateDer<'static>,
    key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> (u16, Arc<Upstream>) {
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
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

/// `tether serve` with the connection 'remote' to the HTTPS upstream on `port` (its API
/// key from the environment), the platform's certificate store — as every TLS client on
/// Linux reads it — holding `pem` alone; and the client endpoint.
fn serve_remote(home: &Home, port: u16, pem: &str) -> (Serve, String) {
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
    let secret = secret_for(home, "remote", "test");
    let serve = Serve::start_env(home, &[("SSL_CERT_FILE", store.to_str().unwrap())]);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    (serve, endpoint)
}

/// `tether serve` with the `--no-auth` connection `name` to the HTTP upstream on `port`,
/// and a client's endpoint.
fn serve_plain(port: u16, name: &str) -> (Home, Serve, String) {
    let home = Home::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    home.run(&["add", name, &url, "--no-auth"]).ok();
    let secret = secret_for(&home, name, "test");
    let serve = Serve::start(&home);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    (home, serve, endpoint)
}

/// The SSE event ids in `stream`.
fn event_ids(stream: &str) -> Vec<&str> {
    stream
        .lines()
        .filter_map(|l| l.strip_prefix("id: "))
        .collect()
}

/// The upstream saw `count` requests, each over `version`, for `localhost:port`, with
/// the connection's API key.
fn assert_seen(upstream: &Upstream, count: usize, version: Version, port: u16) {
    let seen = upstream.requests.lock().unwrap().clone();
    assert_eq!(seen.len(), count, "one upstream request per call");
    for s in &seen {
        assert_eq!(s.version, version, "{s:?}");
        assert_eq!(s.authority.as_deref(), Some(&*format!("localhost:{port}")));
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer remote-api-key-0123456789")
        );
    }
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
    let (port, upstream) = https_upstream(cert, key, &[b"h2", b"http/1.1"]).await;
    let home = Home::new();
    let (serve, endpoint) = serve_remote(&home, port, &pem);

    let (status, body) = call(&endpoint, "tools/list").await;
    assert_eq!((status, body.as_str()), (200, TOOLS));
    let calls: Vec<_> = (0..19).map(|_| call(&endpoint, "tools/list")).collect();
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, body.as_str()), (200, TOOLS));
    }
    let (status, stream) = call(&endpoint, "tools/call").await;
    assert_eq!(status, 200);
    assert_eq!(event_ids(&stream), ["1", "2", "3"], "{stream}");

    assert_seen(&upstream, 21, Version::HTTP_2, port);
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
    let (port, upstream) = https_upstream(cert, key, &[b"h2", b"http/1.1"]).await;
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
                if read_request(&mut tcp).await.is_none() {
                    return;
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
    let (_home, serve, endpoint) = serve_plain(port, "short");
    for i in 0..30 {
        let (status, body) = call(&endpoint, "tools/list").await;
        assert_eq!((status, body.as_str()), (200, TOOLS), "call {i}");
    }
    assert_eq!(requests.load(Ordering::SeqCst), 30, "never sent twice");
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_without_http2_keeps_one_http11_connection() {
    let (cert, key, pem) = certificate();
    let (port, upstream) = https_upstream(cert, key, &[b"http/1.1"]).await;
    let home = Home::new();
    let (serve, endpoint) = serve_remote(&home, port, &pem);

    for i in 0..10 {
        let (status, body) = call(&endpoint, "tools/list").await;
        assert_eq!((status, body.as_str()), (200, TOOLS), "call {i}");
        let (status, stream) = call(&endpoint, "tools/call").await;
        assert_eq!(status, 200);
        assert_eq!(event_ids(&stream), ["1", "2", "3"], "{stream}");
    }
    assert_seen(&upstream, 20, Version::HTTP_11, port);
    assert_eq!(
        upstream.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection carries calls made one after another"
    );
    let log = serve.stop();
    assert!(!log.contains("remote-api-key-0123456789"), "{log}");
}

/// Reads one request (head and `Content-Length` body) from `tcp`; `None` at its end.
async fn read_request(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut read = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Where the head ends, and the whole request's length, once the head is in.
    let mut whole: Option<usize> = None;
    loop {
        if whole.is_none()
            && let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n")
        {
            let head = String::from_utf8_lossy(&read[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            whole = Some(end + 4 + length);
        }
        if whole.is_some_and(|whole| read.len() >= whole) {
            return Some(String::from_utf8_lossy(&read).into_owned());
        }
        let n = tcp.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        read.extend_from_slice(&buf[..n]);
    }
}

/// An HTTP/1.1 upstream written byte by byte, answering by the JSON-RPC method: each
/// answer is framed another way RFC 9112 allows (or a way it does not). It counts the
/// requests it read.
async fn framing_upstream() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let counted = counted.clone();
            tokio::spawn(async move {
                while let Some(request) = read_request(&mut tcp).await {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let method = request
                        .split("\"method\":\"")
                        .nth(1)
                        .and_then(|m| m.split('"').next())
                        .unwrap_or_default()
                        .to_string();
                    let plain = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{TOOLS}",
                        TOOLS.len()
                    );
                    let (answer, then_close) = match method.as_str() {
                        "chunked" => (
                            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
                             1d;note=first\r\nid: 1\nevent: message\ndata: a\n\r\n\
                             1D\r\nid: 2\nevent: message\ndata: b\n\r\n\
                             0\r\nx-checksum: 1\r\n\r\n"
                                .to_string(),
                            false,
                        ),
                        "interim" => (format!("HTTP/1.1 100 Continue\r\n\r\n{plain}"), false),
                        "until-close" => (
                            format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{TOOLS}"),
                            true,
                        ),
                        "two-lengths" => (
                            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 7\r\n\r\nhello".to_string(),
                            true,
                        ),
                        "cut" => (
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"partial\"".to_string(),
                            true,
                        ),
                        "echo-length" => {
                            let body = request.len() - request.find("\r\n\r\n").unwrap() - 4;
                            let got = format!("{{\"got\":{body}}}");
                            (
                                format!(
                                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{got}",
                                    got.len()
                                ),
                                false,
                            )
                        }
                        "large" | "large-chunked" => {
                            // Written in 16 KiB pieces, each after a pause, so the
                            // proxy reads the body across many reads.
                            let blob = large_answer();
                            let chunked = method == "large-chunked";
                            let head = if chunked {
                                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_string()
                            } else {
                                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", blob.len())
                            };
                            let _ = tcp.write_all(head.as_bytes()).await;
                            for piece in blob.as_bytes().chunks(16 * 1024) {
                                if chunked {
                                    let size = format!("{:x}\r\n", piece.len());
                                    let _ = tcp.write_all(size.as_bytes()).await;
                                }
                                let _ = tcp.write_all(piece).await;
                                if chunked {
                                    let _ = tcp.write_all(b"\r\n").await;
                                }
                                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                            }
                            (if chunked { "0\r\n\r\n" } else { "" }.to_string(), false)
                        }
                        "idle-close" => {
                            // Answered, then closed 50 ms later without a word, as a
                            // server with a short keep-alive timeout does.
                            let _ = tcp.write_all(plain.as_bytes()).await;
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            return;
                        }
                        _ => (plain, false),
                    };
                    let _ = tcp.write_all(answer.as_bytes()).await;
                    if then_close {
                        return;
                    }
                }
            });
        }
    });
    (port, requests)
}

/// A 1 MiB JSON-RPC result whose bytes say where they are.
fn large_answer() -> String {
    let blob: String = (0..(1 << 20) / 8).map(|i| format!("{:08x}", i)).collect();
    format!(r#"{{"jsonrpc":"2.0","id":1,"result":{{"blob":"{blob}"}}}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_pass_whole_both_ways() {
    let (port, requests) = framing_upstream().await;
    let (_home, serve, endpoint) = serve_plain(port, "framed");

    let request = json!({"jsonrpc": "2.0", "id": 1, "method": "echo-length",
                         "params": {"blob": "z".repeat(3 << 20)}});
    let sent = serde_json::to_vec(&request).unwrap().len();
    let res = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&request).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), format!("{{\"got\":{sent}}}"));

    let expected = large_answer();
    for method in ["large", "large-chunked", "large"] {
        let (status, body) = call(&endpoint, method).await;
        assert_eq!(status, 200, "{method}");
        assert_eq!(body.len(), expected.len(), "{method}");
        assert!(body == expected, "{method}: the body arrived changed");
    }
    let (status, body) = call(&endpoint, "tools/list").await;
    assert_eq!((status, body.as_str()), (200, TOOLS));
    assert_eq!(
        requests.load(Ordering::SeqCst),
        5,
        "one upstream request per call"
    );
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http11_framing_reaches_the_client_whole() {
    let (port, requests) = framing_upstream().await;
    let (_home, serve, endpoint) = serve_plain(port, "framed");

    let (status, stream) = call(&endpoint, "chunked").await;
    assert_eq!(status, 200);
    assert_eq!(
        stream, "id: 1\nevent: message\ndata: a\nid: 2\nevent: message\ndata: b\n",
        "chunk extensions and trailers are framing, not data"
    );
    for method in ["interim", "until-close", "tools/list"] {
        let (status, body) = call(&endpoint, method).await;
        assert_eq!((status, body.as_str()), (200, TOOLS), "{method}");
    }
    // An idle connection the upstream closes is never handed a call, nor is a call
    // sent twice because of it.
    for i in 0..5 {
        let (status, body) = call(&endpoint, "idle-close").await;
        assert_eq!((status, body.as_str()), (200, TOOLS), "call {i}");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert_eq!(
        requests.load(Ordering::SeqCst),
        9,
        "one upstream request per call"
    );
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_upstream_answer_is_named_and_the_proxy_serves_on() {
    let (port, _) = framing_upstream().await;
    let (_home, serve, endpoint) = serve_plain(port, "framed");

    let (status, body) = call(&endpoint, "two-lengths").await;
    assert_eq!(status, 200, "a JSON-RPC error, not an HTTP failure: {body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("not valid HTTP/1.1") && message.contains("two different Content-Lengths"),
        "{message}"
    );
    assert_eq!(answer["error"]["data"]["diagnosis"], "upstream_unreachable");

    // A body cut short is never handed on as a complete-looking answer: the client's
    // request or its read fails.
    let cut = reqwest::Client::new()
        .post(&endpoint)
        .header("content-type", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "cut"}))
        .send()
        .await;
    if let Ok(cut) = cut {
        let read = cut.text().await;
        assert!(
            read.is_err(),
            "a truncated body reads as an error: {read:?}"
        );
    }

    let (status, body) = call(&endpoint, "tools/list").await;
    assert_eq!((status, body.as_str()), (200, TOOLS), "the proxy serves on");
    serve.stop();
}

/// An upstream that takes each request and then answers nothing (`silent`) or the head and
/// one event of an SSE stream (otherwise), and reports when the proxy closes its side.
async fn abandoned_upstream(silent: bool) -> (u16, tokio::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed, seen) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let closed = closed.clone();
            tokio::spawn(async move {
                if read_request(&mut tcp).await.is_none() {
                    return;
                }
                if !silent {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                    let event = "id: 1\nevent: message\ndata: {}\n\n";
                    let chunk = format!("{head}{:x}\r\n{event}\r\n", event.len());
                    let _ = tcp.write_all(chunk.as_bytes()).await;
                }
                // Nothing more is sent; the proxy closing its side ends the read.
                let mut buf = [0u8; 64];
                while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
                let _ = closed.send(()).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_drops_its_upstream_request() {
    for silent in [true, false] {
        let (port, mut closed) = abandoned_upstream(silent).await;
        let (_home, serve, endpoint) = serve_plain(port, "slow");
        let path = endpoint.trim_start_matches(&serve.base);
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        let mut client = tokio::net::TcpStream::connect(serve.base.trim_start_matches("http://"))
            .await
            .unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        if silent {
            // Waiting for an answer that does not come.
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        } else {
            // The stream's first event arrives; then the client leaves.
            let mut first = [0u8; 256];
            let n = client.read(&mut first).await.unwrap();
            assert!(String::from_utf8_lossy(&first[..n]).contains("200 OK"));
        }
        drop(client);
        let dropped = tokio::time::timeout(std::time::Duration::from_secs(20), closed.recv()).await;
        assert!(
            matches!(dropped, Ok(Some(()))),
            "the upstream request outlived its client (silent upstream: {silent})"
        );
        serve.stop();
    }
}
