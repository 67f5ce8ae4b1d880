//! Real MCP clients through tether: the official TypeScript SDK's client
//! (`@modelcontextprotocol/sdk`), over Streamable HTTP to `tether serve` and over stdio to
//! `tether stdio`, against the simulator (tokens expiring mid-run) and against the reference
//! `server-everything` (an upstream with no auth). Each session runs initialize →
//! tools/list → tools/call → a streaming tools/call with progress notifications, in rounds.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::support::{Home, Serve, assert_no_tokens, free_port, peers, secret_for, signed_in_at};

/// Runs `sdk-client.mjs` with `plan`, with the environment `home` gives tether (the stdio
/// transport passes it on to the `tether stdio` it launches) and `env`, and returns its
/// report.
fn sdk_client(node: &Path, home: &Home, env: &[(&str, &str)], plan: Value) -> Value {
    let mut cmd = Command::new(node);
    for (key, value) in home.cmd().get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd
        .envs(env.iter().copied())
        .arg(peers::dir().join("sdk-client.mjs"))
        .arg(plan.to_string())
        .current_dir(peers::dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK client failed: {stderr}");
    assert_no_tokens(&stderr);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

fn sim_plan(rounds: u32, pause_ms: u32) -> Value {
    json!({
        "echo": {"name": "echo", "arguments": {"text": "through tether"}},
        "stream": {"name": "progress", "arguments": {"steps": 4, "delay_ms": 50}},
        "rounds": rounds,
        "pause_ms": pause_ms,
    })
}

/// Every round listed the tools, echoed, and streamed `steps` progress notifications, in
/// order, before the streaming call's result (as the client received them; the SDK's own
/// handler may miss the last one, see `sdk-client.mjs`).
fn assert_rounds(report: &Value, rounds: usize, echo: &str, tool: &str, steps: usize) {
    let done = report["rounds"].as_array().unwrap();
    assert_eq!(done.len(), rounds, "{report}");
    for round in done {
        assert!(
            round["tools"].as_array().unwrap().iter().any(|t| t == tool),
            "{round}"
        );
        assert!(round["echo"].as_str().unwrap().contains(echo), "{round}");
        assert_eq!(round["echo_error"], false, "{round}");
        assert_eq!(round["stream_error"], false, "{round}");
        let progress = round["progress"].as_array().unwrap();
        assert_eq!(progress.len(), steps, "{round}");
        assert!(
            progress.windows(2).all(|w| w[0].as_f64() < w[1].as_f64()),
            "progress out of order: {round}"
        );
        let handled = round["progress_handled"].as_array().unwrap().len();
        assert!(handled + 1 >= steps, "the SDK saw too few: {round}");
    }
}

#[test]
fn the_sdk_client_rides_through_expiring_tokens() {
    let Some(node) = peers::require(&["@modelcontextprotocol/sdk"]) else {
        return;
    };
    // Linear's one-hour tokens live two seconds; refresh tokens rotate, reuse kills the grant.
    let (home, sim) = signed_in_at("linear", "1800");
    let secret = secret_for(&home, "linear", "sdk");
    let serve = Serve::start(&home);
    let before = sim.stats()["totals"].clone();
    let mut plan = sim_plan(4, 1500);
    plan["url"] = json!(format!("{}/s/{secret}/mcp", serve.base));
    let report = sdk_client(&node, &home, &[], plan);

    assert_eq!(report["server"]["name"], "tether-sim-linear");
    assert_rounds(&report, 4, "through tether", "progress", 4);
    let after = sim.stats()["totals"].clone();
    let refreshes =
        after["refresh_calls"].as_u64().unwrap() - before["refresh_calls"].as_u64().unwrap();
    assert!(
        refreshes >= 2,
        "tokens expired mid-run but only {refreshes} refreshes"
    );
    assert_eq!(after["invalid_grant_responses"], 0, "{after}");
    assert_eq!(
        after["mcp_401s"], before["mcp_401s"],
        "the client met a stale token"
    );
    let log = serve.stop();
    assert_no_tokens(&log);
    assert!(
        !log.contains(&secret),
        "the endpoint secret reached the log"
    );
}

#[test]
fn the_sdk_client_launches_the_stdio_bridge() {
    let Some(node) = peers::require(&["@modelcontextprotocol/sdk"]) else {
        return;
    };
    let (home, sim) = signed_in_at("generic", "1");
    let mut plan = sim_plan(2, 0);
    plan["command"] = json!([support::bin(), "stdio", "generic", "--client", "sdk-stdio"]);
    // A port no tether serves: the bridge runs its own engine and proxy.
    let report = sdk_client(&node, &home, &[("TETHER_BIND", "127.0.0.1:9")], plan);
    assert_eq!(report["server"]["name"], "tether-sim-generic");
    assert_rounds(&report, 2, "through tether", "progress", 4);
    assert!(sim.stats()["totals"]["mcp_requests"].as_u64().unwrap() >= 7);
}

/// `server-everything` in Streamable HTTP mode on a free port, stopped when dropped.
struct Everything {
    child: Child,
    url: String,
}

impl Everything {
    /// Started on a port picked free just before: another process of the test run may take
    /// it in between, so the server that answers there is checked, and another port tried.
    fn start(node: &Path) -> Self {
        for _ in 0..5 {
            let everything = Self::start_once(node);
            if everything.answers() {
                return everything;
            }
        }
        panic!("server-everything never answered on the port it was given");
    }

    fn start_once(node: &Path) -> Self {
        let port = free_port();
        let mut child = Command::new(node)
            .arg(
                peers::dir()
                    .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
            )
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening") {
            line.clear();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "server-everything did not start"
            );
        }
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }

    /// Whether `initialize` at the URL is answered by server-everything itself.
    fn answers(&self) -> bool {
        let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}"#;
        let out = Command::new("curl")
            .args([
                "-s",
                "-H",
                "content-type: application/json",
                "-H",
                "accept: application/json, text/event-stream",
                "-d",
                initialize,
                &self.url,
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains("mcp-servers/everything")
    }
}

impl Drop for Everything {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_sdk_client_reaches_server_everything_through_tether() {
    let Some(node) = peers::require(&[
        "@modelcontextprotocol/sdk",
        "@modelcontextprotocol/server-everything",
    ]) else {
        return;
    };
    let upstream = Everything::start(&node);
    let home = Home::new();
    home.run(&["add", "everything", &upstream.url, "--no-auth"])
        .ok();
    let secret = secret_for(&home, "everything", "sdk");
    let serve = Serve::start(&home);
    let plan = json!({
        "url": format!("{}/s/{secret}/mcp", serve.base),
        "echo": {"name": "echo", "arguments": {"message": "through tether"}},
        "stream": {"name": "trigger-long-running-operation", "arguments": {"duration": 1, "steps": 4}},
        "rounds": 2,
        "pause_ms": 100,
    });
    let report = sdk_client(&node, &home, &[], plan);
    assert_eq!(
        report["server"]["name"], "mcp-servers/everything",
        "{report}"
    );
    assert_rounds(
        &report,
        2,
        "through tether",
        "trigger-long-running-operation",
        4,
    );
    serve.stop();
}
