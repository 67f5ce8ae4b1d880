use super::*;
use serde_json::json;

const SECRET: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";

fn upstreams() -> Vec<(String, Url)> {
    vec![(
        "linear".into(),
        Url::parse("https://mcp.linear.app/mcp").unwrap(),
    )]
}

fn kind_of(value: Value) -> (Kind, Option<String>, String) {
    let e = classify(
        Client::Cursor,
        &Found {
            name: "x".into(),
            scope: None,
            value,
        },
        &upstreams(),
    );
    (e.kind, e.connection, e.target)
}

#[test]
fn entries_are_told_apart() {
    let endpoint = format!("http://127.0.0.1:7878/s/{SECRET}/mcp");
    let (kind, _, shown) = kind_of(json!({ "url": endpoint }));
    assert_eq!(kind, Kind::Tether);
    assert_eq!(shown, "http://127.0.0.1:7878/s/Zm9v…/mcp");
    let stdio = json!({"command": "/usr/bin/tether", "args": ["stdio", "linear"]});
    assert_eq!(kind_of(stdio).0, Kind::Tether);
    let direct = json!({"type": "http", "url": "HTTPS://MCP.linear.app:443/mcp/"});
    assert_eq!(kind_of(direct).1.as_deref(), Some("linear"));
    let remote =
        json!({"command": "npx", "args": ["-y", "mcp-remote@0.1", "https://mcp.linear.app/mcp"]});
    let (kind, connection, shown) = kind_of(remote);
    assert_eq!((kind, connection.as_deref()), (Kind::Drift, Some("linear")));
    assert_eq!(shown, "mcp-remote https://mcp.linear.app/mcp");
    let other = json!({"command": "npx", "args": ["-y", "server-memory", "--key", SECRET]});
    assert_eq!(kind_of(other), (Kind::Other, None, "npx …".into()));
    let elsewhere = json!({"url": "https://mcp.linear.app/sse"});
    assert_eq!(kind_of(elsewhere).0, Kind::Other);
}

#[test]
fn every_clients_url_and_command_keys_are_read() {
    for direct in [
        json!({"httpUrl": "https://mcp.linear.app/mcp"}),
        json!({"serverUrl": "https://mcp.linear.app/mcp"}),
        json!({"type": "remote", "url": "https://mcp.linear.app/mcp"}),
        json!({"type": "local", "command": ["npx", "-y", "mcp-remote", "https://mcp.linear.app/mcp"]}),
        json!({"command": {"path": "npx", "args": ["mcp-remote", "https://mcp.linear.app/mcp"]}}),
    ] {
        assert_eq!(kind_of(direct.clone()).0, Kind::Drift, "{direct}");
    }
    // Gemini CLI uses httpUrl over url when both are given.
    let both = json!({"httpUrl": "https://mcp.linear.app/mcp", "url": "http://127.0.0.1:7878/c/linear/mcp"});
    assert_eq!(kind_of(both).0, Kind::Drift);
    let opencode = json!({"type": "local", "command": ["/usr/bin/tether", "stdio", "linear", "--client", "opencode"]});
    let (kind, _, shown) = kind_of(opencode);
    assert_eq!(kind, Kind::Tether);
    assert_eq!(shown, "tether stdio linear --client opencode");
    assert_eq!(
        kind_of(json!({"type": "local", "command": []})).0,
        Kind::Other
    );
    let zed = json!({"command": {"path": "tether", "args": ["stdio", "linear"]}});
    assert_eq!(kind_of(zed).0, Kind::Tether);
}

#[test]
fn project_files_are_read_once_and_fixed_at_user_level() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("work");
    std::fs::create_dir_all(project.join(".github")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let claude = format!(
        r#"{{"projects": {{"{}": {{}}, "relative": {{}}}}}}"#,
        project.display()
    );
    std::fs::write(home.join(".claude.json"), claude).unwrap();
    let direct =
        r#"{"mcpServers": {"lin": {"type": "http", "url": "https://mcp.linear.app/mcp"}}}"#;
    std::fs::write(project.join(".mcp.json"), direct).unwrap();
    std::fs::write(project.join(".github/mcp.json"), direct).unwrap();
    let at = Locations {
        home: home.clone(),
        xdg_config: None,
        codex_home: None,
        copilot_home: None,
        macos: false,
    };
    let mut store = Store::default();
    store.push(crate::vault::Connection::new(
        "linear".parse().unwrap(),
        Url::parse("https://mcp.linear.app/mcp").unwrap(),
        crate::vault::Auth::None,
        chrono::Utc::now(),
    ));
    // Listed by ~/.claude.json and in the current folder: one report, Claude Code's.
    let reports = scan(&at, Some(&project), &store);
    let projects: Vec<_> = reports
        .iter()
        .filter(|r| r.level == Level::Project)
        .collect();
    assert_eq!(projects.len(), 2, "{projects:#?}");
    assert_eq!(projects[0].client, "claude-code");
    assert_eq!(projects[1].client, "copilot");
    let remedy = projects[0].servers[0].remedy.as_deref().unwrap();
    assert_eq!(
        remedy,
        format!(
            "tether config claude-code linear --write, then remove the entry 'lin' from {}",
            project.join(".mcp.json").display()
        )
    );
    // Without the current folder, ~/.claude.json's projects are still read.
    let reports = scan(&at, None, &store);
    assert_eq!(
        reports.iter().filter(|r| r.level == Level::Project).count(),
        1
    );
}

#[test]
fn urls_lose_their_secrets() {
    let shown = mask_url(&format!("https://u:{SECRET}@e.example/mcp?key={SECRET}"));
    assert!(!shown.contains(SECRET), "{shown}");
}
