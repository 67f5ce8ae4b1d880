//! `tether config CLIENT NAME --write` and `tether clients` on real-shaped client config
//! files (tests/fixtures/client-configs): the entry merged in with every other byte kept, a
//! backup identical to the original, the mode kept, a malformed file left alone; and drift
//! told apart from entries that go through tether, secrets masked.

use crate::support;

#[path = "clients/more_clients.rs"]
mod more_clients;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tether_core::clients::document::Document;
use tether_core::clients::{Client, Locations};

use crate::support::{Home, Run};

const UPSTREAM: &str = "https://mcp.linear.app/mcp";

fn fixture(name: &str) -> String {
    let dir = support::repo().join("tests/fixtures/client-configs");
    fs::read_to_string(dir.join(name)).unwrap()
}

/// A home with a connection `linear` to UPSTREAM.
fn home() -> Home {
    let home = Home::new();
    home.run(&["add", "linear", UPSTREAM]).ok();
    home
}

fn locations(home: &Home) -> Locations {
    Locations {
        home: home.user(),
        xdg_config: Some(home.user().join(".config")),
        codex_home: None,
        copilot_home: None,
        macos: false,
    }
}

/// Puts `fixture` where `client` looks for its config, with mode 0644 (others may read it,
/// as most editors leave a new file).
fn install(home: &Home, client: Client, fixture_name: &str) -> PathBuf {
    let path = client.config_file(&locations(home));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, fixture(fixture_name)).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn backups(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    fs::read_dir(path.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.tether-backup-"))
        })
        .collect()
}

/// The secret of `label`'s endpoint, as `tether url` shows it.
fn secret(home: &Home, label: &str) -> String {
    let out = home.run(&["url", "linear", "--client", label]).ok().stdout;
    let at = out.find("/s/").unwrap() + 3;
    out[at..].split('/').next().unwrap().to_string()
}

fn entry(client: Client, path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    Document::parse(client.format(), &text)
        .unwrap()
        .get("linear")
        .unwrap_or_else(|| panic!("no 'linear' entry in:\n{text}"))
}

/// Writes into the installed fixture and checks everything the write promises.
fn round_trip(client: Client, fixture_name: &str) -> (Home, PathBuf, Run) {
    let home = home();
    let path = install(&home, client, fixture_name);
    let original = fs::read_to_string(&path).unwrap();
    let run = home.run(&["config", client.id(), "linear", "--write"]).ok();
    let written = fs::read_to_string(&path).unwrap();
    for line in original.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            written.contains(line.trim_end()) || is_replaced_line(line),
            "{}: lost line {line:?}:\n{written}",
            client.id()
        );
    }
    let backups = backups(&path);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(fs::read_to_string(&backups[0]).unwrap(), original);
    // An entry holding an endpoint secret makes its file private, and says so; a bridge
    // command holds none. Backups are private whatever the original's mode.
    if client.launches_commands_only() {
        assert_eq!(mode(&path), 0o644);
        assert!(!run.stdout.contains("private"), "{}", run.stdout);
    } else {
        assert_eq!(mode(&path), 0o600, "{}", client.id());
        assert!(
            run.stdout.contains("private (mode 0644 → 0600)"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(mode(&backups[0]), 0o600);
    // Twice is the same as once.
    let again = home.run(&["config", client.id(), "linear", "--write"]).ok();
    assert!(again.stdout.contains("nothing changed"), "{}", again.stdout);
    assert_eq!(fs::read_to_string(&path).unwrap(), written);
    assert_eq!(self::backups(&path).len(), 1);
    (home, path, run)
}

/// The Claude Code fixture's own `linear` entry is the one tether replaces.
fn is_replaced_line(line: &str) -> bool {
    line.contains(&format!("\"url\": \"{UPSTREAM}\""))
}

#[test]
fn http_clients_get_their_endpoint_merged_in() {
    for (client, fixture_name) in [
        (Client::Cursor, "cursor.json"),
        (Client::Vscode, "vscode.jsonc"),
        (Client::Codex, "codex.toml"),
    ] {
        let (home, path, run) = round_trip(client, fixture_name);
        let url = format!("http://127.0.0.1:7878/s/{}/mcp", secret(&home, client.id()));
        let e = entry(client, &path);
        assert_eq!(e["url"], url.as_str(), "{}", client.id());
        if client == Client::Vscode {
            assert_eq!(e["type"], "http");
        }
        assert!(run.stdout.contains("Added 'linear'"), "{}", run.stdout);
        assert!(
            !run.stdout.contains(&url),
            "--write shows the secret masked"
        );
    }
}

#[test]
fn an_entry_pointing_elsewhere_is_replaced_after_the_backup() {
    let (home, path, run) = round_trip(Client::ClaudeCode, "claude-code.json");
    assert!(
        run.stdout.contains(&format!(
            "Replaced 'linear' in ~/.claude.json: it pointed at {UPSTREAM}"
        )),
        "{}",
        run.stdout
    );
    let e = entry(Client::ClaudeCode, &path);
    assert_eq!(e["type"], "http");
    let want = format!(
        "http://127.0.0.1:7878/s/{}/mcp",
        secret(&home, "claude-code")
    );
    assert_eq!(e["url"], want.as_str());
}

#[test]
fn claude_desktop_launches_the_stdio_bridge() {
    let (home, path, _) = round_trip(Client::ClaudeDesktop, "claude-desktop.json");
    let e = entry(Client::ClaudeDesktop, &path);
    let command = e["command"].as_str().unwrap();
    assert!(Path::new(command).is_absolute(), "{command}");
    assert!(command.ends_with("/tether"), "{command}");
    assert_eq!(
        e["args"],
        serde_json::json!(["stdio", "linear", "--client", "claude-desktop"])
    );
    assert_eq!(e["env"]["TETHER_HOME"], home.path().display().to_string());
}

#[test]
fn a_missing_file_is_created_private() {
    let home = home();
    let path = home.user().join(".cursor/mcp.json");
    let run = home.run(&["config", "cursor", "linear", "--write"]).ok();
    assert!(
        run.stdout.contains("Created ~/.cursor/mcp.json"),
        "{}",
        run.stdout
    );
    assert_eq!(mode(&path), 0o600);
    assert!(backups(&path).is_empty());
    // --file writes a workspace file instead, with the given label.
    let workspace = home.path().join("project/.vscode/mcp.json");
    home.run(&[
        "config",
        "vscode",
        "linear",
        "--client",
        "vscode-work",
        "--write",
        "--file",
        workspace.to_str().unwrap(),
    ])
    .ok();
    let url = format!(
        "http://127.0.0.1:7878/s/{}/mcp",
        secret(&home, "vscode-work")
    );
    assert_eq!(entry(Client::Vscode, &workspace)["url"], url.as_str());
}

#[test]
fn a_malformed_file_is_left_alone() {
    for (client, fixture_name, line) in [
        (Client::ClaudeCode, "malformed.json", "line 3"),
        (Client::ClaudeDesktop, "malformed.json", "line 3"),
        (Client::Cursor, "malformed.json", "line 3"),
        (Client::Vscode, "malformed.json", "line 3"),
        (Client::Codex, "malformed.toml", "line 2"),
    ] {
        let home = home();
        let path = install(&home, client, fixture_name);
        let before = fs::read(&path).unwrap();
        let run = home.run(&["config", client.id(), "linear", "--write"]);
        assert_eq!(run.status, 1, "{}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
        // Named as the user knows it: under ~.
        let file = path
            .display()
            .to_string()
            .replace(&home.user().display().to_string(), "~");
        assert!(
            run.stderr.contains(&file)
                && run.stderr.contains(line)
                && run.stderr.contains("left unchanged"),
            "{}",
            run.stderr
        );
        assert_eq!(fs::read(&path).unwrap(), before);
        assert!(backups(&path).is_empty());
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}

#[test]
fn printing_the_snippet_writes_nothing() {
    let home = home();
    let run = home.run(&["config", "claude-code", "linear"]).ok();
    let url = format!(
        "http://127.0.0.1:7878/s/{}/mcp",
        secret(&home, "claude-code")
    );
    assert!(
        run.stdout.contains(&format!(
            "claude mcp add --transport http --scope user linear {url}"
        )),
        "{}",
        run.stdout
    );
    let codex = home.run(&["config", "codex", "linear"]).ok().stdout;
    assert!(codex.contains("[mcp_servers.linear]\nurl = \""), "{codex}");
    assert!(!home.user().exists(), "nothing written without --write");
}

#[test]
fn clients_tells_tether_from_drift() {
    let home = home();
    install(&home, Client::Cursor, "cursor.json");
    home.run(&["config", "cursor", "linear", "--write"]).ok();
    install(&home, Client::ClaudeCode, "claude-code.json");
    install(&home, Client::ClaudeDesktop, "claude-desktop.json");
    let codex = install(&home, Client::Codex, "malformed.toml");
    let codex_before = fs::read(&codex).unwrap();
    let secret = secret(&home, "cursor");

    let run = home.run(&["clients", "--json"]);
    assert_eq!(run.status, 1, "drift exits 1: {}", run.stderr);
    assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
    let reports: Value = serde_json::from_str(&run.stdout).unwrap();
    let report = |id: &str| {
        reports
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["client"] == id)
            .unwrap()
            .clone()
    };
    let server = |id: &str, name: &str| {
        report(id)["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {id}"))
            .clone()
    };
    let tethered = server("cursor", "linear");
    assert_eq!(tethered["kind"], "tether");
    assert_eq!(
        tethered["target"],
        format!("http://127.0.0.1:7878/s/{}…/mcp", &secret[..4])
    );
    assert_eq!(server("cursor", "github")["kind"], "other");
    let direct = server("claude-code", "linear");
    assert_eq!(direct["kind"], "drift");
    assert_eq!(direct["connection"], "linear");
    assert_eq!(direct["remedy"], "tether config claude-code linear --write");
    let project = server("claude-code", "linear-here");
    assert_eq!(project["scope"], "/home/me/work");
    assert_eq!(project["kind"], "drift");
    let remote = server("claude-desktop", "linear-remote");
    assert_eq!(remote["kind"], "drift");
    assert_eq!(remote["target"], format!("mcp-remote {UPSTREAM}"));
    assert_eq!(
        remote["remedy"],
        "tether config claude-desktop linear --write, then remove the entry 'linear-remote'"
    );
    assert_eq!(report("vscode")["state"], "missing");
    assert_eq!(report("codex")["state"], "unreadable");
    assert_eq!(fs::read(&codex).unwrap(), codex_before, "never modified");

    let text = home.run(&["clients"]);
    assert_eq!(text.status, 1);
    assert!(!text.stdout.contains(&secret));
    assert!(text.stdout.contains("drift"), "{}", text.stdout);
    assert!(text.stderr.contains("3 client entries"), "{}", text.stderr);
}

#[test]
fn no_drift_exits_zero() {
    let home = home();
    install(&home, Client::Cursor, "cursor.json");
    home.run(&["config", "cursor", "linear", "--write"]).ok();
    let run = home.run(&["clients"]).ok();
    assert!(run.stdout.contains("tether"), "{}", run.stdout);
}

/// The entry written for Claude Desktop works as Claude Desktop runs it: its command, args
/// and env alone (no test environment) carry an MCP session to the upstream.
#[test]
fn the_claude_desktop_entry_runs_a_session() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let (home, _sim) = support::signed_in("generic");
    home.run(&["config", "claude-desktop", "generic", "--write"])
        .ok();
    let path = Client::ClaudeDesktop.config_file(&locations(&home));
    let text = fs::read_to_string(&path).unwrap();
    let e = Document::parse(Client::ClaudeDesktop.format(), &text)
        .unwrap()
        .get("generic")
        .unwrap();
    let args: Vec<&str> = e["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let mut child = Command::new(e["command"].as_str().unwrap())
        .args(args)
        .env_clear()
        .env("HOME", home.user())
        .envs(
            e["env"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        )
        // No tether serves this port: the bridge serves the session itself.
        .env("TETHER_BIND", "127.0.0.1:9")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"desktop","version":"1"}}}}}}"#
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let reply: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(reply["result"]["serverInfo"]["name"], "tether-sim-generic");
}
