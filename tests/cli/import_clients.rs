//! `tether import CLIENT` for the MCP clients' own token stores. Each test signs a client in
//! to a simulated provider the way the real client would (dynamic registration, PKCE, code
//! exchange), writes the login into a throwaway `$HOME` in that client's file format (shape
//! taken from its source, cited at each writer), imports it, and checks the connection
//! works with no new sign-in — same client id, a refresh by that client, a call through the
//! proxy — while the client's files stay byte for byte as they were.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tether_sim::{Profile, SimHandle};

use crate::support::oauth_client::{self, REDIRECT, endpoint};
use crate::support::{Home, Run, Serve, files_under, http, secret_for};

/// One signed-in login at a simulator, as a client would hold it.
struct Signed {
    url: String,
    client_id: String,
    access: String,
    refresh: String,
    expires_ms: i64,
    issuer: String,
    token_endpoint: String,
}

impl Signed {
    async fn at(sim: &SimHandle) -> Self {
        Self::for_server(sim, sim).await
    }

    /// Signed in at `issuer_sim`, but saved as the login of `server`'s MCP URL.
    async fn for_server(server: &SimHandle, issuer_sim: &SimHandle) -> Self {
        let (client, tokens) = oauth_client::login(&http(), issuer_sim).await;
        let lifetime = tokens["expires_in"].as_i64().unwrap_or(3600);
        Self {
            url: server.mcp_url().to_string(),
            client_id: client.id,
            access: tokens["access_token"].as_str().unwrap().to_string(),
            refresh: tokens["refresh_token"].as_str().unwrap().to_string(),
            expires_ms: chrono::Utc::now().timestamp_millis() + lifetime * 1000,
            issuer: issuer_sim.issuer(),
            token_endpoint: endpoint(issuer_sim, "token"),
        }
    }

    fn secrets(&self) -> [&str; 2] {
        [&self.access, &self.refresh]
    }
}

/// What a test writes for one client: its command-line name and where its store goes.
struct Client {
    name: &'static str,
    write: fn(&Path, &Signed),
}

/// Claude Code: `~/.claude/.credentials.json`, `mcpOAuth` keyed `<name>|<16 hex of sha256>`
/// (fields as Claude Code 2.1 writes them; `discoveryState` is the MCP SDK's
/// `OAuthDiscoveryState`). No `serverUrl`: the server is found through `~/.claude.json`.
fn claude_code(user: &Path, s: &Signed) {
    let config = format!(r#"{{"type":"http","url":{},"headers":{{}}}}"#, json!(s.url));
    let digest = Sha256::digest(config.as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let store = json!({
        "claudeAiOauth": {"accessToken": "sk-ant-oat01-not-a-real-one", "expiresAt": 1},
        "mcpOAuth": {format!("sim|{hash}"): {
            "serverName": "sim", "accessToken": s.access, "refreshToken": s.refresh,
            "expiresAt": s.expires_ms, "clientId": s.client_id, "redirectUri": REDIRECT,
            "discoveryState": {"authorizationServerUrl": s.issuer}}}
    });
    write(&user.join(".claude/.credentials.json"), &store);
    let project = user.join("work");
    let claude_json = json!({"projects": {project.to_string_lossy(): {
        "mcpServers": {"sim": {"type": "http", "url": s.url}}}}});
    write(&user.join(".claude.json"), &claude_json);
}

/// Codex: `$CODEX_HOME/.credentials.json` (openai/codex `codex-rs/rmcp-client/src/oauth.rs`,
/// `FallbackTokenEntry`; `expires_at` in epoch ms).
fn codex(user: &Path, s: &Signed) {
    let store = json!({"sim|0123456789abcdef": {
        "server_name": "sim", "server_url": s.url, "client_id": s.client_id,
        "access_token": s.access, "expires_at": s.expires_ms, "refresh_token": s.refresh,
        "scopes": []}});
    write(&user.join(".codex/.credentials.json"), &store);
}

/// Gemini CLI's `~/.gemini/mcp-oauth-tokens.json` (google-gemini/gemini-cli
/// `packages/core/src/mcp/oauth-token-storage.ts`, `token-storage/types.ts`).
fn gemini_entry(s: &Signed) -> Value {
    json!([{"serverName": "sim",
        "token": {"accessToken": s.access, "refreshToken": s.refresh,
                  "expiresAt": s.expires_ms, "tokenType": "Bearer"},
        "clientId": s.client_id, "tokenUrl": s.token_endpoint, "mcpServerUrl": s.url,
        "updatedAt": 1_760_000_000_000u64}])
}

fn gemini(user: &Path, s: &Signed) {
    write(
        &user.join(".gemini/mcp-oauth-tokens.json"),
        &gemini_entry(s),
    );
}

/// Qwen Code: Gemini's shape (QwenLM/qwen-code `packages/core/src/mcp/oauth-token-storage.ts`).
fn qwen(user: &Path, s: &Signed) {
    write(&user.join(".qwen/mcp-oauth-tokens.json"), &gemini_entry(s));
}

/// opencode: `~/.local/share/opencode/mcp-auth.json` (sst/opencode
/// `packages/opencode/src/mcp/auth.ts`; `expiresAt` in epoch seconds).
fn opencode(user: &Path, s: &Signed) {
    let store = json!({"sim": {
        "tokens": {"accessToken": s.access, "refreshToken": s.refresh,
                   "expiresAt": s.expires_ms as f64 / 1000.0},
        "clientInfo": {"clientId": s.client_id, "clientIdIssuedAt": 1_760_000_000},
        "serverUrl": s.url}});
    write(&user.join(".local/share/opencode/mcp-auth.json"), &store);
}

/// Copilot CLI (closed source; the shape its files were seen in): `<hash>.json` with the
/// client, `<hash>.tokens.json` with the tokens, `expiresAt` in epoch seconds.
fn copilot(user: &Path, s: &Signed) {
    let dir = user.join(".copilot/mcp-oauth-config");
    let hash = "3f1c2a9b7d5e4f60";
    write(
        &dir.join(format!("{hash}.json")),
        &json!({"serverUrl": s.url, "clientId": s.client_id, "redirectUri": REDIRECT,
                "authorizationServerUrl": s.issuer}),
    );
    write(
        &dir.join(format!("{hash}.tokens.json")),
        &json!({"accessToken": s.access, "refreshToken": s.refresh,
                "expiresAt": s.expires_ms / 1000}),
    );
}

const CLIENTS: [Client; 6] = [
    Client {
        name: "claude-code",
        write: claude_code,
    },
    Client {
        name: "codex",
        write: codex,
    },
    Client {
        name: "gemini",
        write: gemini,
    },
    Client {
        name: "qwen",
        write: qwen,
    },
    Client {
        name: "opencode",
        write: opencode,
    },
    Client {
        name: "copilot",
        write: copilot,
    },
];

fn write(path: &Path, doc: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
}

/// `tether import ARGS` with this home's `$HOME`, from inside it, none of the real
/// environment's store variables.
fn import(home: &Home, args: &[&str]) -> Run {
    let mut cmd = home.cmd();
    cmd.arg("import")
        .args(args)
        .env_remove("XDG_DATA_HOME")
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("MCP_REMOTE_CONFIG_DIR")
        .current_dir(home_dir(home));
    Run::of(cmd.output().unwrap())
}

fn home_dir(home: &Home) -> PathBuf {
    let user = home.user();
    std::fs::create_dir_all(user.join("work")).unwrap();
    user
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all: Vec<_> = files_under(dir)
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    all.sort();
    all
}

#[track_caller]
fn assert_no_secret(out: &Run, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "a secret reached the output:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

/// An MCP `initialize` through tether's proxy for connection `name`.
async fn call_through_proxy(home: &Home, name: &str) -> reqwest::StatusCode {
    let secret = secret_for(home, name, "import-test");
    let serve = Serve::start(home);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "import-test", "version": "1"}}});
    let status = http()
        .post(format!("{}/s/{secret}/mcp", serve.base))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status();
    serve.stop();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_clients_login_is_imported_refreshed_with_its_client_and_left_in_place() {
    for client in CLIENTS {
        let sim = oauth_client::sim(Profile::Generic).await;
        let signed = Signed::at(&sim).await;
        let home = Home::new();
        let user = home_dir(&home);
        (client.write)(&user, &signed);
        let before = files(&user);
        let secrets = signed.secrets();
        // The client's own name for the server; Copilot CLI keys its logins by a hash.
        let name = if client.name == "copilot" {
            "local"
        } else {
            "sim"
        };

        let dry = import(&home, &[client.name, "--dry-run"]).ok();
        assert!(
            dry.stdout
                .contains(&format!("would be imported as '{name}'")),
            "{}: {}",
            client.name,
            dry.stdout
        );
        assert!(
            !home.vault_file().exists(),
            "{}: a dry run wrote",
            client.name
        );
        assert_no_secret(&dry, &secrets);

        let out = import(&home, &[client.name]).ok();
        assert!(
            out.stdout.contains(&format!("imported as '{name}'")),
            "{}: {}",
            client.name,
            out.stdout
        );
        assert_no_secret(&out, &secrets);
        let list: Value = serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
        assert_eq!(list[0]["name"], name, "{}: {list}", client.name);
        let s = home.status(name);
        assert_eq!(s["state"], "healthy", "{}: {s}", client.name);
        let masked = tether_core::secret::mask(&signed.client_id);
        assert_eq!(s["token"]["client_id"], masked, "{}", client.name);
        assert_eq!(s["token"]["has_refresh_token"], true, "{}", client.name);

        assert_eq!(
            call_through_proxy(&home, name).await,
            reqwest::StatusCode::OK,
            "{}: a call through the proxy",
            client.name
        );
        let refreshed = home.run(&["refresh", name]).ok();
        assert!(
            refreshed.stdout.contains("generation 2"),
            "{}: {}",
            client.name,
            refreshed.stdout
        );
        let stats = oauth_client::stats(&http(), &sim).await;
        assert_eq!(stats["registrations"], 1, "{}: {stats}", client.name);
        let refreshed_by: Vec<&str> = stats["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["refresh_calls"] == 1)
            .map(|c| c["client_id"].as_str().unwrap())
            .collect();
        assert_eq!(refreshed_by, [signed.client_id.as_str()], "{}", client.name);

        let again = import(&home, &[client.name, "--json"]).ok();
        let report: Value = serde_json::from_str(&again.stdout).unwrap();
        assert_eq!(report["source"], client.name);
        assert_eq!(report["entries"][0]["outcome"], "skipped", "{report:#}");
        assert_eq!(
            files(&user)
                .into_iter()
                .filter(|(p, _)| before.iter().any(|(b, _)| b == p))
                .collect::<Vec<_>>(),
            before,
            "{}: the client's files must not change",
            client.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_registered_at_another_issuer_is_refused_with_the_reason() {
    let server = oauth_client::sim(Profile::Generic).await;
    let elsewhere = oauth_client::sim(Profile::Linear).await;
    let signed = Signed::for_server(&server, &elsewhere).await;
    let cases = [
        (
            "claude-code",
            claude_code as fn(&Path, &Signed),
            "was registered at",
        ),
        ("gemini", gemini, "used the token endpoint"),
        ("copilot", copilot, "was registered at"),
    ];
    for (name, write, reason) in cases {
        let home = Home::new();
        let user = home_dir(&home);
        write(&user, &signed);
        let before = files(&user);
        let out = import(&home, &[name]);
        assert_eq!(out.status, 1, "{name}: {}\n{}", out.stdout, out.stderr);
        assert!(out.stdout.contains(reason), "{name}: {}", out.stdout);
        assert!(
            out.stdout.contains(&elsewhere.issuer()),
            "{name}: {}",
            out.stdout
        );
        assert!(out.stdout.contains("fix: sign in afresh"), "{}", out.stdout);
        assert_no_secret(&out, &signed.secrets());
        assert!(
            !home.vault_file().exists() || home.run(&["list", "--json"]).ok().stdout.trim() == "[]",
            "{name}: nothing may be imported"
        );
        assert_eq!(files(&user), before);
    }
}

#[test]
fn logins_a_store_cannot_support_are_named_with_why() {
    let home = Home::new();
    let user = home_dir(&home);
    // Gemini CLI kept no client id; opencode was given its client in its config; Codex
    // entry without its URL.
    write(
        &user.join(".gemini/mcp-oauth-tokens.json"),
        &json!([{"serverName": "noclient", "token": {"accessToken": "at_0123456789abcdef",
            "tokenType": "Bearer"}, "mcpServerUrl": "https://a.example/mcp", "updatedAt": 1}]),
    );
    write(
        &user.join(".local/share/opencode/mcp-auth.json"),
        &json!({"preset": {"tokens": {"accessToken": "at_0123456789abcdef"},
            "serverUrl": "https://a.example/mcp"}}),
    );
    let before = files(&user);
    let out = import(&home, &["gemini", "--dry-run"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stdout.contains("has no clientId"), "{}", out.stdout);
    let out = import(&home, &["opencode"]);
    assert_eq!(out.status, 1);
    assert!(out.stdout.contains("clientInfo.clientId"), "{}", out.stdout);
    assert!(!out.stdout.contains("at_0123456789abcdef"));
    assert_eq!(files(&user), before);
    assert!(
        !home.vault_file().exists() || home.run(&["list", "--json"]).ok().stdout.trim() == "[]"
    );
}

#[test]
fn an_unknown_source_lists_the_choices_and_a_missing_store_says_where() {
    let home = Home::new();
    let out = import(&home, &["cursor"]);
    assert_eq!(out.status, 2);
    for source in [
        "mcp-remote",
        "claude-code",
        "codex",
        "gemini",
        "qwen",
        "opencode",
        "copilot",
    ] {
        assert!(out.stderr.contains(source), "{}", out.stderr);
    }
    let out = import(&home, &["codex"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains(".codex/.credentials.json"),
        "{}",
        out.stderr
    );
}

/// Node seals `plain` the way Gemini CLI 0.61's `FileKeychain` (12-byte IV) or Qwen Code's
/// `FileTokenStorage` (16-byte IV) does — `os.hostname()`, `os.userInfo().username`,
/// `crypto.scryptSync`, AES-256-GCM — so the key tether derives is checked against Node's.
fn seal_with_node(node: &Path, plain: &Value, password: &str, suffix: &str, iv: usize, out: &Path) {
    let script = r#"
const [plain, password, suffix, ivLen, out] = process.argv.slice(1);
const os = require('os'), crypto = require('crypto'), fs = require('fs');
const key = crypto.scryptSync(password, `${os.hostname()}-${os.userInfo().username}-${suffix}`, 32);
const iv = crypto.randomBytes(Number(ivLen));
const c = crypto.createCipheriv('aes-256-gcm', key, iv, {authTagLength: 16});
let e = c.update(plain, 'utf8', 'hex'); e += c.final('hex');
fs.mkdirSync(require('path').dirname(out), {recursive: true});
fs.writeFileSync(out, iv.toString('hex') + ':' + c.getAuthTag().toString('hex') + ':' + e, {mode: 0o600});
"#;
    let status = std::process::Command::new(node)
        .args(["-e", script, &plain.to_string(), password, suffix])
        .arg(iv.to_string())
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
}

/// With encrypted storage asked for (`GEMINI_FORCE_ENCRYPTED_FILE_STORAGE=true`, Qwen Code's
/// `QWEN_CODE_FORCE_ENCRYPTED_FILE_STORAGE=true`) and no keychain, the logins are in an
/// encrypted file: imported like the plain ones; one sealed elsewhere is named, not guessed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn encrypted_gemini_and_qwen_stores_are_imported() {
    let Some(node) = crate::support::peers::require(&[]) else {
        return;
    };
    let cases = [
        (
            "gemini",
            ".gemini/gemini-credentials.json",
            "gemini-cli-oauth",
            "gemini-cli",
            12,
        ),
        (
            "qwen",
            ".qwen/mcp-oauth-tokens-v2.json",
            "qwen-code-oauth",
            "qwen-code",
            16,
        ),
    ];
    for (tool, file, password, suffix, iv) in cases {
        let sim = oauth_client::sim(Profile::Generic).await;
        let signed = Signed::at(&sim).await;
        let home = Home::new();
        let entry = gemini_entry(&signed)[0].clone();
        let plain = if tool == "gemini" {
            json!({"gemini-cli-oauth": {"sim": entry.to_string(), "__keychain_test__x": "t"}})
        } else {
            json!({"sim": entry})
        };
        let store = home_dir(&home).join(file);
        seal_with_node(&node, &plain, password, suffix, iv, &store);
        let before = std::fs::read(&store).unwrap();

        let out = import(&home, &[tool]).ok();
        assert!(
            out.stdout.contains("imported as 'sim'"),
            "{tool}: {}",
            out.stdout
        );
        assert_no_secret(&out, &signed.secrets());
        assert_eq!(home.status("sim")["state"], "healthy", "{tool}");
        assert_eq!(
            std::fs::read(&store).unwrap(),
            before,
            "{tool}: left as it was"
        );

        // Sealed by another user or machine: the key differs, and the import says so.
        let other = Home::new();
        let store = home_dir(&other).join(file);
        seal_with_node(&node, &plain, password, "someone-else", iv, &store);
        let out = import(&other, &[tool, "--json"]);
        let text = format!("{}{}", out.stdout, out.stderr);
        assert!(
            text.contains("another machine or by another user"),
            "{tool}: {text}"
        );
    }
}
