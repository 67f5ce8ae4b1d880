//! `tether stdio` as a command-launching MCP client uses it: JSON-RPC lines in, one message
//! per line out (SSE progress notifications included), a clean end on EOF — with no tether
//! serving the port, so the bridge runs its own engine and proxy.

use crate::support;

use serde_json::Value;

/// Runs a whole session through `tether stdio generic` with the proxy address `bind`:
/// initialize, tools/list, a streaming call, then EOF. Checks every answer and the
/// progress notifications; returns the bridge's stderr.
fn whole_session(home: &support::Home, sim: &support::Sim, bind: &str) -> String {
    let out = support::stdio_session(
        home,
        "generic",
        bind,
        &[
            support::STDIO_INITIALIZE,
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"progress","arguments":{"steps":3},"_meta":{"progressToken":"p"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"text":"\"initialize\""}}}"#,
            // The simulator advertises `logging`; the MCP Inspector sets a level first.
            r#"{"jsonrpc":"2.0","id":5,"method":"logging/setLevel","params":{"level":"warning"}}"#,
            r#"{"jsonrpc":"2.0","id":6,"method":"logging/setLevel","params":{"level":"loud"}}"#,
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let messages: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let by_id = |id: i64| messages.iter().find(|m| m["id"] == id).cloned();
    assert_eq!(
        by_id(1).unwrap()["result"]["serverInfo"]["name"],
        "tether-sim-generic"
    );
    assert!(by_id(2).unwrap()["result"]["tools"].is_array());
    assert_eq!(
        by_id(3).unwrap()["result"]["content"][0]["text"],
        "done: 3 steps"
    );
    assert_eq!(
        by_id(4).unwrap()["result"]["content"][0]["text"],
        "\"initialize\""
    );
    assert_eq!(by_id(5).unwrap()["result"], serde_json::json!({}));
    let refused = by_id(6).unwrap();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("warning"),
        "{refused}"
    );
    let progress = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .count();
    assert_eq!(progress, 3, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stdout.contains("gen_at_") && !stderr.contains("gen_at_"));
    // EOF ended the MCP session at the upstream (DELETE).
    let totals = &sim.stats()["totals"];
    assert_eq!(
        totals["sessions_begun"], totals["sessions_ended"],
        "{totals}"
    );
    assert!(totals["sessions_ended"].as_u64().unwrap() >= 1, "{totals}");
    stderr
}

#[test]
fn the_bridge_carries_a_whole_session() {
    let (home, sim) = support::signed_in("generic");
    // A port no tether serves: the bridge must serve the session itself.
    let stderr = whole_session(&home, &sim, "127.0.0.1:9");
    assert!(
        stderr.contains("serving this session in-process"),
        "{stderr}"
    );
    // Traffic is attributed to the client label.
    let status: Value = home.status("generic");
    assert!(status["downstream_clients"].to_string().contains("desktop"));
}

#[test]
fn the_bridge_goes_through_the_running_tether() {
    let (home, sim) = support::signed_in("generic");
    let serve = support::Serve::start(&home);
    let bind = serve.base.trim_start_matches("http://").to_string();
    let stderr = whole_session(&home, &sim, &bind);
    assert!(
        !stderr.contains("serving this session in-process"),
        "{stderr}"
    );
    // The running tether served it: its log shows the calls, attributed to the client.
    let log = serve.stop();
    support::assert_no_tokens(&log);
    let status: Value = home.status("generic");
    assert!(status["downstream_clients"].to_string().contains("desktop"));
}

/// A message over the proxy's body limit: the client learns why in words it can act on,
/// and no line the bridge prints (to the client or to stderr) carries the endpoint secret.
#[test]
fn a_message_over_the_limit_is_refused_in_words_and_never_shows_the_secret() {
    let (home, _sim) = support::signed_in("generic");
    std::fs::write(
        home.path().join("config.toml"),
        "[proxy]\nmax_body_bytes = 2048\n",
    )
    .unwrap();
    let serve = support::Serve::start(&home);
    let bind = serve.base.trim_start_matches("http://").to_string();
    let secret = support::secret_for(&home, "generic", "desktop");
    let big = "x".repeat(8 * 1024);
    let out = support::stdio_session(
        &home,
        "generic",
        &bind,
        &[
            support::STDIO_INITIALIZE.to_string(),
            format!(
                r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{big}"}}}}}}"#
            ),
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#.to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(&secret),
            "the endpoint secret leaked: {text}"
        );
        assert!(!text.contains("/s/"), "an endpoint path leaked: {text}");
    }
    let messages: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: i64| messages.iter().find(|m| m["id"] == id).cloned().unwrap();
    let refused = by_id(2)["error"]["message"].as_str().unwrap().to_string();
    assert!(
        refused.contains("over the local proxy's limit of 2048 bytes")
            && refused.contains("max_body_bytes"),
        "{refused}"
    );
    // The session goes on.
    assert!(by_id(3)["result"]["tools"].is_array(), "{stdout}");
    drop(serve);
}
