//! Claude Code's MCP logins where it uses no system keychain: `~/.claude/.credentials.json`
//! (`$CLAUDE_CONFIG_DIR/.credentials.json` when set), object `mcpOAuth` keyed
//! `<server name>|<16 hex of a sha256 of the server's config>`, each value `{serverName?,
//! serverUrl?, accessToken, refreshToken?, expiresAt (epoch ms), scope?, clientId,
//! clientSecret?, redirectUri?, discoveryState?: {authorizationServerUrl,
//! authorizationServerMetadata?}}` (`discoveryState` is the MCP TypeScript SDK's
//! `OAuthDiscoveryState`).
//!
//! Claude Code ships minified, so the exact JSON it hashes is not confirmed. When an entry
//! has no `serverUrl`, its server is found among the configured servers of that name
//! (`~/.claude.json`: `mcpServers` and every `projects.<path>.mcpServers`; each project's
//! `.mcp.json` and the current folder's): a server whose config hashes to the key wins (tried:
//! `{"type","url","headers"}` as Codex computes the same scheme, and the config as written);
//! else one URL shared by every server of that name; else the login is reported.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Env, SIGN_IN_AFRESH, Tool, known, login_problem, shown, sorted, whole_file};
use crate::import::login::{Client, Login, Scan, Server, Tokens, from_millis, secret, text};
use crate::import::servers::{Candidate, Source};

pub(super) fn scan(store: &Path, env: &Env) -> Result<Scan, String> {
    let bytes = std::fs::read(store).map_err(|e| e.to_string())?;
    let mut scan = Scan::default();
    let doc: Value = match crate::import::login::decode(&bytes, "Claude Code") {
        Ok(doc) => doc,
        Err(reason) => {
            scan.problems
                .push(whole_file(store, reason, Tool::ClaudeCode));
            return Ok(scan);
        }
    };
    let Some(entries) = doc.get("mcpOAuth").and_then(Value::as_object) else {
        return Ok(scan);
    };
    let configured = configured_servers(env);
    for (key, entry) in entries {
        // `claude mcp add --client-secret` stores the secret before any sign-in.
        if entry.get("accessToken").is_none() {
            continue;
        }
        match read(store, key, entry, &configured) {
            Ok(login) => scan.logins.push(login),
            Err(problem) => scan.problems.push(*problem),
        }
    }
    sorted(&mut scan.logins);
    Ok(scan)
}

fn read(
    store: &Path,
    key: &str,
    entry: &Value,
    configured: &[Configured],
) -> Result<Login, Box<crate::import::login::FileProblem>> {
    let problem = |reason: &str| Box::new(login_problem(store, key, reason, SIGN_IN_AFRESH));
    let access =
        secret(entry.get("accessToken")).ok_or_else(|| problem("has an empty accessToken"))?;
    let client_id = text(entry.get("clientId")).ok_or_else(|| {
        problem("has no clientId: the client the token was issued to is unknown, so it could never be refreshed")
    })?;
    let (name, hash) = key.rsplit_once('|').unwrap_or((key, ""));
    let name = text(entry.get("serverName")).unwrap_or_else(|| name.to_string());
    let server = match text(entry.get("serverUrl")) {
        Some(url) => known(&url, store),
        None => find_server(&name, hash, configured),
    };
    let discovery = entry.get("discoveryState");
    let as_metadata = discovery.and_then(|d| d.get("authorizationServerMetadata"));
    let issuer = text(as_metadata.and_then(|m| m.get("issuer")))
        .or_else(|| text(discovery.and_then(|d| d.get("authorizationServerUrl"))));
    let mut tokens = Tokens::new(access);
    tokens.refresh_token = secret(entry.get("refreshToken"));
    tokens.scope = text(entry.get("scope"));
    tokens.expires_at = entry.get("expiresAt").and_then(from_millis);
    Ok(Login {
        key: shown(key),
        place: shown(&name),
        file: store.to_path_buf(),
        server,
        client: Client {
            client_id,
            client_secret: secret(entry.get("clientSecret")),
            redirect_uri: text(entry.get("redirectUri")),
            issuer,
            token_endpoint: text(as_metadata.and_then(|m| m.get("token_endpoint"))),
            ..Client::default()
        },
        tokens,
    })
}

/// A remote server in one of Claude Code's config files.
#[derive(Debug)]
struct Configured {
    name: String,
    url: String,
    config: Value,
    file: PathBuf,
}

/// Every server with a URL in `~/.claude.json` (user and per-project) and in the projects'
/// `.mcp.json` files, the current folder's too.
fn configured_servers(env: &Env) -> Vec<Configured> {
    let user = match &env.claude_config_dir {
        Some(dir) => dir.join(".claude.json"),
        None => env.home.join(".claude.json"),
    };
    let mut out = Vec::new();
    let mut projects = vec![env.cwd.clone()];
    if let Some(doc) = read_doc(&user) {
        add_servers(doc.get("mcpServers"), &user, &mut out);
        for (path, project) in doc
            .get("projects")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            add_servers(project.get("mcpServers"), &user, &mut out);
            projects.push(PathBuf::from(path));
        }
    }
    projects.sort();
    projects.dedup();
    for project in projects {
        let file = project.join(".mcp.json");
        if let Some(doc) = read_doc(&file) {
            add_servers(doc.get("mcpServers"), &file, &mut out);
        }
    }
    out
}

fn read_doc(file: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(file).ok()?;
    serde_json::from_str(&text).ok()
}

fn add_servers(servers: Option<&Value>, file: &Path, out: &mut Vec<Configured>) {
    for (name, config) in servers.and_then(Value::as_object).into_iter().flatten() {
        if let Some(url) = text(config.get("url")) {
            out.push(Configured {
                name: name.clone(),
                url,
                config: config.clone(),
                file: file.to_path_buf(),
            });
        }
    }
}

/// The configured server the login belongs to: by hash, else by name when every server of
/// that name has the same URL.
fn find_server(name: &str, hash: &str, configured: &[Configured]) -> Server {
    let named: Vec<&Configured> = configured.iter().filter(|c| c.name == name).collect();
    let by_hash = named
        .iter()
        .find(|c| !hash.is_empty() && config_hashes(&c.config).iter().any(|h| h == hash));
    let mut urls: Vec<&str> = named.iter().map(|c| c.url.as_str()).collect();
    urls.sort();
    urls.dedup();
    let chosen = by_hash.or(if urls.len() == 1 { named.first() } else { None });
    match chosen {
        Some(c) => Server::Known(Candidate {
            url: c.url.clone(),
            source: Source::ClientConfig(c.file.clone()),
            extras: Vec::new(),
        }),
        None if named.is_empty() => Server::Unknown {
            reason: format!(
                "Claude Code saved this login without its server's URL, and no configured server is named '{}'",
                shown(name)
            ),
            fix: "pass its URL: tether import claude-code URL".into(),
        },
        None => Server::Unknown {
            reason: format!(
                "servers named '{}' have different URLs and none matches the login's key",
                shown(name)
            ),
            fix: "pass its URL: tether import claude-code URL".into(),
        },
    }
}

/// The hashes Claude Code might have keyed the login with: the `{type, url, headers}` form
/// Codex copies (in JavaScript's key order and sorted) and the config as written.
fn config_hashes(config: &Value) -> Vec<String> {
    let json = |v: &Value| serde_json::to_string(v).unwrap_or_default();
    let kind = config.get("type").cloned().unwrap_or(Value::from("http"));
    let url = config.get("url").cloned().unwrap_or(Value::Null);
    let headers = config
        .get("headers")
        .cloned()
        .unwrap_or(Value::Object(Default::default()));
    let forms = [
        format!(
            r#"{{"type":{},"url":{},"headers":{}}}"#,
            json(&kind),
            json(&url),
            json(&headers)
        ),
        format!(
            r#"{{"headers":{},"type":{},"url":{}}}"#,
            json(&headers),
            json(&kind),
            json(&url)
        ),
        json(config),
    ];
    forms.iter().map(|f| short_sha256(f)).collect()
}

fn short_sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// The key Claude Code would give a login for `name` at `url`, as far as it is known.
#[cfg(test)]
fn store_key(name: &str, url: &str) -> String {
    let config = serde_json::json!({"type": "http", "url": url});
    format!("{name}|{}", config_hashes(&config)[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &Path, claude_json: Value) -> Env {
        std::fs::write(dir.join(".claude.json"), claude_json.to_string()).unwrap();
        Env {
            home: dir.to_path_buf(),
            cwd: dir.join("nowhere"),
            ..Env::default()
        }
    }

    #[test]
    fn a_login_without_its_url_is_found_by_hash_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(
            dir.path(),
            serde_json::json!({
                "mcpServers": {"linear": {"type": "http", "url": "https://mcp.linear.app/mcp"}},
                "projects": {"/w": {"mcpServers": {
                    "dup": {"type": "http", "url": "https://a/mcp"}}},
                    "/v": {"mcpServers": {"dup": {"type": "http", "url": "https://b/mcp"}}}}
            }),
        );
        let configured = configured_servers(&env);
        let url = |s: Server| match s {
            Server::Known(c) => c.url,
            Server::Unknown { reason, .. } => reason,
            Server::Hash(h) => h,
        };
        assert_eq!(
            url(find_server("linear", "ffffffffffffffff", &configured)),
            "https://mcp.linear.app/mcp"
        );
        let b_key = store_key("dup", "https://b/mcp");
        let (_, b_hash) = b_key.rsplit_once('|').unwrap();
        assert_eq!(
            url(find_server("dup", b_hash, &configured)),
            "https://b/mcp"
        );
        assert!(
            url(find_server("dup", "0000000000000000", &configured)).contains("different URLs")
        );
        assert!(url(find_server("none", "", &configured)).contains("no configured server"));
        assert_eq!(b_hash.len(), 16);
    }
}
