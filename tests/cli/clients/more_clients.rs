//! The clients beyond the first five — Gemini CLI, Qwen Code, opencode, Copilot CLI,
//! Windsurf, Zed — through the binary: `config X linear --write` merges each one's own entry
//! shape into a real-shaped file (tests/fixtures/client-configs) with the same promises as
//! the others; `tether clients` reads their files, and the project files Claude Code,
//! Copilot CLI and Gemini CLI read, for drift. Also the Claude Desktop warning and the stdio
//! bridge's error when the vault key lives only in the shell's environment.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::{Value, json};
use tether_core::clients::Client;

use super::{UPSTREAM, entry, home, install, round_trip, secret};
use crate::support::{Home, Run};

/// The entry a client should get for an endpoint URL.
type Want = fn(&str) -> Value;

/// Each new client, its fixture, and the entry it should get.
fn cases() -> Vec<(Client, &'static str, Want)> {
    vec![
        (
            Client::Gemini,
            "gemini.json",
            |u| json!({"type": "http", "url": u}),
        ),
        (Client::Qwen, "qwen.json", |u| json!({"httpUrl": u})),
        (
            Client::Opencode,
            "opencode.jsonc",
            |u| json!({"type": "remote", "url": u}),
        ),
        (
            Client::Copilot,
            "copilot.json",
            |u| json!({"type": "http", "url": u, "tools": ["*"]}),
        ),
        (
            Client::Windsurf,
            "windsurf.json",
            |u| json!({"serverUrl": u}),
        ),
        (Client::Zed, "zed.json", |u| json!({"url": u})),
    ]
}

#[test]
fn new_clients_get_their_entry_merged_in() {
    for (client, fixture, want) in cases() {
        // Lines kept, one private backup equal to the original, the file made 0600 and
        // said so, and a second run changing nothing: checked by round_trip.
        let (home, path, run) = round_trip(client, fixture);
        let url = format!("http://127.0.0.1:7878/s/{}/mcp", secret(&home, client.id()));
        assert_eq!(entry(client, &path), want(&url), "{}", client.id());
        assert!(run.stdout.contains("Added 'linear'"), "{}", run.stdout);
        assert!(
            !run.stdout.contains(&url),
            "--write shows the secret masked"
        );
    }
}

#[test]
fn jsonc_comments_and_qwens_version_survive() {
    let (_home, path, _) = round_trip(Client::Opencode, "opencode.jsonc");
    let written = fs::read_to_string(&path).unwrap();
    for comment in [
        "// opencode: my settings\n",
        "// the dark one\n",
        "/* straight to Linear, from before tether */",
    ] {
        assert!(written.contains(comment), "lost {comment:?}:\n{written}");
    }
    let (_home, path, _) = round_trip(Client::Qwen, "qwen.json");
    let written = fs::read_to_string(&path).unwrap();
    assert!(
        written.starts_with("{\n  \"$version\": 2,\n"),
        "Qwen's $version moved:\n{written}"
    );
}

#[test]
fn opencode_json_is_edited_when_it_is_the_one_there() {
    let home = home();
    let dir = home.user().join(".config/opencode");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("opencode.json"), "{\"theme\": \"system\"}\n").unwrap();
    let run = home.run(&["config", "opencode", "linear", "--write"]).ok();
    assert!(
        run.stdout.contains("to ~/.config/opencode/opencode.json."),
        "{}",
        run.stdout
    );
    assert!(!dir.join("opencode.jsonc").exists());
    assert_eq!(
        entry(Client::Opencode, &dir.join("opencode.json"))["type"],
        "remote"
    );
}

#[test]
fn gemini_says_where_its_entry_applies() {
    let home = home();
    let run = home.run(&["config", "gemini", "linear"]).ok();
    assert!(
        run.stdout.contains("Add this to ~/.gemini/settings.json"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("only in a folder you trust") && run.stdout.contains("0644"),
        "{}",
        run.stdout
    );
    let written = home.run(&["config", "gemini", "linear", "--write"]).ok();
    assert!(
        written.stdout.contains("(`gemini trust`)"),
        "{}",
        written.stdout
    );
    // Without --write nothing was written; with it the file is new and private.
    assert!(written.stdout.contains("Created ~/.gemini/settings.json"));
}

/// The JSON of `tether clients --json` run in `folder`, and how it ended.
fn clients_in(home: &Home, folder: &Path) -> (Run, Vec<Value>) {
    let out = home
        .cmd()
        .args(["clients", "--json"])
        .current_dir(folder)
        .output()
        .unwrap();
    let run = Run::of(out);
    let reports = serde_json::from_str::<Value>(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr))
        .as_array()
        .unwrap()
        .clone();
    (run, reports)
}

fn server<'a>(reports: &'a [Value], client: &str, file_end: &str, name: &str) -> &'a Value {
    reports
        .iter()
        .filter(|r| r["client"] == client && r["file"].as_str().unwrap().ends_with(file_end))
        .flat_map(|r| r["servers"].as_array().unwrap())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} for {client} in {file_end}: {reports:#?}"))
}

#[test]
fn clients_reads_every_new_clients_file() {
    let home = home();
    for (client, fixture, _) in cases() {
        install(&home, client, fixture);
        home.run(&["config", client.id(), "linear", "--write"]).ok();
    }
    let (run, reports) = clients_in(&home, home.path());
    assert_eq!(run.status, 1, "drift exits 1: {}", run.stderr);
    for (client, _, _) in cases() {
        let id = client.id();
        let file = client.config_file(&super::locations(&home));
        let file_end = file.file_name().unwrap().to_str().unwrap();
        let tethered = server(&reports, id, file_end, "linear");
        assert_eq!(tethered["kind"], "tether", "{id}: {tethered}");
        let direct = server(&reports, id, file_end, "linear-direct");
        assert_eq!(direct["kind"], "drift", "{id}: {direct}");
        assert_eq!(direct["connection"], "linear");
        assert_eq!(
            direct["remedy"],
            format!("tether config {id} linear --write, then remove the entry 'linear-direct'")
        );
    }
    // opencode's local form running `tether stdio` goes through tether.
    let local = server(&reports, "opencode", "opencode.jsonc", "linear-local");
    assert_eq!(local["kind"], "tether");
    assert_eq!(local["target"], "tether stdio linear --client opencode");
    assert!(
        run.stderr.contains("6 client entries still talk"),
        "{}",
        run.stderr
    );
}

#[test]
fn project_files_are_read_for_drift() {
    let home = home();
    let direct = format!(r#"{{"mcpServers": {{"lin": {{"type": "http", "url": "{UPSTREAM}"}}}}}}"#);
    // A project Claude Code lists in ~/.claude.json, not the current folder.
    let listed = home.path().join("listed");
    fs::create_dir_all(&listed).unwrap();
    fs::write(listed.join(".mcp.json"), &direct).unwrap();
    fs::create_dir_all(home.user()).unwrap();
    let claude = json!({"projects": {listed.display().to_string(): {"mcpServers": {}}}});
    fs::write(home.user().join(".claude.json"), claude.to_string()).unwrap();
    // The current folder: .mcp.json (Claude Code's and Copilot CLI's alike, shown once),
    // Copilot CLI's .github/mcp.json and Gemini CLI's .gemini/settings.json.
    let here = home.path().join("here");
    for file in [".mcp.json", ".github/mcp.json", ".gemini/settings.json"] {
        let path = here.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &direct).unwrap();
    }
    let (run, reports) = clients_in(&home, &here);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let projects: Vec<(&str, &str)> = reports
        .iter()
        .filter(|r| r["level"] == "project")
        .map(|r| (r["client"].as_str().unwrap(), r["file"].as_str().unwrap()))
        .collect();
    let shown = |p: &Path| p.display().to_string();
    assert_eq!(
        projects,
        [
            ("claude-code", shown(&here.join(".mcp.json")).as_str()),
            ("claude-code", shown(&listed.join(".mcp.json")).as_str()),
            (
                "gemini",
                shown(&here.join(".gemini/settings.json")).as_str()
            ),
            ("copilot", shown(&here.join(".github/mcp.json")).as_str()),
        ]
    );
    let lin = server(&reports, "claude-code", "listed/.mcp.json", "lin");
    assert_eq!(lin["kind"], "drift");
    // The fix never puts the endpoint secret into a project file, which may be shared.
    assert_eq!(
        lin["remedy"],
        format!(
            "tether config claude-code linear --write, then remove the entry 'lin' from {}",
            listed.join(".mcp.json").display()
        )
    );
    assert!(run.stderr.contains("4 client entries"), "{}", run.stderr);
    let text = Run::of(
        home.cmd()
            .arg("clients")
            .current_dir(&here)
            .output()
            .unwrap(),
    );
    assert!(
        text.stdout.contains(&format!(
            "Gemini CLI  {} (project file)",
            shown(&here.join(".gemini/settings.json"))
        )),
        "{}",
        text.stdout
    );
}

#[test]
fn a_file_entry_name_cannot_write_to_the_terminal() {
    let home = home();
    let path = install(&home, Client::Windsurf, "windsurf.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"linear-direct\"", "\"evil\\u001b]52;c;aGk=\\u0007\"");
    fs::write(&path, text).unwrap();
    let run = home.run(&["clients"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(!run.stdout.contains('\u{1b}'), "{:?}", run.stdout);
    assert!(run.stdout.contains("evil\\x1b]52"), "{}", run.stdout);
}

const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

/// A home whose vault key is only in TETHER_VAULT_KEY, with connection `linear`.
fn env_key_home() -> Home {
    let home = Home::new();
    let mut add = home.cmd();
    add.args(["add", "linear", UPSTREAM])
        .env("TETHER_KEY_SOURCE", "env")
        .env("TETHER_VAULT_KEY", KEY);
    Run::of(add.output().unwrap()).ok();
    assert!(!home.path().join("vault.key").exists());
    home
}

#[test]
fn claude_desktop_warns_when_the_key_is_only_in_the_environment() {
    let home = env_key_home();
    let run = Run::of(
        home.cmd()
            .args(["config", "claude-desktop", "linear", "--write"])
            .env_remove("TETHER_KEY_SOURCE")
            .env("TETHER_VAULT_KEY", KEY)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(
        run.stderr
            .contains("Claude Desktop starts `tether stdio` without your shell's environment")
            && run.stderr.contains("TETHER_VAULT_KEY environment variable")
            && run
                .stderr
                .contains(&format!("> '{}'", home.path().join("vault.key").display())),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(KEY) && !run.stdout.contains(KEY));
    // With the key in the key file, as the warning says, no warning.
    let key_file = home.path().join("vault.key");
    fs::write(&key_file, format!("{KEY}\n")).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let again = Run::of(
        home.cmd()
            .args(["config", "claude-desktop", "linear"])
            .env_remove("TETHER_KEY_SOURCE")
            .env("TETHER_VAULT_KEY", KEY)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(!again.stderr.contains("warning"), "{}", again.stderr);
}

#[test]
fn the_stdio_bridge_names_the_missing_key_and_the_fix() {
    let home = env_key_home();
    // As Claude Desktop starts it: no TETHER_VAULT_KEY, no TETHER_KEY_SOURCE.
    let out = home
        .cmd()
        .args(["stdio", "linear", "--client", "claude-desktop"])
        .env_remove("TETHER_KEY_SOURCE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let run = Run::of(out);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("its key is not in")
            && run
                .stderr
                .contains("tether stdio has no TETHER_VAULT_KEY here")
            && run.stderr.contains("Claude Desktop")
            && run
                .stderr
                .contains(&home.path().join("vault.key").display().to_string()),
        "{}",
        run.stderr
    );
}
