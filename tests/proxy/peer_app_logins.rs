//! Logins the MCP client applications made themselves, taken over by `tether import`. Each
//! application signs in to a `tether sim` on its own — its registration, its OAuth, the
//! stand-in browser, its own store on file — headless where it can (Codex, opencode), and
//! where its sign-in lives only in its interactive UI (Claude Code, Gemini CLI, Qwen Code,
//! Copilot CLI) in a terminal of its own, driven by keys as a user would. Then `tether
//! import` reads that store: no new registration or sign-in at the server, the next refresh
//! made with the application's client, calls through tether's endpoint answered for that
//! client, no token in what tether prints, and the application's files left as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::peer_apps::{app_in, finish, require};
use crate::support::tmux::{self, Session};
use crate::support::{self, Home, Serve, Sim, assert_no_tokens, secret_for};

/// What an application's own login looks like to `tether import`.
struct Made {
    /// `tether import TOOL`.
    tool: &'static str,
    /// Where the application keeps its logins, under the user's home: a file, or Copilot
    /// CLI's folder.
    store: &'static str,
    /// The connection the login becomes: the application's name for the server, or (Copilot
    /// CLI names none in its store) one made from the server's host.
    name: &'static str,
    /// Whether the store says which authorization server the client came from (else the
    /// import says it could not check).
    issuer_recorded: bool,
}

/// `sign_in` has the application sign in to the server of `sim` by itself, under `home`'s
/// user folder, and end. `tether import` then takes that login over as `made` says.
fn imports_a_login_the_app_made(made: &Made, sign_in: impl FnOnce(&Home, &Sim)) {
    let sim = Sim::start("linear", "1");
    let home = Home::new();
    std::fs::create_dir_all(home.user()).unwrap();
    sign_in(&home, &sim);
    let store = home.user().join(made.store);
    let written = contents(&store);
    assert!(!written.is_empty(), "no login was kept at {store:?}");
    // (opencode registers twice as it signs in: the counts are the application's own.)
    let before = sim.stats()["totals"].clone();
    assert_eq!(before["authorizations"], 1, "{before}");

    let imported = home.run(&["import", made.tool]).ok();
    assert!(
        imported
            .stdout
            .contains(&format!("imported as '{}'", made.name)),
        "{}",
        imported.stdout
    );
    assert_eq!(
        !imported
            .stdout
            .contains("does not say which authorization server"),
        made.issuer_recorded,
        "{}",
        imported.stdout
    );
    assert_eq!(home.status(made.name)["state"], "healthy");
    let refreshed = home.run(&["refresh", made.name]).ok();
    assert!(
        refreshed.stdout.contains("generation 2"),
        "{}",
        refreshed.stdout
    );
    for printed in [&imported.stdout, &imported.stderr, &refreshed.stdout] {
        assert_no_tokens(printed);
    }
    let after = sim.stats()["totals"].clone();
    assert_eq!(
        after["registrations"], before["registrations"],
        "no new registration: {after}"
    );
    assert_eq!(after["authorizations"], 1, "no new sign-in: {after}");
    assert_eq!(after["refresh_grants"], 1, "{after}");

    let serve = Serve::start(&home);
    let secret = secret_for(&home, made.name, "test-client");
    let who = whoami(&format!("{}/s/{secret}/mcp", serve.base));
    let client = who["client_id"].as_str().unwrap_or_default();
    assert!(
        !client.is_empty()
            && written
                .values()
                .any(|f| support::contains(f, client.as_bytes())),
        "the server saw client {who}, not the one in the application's store"
    );
    assert_eq!(
        contents(&store),
        written,
        "the application's files are untouched"
    );
}

/// Every file at `path` (the file itself, or each one under the folder) and its bytes.
fn contents(path: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let files = if path.is_dir() {
        support::files_under(path)
    } else if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        Vec::new()
    };
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect()
}

/// The simulator's `whoami` tool called through tether's endpoint `url`: which client and
/// scope the upstream saw.
fn whoami(url: &str) -> Value {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}});
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "30", url])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", "mcp-protocol-version: 2026-07-28"])
        .args(["-H", "mcp-method: tools/call", "-H", "mcp-name: whoami"])
        .args(["-d", &call.to_string()])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    answer["result"]["structuredContent"].clone()
}

/// Codex 0.171 records the issuer too: the import checks it instead of noting it unknown.
#[test]
fn a_login_codex_made_itself_is_imported_without_a_new_sign_in() {
    if require("@openai/codex").is_none() {
        return;
    }
    let made = Made {
        tool: "codex",
        store: ".codex/.credentials.json",
        name: "srv",
        issuer_recorded: true,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        headless(home, "codex", &["mcp", "add", "srv", "--url", &sim.mcp_url]);
    });
}

/// opencode's `mcp auth` signs in headless; its store keeps `expiresAt` in fractional seconds.
#[test]
fn a_login_opencode_made_itself_is_imported_without_a_new_sign_in() {
    if require("opencode-ai").is_none() {
        return;
    }
    let made = Made {
        tool: "opencode",
        store: ".local/share/opencode/mcp-auth.json",
        name: "srv",
        issuer_recorded: false,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        let config = json!({"mcp": {"srv": {"type": "remote", "url": sim.mcp_url}}});
        write_json(
            &home.user().join(".config/opencode/opencode.jsonc"),
            &config,
        );
        headless(home, "opencode", &["mcp", "auth", "srv"]);
    });
}

/// Claude Code signs in to a server only from its `/mcp` menu: the server, then
/// Authenticate. Its store names the server's URL and its authorization server.
#[test]
fn a_login_claude_code_made_in_its_mcp_menu_is_imported_without_a_new_sign_in() {
    if require("@anthropic-ai/claude-code").is_none() || !tmux::available() {
        return;
    }
    let made = Made {
        tool: "claude-code",
        store: ".claude/.credentials.json",
        name: "srv",
        issuer_recorded: true,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        // An API key it has already approved, and this folder trusted: no onboarding, no
        // sign-in to Anthropic (which is not reachable here).
        let key = "sk-ant-api03-tether-test-key-0000000000000000";
        let user = home.user();
        let config = json!({
            "hasCompletedOnboarding": true,
            "customApiKeyResponses": {"approved": [&key[key.len() - 20..]], "rejected": []},
            "projects": {user.display().to_string(): {"hasTrustDialogAccepted": true}},
            "mcpServers": {"srv": {"type": "http", "url": sim.mcp_url}},
        });
        write_json(&user.join(".claude.json"), &config);
        let mut claude = app_in(home, "claude");
        claude.env("ANTHROPIC_API_KEY", key);
        let ui = terminal("claude-code", home, claude);
        ui.wait_for("run /mcp", UI_PATIENCE);
        command(&ui, "/mcp");
        ui.wait_for("needs sign-in", UI_PATIENCE);
        ui.keys(&["Enter"]);
        ui.wait_for("Authenticate", UI_PATIENCE);
        ui.keys(&["Enter"]);
        ui.wait_for("Signed in and connected to srv", UI_PATIENCE);
        ui.close();
    });
}

/// Gemini CLI signs in to a server with `/mcp auth NAME`, after asking whether to open the
/// browser, which it does with `xdg-open` whatever `$BROWSER` says.
#[test]
fn a_login_gemini_cli_made_with_mcp_auth_is_imported_without_a_new_sign_in() {
    if require("@google/gemini-cli").is_none() || !tmux::available() {
        return;
    }
    let made = Made {
        tool: "gemini",
        store: ".gemini/mcp-oauth-tokens.json",
        name: "srv",
        issuer_recorded: true,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        let settings = home.user().join(".gemini/settings.json");
        write_json(&settings, &gemini_settings("gemini-api-key", &sim.mcp_url));
        let mut gemini = app_in(home, "gemini");
        gemini.env("GEMINI_API_KEY", "tether-test-key");
        let ui = terminal("gemini-cli", home, gemini);
        ui.wait_for("Type your message", UI_PATIENCE);
        command(&ui, "/mcp auth srv");
        ui.wait_for("Do you want to continue?", UI_PATIENCE);
        ui.keys(&["Enter"]);
        ui.wait_for(
            "Successfully authenticated with MCP server 'srv'",
            UI_PATIENCE,
        );
        ui.close();
    });
}

/// Qwen Code 0.24 moved its sign-in from `/mcp auth NAME` to the `/mcp` dialog: the server,
/// then Authenticate. A model provider is configured (never reached) so it starts without
/// its provider setup.
#[test]
fn a_login_qwen_code_made_in_its_mcp_dialog_is_imported_without_a_new_sign_in() {
    if require("@qwen-code/qwen-code").is_none() || !tmux::available() {
        return;
    }
    let made = Made {
        tool: "qwen",
        store: ".qwen/mcp-oauth-tokens.json",
        name: "srv",
        issuer_recorded: true,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        let mut settings = gemini_settings("openai", &sim.mcp_url);
        settings["model"] = json!({"name": "stand-in"});
        write_json(&home.user().join(".qwen/settings.json"), &settings);
        let mut qwen = app_in(home, "qwen");
        qwen.env("OPENAI_API_KEY", "tether-test-key")
            .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1");
        let ui = terminal("qwen-code", home, qwen);
        ui.wait_for("Type your message", UI_PATIENCE);
        command(&ui, "/mcp");
        ui.wait_for("needs authentication", UI_PATIENCE);
        ui.keys(&["Enter"]);
        ui.wait_for("Authenticate", UI_PATIENCE);
        for _ in 0..5 {
            if ui.capture().contains("› Authenticate") {
                break;
            }
            ui.keys(&["Down"]);
        }
        ui.keys(&["Enter"]);
        ui.wait_for("Re-authenticate", UI_PATIENCE);
        ui.close();
    });
}

/// Copilot CLI signs in to a server that asks for OAuth as soon as it connects to it, which
/// it does on starting in a folder the user trusts. Offline, with a model provider
/// configured (never reached), it starts without a GitHub login.
#[test]
fn a_login_copilot_cli_made_on_starting_is_imported_without_a_new_sign_in() {
    if require("@github/copilot").is_none() || !tmux::available() {
        return;
    }
    let made = Made {
        tool: "copilot",
        store: ".copilot/mcp-oauth-config",
        name: "local",
        issuer_recorded: true,
    };
    imports_a_login_the_app_made(&made, |home, sim| {
        let config =
            json!({"mcpServers": {"srv": {"type": "http", "url": sim.mcp_url, "tools": ["*"]}}});
        write_json(&home.user().join(".copilot/mcp-config.json"), &config);
        let mut copilot = app_in(home, "copilot");
        copilot
            .env("COPILOT_OFFLINE", "true")
            .env("COPILOT_PROVIDER_BASE_URL", "http://127.0.0.1:9/v1")
            .env("COPILOT_MODEL", "stand-in");
        let ui = terminal("copilot-cli", home, copilot);
        ui.wait_for("Do you trust the files in this folder?", UI_PATIENCE);
        ui.keys(&["Enter"]);
        ui.wait_for("1 server connected", UI_PATIENCE);
        ui.close();
    });
}

/// How long an application's UI may take to show what the test waits for.
const UI_PATIENCE: Duration = Duration::from_secs(60);

/// Runs the application `bin` with `args` to its end, the stand-in browser as `$BROWSER`.
fn headless(home: &Home, bin: &str, args: &[&str]) {
    let mut cmd = app_in(home, bin);
    cmd.env("BROWSER", support::browser()).args(args);
    let out = finish(&mut cmd);
    assert!(out.status.success(), "{bin} signing in: {out:?}");
}

/// The application `cmd` in a terminal of its own, 200×50, as a terminal emulator runs it;
/// the stand-in browser is both `$BROWSER` and the `xdg-open` it finds first on its `PATH`.
fn terminal(test: &str, home: &Home, mut cmd: Command) -> Session {
    let opener = home.path().join("opener");
    std::fs::create_dir_all(&opener).unwrap();
    let xdg_open = opener.join("xdg-open");
    if !xdg_open.exists() {
        std::os::unix::fs::symlink(support::browser(), &xdg_open).unwrap();
    }
    let path = cmd
        .get_envs()
        .find(|(k, _)| *k == "PATH")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", opener.display()))
        .env("BROWSER", support::browser())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR");
    tmux::program(test, (200, 50), &cmd).expect("tmux is installed")
}

/// Types slash command `text` at the application's prompt and, once it shows, enters it.
fn command(ui: &Session, text: &str) {
    ui.type_text(text);
    ui.wait_for(text, UI_PATIENCE);
    ui.keys(&["Enter"]);
}

/// Settings for Gemini CLI or Qwen Code: updates and usage statistics off, `auth` as the
/// model provider's kind, and server `srv` at `url`.
fn gemini_settings(auth: &str, url: &str) -> Value {
    json!({
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
        "privacy": {"usageStatisticsEnabled": false},
        "security": {"auth": {"selectedType": auth}},
        "mcpServers": {"srv": {"httpUrl": url}},
    })
}

fn write_json(path: &Path, value: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}
