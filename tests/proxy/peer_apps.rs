//! The real MCP client applications, pinned in `tests/peers` (Claude Code, Codex, Gemini CLI,
//! Qwen Code, opencode, Copilot CLI): `tether config CLIENT NAME --write` into a throwaway
//! home, then the application's own non-interactive check connects through `tether serve`
//! to a `tether sim`; and the application's own `mcp add` of the upstream is flagged as drift
//! by `tether clients`. Every application runs offline: its home is the test's, its
//! auto-updater and telemetry are off, and nothing but 127.0.0.1 is reachable.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::site::{Reply, Site};
use crate::support::{self, Home, Serve, Sim, peers, signed_in};

/// How long one application command may take before the test gives up on it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A signed-in home with `tether serve` running for connection `generic`, and the
/// simulator behind it.
struct Setup {
    home: Home,
    sim: Sim,
    serve: Serve,
}

impl Setup {
    fn new() -> Self {
        let (home, sim) = signed_in("generic");
        std::fs::create_dir_all(home.user()).unwrap();
        let serve = Serve::start(&home);
        Self { home, sim, serve }
    }

    /// `tether config CLIENT generic --write`; the entry points at the running tether.
    fn config(&self, client: &str) {
        self.home
            .run(&["config", client, "generic", "--write"])
            .ok();
    }

    /// [`app_in`] this setup's home.
    fn app(&self, bin: &str) -> Command {
        app_in(&self.home, bin)
    }

    /// Runs `cmd` to its end (killed after [`PATIENCE`]) and returns what it printed on
    /// stdout and on stderr (Gemini CLI lists its servers there).
    fn output(&self, cmd: &mut Command) -> (String, String) {
        let out = finish(cmd);
        let stdout = plain(&String::from_utf8_lossy(&out.stdout));
        let stderr = plain(&String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success(),
            "{cmd:?} failed ({:?}):\n{}\n{}",
            out.status,
            masked(&stdout),
            masked(&stderr)
        );
        (stdout, stderr)
    }

    /// The application's own `mcp add` of the upstream URL (run as `cmd` with `args`, the
    /// URL appended) is seen by `tether clients` as drift for connection `generic`.
    fn assert_drift_after(&self, client: &str, mut cmd: Command, args: &[&str]) {
        self.output(cmd.args(args).arg(&self.sim.mcp_url).stdin(Stdio::null()));
        let out = self
            .home
            .cmd()
            .args(["clients", "--json"])
            .current_dir(self.home.user())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "drift exits 1");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let servers = report
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["client"] == client)
            .flat_map(|c| c["servers"].as_array().unwrap().clone())
            .collect::<Vec<_>>();
        let kind = |name: &str| {
            servers
                .iter()
                .find(|s| s["name"] == name)
                .map(|s| (s["kind"].clone(), s["connection"].clone()))
        };
        assert_eq!(
            kind("generic").map(|k| k.0),
            Some(json!("tether")),
            "{servers:?}"
        );
        assert_eq!(
            kind("upstream"),
            Some((json!("drift"), json!("generic"))),
            "{servers:?}"
        );
    }

    /// The line of `listing` that names server `generic`, with its URL checked to be the
    /// running tether's.
    fn line_for_generic<'a>(&self, listing: &'a str) -> &'a str {
        let line = listing
            .lines()
            .find(|l| l.contains("generic") && l.contains("/s/"))
            .unwrap_or_else(|| panic!("no 'generic' entry:\n{}", masked(listing)));
        assert!(line.contains(&self.serve.base), "{}", masked(line));
        line
    }
}

/// Application `bin` from `tests/peers` with only this home's environment: none of the
/// developer's API keys or config folders, updaters and telemetry off, Node 22 first on
/// `PATH`, run in the home (a folder it has never seen).
pub(crate) fn app_in(home: &Home, bin: &str) -> Command {
    let user = home.user();
    let bins = peers::dir().join("node_modules/.bin");
    let mut cmd = Command::new(bins.join(bin));
    cmd.env_clear()
        .current_dir(&user)
        .env(
            "PATH",
            format!("{}:/usr/local/bin:/usr/bin:/bin", bins.display()),
        )
        .env("HOME", &user)
        .env("XDG_CONFIG_HOME", user.join(".config"))
        .env("XDG_DATA_HOME", user.join(".local/share"))
        .env("XDG_CACHE_HOME", user.join(".cache"))
        .env("XDG_STATE_HOME", user.join(".local/state"))
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .env("LANG", "C.UTF-8")
        // Claude Code
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_TELEMETRY", "1")
        // Gemini CLI, Qwen Code: a home folder is not a trusted workspace by default.
        .env("GEMINI_CLI_TRUST_WORKSPACE", "true")
        // opencode
        .env("OPENCODE_DISABLE_AUTOUPDATE", "1")
        .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
        .env("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1")
        .env("OPENCODE_DISABLE_LSP_DOWNLOAD", "1")
        .env("OPENCODE_DISABLE_SHARE", "1")
        // Copilot CLI
        .env("COPILOT_AUTO_UPDATE", "false");
    cmd
}

/// Runs `cmd` with no input, killing it after [`PATIENCE`].
pub(crate) fn finish(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} took longer than {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `text` without ANSI escape sequences (opencode colours even with `NO_COLOR`).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// `text` with every endpoint secret (`/s/<secret>`) cut to its first four characters, as
/// tether masks them: the applications print their URLs in full.
pub(crate) fn masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("/s/") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        out.push_str(&tail[..len.min(4)]);
        if len > 4 {
            out.push('…');
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// The pinned application in `package` (a folder under `tests/peers/node_modules`), or
/// `None` with the skip printed (a failure under CI).
pub(crate) fn require(package: &str) -> Option<PathBuf> {
    peers::require(&[package])
}

#[test]
fn claude_code_connects_through_tether_and_its_own_entry_is_drift() {
    if require("@anthropic-ai/claude-code").is_none() {
        return;
    }
    let s = Setup::new();
    s.config("claude-code");
    let (listing, _) = s.output(s.app("claude").args(["mcp", "list"]));
    let line = s.line_for_generic(&listing);
    assert!(line.contains("Connected"), "{}", masked(&listing));
    let mut add = s.app("claude");
    add.args(["mcp", "add", "--scope", "user", "--transport", "http"]);
    s.assert_drift_after("claude-code", add, &["upstream"]);
}

#[test]
fn gemini_cli_connects_through_tether_and_its_own_entry_is_drift() {
    if require("@google/gemini-cli").is_none() {
        return;
    }
    let s = Setup::new();
    quiet_gemini_settings(&s.home.user().join(".gemini/settings.json"));
    s.config("gemini");
    let settings = std::fs::read_to_string(s.home.user().join(".gemini/settings.json")).unwrap();
    assert!(
        settings.contains("enableAutoUpdate"),
        "tether kept the rest"
    );
    let (_, listing) = s.output(s.app("gemini").args(["mcp", "list"]));
    let line = s.line_for_generic(&listing);
    assert!(line.contains("Connected"), "{}", masked(&listing));
    let mut add = s.app("gemini");
    add.args(["mcp", "add", "--scope", "user", "--transport", "http"]);
    s.assert_drift_after("gemini", add, &["upstream"]);
}

#[test]
fn qwen_code_connects_through_tether_and_its_own_entry_is_drift() {
    if require("@qwen-code/qwen-code").is_none() {
        return;
    }
    let s = Setup::new();
    quiet_gemini_settings(&s.home.user().join(".qwen/settings.json"));
    s.config("qwen");
    let (listing, _) = s.output(s.app("qwen").args(["mcp", "list"]));
    let line = s.line_for_generic(&listing);
    assert!(line.contains("Connected"), "{}", masked(&listing));
    let mut add = s.app("qwen");
    add.args(["mcp", "add", "--scope", "user", "--transport", "http"]);
    s.assert_drift_after("qwen", add, &["upstream"]);
}

/// Gemini CLI's and Qwen Code's settings with updates and usage statistics off, written
/// before `tether config` merges its entry into them.
fn quiet_gemini_settings(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let settings = json!({
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
        "privacy": {"usageStatisticsEnabled": false},
    });
    std::fs::write(path, settings.to_string()).unwrap();
}

#[test]
fn opencode_connects_through_tether_and_its_own_entry_is_drift() {
    if require("opencode-ai").is_none() {
        return;
    }
    let s = Setup::new();
    s.config("opencode");
    let (listing, _) = s.output(s.app("opencode").args(["mcp", "list"]));
    // The URL is on the line after the name.
    let at = listing
        .find("generic")
        .unwrap_or_else(|| panic!("{}", masked(&listing)));
    let entry = &listing[at..];
    assert!(
        entry.lines().next().unwrap().contains("connected"),
        "{}",
        masked(&listing)
    );
    let url = entry.lines().nth(1).unwrap_or_default();
    assert!(url.contains(&s.serve.base), "{}", masked(&listing));
    let mut add = s.app("opencode");
    add.args(["mcp", "add", "upstream", "--url"]);
    s.assert_drift_after("opencode", add, &[]);
}

/// Claude Code given tether's `/c/generic/mcp` and no secret sees a server to sign in to
/// (tether's challenge leads its discovery to tether's own authorization server), not a
/// server that fails.
#[test]
fn claude_code_sees_tethers_own_sign_in() {
    if require("@anthropic-ai/claude-code").is_none() {
        return;
    }
    let s = Setup::new();
    let url = format!("{}/c/generic/mcp", s.serve.base);
    s.output(s.app("claude").args([
        "mcp",
        "add",
        "--transport",
        "http",
        "--scope",
        "user",
        "viatether",
        &url,
    ]));
    let (listing, _) = s.output(s.app("claude").args(["mcp", "list"]));
    let line = listing
        .lines()
        .find(|l| l.starts_with("viatether"))
        .unwrap_or_else(|| panic!("{listing}"));
    assert!(line.ends_with("Needs authentication"), "{line}");
}

/// Codex's `mcp list` only reads its config (and probes for OAuth); its app server is what
/// connects, so the check asks the app server for every MCP server's status and tools.
#[test]
fn codex_connects_through_tether_and_its_own_entry_is_drift() {
    if require("@openai/codex").is_none() {
        return;
    }
    let s = Setup::new();
    s.config("codex");
    let (listing, _) = s.output(s.app("codex").args(["mcp", "list", "--json"]));
    let listing: Value = serde_json::from_str(&listing).unwrap();
    let url = listing[0]["transport"]["url"].as_str().unwrap_or_default();
    assert_eq!(listing[0]["name"], "generic");
    assert!(url.starts_with(&s.serve.base), "{}", masked(url));

    let status = codex_mcp_status(s.app("codex").args(["app-server"]));
    let server = status["result"]["data"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["name"] == "generic"))
        .unwrap_or_else(|| panic!("{}", masked(&status.to_string())));
    assert_eq!(
        server["serverInfo"]["name"], "tether-sim-generic",
        "{server}"
    );
    assert!(server["tools"]["echo"].is_object(), "{server}");
    assert_eq!(server["toolsError"], Value::Null, "{server}");

    // Codex signs in to a server that offers OAuth as it adds it: through the stand-in
    // browser, as a user would.
    let mut add = s.app("codex");
    add.env("BROWSER", support::browser())
        .args(["mcp", "add", "upstream", "--url"]);
    s.assert_drift_after("codex", add, &[]);
}

/// Codex knows only tether's `/c/generic/mcp`, no secret: the 401 sends it to tether's own
/// authorization server, and the user answers tether's consent page (the stand-in browser
/// submits the page's own form). Denied, Codex has nothing; allowed, its app server lists
/// the tools through the secret it was given; revoked, it signs in again and is asked again.
#[test]
fn codex_signs_in_to_tether_itself_with_the_users_consent() {
    if require("@openai/codex").is_none() {
        return;
    }
    let s = Setup::new();
    let codex_home = s.home.user().join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        format!(
            "[mcp_servers.viatether]\nurl = \"{}/c/generic/mcp\"\n",
            s.serve.base
        ),
    )
    .unwrap();
    let consent = support::repo().join("tests/fixtures/consent-browser");
    let login = |answer: &str| {
        let mut cmd = s.app("codex");
        cmd.env("BROWSER", &consent)
            .env("CONSENT", answer)
            .args(["mcp", "login", "viatether"]);
        finish(&mut cmd)
    };
    let clients = || s.home.status("generic")["downstream_clients"].clone();
    let tools = || {
        let status = codex_mcp_status(s.app("codex").args(["app-server"]));
        status["result"]["data"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["name"] == "viatether"))
            .unwrap_or_else(|| panic!("{}", masked(&status.to_string())))
            .clone()
    };

    let denied = login("deny");
    assert!(!denied.status.success(), "a denial is not a login");
    assert_eq!(clients(), json!([]));

    let allowed = login("allow");
    assert!(
        allowed.status.success(),
        "{}",
        masked(&String::from_utf8_lossy(&allowed.stderr))
    );
    assert_eq!(clients(), json!(["codex"]), "named after the client");
    let server = tools();
    assert!(server["tools"]["echo"].is_object(), "{server}");

    s.home.run(&["revoke", "generic", "--client", "codex"]).ok();
    assert_eq!(clients(), json!([]));
    let again = login("allow");
    assert!(again.status.success(), "a revoked client signs in again");
    assert_eq!(clients(), json!(["codex"]));
    assert!(tools()["tools"]["echo"].is_object());
}

/// Codex's app server over stdio: initialize, then `mcpServerStatus/list`; its answer.
fn codex_mcp_status(cmd: &mut Command) -> Value {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for message in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"clientInfo": {"name": "tether-test", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "mcpServerStatus/list",
               "params": {"detail": "toolsAndAuthOnly"}}),
    ] {
        writeln!(stdin, "{message}").unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(msg) = serde_json::from_str::<Value>(&line)
                && msg["id"] == 2
            {
                let _ = tx.send(msg);
                return;
            }
        }
    });
    let answer = rx.recv_timeout(PATIENCE);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    answer.expect("the app server answered mcpServerStatus/list")
}

/// With `$COPILOT_HOME` set, Copilot CLI keeps its config there, not in `~/.copilot`: `tether
/// config copilot --write` writes there, Copilot CLI lists the entry, and `tether clients`
/// reads it.
#[test]
fn copilot_home_is_where_tether_writes_and_reads_copilot_cli_config() {
    if require("@github/copilot").is_none() {
        return;
    }
    let s = Setup::new();
    let copilot_home = s.home.path().join("copilot-home");
    let out = s
        .home
        .cmd()
        .env("COPILOT_HOME", &copilot_home)
        .args(["config", "copilot", "generic", "--write"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(copilot_home.join("mcp-config.json").is_file());
    assert!(!s.home.user().join(".copilot/mcp-config.json").exists());
    let mut list = s.app("copilot");
    list.env("COPILOT_HOME", &copilot_home)
        .args(["mcp", "list"]);
    let (listing, _) = s.output(&mut list);
    assert!(listing.contains("generic (http)"), "{}", masked(&listing));
    let clients = s
        .home
        .cmd()
        .env("COPILOT_HOME", &copilot_home)
        .args(["clients", "--json"])
        .output()
        .unwrap();
    let clients = String::from_utf8_lossy(&clients.stdout);
    assert!(
        clients.contains("copilot-home/mcp-config.json"),
        "{}",
        masked(&clients)
    );
}

/// Copilot CLI's `mcp list` only reads its config. Offline, with a model provider on this
/// machine, a prompt makes it connect to every MCP server and offer their tools to the
/// model: the stand-in provider sees them.
#[tokio::test(flavor = "multi_thread")]
async fn copilot_cli_connects_through_tether_and_its_own_entry_is_drift() {
    if require("@github/copilot").is_none() {
        return;
    }
    let provider = Site::start().await;
    provider.post(
        "/v1/chat/completions",
        Reply::text(200, &completion_stream()).with("content-type", "text/event-stream"),
    );
    let base = provider.url("/v1");
    let seen = tokio::task::spawn_blocking(move || {
        let s = Setup::new();
        s.config("copilot");
        let (listing, _) = s.output(s.app("copilot").args(["mcp", "list", "--json"]));
        assert!(listing.contains("\"generic\""), "{}", masked(&listing));

        let (answer, _) = s.output(
            s.app("copilot")
                .args(["-p", "hello", "--allow-all-tools", "--silent"])
                .args(["--disable-client-telemetry"])
                .env("COPILOT_OFFLINE", "true")
                .env("COPILOT_PROVIDER_BASE_URL", &base)
                .env("COPILOT_MODEL", "stand-in"),
        );
        assert!(answer.contains("ok"), "{}", masked(&answer));

        let mut add = s.app("copilot");
        add.args(["mcp", "add", "--transport", "http", "upstream"]);
        s.assert_drift_after("copilot", add, &[]);
    })
    .await;
    seen.unwrap();
    let asked = provider
        .seen()
        .into_iter()
        .find(|r| r.path == "/v1/chat/completions")
        .expect("Copilot asked the model");
    let body: Value = serde_json::from_str(&asked.body).unwrap();
    let tools: Vec<&str> = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"generic-echo"), "{tools:?}");
    assert!(tools.contains(&"generic-whoami"), "{tools:?}");
}

/// A chat completion streamed as OpenAI's API does: "ok", then the end.
fn completion_stream() -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "stand-in",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    };
    format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(json!({"role": "assistant", "content": "ok"}), Value::Null),
        chunk(json!({}), json!("stop")),
    )
}

#[test]
fn secrets_in_application_output_are_masked() {
    assert_eq!(
        masked("a: http://127.0.0.1:1/s/AbCdEfGh_-12/mcp (http)"),
        "a: http://127.0.0.1:1/s/AbCd…/mcp (http)"
    );
    assert_eq!(plain("\u{1b}[90mconnected\u{1b}[0m"), "connected");
}
