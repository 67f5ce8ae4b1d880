//! Codex's MCP logins where no keyring is used: `$CODEX_HOME/.credentials.json` (default
//! `~/.codex`). From openai/codex `codex-rs/rmcp-client/src/oauth.rs`: one JSON object keyed
//! `<server_name>|<16 hex of sha256 of {"type":"http","url":…,"headers":{}}>`, each value a
//! `FallbackTokenEntry { server_name, server_url, issuer, client_id, access_token, expires_at
//! (epoch ms), refresh_token, scopes }` (`issuer` as Codex 0.171 writes it). The entry carries
//! its own URL, so the key is not needed. Codex keeps no client secret or redirect URI there.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{SIGN_IN_AFRESH, Tool, known, login_problem, shown, sorted, whole_file};
use crate::import::login::{Client, Login, Scan, Tokens, from_millis, secret, text};

pub(super) fn scan(store: &Path) -> Result<Scan, String> {
    let bytes = std::fs::read(store).map_err(|e| e.to_string())?;
    let mut scan = Scan::default();
    let entries: BTreeMap<String, Value> = match crate::import::login::decode(&bytes, "Codex") {
        Ok(entries) => entries,
        Err(reason) => {
            scan.problems.push(whole_file(store, reason, Tool::Codex));
            return Ok(scan);
        }
    };
    for (key, entry) in &entries {
        match read(store, key, entry) {
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
) -> Result<Login, Box<crate::import::login::FileProblem>> {
    let problem = |reason: &str| Box::new(login_problem(store, key, reason, SIGN_IN_AFRESH));
    let access = secret(entry.get("access_token")).ok_or_else(|| problem("has no access_token"))?;
    let client_id = text(entry.get("client_id")).ok_or_else(|| {
        problem("has no client_id: the client the token was issued to is unknown, so it could never be refreshed")
    })?;
    let url = text(entry.get("server_url"))
        .ok_or_else(|| problem("has no server_url, so its server is unknown"))?;
    let name = text(entry.get("server_name")).unwrap_or_else(|| {
        key.rsplit_once('|')
            .map(|(n, _)| n.to_string())
            .unwrap_or_default()
    });
    let scopes: Vec<&str> = entry
        .get("scopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut tokens = Tokens::new(access);
    tokens.refresh_token = secret(entry.get("refresh_token"));
    tokens.scope = (!scopes.is_empty()).then(|| scopes.join(" "));
    tokens.expires_at = entry.get("expires_at").and_then(from_millis);
    Ok(Login {
        key: shown(key),
        place: shown(&name),
        file: store.to_path_buf(),
        server: known(&url, store),
        client: Client {
            client_id,
            issuer: text(entry.get("issuer")),
            ..Client::default()
        },
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_entries_carry_their_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".credentials.json");
        let doc = serde_json::json!({
            "linear|0123456789abcdef": {"server_name": "linear", "server_url": "https://mcp.linear.app/mcp",
                "issuer": "https://mcp.linear.app", "client_id": "c1", "access_token": "at", "expires_at": 4_102_444_800_000u64,
                "refresh_token": "rt", "scopes": ["read", "write"]},
            "other|fedcba9876543210": {"server_name": "other", "server_url": "https://x/mcp", "access_token": "at"}
        });
        std::fs::write(&file, doc.to_string()).unwrap();
        let scan = scan(&file).unwrap();
        assert_eq!(scan.logins.len(), 1);
        let l = &scan.logins[0];
        assert_eq!(l.place, "linear");
        assert_eq!(l.client.client_id, "c1");
        assert_eq!(l.stored_issuer(), Some("https://mcp.linear.app"));
        assert_eq!(l.tokens.scope.as_deref(), Some("read write"));
        assert_eq!(l.tokens.expires_at.unwrap().timestamp(), 4_102_444_800);
        assert!(scan.problems[0].reason.contains("no client_id"));
    }
}
