//! `tether calls` through the binary: calls a client makes through `tether serve` (and a
//! `tether stdio` bridge to it) to a simulated connection show up with their method, tool,
//! status, error and timings; `--follow` prints a call made after it started; `capture =
//! "off"` keeps counts only, `"full"` the bodies up to their cap; a clean stop loses no
//! call; the audit log rotates, drops rotated files past their age and stays private; no
//! token or endpoint secret in it.

use crate::support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use support::{Home, Serve, assert_no_tokens, http, secret_for, signed_in};

fn configure(home: &Home, calls: &str) {
    std::fs::write(
        home.path().join("config.toml"),
        format!("[calls]\n{calls}\n"),
    )
    .unwrap();
}

/// One JSON-RPC request as a 2026-07-28 client sends it.
async fn call(url: &str, body: Value) -> Value {
    let mut req = http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", body["method"].as_str().unwrap());
    if let Some(name) = body["params"]["name"].as_str() {
        req = req.header("mcp-name", name);
    }
    let res = req.json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    // JSON, or the one `data:` line of an event stream.
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `tether serve` for `home`, the secret of client "cursor" on connection "generic", and
/// its endpoint there.
fn serve_cursor(home: &Home) -> (Serve, String, String) {
    let secret = secret_for(home, "generic", "cursor");
    let serve = Serve::start(home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    (serve, secret, url)
}

fn echo(id: i64, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":arguments}})
}

/// `tether calls --json` and the rest, once it lists at least `n` records (the log is
/// written a moment after each call).
fn records(home: &Home, args: &[&str], n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut all = vec!["calls", "--json"];
        all.extend_from_slice(args);
        let out = home.run(&all).ok();
        let records: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if records.len() >= n || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An answer streamed as server-sent events is recorded as streamed, with as many events as
/// the client received, over HTTP/1.1 and HTTP/2 alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_is_recorded_with_its_events() {
    let (home, _sim) = signed_in("generic");
    let (serve, _, url) = serve_cursor(&home);
    let body = json!({"jsonrpc":"2.0","id":4,"method":"tools/call",
        "params":{"name":"progress","arguments":{"steps":3,"delay_ms":5},"_meta":{"progressToken":"p"}}});
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for (n, (client, label)) in [(http(), "HTTP/1.1"), (h2, "HTTP/2")]
        .into_iter()
        .enumerate()
    {
        let res = client
            .post(&url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "progress")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{label}");
        let text = res.text().await.unwrap();
        let received = text.replace("\r\n", "\n").matches("\n\n").count();
        assert!(received >= 4, "{label}: three steps and the result: {text}");
        // This call's record: the (n + 1)th.
        let all = records(&home, &[], n + 1);
        assert_eq!(all.len(), n + 1, "{label}: {all:?}");
        let last = &all[n];
        assert_eq!(last["name"], "progress", "{label}: {last}");
        assert_eq!(last["streamed"], true, "{label}: {last}");
        assert_eq!(last["events"], received as u64, "{label}: {last}\n{text}");
    }
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_show_their_method_tool_status_error_and_timings() {
    let (home, _sim) = signed_in("generic");
    let (serve, secret, url) = serve_cursor(&home);
    call(&url, support::list_tools()).await;
    let ok = call(&url, echo(2, json!({"text": "hi"}))).await;
    assert_eq!(ok["result"]["content"][0]["text"], "hi");
    let refused = call(&url, echo(3, json!({}))).await;
    assert_eq!(refused["error"]["code"], -32602);
    // A stdio client, bridged through the running proxy.
    let bind = serve.base.trim_start_matches("http://");
    let out = support::stdio_session(
        &home,
        "generic",
        bind,
        &[
            support::STDIO_INITIALIZE,
            r#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"bridged"}}}"#,
        ],
    );
    assert!(out.status.success(), "{out:?}");

    let all = records(&home, &[], 5);
    assert!(all.len() >= 5, "{all:?}");
    let cursor: Vec<&Value> = all.iter().filter(|r| r["client"] == "cursor").collect();
    assert_eq!(cursor.len(), 3, "{all:?}");
    assert_eq!(cursor[0]["method"], "tools/list");
    assert_eq!(cursor[0]["protocol"], "2026-07-28");
    for r in &cursor {
        assert_eq!(r["connection"], "generic");
        assert_eq!(r["status"], 200);
        assert!(r["total_us"].as_u64().unwrap() >= r["first_byte_us"].as_u64().unwrap());
        assert!(r["bytes_in"].as_u64().unwrap() > 0 && r["bytes_out"].as_u64().unwrap() > 0);
        assert!(
            r["request"].is_null(),
            "metadata capture keeps no body: {r}"
        );
    }
    assert_eq!(cursor[1]["name"], "echo");
    assert!(cursor[1]["error_code"].is_null());
    assert_eq!(cursor[2]["error_code"], -32602);
    assert!(
        cursor[2]["error_message"]
            .as_str()
            .unwrap()
            .contains("text"),
        "{}",
        cursor[2]
    );
    let bridged = all
        .iter()
        .find(|r| r["client"] == "desktop" && r["name"] == "echo" && r["status"] == 200);
    assert!(bridged.is_some(), "{all:?}");

    // Filters, and the columns.
    let errors = records(&home, &["--errors", "--client", "cursor"], 1);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let desktop = records(&home, &["--client", "desktop"], 1);
    assert!(
        desktop.iter().all(|r| r["client"] == "desktop"),
        "{desktop:?}"
    );
    assert_eq!(records(&home, &["nope"], 0).len(), 0);
    let text = home
        .run(&["calls", "generic", "--since", "10m"])
        .ok()
        .stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), all.len(), "{text}");
    assert!(
        lines[2].contains("tools/call echo") && lines[2].contains("200 -32602"),
        "{text}"
    );
    assert!(
        lines[0].contains(" ms ") && lines[0].contains(" B → "),
        "{text}"
    );
    let bad = home.run(&["calls", "--since", "soon"]);
    assert_eq!(bad.status, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("'soon'"), "{}", bad.stderr);

    // Neither a token nor an endpoint secret in the log.
    let log = std::fs::read_to_string(home.path().join("logs/calls.jsonl")).unwrap();
    assert_no_tokens(&log);
    assert!(!log.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_a_call_made_after_it_started() {
    let (home, _sim) = signed_in("generic");
    let (_serve, _, url) = serve_cursor(&home);
    call(&url, support::list_tools()).await;
    records(&home, &[], 1);
    let mut follow = home
        .cmd()
        .args(["calls", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(first["method"], "tools/list");
    tokio::time::sleep(Duration::from_millis(500)).await;
    call(&url, echo(2, json!({"text": "later"}))).await;
    let next: Value =
        serde_json::from_str(&lines.recv_timeout(Duration::from_secs(10)).unwrap()).unwrap();
    assert_eq!(next["name"], "echo");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_off_keeps_counts_only() {
    let (home, _sim) = signed_in("generic");
    configure(&home, r#"capture = "off""#);
    let (serve, secret, url) = serve_cursor(&home);
    for id in 0..3 {
        call(&url, echo(id, json!({"text": "x"}))).await;
    }
    let metrics = http()
        .get(format!("{}/metrics", serve.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tether_requests_total{connection="generic",client="cursor"} 3"#),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(home.run(&["calls", "--json"]).ok().stdout.is_empty());
    assert!(!home.path().join("logs/calls.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_rotates_and_stays_private() {
    let (home, _sim) = signed_in("generic");
    configure(&home, "log_max_bytes = 700\nlog_keep = 2");
    let (_serve, _, url) = serve_cursor(&home);
    for id in 0..12 {
        call(&url, echo(id, json!({"text": "x"}))).await;
        // One batch a call, so the log grows a line at a time.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let logs = home.path().join("logs");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logs.join("calls.jsonl.2").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for name in ["calls.jsonl", "calls.jsonl.1", "calls.jsonl.2"] {
        let meta = std::fs::metadata(logs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{name}");
        assert!(meta.len() <= 700, "{name}: {}", meta.len());
    }
    assert!(!logs.join("calls.jsonl.3").exists());
    assert_eq!(
        std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // What is left reads back, oldest first.
    let left = records(&home, &[], 1);
    assert!(left.len() >= 3, "{left:?}");
    assert!(
        left.windows(2)
            .all(|w| w[0]["at_ms"].as_i64() <= w[1]["at_ms"].as_i64())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_capture_keeps_the_bodies_cut_at_their_cap_and_no_secret() {
    let (home, _sim) = signed_in("generic");
    configure(&home, "capture = \"full\"\ncapture_max_bytes = 400");
    let (_serve, secret, url) = serve_cursor(&home);
    let short = echo(1, json!({"text": "hi"}));
    call(&url, short.clone()).await;
    let long = "é".repeat(300);
    call(&url, echo(2, json!({ "text": long }))).await;

    let all = records(&home, &[], 2);
    assert_eq!(all.len(), 2, "{all:?}");
    // A body under the cap is kept whole: the request as sent, the answer as answered.
    let request: Value = serde_json::from_str(all[0]["request"].as_str().unwrap()).unwrap();
    assert_eq!(request, short);
    let response = all[0]["response"].as_str().unwrap();
    let answer = response
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(response);
    let answer: Value = serde_json::from_str(answer.trim()).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "hi");
    // Longer ones are cut at the cap (a character cut in two shows as U+FFFD) and say so.
    for body in [&all[1]["request"], &all[1]["response"]] {
        let body = body.as_str().unwrap();
        assert!(body.ends_with('…'), "{body}");
        let kept = body.trim_end_matches('…').trim_end_matches('\u{fffd}');
        assert!(
            kept.len() <= 400 && kept.len() > 300,
            "{}: {body}",
            kept.len()
        );
        assert!(body.contains("éé"), "{body}");
    }
    assert!(all[1]["bytes_in"].as_u64().unwrap() > 600);

    let log = std::fs::read_to_string(home.path().join("logs/calls.jsonl")).unwrap();
    assert_no_tokens(&log);
    assert!(!log.contains(&secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_writes_every_call_first() {
    let (home, _sim) = signed_in("generic");
    let (serve, _, url) = serve_cursor(&home);
    for id in 0..20 {
        call(&url, echo(id, json!({"text": "x"}))).await;
    }
    serve.stop();
    let all = home.run(&["calls", "--json"]).ok().stdout;
    assert_eq!(all.lines().count(), 20, "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_files_past_their_age_are_removed() {
    let (home, _sim) = signed_in("generic");
    configure(&home, "log_max_age_days = 2");
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let day = Duration::from_secs(86_400);
    for (name, age) in [
        ("calls.jsonl.1", day),
        ("calls.jsonl.2", 3 * day),
        ("calls.jsonl.3", 3 * day),
    ] {
        let path = logs.join(name);
        std::fs::write(&path, AN_OLDER_CALL).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    }
    let (_serve, _, url) = serve_cursor(&home);
    call(&url, support::list_tools()).await;
    // Written after the log's first look at its rotated files.
    records(&home, &["--client", "cursor"], 1);
    let all = records(&home, &[], 2);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(
        (&all[0]["client"], &all[1]["client"]),
        (&json!("old"), &json!("cursor"))
    );
    assert!(logs.join("calls.jsonl.1").exists(), "a day old: kept");
    for gone in ["calls.jsonl.2", "calls.jsonl.3"] {
        assert!(!logs.join(gone).exists(), "{gone}: three days old, removed");
    }
}

/// A record as an older tether wrote it.
const AN_OLDER_CALL: &str = r#"{"at_ms":1700000000000,"connection":"generic","client":"old","http":"POST","method":"ping","status":200,"first_byte_us":1,"total_us":2,"bytes_in":3,"bytes_out":4}
"#;

/// A call that failed because of the connection's auth state keeps the diagnosis tether
/// named, so `tether calls` and the terminal UI can point at its fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_refused_for_a_dead_grant_names_its_diagnosis() {
    let (home, sim) = signed_in("generic");
    let (serve, _, url) = serve_cursor(&home);
    call(&url, support::list_tools()).await;
    // The user revoked tether at the provider: token and refresh token are dead.
    sim.admin("revoke-all");
    // (`tools/list` would list the sign-in tool; other methods get the auth error.)
    let refused = call(
        &url,
        json!({"jsonrpc": "2.0", "id": 8, "method": "resources/list"}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32001, "{refused}");
    let diagnosis = refused["error"]["data"]["diagnosis"]
        .as_str()
        .unwrap()
        .to_string();
    let all = records(&home, &["--errors"], 1);
    let last = all.last().unwrap();
    assert_eq!(last["error_code"], -32001, "{last}");
    assert_eq!(last["diagnosis"], diagnosis.as_str(), "{last}");
    assert!(
        records(&home, &[], 2)[0].get("diagnosis").is_none(),
        "a call that worked names none"
    );
    assert_no_tokens(&serve.stop());
}
