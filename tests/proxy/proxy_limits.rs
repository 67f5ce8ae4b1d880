//! The proxy's limits and edges as a client meets them through `tether serve` over loopback:
//! Host headers that are duplicated or malformed, a revoked client cut off at its very next
//! request, idle connections closed and a cap on open ones, a public bind refused without
//! public names, `/metrics` and `/c/<name>/mcp` that give away no connection name to a
//! caller without a secret, an oversized body answered 413 (never a reset), and a slow tool
//! waited for while a slow non-tool call is named for what it is.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tether_sim::Profile;

use crate::support::{Home, Serve, http, list_tools, secret_for, signed_in_here};

fn config(home: &Home, proxy: &str) {
    std::fs::write(home.path().join("config.toml"), format!("[proxy]\n{proxy}")).unwrap();
}

/// A `tools/list` call on the 2026-07-28 wire.
fn listing(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&list_tools())
}

fn connect(base: &str) -> TcpStream {
    let tcp = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp
}

/// One answer read from `tcp`: its head and its `Content-Length` body; `Err` with what
/// was read when the connection ends or fails first.
fn read_answer(tcp: &mut TcpStream) -> Result<String, String> {
    let mut read = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&read[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if read.len() >= end + 4 + length {
                let whole = read.split_off(0);
                return Ok(String::from_utf8_lossy(&whole[..end + 4 + length]).into_owned());
            }
        }
        match tcp.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&read))),
            Ok(n) => read.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("{e} after {:?}", String::from_utf8_lossy(&read))),
        }
    }
}

/// A raw `POST` of `tools/list` to `path`, with `extra` header lines.
fn post(path: &str, extra: &str) -> String {
    let body = list_tools().to_string();
    format!(
        "POST {path} HTTP/1.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
}

fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f).join().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_malformed_hosts_are_refused() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let path = format!("/s/{secret}/mcp");
    let exchange = |extra: String| {
        let (base, path) = (base.clone(), path.clone());
        blocking(move || {
            let mut tcp = connect(&base);
            tcp.write_all(post(&path, &extra).as_bytes()).unwrap();
            read_answer(&mut tcp).unwrap_or_else(|e| e)
        })
    };
    // RFC 9112 §3.2: a request with more than one Host is a bad request, same or not.
    for hosts in [
        "Host: 127.0.0.1\r\nHost: 127.0.0.1\r\n",
        "Host: 127.0.0.1\r\nHost: evil.example\r\n",
    ] {
        let answer = exchange(hosts.to_string());
        assert!(answer.starts_with("HTTP/1.1 400"), "{hosts:?}: {answer}");
        assert!(answer.contains("one Host"), "{answer}");
    }
    // A bracketed host is `[v6]`, then `:port` or nothing.
    for (header, value) in [
        ("Host", "[::1]evil.com"),
        ("Host", "[::1]:7878evil"),
        ("Host", "[::1]@evil.com"),
    ] {
        let answer = exchange(format!("{header}: {value}\r\n"));
        assert!(answer.starts_with("HTTP/1.1 403"), "{value}: {answer}");
    }
    for origin in ["http://[::1]evil.com", "http://[::1]:80evil.com"] {
        let answer = exchange(format!("Host: 127.0.0.1\r\nOrigin: {origin}\r\n"));
        assert!(answer.starts_with("HTTP/1.1 403"), "{origin}: {answer}");
    }
    let answer = exchange("Host: [::1]:7878\r\nOrigin: http://[::1]:5173\r\n".into());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // HTTP/2 (hyper's server): two Host fields, or an :authority that is not allowed.
    let h2 = |authority: &'static str, hosts: &'static [&'static str]| {
        let (base, path) = (base.clone(), path.clone());
        async move {
            let tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
                .await
                .unwrap();
            let (mut sender, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(tcp),
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            let mut request = hyper::Request::post(format!("http://{authority}{path}"))
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/list")
                .body(http_body_util::Full::new(hyper::body::Bytes::from(
                    list_tools().to_string(),
                )))
                .unwrap();
            for host in hosts {
                request.headers_mut().append("host", host.parse().unwrap());
            }
            sender
                .send_request(request)
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(h2("127.0.0.1", &["127.0.0.1", "127.0.0.1"]).await, 400);
    assert_eq!(h2("evil.example", &["127.0.0.1"]).await, 403);
    assert_eq!(h2("127.0.0.1", &[]).await, 200);
    serve.stop();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_client_is_refused_at_its_very_next_request() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let labels = ["one", "two", "three", "four"];
    let secrets: Vec<String> = labels
        .iter()
        .map(|l| secret_for(&home, "generic", l))
        .collect();
    let serve = Serve::start(&home);
    // One kept-alive client connection for every call: no new connection to hide behind.
    let client = http();
    let call = |secret: &str| listing(&client, &format!("{}/s/{secret}/mcp", serve.base)).send();
    for (label, secret) in labels.iter().zip(&secrets) {
        assert_eq!(call(secret).await.unwrap().status(), 200);
        home.run(&["revoke", "generic", "--client", label]).ok();
        let res = call(secret).await.unwrap();
        assert_eq!(
            res.status(),
            401,
            "'{label}' still served right after revoke"
        );
    }
    serve.stop();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let home = Home::new();
    config(&home, "idle_timeout_secs = 1\n");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let ended = blocking(move || {
        let mut tcp = connect(&base);
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let answer = read_answer(&mut tcp).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        // Then nothing: the proxy closes the connection (the read's own bound is 15 s).
        let mut rest = [0u8; 64];
        let quiet = tcp.read(&mut rest).map_err(|e| e.to_string());
        // A connection that never sent a request is idle too.
        let mut fresh = connect(&base);
        let never = fresh.read(&mut rest).map_err(|e| e.to_string());
        (quiet, never)
    });
    assert_eq!(ended, (Ok(0), Ok(0)), "idle connections stay open");
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_told_so() {
    let home = Home::new();
    config(&home, "max_connections = 2\n");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let (answers, after) = blocking(move || {
        let healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        let mut held: Vec<TcpStream> = (0..2).map(|_| connect(&base)).collect();
        for tcp in &mut held {
            tcp.write_all(healthz).unwrap();
            assert!(read_answer(tcp).unwrap().starts_with("HTTP/1.1 200"));
        }
        let answers: Vec<String> = (0..3)
            .map(|_| {
                let mut over = connect(&base);
                let _ = over.write_all(healthz);
                read_answer(&mut over).unwrap_or_else(|e| e)
            })
            .collect();
        drop(held);
        // Once some close, new connections are served again.
        let mut after = String::new();
        for _ in 0..200 {
            let mut tcp = connect(&base);
            let _ = tcp.write_all(healthz);
            after = read_answer(&mut tcp).unwrap_or_else(|e| e);
            if after.starts_with("HTTP/1.1 200") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        (answers, after)
    });
    for answer in &answers {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("max_connections"), "{answer}");
    }
    assert!(after.starts_with("HTTP/1.1 200"), "{after}");
    let log = serve.stop();
    assert_eq!(
        log.matches("max_connections").count(),
        1,
        "one warning per burst: {log}"
    );
}

/// `tether serve --bind` on every interface, with `config` in its home: its exit status
/// (`None` if it started serving; it is then stopped), what it printed first on stdout, and
/// what it wrote to stderr.
fn serve_public(config_toml: Option<&str>) -> (Option<i32>, String, String) {
    use std::io::BufRead;
    let home = Home::new();
    if let Some(text) = config_toml {
        std::fs::write(home.path().join("config.toml"), text).unwrap();
    }
    let mut child = home
        .cmd()
        .args(["serve", "--bind", "0.0.0.0:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Its address once it serves; nothing if it exits first.
    let mut out = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    let serving = !out.is_empty();
    if serving {
        let _ = child.kill();
    }
    let status = child.wait().unwrap().code();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (if serving { None } else { status }, out, err)
}

#[test]
fn a_public_bind_without_public_names_is_refused_with_the_fix() {
    let (status, out, err) = serve_public(None);
    assert_eq!(status, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains("[proxy] public_names") && err.contains("config.toml"),
        "{err}"
    );
    assert!(out.is_empty(), "{out}");
    // With public names it serves, and says plainly who can reach it.
    let (status, out, err) =
        serve_public(Some("[proxy]\npublic_names = [\"tether.example.com\"]\n"));
    assert_eq!(status, None, "{err}");
    assert!(out.starts_with("http://0.0.0.0:"), "{out}");
    assert!(
        err.contains("warning") && err.contains("tether.example.com"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_named_endpoints_give_away_no_names_without_a_secret() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let res = listing(&http(), &format!("{base}/s/{secret}/mcp"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // /metrics: totals only without a secret; the caller's connection with one.
    let metrics = |bearer: Option<&str>| {
        let mut request = http().get(format!("{base}/metrics"));
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let anonymous = metrics(None).await;
    assert!(
        !anonymous.contains("generic") && !anonymous.contains("cursor"),
        "{anonymous}"
    );
    assert!(anonymous.contains("tether_requests_total 1"), "{anonymous}");
    let wrong = metrics(Some(&"A".repeat(43))).await;
    assert!(!wrong.contains("generic"), "{wrong}");
    let own = metrics(Some(&secret)).await;
    assert!(
        own.contains(r#"tether_requests_total{connection="generic",client="cursor"} 1"#),
        "{own}"
    );

    // /c/<name>/mcp: a name that exists and one that does not are answered alike.
    let named = |name: &'static str, bearer: Option<String>| {
        let mut request = listing(&http(), &format!("{base}/c/{name}/mcp"));
        if let Some(b) = bearer {
            request = request.bearer_auth(b);
        }
        async move {
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            (status, body.replace(name, "NAME"))
        }
    };
    for bearer in [None, Some("A".repeat(43))] {
        let known = named("generic", bearer.clone()).await;
        let unknown = named("nope", bearer).await;
        assert_eq!(known, unknown);
        assert_eq!(known.0, 401, "{known:?}");
    }
    // A caller with a valid secret is told precisely.
    let (status, body) = named("nope", Some(secret.clone())).await;
    assert_eq!(status, 404, "{body}");
    serve.stop();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_is_answered_413_never_reset() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let limit = 1024 * 1024;
    config(&home, &format!("max_body_bytes = {limit}\n"));
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let path = format!("/s/{secret}/mcp");
    let head = move |length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let outcomes = blocking({
        let (base, head) = (base.clone(), head.clone());
        move || {
            // A client that sends the whole body before it reads, as the SDKs do.
            let body = vec![b'x'; 8 * limit];
            (0..20)
                .map(|_| {
                    let mut tcp = connect(&base);
                    tcp.write_all(head(body.len()).as_bytes())
                        .map_err(|e| format!("head: {e}"))?;
                    tcp.write_all(&body).map_err(|e| format!("body: {e}"))?;
                    read_answer(&mut tcp)
                })
                .collect::<Vec<_>>()
        }
    });
    for outcome in &outcomes {
        let answer = outcome.as_ref().expect("the 413 is read, not a reset");
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("max_body_bytes"), "{answer}");
    }
    // A body just over the limit is read to its end, and the connection serves on.
    let (refused, next) = blocking(move || {
        let mut tcp = connect(&base);
        let body = vec![b'x'; limit + limit / 2];
        tcp.write_all(head(body.len()).as_bytes()).unwrap();
        tcp.write_all(&body).unwrap();
        let refused = read_answer(&mut tcp);
        let next = post(&format!("/s/{secret}/mcp"), "Host: 127.0.0.1\r\n");
        tcp.write_all(next.as_bytes()).unwrap();
        let next = read_answer(&mut tcp);
        // A client that waits to be asked for its body is answered at once, not asked.
        let mut waiting = connect(&base);
        let expect = head(8 * limit).replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
        waiting.write_all(expect.as_bytes()).unwrap();
        let answer = read_answer(&mut waiting).unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        (refused, next)
    });
    let refused = refused.unwrap();
    assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
    assert!(!refused.contains("connection: close"), "{refused}");
    let next = next.expect("the connection serves on after a drained body");
    assert!(next.starts_with("HTTP/1.1 200"), "{next}");
    serve.stop();
    sim.shutdown().await;
}

/// An MCP server whose `tools/call` answers after 3 s — as JSON, or as an SSE stream whose
/// headers come at once and whose one event comes after 3 s — and whose `tools/list`
/// never answers.
async fn slow_upstream() -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut read = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let Ok(n) = tcp.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    read.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&read).into_owned();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = text[..end]
                        .to_lowercase()
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if read.len() < end + 4 + length {
                        continue;
                    }
                    read.drain(..end + 4 + length);
                    let result = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"done after 3 s"}]}}"#;
                    if text.contains("tools/list") {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        return;
                    }
                    // The stream of server messages (GET) and a streamed tool answer alike
                    // stay quiet for 3 s before their event.
                    if text.starts_with("GET") || text.contains("\"stream\"") {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
                        let _ = tcp.write_all(head.as_bytes()).await;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        let event = format!("event: message\ndata: {result}\n\n");
                        let chunk = format!("{:x}\r\n{event}\r\n0\r\n\r\n", event.len());
                        let _ = tcp.write_all(chunk.as_bytes()).await;
                    } else {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{result}",
                            result.len()
                        );
                        let _ = tcp.write_all(answer.as_bytes()).await;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tool_is_waited_for_and_a_slow_list_is_not_called_unreachable() {
    let port = slow_upstream().await;
    let home = Home::new();
    config(&home, "upstream_timeout_secs = 1\n");
    home.run(&[
        "add",
        "slow",
        &format!("http://127.0.0.1:{port}/mcp"),
        "--no-auth",
    ])
    .ok();
    let secret = secret_for(&home, "slow", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let rpc = |body: Value| {
        http()
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
    };
    for name in ["json", "stream"] {
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{}}});
        let res = rpc(call).await.unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let text = res.text().await.unwrap();
        assert!(text.contains("done after 3 s"), "{name}: {text}");
    }
    // The GET stream of server messages is quiet between notifications: not cut either.
    let stream = http()
        .get(&url)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let text = stream.text().await.unwrap();
    assert!(text.contains("done after 3 s"), "GET stream: {text}");
    let answer: Value = rpc(list_tools()).await.unwrap().json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("unreachable"), "{answer}");
    assert!(message.contains("took longer than 1 s"), "{answer}");
    assert_eq!(answer["error"]["code"], -32003, "{answer}");
    assert_eq!(
        answer["error"]["data"]["error"], "upstream_timeout",
        "{answer}"
    );
    serve.stop();
}
