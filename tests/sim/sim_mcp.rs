//! The simulator as an MCP server: RFC 6750 challenges, initialize and sessions, tools
//! over JSON and SSE, step-up on insufficient scope, the GET stream — and `tether sim`
//! run as a real process.

use crate::support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_sim::Profile;

use crate::support::http;
use crate::support::oauth_client::*;

const BOTH: &str = "application/json, text/event-stream";

fn call(id: u64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": name, "arguments": args}})
}

/// Parses an SSE body into the JSON of each `data:` line that is not empty.
fn sse_messages(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|event| {
            event
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(|d| serde_json::from_str(d).expect("event data is JSON"))
        })
        .collect()
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_rfc6750_challenges() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}});
    let resp = mcp_post(&http, &sim, None, None, BOTH, &init).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let header = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let metadata = url(&sim, "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        header,
        format!("Bearer resource_metadata=\"{metadata}\", scope=\"mcp:read mcp:write\"")
    );
    assert!(
        !header.contains("error="),
        "no error code without credentials"
    );

    let resp = mcp_post(&http, &sim, Some("gen_at_forged"), None, BOTH, &init).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let header = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        header.starts_with("Bearer error=\"invalid_token\", error_description=\""),
        "{header}"
    );
    assert!(
        header.contains(&format!("resource_metadata=\"{metadata}\"")),
        "{header}"
    );
    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["mcp_401s"], 2);
    assert_eq!(st["totals"]["mcp_requests"], 2);
}

#[tokio::test]
async fn initialize_negotiates_the_version_and_sessions_are_enforced() {
    let sim = sim(Profile::Notion).await;
    let http = http();
    let (_, t) = login(&http, &sim).await;
    let token = s(&t["access_token"]).to_string();
    let init = |v: &str| {
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": v, "capabilities": {}}})
    };
    for (asked, expected, session) in [
        ("2025-06-18", "2025-06-18", true),
        ("2025-11-25", "2025-11-25", true),
        ("2026-07-28", "2026-07-28", false),
        ("1999-01-01", "2026-07-28", false),
    ] {
        let resp = mcp_post(&http, &sim, Some(&token), None, BOTH, &init(asked)).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get("mcp-session-id").is_some(),
            session,
            "{asked}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["protocolVersion"], expected);
        assert_eq!(body["result"]["serverInfo"]["name"], "tether-sim-notion");
        assert_eq!(body["id"], 1);
    }

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let no_session = mcp_post(&http, &sim, Some(&token), None, BOTH, &list).await;
    assert_eq!(no_session.status(), StatusCode::BAD_REQUEST);
    let unknown = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some("mcp_session_nope"),
        BOTH,
        &list,
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let session = mcp_session(&http, &sim, &token).await;
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let resp = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some(&session),
        BOTH,
        &initialized,
    )
    .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = mcp_post(&http, &sim, Some(&token), Some(&session), BOTH, &list).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = resp.json().await.unwrap();
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| s(&t["name"]))
        .collect();
    assert_eq!(
        names,
        [
            "whoami",
            "echo",
            "progress",
            "test_reconnection",
            "admin_report"
        ]
    );

    // Stateless revision: no session needed when the version header says so.
    let stateless = http
        .post(sim.mcp_url())
        .bearer_auth(&token)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), StatusCode::OK);
    let body: Value = stateless.json().await.unwrap();
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(body["result"]["cacheScope"], "public");
    // SEP-2243: from 2026-07-28 on the method must also travel as a header.
    let headless = http
        .post(sim.mcp_url())
        .bearer_auth(&token)
        .header("accept", BOTH)
        .header("mcp-protocol-version", "2026-07-28")
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(headless.status(), StatusCode::BAD_REQUEST);
    let body: Value = headless.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32020, "{body}");
    // DNS rebinding: a Host naming another site is refused before anything else.
    let rebound = http
        .post(sim.mcp_url())
        .bearer_auth(&token)
        .header("host", "evil.example.com")
        .header("accept", BOTH)
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), StatusCode::FORBIDDEN);

    // DELETE ends the session; it is then unknown.
    let del = http
        .delete(sim.mcp_url())
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let gone = mcp_post(&http, &sim, Some(&token), Some(&session), BOTH, &list).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn tools_answer_in_json_or_sse_as_accepted_and_never_leak_the_token() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    let token = s(&t["access_token"]).to_string();
    let session = mcp_session(&http, &sim, &token).await;

    let resp = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some(&session),
        BOTH,
        &call(3, "echo", json!({"text": "hi"})),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["content"][0]["text"], "hi");

    let resp = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some(&session),
        "text/event-stream",
        &call(4, "echo", json!({"text": "sse"})),
    )
    .await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let messages = sse_messages(&resp.text().await.unwrap());
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], 4);
    assert_eq!(messages[0]["result"]["content"][0]["text"], "sse");

    let resp = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some(&session),
        BOTH,
        &call(5, "whoami", json!({})),
    )
    .await;
    let text = resp.text().await.unwrap();
    assert!(!text.contains(&token), "whoami must not echo the token");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body["result"]["structuredContent"]["client_id"],
        client.id.as_str()
    );
    assert_eq!(
        body["result"]["structuredContent"]["scope"],
        "mcp:read mcp:write"
    );

    let unknown = json!({"jsonrpc": "2.0", "id": 6, "method": "resources/list"});
    let body: Value = mcp_post(&http, &sim, Some(&token), Some(&session), BOTH, &unknown)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], -32601);

    let resp = http
        .post(sim.mcp_url())
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .header("accept", BOTH)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
}

#[tokio::test]
async fn admin_report_needs_the_admin_scope_and_says_so_with_403() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    let token = s(&t["access_token"]).to_string();
    let session = mcp_session(&http, &sim, &token).await;
    let resp = mcp_post(
        &http,
        &sim,
        Some(&token),
        Some(&session),
        BOTH,
        &call(7, "admin_report", json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let header = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        header.starts_with(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:read mcp:write mcp:admin\""
        ),
        "{header}"
    );

    // Step up: authorize again with the admin scope.
    let admin = login_as(&http, &sim, &client, Some("mcp:read mcp:write mcp:admin")).await;
    let admin_token = s(&admin["access_token"]).to_string();
    let session = mcp_session(&http, &sim, &admin_token).await;
    let resp = mcp_post(
        &http,
        &sim,
        Some(&admin_token),
        Some(&session),
        BOTH,
        &call(8, "admin_report", json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["structuredContent"]["mcp_403s"], 1);
}

#[tokio::test]
async fn progress_arrives_as_separate_events_over_time() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (_, t) = login(&http, &sim).await;
    let token = s(&t["access_token"]).to_string();
    let session = mcp_session(&http, &sim, &token).await;
    let mut req = call(9, "progress", json!({"steps": 3, "delay_ms": 150}));
    req["params"]["_meta"] = json!({"progressToken": "p1"});
    let resp = mcp_post(&http, &sim, Some(&token), Some(&session), BOTH, &req).await;
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream",
        "SSE when accepted"
    );

    let start = Instant::now();
    let mut arrivals: Vec<(Duration, Value)> = Vec::new();
    let mut buffer = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let event: String = buffer.drain(..end + 2).collect();
            for m in sse_messages(&event) {
                arrivals.push((start.elapsed(), m));
            }
        }
    }
    assert_eq!(arrivals.len(), 4, "{arrivals:?}");
    for (i, (_, m)) in arrivals.iter().take(3).enumerate() {
        assert_eq!(m["method"], "notifications/progress");
        assert_eq!(m["params"]["progressToken"], "p1");
        assert_eq!(m["params"]["progress"], i as u64 + 1);
        assert_eq!(m["params"]["total"], 3);
    }
    assert_eq!(arrivals[3].1["id"], 9);
    assert_eq!(
        arrivals[3].1["result"]["content"][0]["text"],
        "done: 3 steps"
    );
    // Streamed, not buffered: the first step arrived well before the result.
    assert!(
        arrivals[3].0 - arrivals[0].0 >= Duration::from_millis(250),
        "{arrivals:?}"
    );
}

#[tokio::test]
async fn the_get_stream_stays_open_with_notifications_until_the_session_ends() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (_, t) = login(&http, &sim).await;
    let token = s(&t["access_token"]).to_string();
    let session = mcp_session(&http, &sim, &token).await;
    let resp = http
        .get(sim.mcp_url())
        .bearer_auth(&token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-accel-buffering"], "no");
    let mut stream = resp.bytes_stream();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains("notifications/message") && Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a notification within 5 s")
            .expect("stream still open")
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(seen.contains("notifications/message"), "{seen}");

    http.delete(sim.mcp_url())
        .bearer_auth(&token)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream closes when the session ends");
}

#[tokio::test]
async fn tether_sim_binary_prints_the_mcp_url_and_serves_it() {
    let (mut child, line) = tether_sim(&["--profile", "generic", "--port", "0"]).await;
    let mcp = url::Url::parse(&line).expect("stdout is the MCP URL");
    assert_eq!(mcp.host_str(), Some("127.0.0.1"));
    assert_eq!(mcp.path(), "/mcp");
    let resp = http().post(mcp).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("resource_metadata=")
    );
    // SIGTERM stops it cleanly.
    let pid = child.id().expect("still running").to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A server with no sign-in publishes no authorization server: a client that finds OAuth
/// metadata runs a login (Codex did), so every discovery path is a 404 and nothing ever
/// asks for credentials.
#[tokio::test]
async fn tether_sim_no_auth_publishes_no_oauth_metadata() {
    let (_child, line) = tether_sim(&["--profile", "generic", "--no-auth"]).await;
    let base = line.trim().trim_end_matches("/mcp").to_string();
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/mcp/.well-known/openid-configuration",
    ] {
        let resp = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!resp.headers().contains_key("www-authenticate"), "{path}");
    }
    for path in ["/register", "/token", "/authorize"] {
        let resp = http().post(format!("{base}{path}")).send().await.unwrap();
        assert!(!resp.status().is_success(), "{path}: {}", resp.status());
        assert!(!resp.headers().contains_key("www-authenticate"), "{path}");
    }
    // MCP itself answers without a token, a bad token, or a GET probe alike.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    for bearer in [None, Some("not-a-token")] {
        let mut req = http()
            .post(&line)
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{bearer:?}");
        assert!(!resp.headers().contains_key("www-authenticate"));
    }
    let probe = http().get(&line).send().await.unwrap();
    assert_ne!(probe.status(), StatusCode::UNAUTHORIZED);
    assert!(!probe.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn tether_sim_refuses_bad_flags_in_one_line() {
    for (args, needle) in [
        (vec!["--profile", "gitlab"], "'gitlab'"),
        (vec!["--time-scale", "0.5"], "'0.5'"),
        (vec!["--fail-kind", "503"], "'503'"),
        (vec!["--issuer-path", "oauth"], "'oauth'"),
    ] {
        let out = tokio::process::Command::new(support::bin())
            .arg("sim")
            .args(&args)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

/// Every fault knob is also a `tether sim` flag: the plan the admin API reports is the
/// one the command line set.
#[tokio::test]
async fn the_fault_flags_set_the_plan() {
    let (_child, line) = tether_sim(&[
        "--profile",
        "generic",
        "--fail-token-calls",
        "2",
        "--fail-kind",
        "429",
        "--retry-after-secs",
        "7",
        "--timeout-secs",
        "9",
        "--drop-next-refresh",
        "--hold-next-refresh",
        "3",
        "--missing-metadata",
        "/.well-known/oauth-authorization-server",
    ])
    .await;
    let base = line.trim().trim_end_matches("/mcp").to_string();
    let plan: Value = http()
        .get(format!("{base}/__sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        plan,
        json!({
            "fail_token_calls": 2,
            "fail_kind": "429",
            "retry_after_secs": 7,
            "timeout_secs": 9,
            "drop_next_refresh": true,
            "hold_next_refresh_secs": 3,
            "missing_metadata": ["/.well-known/oauth-authorization-server"],
            "slow_down_polls": 0,
            "freeze_token_calls": false,
            "reset_token_calls": 0,
        })
    );
    let missing = http()
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// `tether sim ARGS` running (killed when dropped), and the first line it printed: its
/// MCP URL.
async fn tether_sim(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(support::bin())
        .arg("sim")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("tether runs");
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the URL is printed promptly")
        .unwrap()
        .expect("one line");
    (child, line)
}
