//! `tether rename`: a connection keeps its grant, registrations, history and every
//! client's endpoint secret under its new name, a running tether serves it at once, and
//! each wrong rename says what is wrong and changes nothing.

use std::process::Command;

use serde_json::Value;

use crate::support::{Home, Serve, secret_for, signed_in};

/// `tools/list` through a path endpoint with curl; the HTTP status.
fn call(endpoint: &str) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", "mcp-protocol-version: 2026-07-28"])
        .args(["-H", "mcp-method: tools/list"])
        .args([
            "--data",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ])
        .arg(endpoint)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn names(home: &Home) -> Vec<String> {
    let list: Value = serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_renamed_connection_keeps_its_grant_and_its_clients_secrets() {
    let (home, _sim) = signed_in("generic");
    home.run(&["refresh", "generic"]).ok();
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    assert_eq!(call(&endpoint), "200");
    let before = home.status("generic");

    let out = home.run(&["rename", "generic", "work"]).ok();
    assert!(
        out.stdout
            .contains("Renamed connection 'generic' to 'work'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("cursor") && out.stdout.contains("tether config CLIENT work --write"),
        "{}",
        out.stdout
    );
    assert_eq!(names(&home), ["work"]);

    // The same grant, client and history, one event longer; the same secret for the client.
    let after = home.status("work");
    assert_eq!(after["auth"], before["auth"]);
    let history = after["history"].as_array().unwrap();
    assert_eq!(
        history.len(),
        before["history"].as_array().unwrap().len() + 1
    );
    assert!(
        history.iter().any(|e| e["kind"] == "renamed"),
        "{history:?}"
    );
    assert_eq!(secret_for(&home, "work", "cursor"), secret);
    // The refresh high-water mark moved with it.
    let locks = home.path().join("locks");
    assert!(locks.join("work.mark").exists());
    assert!(!locks.join("generic.mark").exists());

    // The running tether serves the renamed connection through the same endpoint, and the
    // grant still refreshes under the new name.
    let mut status = String::new();
    for _ in 0..100 {
        status = call(&endpoint);
        if status == "200" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(status, "200");
    home.run(&["refresh", "work"]).ok();
    serve.stop();
}

#[test]
fn a_wrong_rename_says_why_and_changes_nothing() {
    let home = Home::new();
    home.run(&["add", "linear", "https://mcp.linear.app/mcp"])
        .ok();
    home.run(&["add", "notion", "https://mcp.notion.com/mcp"])
        .ok();
    let vault = std::fs::read(home.vault_file()).unwrap();
    for (args, says) in [
        (
            ["rename", "linear", "notion"],
            "a connection named 'notion' already exists",
        ),
        (
            ["rename", "jira", "atlassian"],
            "no connection named 'jira' (known: linear, notion)",
        ),
        (
            ["rename", "linear", "Linear!"],
            "connection name 'Linear!' is not valid",
        ),
        (
            ["rename", "linear", "linear"],
            "'linear' is already the connection's name",
        ),
    ] {
        let out = home.run(&args);
        assert_eq!(out.status, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
    assert_eq!(std::fs::read(home.vault_file()).unwrap(), vault);
    assert_eq!(names(&home), ["linear", "notion"]);
}
