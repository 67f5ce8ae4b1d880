//! Gemini CLI's and Qwen Code's MCP logins: `~/.gemini/mcp-oauth-tokens.json` and
//! `~/.qwen/mcp-oauth-tokens.json`. From google-gemini/gemini-cli
//! `packages/core/src/mcp/oauth-token-storage.ts` and `token-storage/types.ts` (Qwen Code's
//! `packages/core/src/mcp/oauth-token-storage.ts` is the same): a JSON array of
//! `{serverName, token: {accessToken, refreshToken?, expiresAt? (epoch ms), tokenType,
//! scope?}, clientId?, tokenUrl?, mcpServerUrl?, updatedAt}`. The client is registered
//! public (`token_endpoint_auth_method: "none"`, `oauth-provider.ts`) and its secret, if a
//! server issued one anyway, is not kept. With encrypted storage asked for, the same entries
//! are in an encrypted file beside it (`sealed`); both are read when both exist.

use std::path::Path;

use serde_json::Value;

use super::{SIGN_IN_AFRESH, Tool, known, login_problem, shown, sorted, whole_file};
use crate::import::login::{Client, Login, Scan, Server, Tokens, from_millis, secret, text};

pub(super) fn scan(store: &Path, tool: Tool) -> Result<Scan, String> {
    let mut scan = Scan::default();
    let settings = settings(store);
    let mut files = Vec::new();
    if store.is_file() {
        let bytes = std::fs::read(store).map_err(|e| e.to_string())?;
        match crate::import::login::decode::<Vec<Value>>(&bytes, tool.title()) {
            Ok(entries) => files.push((store.to_path_buf(), entries)),
            Err(reason) => scan.problems.push(whole_file(store, reason, tool)),
        }
    }
    if let Some(sealed) = super::sealed::beside(store, tool).filter(|p| p.is_file()) {
        match super::sealed::entries(&sealed, tool) {
            Ok(entries) => files.push((sealed, entries)),
            Err(reason) => scan.problems.push(whole_file(&sealed, reason, tool)),
        }
    }
    for (file, entries) in &files {
        for entry in entries {
            match read(file, entry, tool, settings.as_ref()) {
                Ok(login) => scan.logins.push(login),
                Err(problem) => scan.problems.push(*problem),
            }
        }
    }
    sorted(&mut scan.logins);
    Ok(scan)
}

/// `settings.json` beside the token file, for logins saved without their server's URL.
fn settings(store: &Path) -> Option<Value> {
    let file = store.parent()?.join("settings.json");
    let text = std::fs::read_to_string(file).ok()?;
    jsonc_parser::parse_to_serde_value(&text, &Default::default()).ok()
}

fn read(
    store: &Path,
    entry: &Value,
    tool: Tool,
    settings: Option<&Value>,
) -> Result<Login, Box<crate::import::login::FileProblem>> {
    let name = text(entry.get("serverName")).unwrap_or_default();
    let problem = |reason: String| Box::new(login_problem(store, &name, reason, SIGN_IN_AFRESH));
    let token = entry.get("token");
    let access = secret(token.and_then(|t| t.get("accessToken")))
        .ok_or_else(|| problem("has no token.accessToken".into()))?;
    let client_id = text(entry.get("clientId")).ok_or_else(|| {
        problem(format!(
            "has no clientId: {} did not keep the client the token was issued to, so it could never be refreshed",
            tool.title()
        ))
    })?;
    let server = match text(entry.get("mcpServerUrl")) {
        Some(url) => known(&url, store),
        None => from_settings(&name, settings, store, tool),
    };
    let mut tokens = Tokens::new(access);
    tokens.refresh_token = secret(token.and_then(|t| t.get("refreshToken")));
    tokens.scope = text(token.and_then(|t| t.get("scope")));
    tokens.expires_at = token.and_then(|t| t.get("expiresAt")).and_then(from_millis);
    Ok(Login {
        key: shown(&name),
        place: shown(&name),
        file: store.to_path_buf(),
        server,
        client: Client {
            client_id,
            token_endpoint_auth_method: Some("none".into()),
            token_endpoint: text(entry.get("tokenUrl")),
            ..Client::default()
        },
        tokens,
    })
}

/// The URL `settings.json` gives the server of this name (`httpUrl`, else `url`).
fn from_settings(name: &str, settings: Option<&Value>, store: &Path, tool: Tool) -> Server {
    let entry = settings
        .and_then(|s| s.get("mcpServers"))
        .and_then(|m| m.get(name));
    let url = entry.and_then(|e| text(e.get("httpUrl")).or_else(|| text(e.get("url"))));
    match url {
        Some(url) => known(&url, &store.with_file_name("settings.json")),
        None => Server::Unknown {
            reason: format!(
                "{} saved this login without its server's URL, and settings.json names no server '{}' with a URL",
                tool.title(),
                shown(name)
            ),
            fix: format!("pass its URL: tether import {} URL", tool.name()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_entries_and_their_settings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp-oauth-tokens.json");
        let doc = serde_json::json!([
            {"serverName": "a", "token": {"accessToken": "at", "tokenType": "Bearer", "expiresAt": 4_102_444_800_000u64},
             "clientId": "c", "tokenUrl": "https://as/token", "mcpServerUrl": "https://a/mcp", "updatedAt": 1},
            {"serverName": "b", "token": {"accessToken": "at", "tokenType": "Bearer"}, "clientId": "c", "updatedAt": 1},
            {"serverName": "c", "token": {"accessToken": "at", "tokenType": "Bearer"}, "updatedAt": 1}
        ]);
        std::fs::write(&file, doc.to_string()).unwrap();
        std::fs::write(
            dir.path().join("settings.json"),
            r#"{"mcpServers": {"b": {"httpUrl": "https://b/mcp"}}} // comment"#,
        )
        .unwrap();
        let scan = scan(&file, Tool::Gemini).unwrap();
        let urls: Vec<String> = scan
            .logins
            .iter()
            .map(|l| match &l.server {
                Server::Known(c) => c.url.clone(),
                _ => "?".into(),
            })
            .collect();
        assert_eq!(urls, ["https://a/mcp", "https://b/mcp"]);
        assert_eq!(
            scan.logins[0].client.token_endpoint.as_deref(),
            Some("https://as/token")
        );
        assert!(scan.problems[0].reason.contains("no clientId"));
    }
}
