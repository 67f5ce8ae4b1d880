//! Sign-in from inside the chat, through the binary with the official TypeScript SDK's
//! client (`tests/peers/sign-in-client.mjs`): a `tether serve` whose connection needs a
//! sign-in still answers MCP — one tool, `sign_in_<name>`, whose description says why;
//! calling it signs in through `$BROWSER` (the stand-in browser) on tether's side; the
//! client hears `notifications/tools/list_changed`, lists the simulator's real tools and
//! calls one. Also the raw answers: other methods get the auth error (-32001 with the
//! diagnosis), and no token or secret reaches a client.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{Home, Serve, added, assert_no_tokens, browser, peers, secret_for, signed_in};

/// Runs `sign-in-client.mjs` with `plan` and returns its report.
fn sign_in_client(node: &Path, plan: Value) -> Value {
    let out = Command::new(node)
        .arg(peers::dir().join("sign-in-client.mjs"))
        .arg(plan.to_string())
        .current_dir(peers::dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK client failed: {stderr}");
    assert_no_tokens(&stderr);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// A `tether serve` that signs in through the stand-in browser.
fn serve(home: &Home) -> Serve {
    let browser = browser();
    Serve::start_env(home, &[("BROWSER", browser.to_str().unwrap())])
}

/// The whole round: the sign-in tool alone, the sign-in, the change heard, the real tools.
fn signs_in_from_the_chat(home: &Home, name: &str, why: &str) {
    let Some(node) = peers::require(&["@modelcontextprotocol/sdk"]) else {
        return;
    };
    let secret = secret_for(home, name, "sdk");
    let serve = serve(home);
    let plan = json!({
        "url": format!("{}/s/{secret}/mcp", serve.base),
        "echo": {"name": "echo", "arguments": {"text": "after the sign-in"}},
        "wait_ms": 30_000,
    });
    let report = sign_in_client(&node, plan);

    assert_eq!(
        report["server"]["name"],
        format!("tether/{name}"),
        "{report}"
    );
    assert_eq!(report["capabilities"]["tools"]["listChanged"], true);
    let before = report["before"].as_array().unwrap();
    assert_eq!(before.len(), 1, "{report}");
    assert_eq!(before[0]["name"], format!("sign_in_{name}"));
    let description = before[0]["description"].as_str().unwrap();
    assert!(description.contains(why), "{description}");
    assert!(description.contains("on this machine"), "{description}");
    assert_eq!(report["sign_in"]["error"], false, "{report}");
    assert!(
        report["sign_in"]["text"]
            .as_str()
            .unwrap()
            .contains("browser window"),
        "{report}"
    );
    assert_eq!(report["list_changed"], true, "no list_changed: {report}");
    let after: Vec<&str> = report["after"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(after.contains(&"echo"), "{report}");
    assert!(!after.iter().any(|t| t.starts_with("sign_in_")), "{report}");
    assert_eq!(report["echo_error"], false, "{report}");
    assert!(
        report["echo"]
            .as_str()
            .unwrap()
            .contains("after the sign-in")
    );
    assert_eq!(home.status(name)["state"], "healthy");

    let text = report.to_string();
    assert_no_tokens(&text);
    assert!(
        !text.contains(&secret),
        "the endpoint secret reached the client"
    );
    let log = serve.stop();
    assert_no_tokens(&log);
    assert!(
        !log.contains(&secret),
        "the endpoint secret reached the log"
    );
}

#[test]
fn a_connection_never_signed_in_signs_in_from_the_chat() {
    let (home, _sim) = added("generic", "1", &[]);
    signs_in_from_the_chat(&home, "generic", "not been signed in");
}

#[test]
fn a_revoked_grant_signs_in_again_from_the_chat() {
    let (home, sim) = signed_in("generic");
    // The user revoked tether at the provider: the next call's refresh meets invalid_grant.
    sim.admin("revoke-all");
    signs_in_from_the_chat(&home, "generic", "invalid_grant");
}

/// The raw answers of a signed-out endpoint, without a Node peer; a 2026-07-28 client's
/// `subscriptions/listen` stream.
#[test]
fn a_signed_out_endpoint_answers_mcp_itself_and_refuses_the_rest() {
    let (home, _sim) = added("generic", "1", &[]);
    let secret = secret_for(&home, "generic", "raw");
    let serve = serve(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let post = |session: Option<&str>, body: Value| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-i", "-X", "POST", &url])
            .args(["-H", "content-type: application/json"])
            .args(["-H", "accept: application/json, text/event-stream"]);
        if let Some(s) = session {
            cmd.args(["-H", &format!("mcp-session-id: {s}")]);
        }
        let out = cmd.args(["-d", &body.to_string()]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let body_of = |answer: &str| -> Value {
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("")).unwrap()
    };

    let init = post(
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    );
    let session = init
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .unwrap_or_else(|| panic!("no session: {init}"))
        .trim()
        .to_string();
    assert!(session.starts_with("tether-signin-"), "{session}");
    let init = body_of(&init);
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "tether/generic");

    let accepted = post(
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");

    let list = body_of(&post(
        Some(&session),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ));
    assert_eq!(list["result"]["tools"][0]["name"], "sign_in_generic");

    // Anything else is today's auth error, with the diagnosis in data.
    for (id, method, params) in [
        (
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "x"}}),
        ),
        (4, "resources/list", json!({})),
    ] {
        let error = body_of(&post(
            Some(&session),
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        ));
        assert_eq!(
            error["error"]["code"],
            tether_proxy::codes::AUTH.code,
            "{error}"
        );
        assert_eq!(error["error"]["data"]["connection"], "generic");
        assert!(error["error"]["data"].get("diagnosis").is_some(), "{error}");
    }

    // A 2026-07-28 client has no session.
    let stateless = post(
        None,
        json!({"jsonrpc": "2.0", "id": 5, "method": "initialize", "params": {
            "protocolVersion": "2026-07-28", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    );
    assert!(!stateless.contains("mcp-session-id"), "{stateless}");

    // Its subscriptions/listen stream is acknowledged, held, and told once signed in.
    let listen = json!({"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
        "params": {"notifications": {"toolsListChanged": true}}});
    let listening = Command::new("curl")
        .args(["-sS", "-N", "--max-time", "20", "-X", "POST", &url])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", "mcp-protocol-version: 2026-07-28"])
        .args(["-d", &listen.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let call = body_of(&post(
        None,
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "sign_in_generic", "arguments": {}}}),
    ));
    assert_eq!(call["result"]["isError"], false, "{call}");
    let stream = listening.wait_with_output().unwrap();
    let stream = String::from_utf8_lossy(&stream.stdout);
    let events: Vec<Value> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events.len(), 3, "{stream}");
    assert_eq!(
        events[0]["method"],
        "notifications/subscriptions/acknowledged"
    );
    assert_eq!(
        events[0]["params"]["notifications"]["toolsListChanged"],
        true
    );
    assert_eq!(events[1]["method"], "notifications/tools/list_changed");
    assert_eq!(
        events[1]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        7
    );
    assert_eq!(
        events[2]["id"], 7,
        "the stream ends with its result: {stream}"
    );
    let log = serve.stop();
    assert!(!log.contains(&secret));
}
