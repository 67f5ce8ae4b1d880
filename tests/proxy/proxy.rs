//! The local proxy as MCP clients meet it, through `tether serve` over loopback: secrets in
//! the path or as a bearer token, DNS-rebinding protection, streaming, the forced refresh
//! on an upstream 401 (GitHub-style eviction), JSON-RPC errors that name the diagnosis,
//! and every kind of bad input — none of which may crash it or leak a token.

use crate::support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tether_sim::{Profile, SimHandle, SimOptions};

use crate::support::{
    Home, Run, Serve, assert_no_tokens, free_port, http, list_tools, oauth_client, secret_for,
    signed_in, signed_in_at, signed_in_here,
};

async fn rpc(url: &str, body: Value) -> reqwest::Response {
    http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap_or_default())
        .header(
            "mcp-name",
            body["params"]["name"].as_str().unwrap_or_default(),
        )
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Sends `request` as raw bytes to `base` and returns what comes back until the server
/// closes the connection.
fn raw_exchange(base: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_reach_the_upstream_with_tethers_token_only() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let mut seen = String::new();

    // The secret in the path.
    let res = rpc(&format!("{}/s/{secret}/mcp", serve.base), list_tools()).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert!(body["result"]["tools"].as_array().unwrap().len() >= 3);
    seen += &body.to_string();

    // The secret as a bearer token; the client's Authorization never goes upstream.
    let res = http()
        .post(format!("{}/c/generic/mcp", serve.base))
        .bearer_auth(&secret)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "whoami")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains("client_id"), "{text}");
    seen += &text;

    // Wrong, missing and revoked secrets; unknown connections.
    let res = rpc(&format!("{}/s/not-a-secret/mcp", serve.base), list_tools()).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers().get("www-authenticate").is_none(),
        "no OAuth challenge downstream"
    );
    let res = http()
        .post(format!("{}/c/generic/mcp", serve.base))
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = http()
        .post(format!("{}/c/nope/mcp", serve.base))
        .bearer_auth(&secret)
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // One client cut off, another unaffected.
    let other = secret_for(&home, "generic", "claude-code");
    home.run(&["revoke", "generic", "--client", "cursor"]).ok();
    let res = rpc(&format!("{}/s/{secret}/mcp", serve.base), list_tools()).await;
    assert_eq!(res.status(), 401);
    let res = rpc(&format!("{}/s/{other}/mcp", serve.base), list_tools()).await;
    assert_eq!(res.status(), 200);

    // Metrics count per connection and client, for a caller holding one of its secrets.
    let metrics = http()
        .get(format!("{}/metrics", serve.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"tether_request_duration_seconds_bucket{connection="generic",client="cursor",le="+Inf"} 2"#
        ) && metrics.contains(
            r#"tether_request_duration_seconds_count{connection="generic",client="cursor"} 2"#
        ),
        "the latency histogram counts every call: {metrics}"
    );
    assert!(
        metrics.contains(r#"tether_requests_total{connection="generic",client="cursor"} 2"#),
        "{metrics}"
    );
    let log = serve.stop();
    assert_no_tokens(&(seen + &log + &metrics));
    assert!(
        !log.contains(&secret),
        "a downstream secret reached the log"
    );
    // The clients it served are in the vault for a terminal UI in another process.
    let status: Value = home.status("generic");
    let seen_at = status["clients_last_seen"]["claude-code"]
        .as_str()
        .unwrap_or_default();
    assert!(seen_at.starts_with("20"), "{status}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_refuses_rebinding_and_oversized_bodies() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    std::fs::write(
        home.path().join("config.toml"),
        "[proxy]\nmax_body_bytes = 1024\nallowed_origins = [\"https://app.example.com\"]\n",
    )
    .unwrap();
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let with = |k: &'static str, v: &'static str| {
        let url = url.clone();
        async move {
            http()
                .post(url)
                .header(k, v)
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/list")
                .json(&list_tools())
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(with("host", "evil.example:80").await, 403);
    assert_eq!(with("origin", "https://evil.example").await, 403);
    assert_eq!(with("origin", "http://localhost:5173").await, 200);
    assert_eq!(with("origin", "https://app.example.com").await, 200);
    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x".repeat(4096)}}});
    assert_eq!(rpc(&url, big.clone()).await.status(), 413);
    // A body sent in pieces with no declared length arrives whole; one that passes the
    // limit while it streams is refused the same way.
    let in_pieces = |body: Value| {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
            .to_string()
            .into_bytes()
            .chunks(100)
            .map(|c| Ok(c.to_vec()))
            .collect();
        http()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "echo")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
    };
    let echo = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"y".repeat(600)}}});
    let res = in_pieces(echo).await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(text.contains(&"y".repeat(600)), "{text}");
    // Refused part-way, a client still sending reads the refusal, not a reset connection.
    let bigger = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x".repeat(256 * 1024)}}});
    assert_eq!(in_pieces(big).await.unwrap().status(), 413);
    assert_eq!(rpc(&url, bigger.clone()).await.status(), 413);
    assert_eq!(in_pieces(bigger).await.unwrap().status(), 413);
    // A body whose chunked framing is broken is answered 400, and says why.
    let answer = raw_exchange(
        &serve.base,
        &format!(
            "POST /s/{secret}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"a\":\r\nzz\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("the request body could not be read"),
        "{answer}"
    );
    assert_eq!(rpc(&url, list_tools()).await.status(), 200);
    // Malformed JSON goes upstream as is: the upstream judges JSON-RPC.
    let res = http()
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("-32700"), "{text}");
    assert!(sim.stats().totals.mcp_requests >= 3);
    drop(serve);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_stragglers_are_refused_before_their_bodies_are_read() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    std::fs::write(
        home.path().join("config.toml"),
        "[proxy]\nmax_body_bytes = 1024\nrequest_timeout_secs = 1\n",
    )
    .unwrap();
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let before = sim.stats().totals.mcp_requests;
    let big = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x".repeat(64 * 1024)}}});
    // Without a valid secret, the answer is 401 — whatever the body, which is not buffered.
    let wrong = format!("{base}/s/{}/mcp", "A".repeat(43));
    let res = rpc(&wrong, big.clone()).await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("secret is not valid"));
    let res = http()
        .post(format!("{base}/c/generic/mcp"))
        .header("content-type", "application/json")
        .body(big.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A client that lets the right secret's oversized body through still gets 413.
    assert_eq!(
        rpc(&format!("{base}/s/{secret}/mcp"), big).await.status(),
        413
    );
    assert_eq!(
        sim.stats().totals.mcp_requests,
        before,
        "nothing went upstream"
    );

    // A head or a body that stops arriving is answered 408 once it is due, and the
    // connection closed; a connection idle between requests is left open.
    let body = list_tools().to_string();
    let head = format!(
        "POST /s/{secret}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let stalled = |sent: String, pause: Duration, then: String| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            tcp.write_all(sent.as_bytes()).unwrap();
            std::thread::sleep(pause);
            let _ = tcp.write_all(then.as_bytes());
            let mut answer = Vec::new();
            let _ = tcp.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
    };
    let half_head = head[..40].to_string();
    let raw = stalled(half_head, Duration::from_millis(2500), String::new())
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(raw.contains("request_timeout_secs"), "{raw}");
    let half_body = format!("{head}{}", &body[..10]);
    let raw = stalled(half_body, Duration::from_millis(2500), String::new())
        .await
        .unwrap();
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    let closing = head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n");
    let raw = stalled(
        String::new(),
        Duration::from_millis(2500),
        format!("{closing}{body}"),
    )
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    assert!(raw.contains("\"tools\""), "{raw}");
    let log = serve.stop();
    assert_no_tokens(&log);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_events_arrive_as_the_upstream_sends_them() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let call = json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
        "params":{"name":"progress","arguments":{"steps":5},"_meta":{"progressToken":"t"}}});
    let started = Instant::now();
    let res = rpc(&url, call.clone()).await;
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    let mut stream = res.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("step 1 of 5"));
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    let total = started.elapsed();
    assert!(String::from_utf8_lossy(&rest).contains("done: 5 steps"));
    assert!(
        total > first_at + Duration::from_millis(100),
        "the first event came at {first_at:?}, the end at {total:?}: buffered?"
    );
    // A client that goes away mid-stream does not hurt the next one.
    let res = rpc(&url, call).await;
    let mut stream = res.bytes_stream();
    stream.next().await.unwrap().unwrap();
    drop(stream);
    assert_eq!(rpc(&url, list_tools()).await.status(), 200);
    drop(serve);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_calls_in_flight_finish_and_takes_no_new_ones() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let call = json!({"jsonrpc":"2.0","id":4,"method":"tools/call",
        "params":{"name":"progress","arguments":{"steps":8,"delay_ms":150},"_meta":{"progressToken":"t"}}});
    let res = rpc(&url, call).await;
    let mut stream = res.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("step 1 of 8"));
    serve.terminate();
    // Stopping: new connections are refused while the open stream runs on.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let refused = reqwest::Client::new()
            .get(format!("{}/healthz", serve.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_err();
        if refused {
            break;
        }
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.expect("the stream in flight is not cut"));
    }
    let rest = String::from_utf8_lossy(&rest);
    assert!(rest.contains("done: 8 steps"), "{rest}");
    let log = serve.stop();
    assert!(log.contains("tether: stopped"), "{log}");
    assert!(!log.contains("cut off"), "{log}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_token_is_refreshed_and_the_request_retried() {
    // GitHub: the 11th token of the same OAuth app revokes the oldest — tether's.
    let sim = tether_sim::start(SimOptions::new(Profile::Github))
        .await
        .unwrap();
    // The app's redirect URI, on a port free right now (tether listens there to log in).
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let registered: Value = http()
        .post(oauth_client::endpoint(&sim, "register"))
        .json(&json!({
            "client_name": "the GitHub app",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_string();
    let home = Home::new();
    Run::of(
        home.cmd()
            .args([
                "add",
                "app",
                sim.mcp_url().as_str(),
                "--client-id",
                &client_id,
            ])
            .args(["--redirect-uri", &redirect])
            .output()
            .unwrap(),
    )
    .ok();
    home.login("app").ok();
    let secret = secret_for(&home, "app", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    assert_eq!(rpc(&url, list_tools()).await.status(), 200);
    // Ten other clients of the same app sign in (their browsers never reach tether).
    for _ in 0..10 {
        other_client_signs_in(&sim, &client_id, &redirect).await;
    }
    assert!(sim.stats().totals.evictions >= 1);
    // What `tether doctor` makes of it: the eviction, healed by its own refresh (the
    // running proxy adopts the new token).
    let doctor = home.run(&["doctor", "app", "--json"]);
    assert_eq!(doctor.status, 0, "{}", doctor.stdout);
    let findings: Value = serde_json::from_str(&doctor.stdout).unwrap();
    let upstream = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "app" && f["check"] == "upstream")
        .unwrap_or_else(|| panic!("no upstream finding: {findings}"));
    assert_eq!(upstream["diagnosis"], "token_evicted", "{upstream}");
    assert_eq!(upstream["status"], "warn", "{upstream}");
    assert_no_tokens(&doctor.stdout);
    let res = rpc(&url, list_tools()).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(body["result"]["tools"].is_array(), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status: Value = home.status("app");
    let evicted = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["diagnosis"] == "token_evicted");
    assert!(evicted, "eviction not diagnosed: {status}");
    assert_eq!(status["state"], "healthy");
    drop(serve);
    sim.shutdown().await;
}

/// Another MCP client of the same OAuth app signs in: authorization code + PKCE.
async fn other_client_signs_in(sim: &SimHandle, client_id: &str, redirect: &str) {
    let http = http();
    let (verifier, challenge) = oauth_client::pkce();
    let mcp = sim.mcp_url().to_string();
    let res = oauth_client::authorize_raw(
        &http,
        sim,
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "s"),
            ("resource", &mcp),
        ],
    )
    .await;
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let code = oauth_client::query(&location)["code"]
        .as_str()
        .unwrap()
        .to_string();
    let res = http
        .post(oauth_client::endpoint(sim, "token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
            ("resource", mcp.as_str()),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_grant_is_explained_to_the_client_not_challenged() {
    let (sim, home) = signed_in_here(Profile::Linear, 1.0).await;
    let secret = secret_for(&home, "linear", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    assert_eq!(rpc(&url, list_tools()).await.status(), 200);
    // The user revoked tether's access in the service's settings.
    let revoked = http()
        .post(oauth_client::url(&sim, "/__sim/revoke-all"))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    // Listing tools offers the sign-in, with the reason (sign-in from inside the chat)…
    let res = rpc(&url, list_tools()).await;
    assert_eq!(res.status(), 200, "an MCP answer, not an HTTP challenge");
    assert!(res.headers().get("www-authenticate").is_none());
    let listed: Value = res.json().await.unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{listed}");
    assert_eq!(tools[0]["name"], "sign_in_linear");
    // …and a call of a real tool is a JSON-RPC error that explains, not a challenge.
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let res = rpc(&url, call).await;
    assert_eq!(res.status(), 200, "a JSON-RPC error, not an HTTP challenge");
    assert!(res.headers().get("www-authenticate").is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], 7);
    assert_eq!(body["error"]["code"], -32001);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("needs re-authorization"), "{message}");
    assert!(message.contains("tether login linear"), "{message}");
    assert_eq!(
        body["error"]["data"]["diagnosis"],
        "invalid_grant.expired_or_revoked"
    );
    // A GET (no JSON-RPC id) gets an HTTP error with the same words.
    let res = http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let log = serve.stop();
    assert_no_tokens(&(body.to_string() + &log));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_slow_upstreams_are_named() {
    // An upstream that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(4) {
            held.push(s);
        }
        std::thread::sleep(Duration::from_secs(10));
    });
    let home = Home::new();
    std::fs::write(
        home.path().join("config.toml"),
        "[proxy]\nupstream_timeout_secs = 1\n",
    )
    .unwrap();
    home.run(&["add", "down", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    home.run(&[
        "add",
        "slow",
        &format!("http://{silent_addr}/mcp"),
        "--no-auth",
    ])
    .ok();
    let down = secret_for(&home, "down", "cursor");
    let slow = secret_for(&home, "slow", "cursor");
    let serve = Serve::start(&home);
    // Down is unreachable; silent is slow, never called unreachable.
    for (secret, code, words, status) in [
        (&down, -32002, "unreachable", 502),
        (&slow, -32003, "took longer than 1 s", 504),
    ] {
        let url = format!("{}/s/{secret}/mcp", serve.base);
        let body: Value = rpc(&url, list_tools()).await.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        let res = http().get(&url).send().await.unwrap();
        assert_eq!(res.status(), status);
    }
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_ride_through_two_second_tokens() {
    const SECONDS: u64 = 20;
    // Linear's one-hour tokens live two seconds; refresh tokens rotate and reuse kills the grant.
    let (sim, home) = signed_in_here(Profile::Linear, 1800.0).await;
    let secret = secret_for(&home, "linear", "load");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let probes = sim.stats().totals.mcp_401s;
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let client = http();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while Instant::now() < deadline {
                    let res = client
                        .post(&url)
                        .header("mcp-protocol-version", "2026-07-28")
                        .header("mcp-method", "tools/list")
                        .json(&list_tools())
                        .send()
                        .await
                        .unwrap();
                    let status = res.status();
                    let body = res.text().await.unwrap();
                    if status == 200 && body.contains("\"tools\"") {
                        ok += 1;
                    } else {
                        failed.push(format!("{status} {body}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (ok, failed)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        let (ok, failed) = t.await.unwrap();
        assert!(
            failed.is_empty(),
            "failed requests: {:?}",
            &failed[..failed.len().min(3)]
        );
        total += ok;
    }
    // The scheduler goes on refreshing every two seconds: the server's count and the
    // generation are read until no refresh fell between the readings.
    let generation_now = || {
        let status: Value = home.status("linear");
        status["token"]["generation"].as_u64().unwrap()
    };
    // A refresh the server counted may still be on its way into the vault: read again a
    // moment later. A wasted refresh stays counted, and fails below.
    let mut reading = None;
    for _ in 0..10 {
        let before = generation_now();
        let stats = sim.stats();
        let settled = generation_now() == before && stats.totals.refresh_calls + 1 == before;
        reading = Some((stats, before));
        if settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (stats, generation) = reading.unwrap();
    assert!(total > 2_000, "only {total} requests");
    assert_eq!(stats.totals.invalid_grant_responses, 0);
    assert_eq!(stats.totals.mcp_401s, probes, "a client met a stale token");
    // One refresh per token lifetime: each refresh made the next generation.
    assert_eq!(stats.totals.refresh_calls, generation - 1);
    assert!(
        stats.totals.refresh_calls >= SECONDS / 2 - 1,
        "{}",
        stats.totals.refresh_calls
    );
    drop(serve);
    sim.shutdown().await;
}

/// A tool that needs a scope the token lacks: the scope is recorded, and tether starts the
/// sign-in that asks for it at once (a browser that never comes back, here); the next
/// `tether login` asks for it too (the union) — after which the call works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_needing_more_scope_steps_up_at_the_next_sign_in() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start_env(&home, &[("BROWSER", "true")]);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let admin = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"admin_report","arguments":{}}});
    let body: Value = rpc(&url, admin.clone()).await.json().await.unwrap();
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("mcp:admin"), "{text}");
    assert!(text.contains("tether started a sign-in"), "{text}");
    assert!(text.contains("call the tool again"), "{text}");
    let before = home.status("generic");
    assert!(
        before["step_up"]["scopes"]
            .to_string()
            .contains("mcp:admin"),
        "{before}"
    );
    assert!(
        before["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["diagnosis"] == "insufficient_scope"),
        "{before}"
    );
    // The sign-in asks for what it asked before and the scope wanted. (The serve's own
    // sign-in still waits for its browser and holds the callback port: it stops first.)
    assert_no_tokens(&serve.stop());
    home.login("generic").ok();
    let after = home.status("generic");
    let granted = after["token"]["scope"].as_str().unwrap().to_string();
    for scope in ["mcp:read", "mcp:admin", "offline_access"] {
        assert!(granted.contains(scope), "{scope} missing from {granted}");
    }
    assert_eq!(after["step_up"], Value::Null, "{after}");
    // A proxy started again uses the new token: the call now works.
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = rpc(&url, admin.clone()).await.json().await.unwrap();
        if body["result"].is_object() {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = serve.stop();
    assert_no_tokens(&log);
    sim.shutdown().await;
}

/// The same from the chat, where tether can open a browser: the call that needed more
/// scope starts the sign-in asking for it, the browser signs in (the stand-in here), and
/// the same call then works — the MCP step-up, done by tether for its client. A second
/// call while the sign-in waits starts no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_needing_more_scope_is_stepped_up_from_the_chat() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "cursor");
    let browser = crate::support::browser();
    let serve = Serve::start_env(&home, &[("BROWSER", browser.to_str().unwrap())]);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let admin = json!({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"admin_report","arguments":{}}});
    let authorizations = sim.stats().totals.authorizations;
    let body: Value = rpc(&url, admin.clone()).await.json().await.unwrap();
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("tether started a sign-in"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body: Value = rpc(&url, admin.clone()).await.json().await.unwrap();
        if body["result"]["isError"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(
        sim.stats().totals.authorizations,
        authorizations + 1,
        "one sign-in"
    );
    let granted = home.status("generic")["token"]["scope"].to_string();
    assert!(granted.contains("mcp:admin"), "{granted}");
    assert_no_tokens(&serve.stop());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_api_key_is_explained() {
    let sim = tether_sim::start(SimOptions::new(Profile::Generic))
        .await
        .unwrap();
    let home = Home::new();
    let added = home
        .cmd()
        .args([
            "add",
            "keyed",
            sim.mcp_url().as_str(),
            "--api-key-env",
            "KEY",
        ])
        .env("KEY", "not-a-key-the-server-knows-0123456789")
        .output()
        .unwrap();
    assert!(added.status.success(), "{added:?}");
    let secret = secret_for(&home, "keyed", "cursor");
    let serve = Serve::start(&home);
    let body: Value = rpc(&format!("{}/s/{secret}/mcp", serve.base), list_tools())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("rejected its API key"), "{message}");
    assert!(!message.contains("0123456789"), "the key leaked: {message}");
    // Said once in the connection's history, however many calls meet it.
    rpc(&format!("{}/s/{secret}/mcp", serve.base), list_tools()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let rejections = loop {
        let status: Value = home.status("keyed");
        let rejections = status["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["diagnosis"] == "token_evicted")
            .count();
        if rejections > 0 || Instant::now() > deadline {
            break rejections;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rejections, 1);
    drop(serve);
    sim.shutdown().await;
}

/// The proxy's HTTP/1.1 server as clients of every kind reach it: requests pipelined in one
/// write, an HTTP/1.0 client, `Expect: 100-continue`, ambiguous framing refused, an
/// oversized head, and an HTTP/2 client by prior knowledge (served by hyper).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_http_client_is_served_and_ambiguity_refused() {
    let (sim, home) = signed_in_here(Profile::Generic, 1.0).await;
    let secret = secret_for(&home, "generic", "raw");
    let serve = Serve::start(&home);
    let base = serve.base.clone();
    let body = serde_json::to_string(&list_tools()).unwrap();
    let post = |extra: &str| {
        format!(
            "POST /s/{secret}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let answers = |raw: &str| raw.matches("HTTP/1.1 200 OK").count();

    // Two requests in one write, the second closing: two answers, in order, then the close.
    let pipelined = format!("{}{}", post(""), post("Connection: close\r\n"));
    let raw = tokio::task::spawn_blocking({
        let base = base.clone();
        move || raw_exchange(&base, &pipelined)
    })
    .await
    .unwrap();
    assert_eq!(answers(&raw), 2, "{raw}");
    assert_eq!(raw.matches("\"tools\"").count(), 2, "{raw}");
    assert!(raw.contains("connection: close"), "{raw}");

    // HTTP/1.0 without keep-alive: one answer with its length, then the close.
    let old = post("").replacen("HTTP/1.1", "HTTP/1.0", 1);
    let raw = tokio::task::spawn_blocking({
        let base = base.clone();
        move || raw_exchange(&base, &old)
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    assert!(
        raw.contains("content-length: ") && raw.contains("\"tools\""),
        "{raw}"
    );
    // HTTP/1.0 asking for keep-alive is told it is kept, and served again on the same
    // connection.
    let kept = format!(
        "{}{}",
        post("Connection: keep-alive\r\n").replacen("HTTP/1.1", "HTTP/1.0", 1),
        post("").replacen("HTTP/1.1", "HTTP/1.0", 1)
    );
    let raw = tokio::task::spawn_blocking({
        let base = base.clone();
        move || raw_exchange(&base, &kept)
    })
    .await
    .unwrap();
    assert_eq!(answers(&raw), 2, "{raw}");
    assert_eq!(raw.matches("connection: keep-alive").count(), 1, "{raw}");
    assert_eq!(raw.matches("connection: close").count(), 1, "{raw}");
    assert!(
        raw.find("connection: keep-alive") < raw.find("connection: close"),
        "{raw}"
    );

    // Expect: 100-continue is answered before the body is sent.
    let raw = tokio::task::spawn_blocking({
        let base = base.clone();
        let (secret, body) = (secret.clone(), body.clone());
        move || {
            use std::io::{Read, Write};
            let mut tcp = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let head = format!(
                "POST /s/{secret}/mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/list\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                body.len()
            );
            tcp.write_all(head.as_bytes()).unwrap();
            let mut interim = [0u8; 25];
            tcp.read_exact(&mut interim).unwrap();
            assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
            tcp.write_all(body.as_bytes()).unwrap();
            let mut rest = Vec::new();
            let _ = tcp.read_to_end(&mut rest);
            String::from_utf8_lossy(&rest).into_owned()
        }
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");

    // Framing two parsers could read two ways is refused, and the reason given.
    for (extra, why) in [
        (
            "Transfer-Encoding: chunked\r\n",
            "both Transfer-Encoding and Content-Length",
        ),
        ("Content-Length: 3\r\n", "two different Content-Lengths"),
    ] {
        let request = post(extra);
        let raw = tokio::task::spawn_blocking({
            let base = base.clone();
            move || raw_exchange(&base, &request)
        })
        .await
        .unwrap();
        assert!(raw.starts_with("HTTP/1.1 400 Bad Request"), "{raw}");
        assert!(
            raw.contains(why) && raw.contains("connection: close"),
            "{raw}"
        );
    }
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: {}\r\n\r\n",
        "x".repeat(70 * 1024)
    );
    let raw = tokio::task::spawn_blocking({
        let base = base.clone();
        move || raw_exchange(&base, &huge)
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 431"), "{raw}");

    // An HTTP/2 client that starts without negotiating.
    let h2 = std::process::Command::new("curl")
        .args([
            "-s",
            "--http2-prior-knowledge",
            "-w",
            "\n%{http_version} %{http_code}",
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json",
            "-H",
            "mcp-protocol-version: 2026-07-28",
            "-H",
            "mcp-method: tools/list",
            "-d",
            &body,
            &format!("{base}/s/{secret}/mcp"),
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&h2.stdout);
    assert!(
        out.ends_with("\n2 200") && out.contains("\"tools\""),
        "{out}"
    );

    assert_eq!(
        rpc(&format!("{base}/s/{secret}/mcp"), list_tools())
            .await
            .status(),
        200
    );
    assert!(sim.stats().totals.mcp_requests >= 6);
    serve.stop();
}

/// The README's table of JSON-RPC error codes is the one in the code, row for row.
#[test]
fn the_documented_error_codes_are_the_ones_answered() {
    let readme = std::fs::read_to_string(support::repo().join("README.md")).unwrap();
    let rows: Vec<&str> = readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("| -320"))
        .collect();
    assert_eq!(rows.len(), tether_proxy::codes::ALL.len(), "{rows:#?}");
    for code in tether_proxy::codes::ALL {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {} |", code.code)))
            .unwrap_or_else(|| panic!("README has no row for {}", code.code));
        assert!(row.contains(code.meaning), "{row} ≠ {}", code.meaning);
    }
}

/// An authorization server that cannot be reached is not an authentication problem: a
/// call whose token needs a refresh the server cannot give gets -32002, as documented.
#[tokio::test]
async fn an_unreachable_authorization_server_is_answered_as_unreachable() {
    // An hour lasts a second here: the token is soon expired.
    let (home, sim) = signed_in_at("generic", "3600");
    let secret = secret_for(&home, "generic", "cursor");
    sim.faults(serde_json::json!({"fail_token_calls": 1000}));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let body: Value = rpc(&url, list_tools()).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32002, "{body}");
    assert_eq!(
        body["error"]["data"]["diagnosis"], "upstream_unreachable",
        "{body}"
    );
}

/// A token the upstream refuses and no refresh can replace (Todoist issues no refresh
/// token): the client hears it must sign in again, and `tether list` says so too instead
/// of "healthy".
#[tokio::test]
async fn a_refused_token_with_no_refresh_token_shows_as_needing_a_sign_in() {
    let (home, sim) = signed_in("todoist");
    let secret = secret_for(&home, "todoist", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let body: Value = rpc(&url, list_tools()).await.json().await.unwrap();
    assert!(body["result"].is_object(), "{body}");
    sim.admin("evict-access");
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let body: Value = rpc(&url, call).await.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
    // Recorded beside the answer; the bound is a safety net, not a target.
    let safety = Instant::now() + Duration::from_secs(10);
    loop {
        let list: Value = serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
        if list[0]["state"] == "needs-reauth" {
            assert_eq!(
                list[0]["diagnosis"], "invalid_grant.expired_or_revoked",
                "{list}"
            );
            break;
        }
        assert!(
            Instant::now() < safety,
            "still shown as {}",
            list[0]["state"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = home.run(&["status", "todoist"]).ok().stdout;
    assert!(status.contains("issued no refresh token"), "{status}");
    serve.stop();
}
