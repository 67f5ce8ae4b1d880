//! `tether demo --headless` as a newcomer runs it: six simulated providers come up on
//! loopback, each with a connection in a throwaway vault that is gone after SIGTERM.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn headless_demo_starts_six_providers_and_cleans_up() {
    let mut child = Command::new(support::bin())
        .args(["demo", "--headless"])
        .env_remove("TETHER_HOME")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut urls = Vec::new();
    let mut endpoints = Vec::new();
    let mut vault = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("ready") {
            break;
        }
        if let Some(path) = line.strip_prefix("vault: ") {
            vault = Some(std::path::PathBuf::from(path));
        }
        if let Some((state, endpoint)) = line.split_once("local endpoint: ") {
            endpoints.push((state.to_string(), endpoint.trim().to_string()));
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() > 2 && fields[1].starts_with("http://127.0.0.1:") {
            urls.push((fields[0].to_string(), fields[1].to_string()));
        }
    }
    let names: Vec<&str> = urls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "linear",
            "github",
            "notion",
            "todoist",
            "atlassian",
            "generic"
        ]
    );
    let vault = vault.expect("the demo names its vault");
    assert!(vault.exists());

    // Each provider is live and asks for OAuth, as its real counterpart would.
    let http = reqwest::Client::new();
    for (name, url) in &urls {
        let res = http
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{name}");
        let challenge = res.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("resource_metadata="),
            "{name}: {challenge}"
        );
    }

    // Each connection is signed in and served on a local endpoint of the demo's proxy.
    assert_eq!(endpoints.len(), 6, "{endpoints:?}");
    for (line, endpoint) in &endpoints {
        assert!(line.contains("healthy"), "not signed in: {line}");
        assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
        let res = http
            .post(endpoint)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{line}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(body["result"]["tools"].is_array(), "{line}: {body}");
    }

    // The throwaway vault holds one OAuth connection per provider.
    let home = vault.parent().unwrap();
    let list = Command::new(support::bin())
        .args(["list", "--json"])
        .env("TETHER_HOME", home)
        .env("TETHER_KEY_SOURCE", "file")
        .output()
        .unwrap();
    assert!(list.status.success(), "{list:?}");
    let json: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 6);
    assert!(
        json.as_array()
            .unwrap()
            .iter()
            .all(|c| c["auth"] == "oauth")
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!home.exists(), "the throwaway folder outlived the demo");
}

#[test]
fn a_bad_time_scale_is_named() {
    let home = support::Home::new();
    let out = home.run(&["demo", "--headless", "--time-scale", "0.5"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("'0.5'"), "{}", out.stderr);
}
