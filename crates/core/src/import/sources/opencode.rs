//! opencode's MCP logins: `$XDG_DATA_HOME/opencode/mcp-auth.json` (default
//! `~/.local/share/opencode`). From sst/opencode (anomalyco/opencode)
//! `packages/opencode/src/mcp/auth.ts` and `oauth-provider.ts`: one JSON object keyed by the
//! server's name, each `{tokens?: {accessToken, refreshToken?, expiresAt? (epoch seconds),
//! scope?}, clientInfo?: {clientId, clientSecret?, clientIdIssuedAt?, clientSecretExpiresAt?},
//! codeVerifier?, oauthState?, serverUrl?}`. The client registers with the redirect URI
//! `http://127.0.0.1:19876/mcp/oauth/callback` unless the server's config names another, and
//! `client_secret_post` when it has a secret, else `none`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{SIGN_IN_AFRESH, Tool, known, login_problem, shown, sorted, whole_file};
use crate::import::login::{Client, Login, Scan, Server, Tokens, from_seconds, secret, text};

const DEFAULT_REDIRECT: &str = "http://127.0.0.1:19876/mcp/oauth/callback";

pub(super) fn scan(store: &Path) -> Result<Scan, String> {
    let bytes = std::fs::read(store).map_err(|e| e.to_string())?;
    let mut scan = Scan::default();
    let entries: BTreeMap<String, Value> = match crate::import::login::decode(&bytes, "opencode") {
        Ok(entries) => entries,
        Err(reason) => {
            scan.problems
                .push(whole_file(store, reason, Tool::Opencode));
            return Ok(scan);
        }
    };
    for (name, entry) in &entries {
        // A sign-in begun but never finished leaves only a verifier and a state.
        if entry.get("tokens").is_none() {
            continue;
        }
        match read(store, name, entry) {
            Ok(login) => scan.logins.push(login),
            Err(problem) => scan.problems.push(*problem),
        }
    }
    sorted(&mut scan.logins);
    Ok(scan)
}

fn read(
    store: &Path,
    name: &str,
    entry: &Value,
) -> Result<Login, Box<crate::import::login::FileProblem>> {
    let problem = |reason: &str| Box::new(login_problem(store, name, reason, SIGN_IN_AFRESH));
    let tokens = entry.get("tokens");
    let access = secret(tokens.and_then(|t| t.get("accessToken")))
        .ok_or_else(|| problem("has no tokens.accessToken"))?;
    let info = entry.get("clientInfo");
    let client_id = text(info.and_then(|c| c.get("clientId"))).ok_or_else(|| {
        problem("has no clientInfo.clientId: opencode was given its client id in its config (`oauth.clientId`), which tether does not read; the token could not be refreshed without it")
    })?;
    let client_secret = secret(info.and_then(|c| c.get("clientSecret")));
    let seconds = |field: &str| {
        info.and_then(|c| c.get(field))
            .and_then(Value::as_i64)
            .filter(|s| *s > 0)
    };
    let server = match text(entry.get("serverUrl")) {
        Some(url) => known(&url, store),
        None => Server::Unknown {
            reason: format!(
                "opencode saved the login for '{}' without its server's URL",
                shown(name)
            ),
            fix: "pass its URL: tether import opencode URL".into(),
        },
    };
    let mut t = Tokens::new(access);
    t.refresh_token = secret(tokens.and_then(|t| t.get("refreshToken")));
    t.scope = text(tokens.and_then(|t| t.get("scope")));
    t.expires_at = tokens
        .and_then(|t| t.get("expiresAt"))
        .and_then(from_seconds);
    Ok(Login {
        key: shown(name),
        place: shown(name),
        file: store.to_path_buf(),
        server,
        client: Client {
            client_id,
            token_endpoint_auth_method: Some(
                if client_secret.is_some() {
                    "client_secret_post"
                } else {
                    "none"
                }
                .into(),
            ),
            client_secret,
            issued_at: seconds("clientIdIssuedAt"),
            secret_expires_at: seconds("clientSecretExpiresAt"),
            redirect_uri: Some(DEFAULT_REDIRECT.into()),
            ..Client::default()
        },
        tokens: t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opencode_expiry_is_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mcp-auth.json");
        let doc = serde_json::json!({
            "linear": {"tokens": {"accessToken": "at", "refreshToken": "rt", "expiresAt": 4_102_444_800.25},
                       "clientInfo": {"clientId": "c", "clientIdIssuedAt": 1_700_000_000},
                       "serverUrl": "https://mcp.linear.app/mcp"},
            "pending": {"codeVerifier": "v", "oauthState": "s"},
            "preset": {"tokens": {"accessToken": "at"}, "serverUrl": "https://x/mcp"}
        });
        std::fs::write(&file, doc.to_string()).unwrap();
        let scan = scan(&file).unwrap();
        assert_eq!(scan.logins.len(), 1);
        let l = &scan.logins[0];
        assert_eq!(l.tokens.expires_at.unwrap().timestamp(), 4_102_444_800);
        assert_eq!(l.client.token_endpoint_auth_method.as_deref(), Some("none"));
        assert_eq!(l.client.redirect_uri.as_deref(), Some(DEFAULT_REDIRECT));
        assert_eq!(scan.problems.len(), 1);
        assert!(scan.problems[0].reason.contains("clientInfo.clientId"));
    }
}
