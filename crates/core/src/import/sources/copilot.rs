//! Copilot CLI's MCP logins: `~/.copilot/mcp-oauth-config/`. Copilot CLI is closed source;
//! this reader follows what its files were seen to hold (and what third-party tools that
//! maintain that folder read): per server a `<hash>.json` with the client registration
//! (`serverUrl`, `clientId`, optionally `clientSecret`, `redirectUri`,
//! `authorizationServerUrl`) and a `<hash>.tokens.json` beside it (`accessToken`,
//! `refreshToken?`, `expiresAt?`, `scope?`), paired through the shared `<hash>`. How the hash
//! is computed is not known and not needed: the registration names its `serverUrl`.
//! `expiresAt` was seen in epoch seconds; a value too large for seconds is read as
//! milliseconds. Copilot CLI 1.0.102 also writes a second `<hash>.tokens.json` for the same
//! sign-in, under another hash, with no registration beside it and no refresh token; it holds
//! the paired login's access token and is passed over as that login's copy.

use std::path::Path;

use serde_json::Value;

use super::{SIGN_IN_AFRESH, Tool, known, login_problem, shown, sorted};
use crate::import::login::{
    Client, Login, Scan, Server, Tokens, from_millis, from_seconds, number, read_json, secret, text,
};

const TOKENS_SUFFIX: &str = ".tokens.json";

pub(super) fn scan(dir: &Path) -> Result<Scan, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut scan = Scan::default();
    let mut unpaired = Vec::new();
    for name in &names {
        let Some(hash) = name.strip_suffix(TOKENS_SUFFIX) else {
            continue;
        };
        match read(dir, hash) {
            Ok(login) => scan.logins.push(login),
            Err(problem) => unpaired.push((hash, *problem)),
        }
    }
    // Copilot CLI 1.0 keeps a second copy of a server's tokens under another hash, with no
    // registration beside it and no refresh token: the same login, not one that failed.
    for (hash, problem) in unpaired {
        if !copy_of_a_login(dir, hash, &scan.logins) {
            scan.problems.push(problem);
        }
    }
    sorted(&mut scan.logins);
    Ok(scan)
}

/// Whether `<hash>.tokens.json` holds the access token of one of `logins`.
fn copy_of_a_login(dir: &Path, hash: &str, logins: &[Login]) -> bool {
    let file = dir.join(format!("{hash}{TOKENS_SUFFIX}"));
    let Ok(tokens) = read_json::<Value>(&file, Tool::Copilot.title()) else {
        return false;
    };
    let Some(access) = text(tokens.get("accessToken")) else {
        return false;
    };
    logins
        .iter()
        .any(|l| l.tokens.access_token.expose() == access)
}

fn read(dir: &Path, hash: &str) -> Result<Login, Box<crate::import::login::FileProblem>> {
    let tokens_file = dir.join(format!("{hash}{TOKENS_SUFFIX}"));
    let client_file = dir.join(format!("{hash}.json"));
    let problem =
        |file: &Path, reason: String| Box::new(login_problem(file, hash, reason, SIGN_IN_AFRESH));
    let tokens: Value =
        read_json(&tokens_file, Tool::Copilot.title()).map_err(|r| problem(&tokens_file, r))?;
    let access = secret(tokens.get("accessToken"))
        .ok_or_else(|| problem(&tokens_file, "has no accessToken".into()))?;
    if !client_file.is_file() {
        return Err(problem(
            &tokens_file,
            format!(
                "has no {hash}.json beside it, so the client the token was issued to is unknown and it could never be refreshed"
            ),
        ));
    }
    let client: Value =
        read_json(&client_file, Tool::Copilot.title()).map_err(|r| problem(&client_file, r))?;
    let client_id = text(client.get("clientId")).ok_or_else(|| {
        problem(
            &client_file,
            "has no clientId, so the client the token was issued to is unknown".into(),
        )
    })?;
    let server = match text(client.get("serverUrl")) {
        Some(url) => known(&url, &client_file),
        None => Server::Unknown {
            reason: format!("{hash}.json names no serverUrl"),
            fix: "pass its URL: tether import copilot URL".into(),
        },
    };
    let mut t = Tokens::new(access);
    t.refresh_token = secret(tokens.get("refreshToken"));
    t.scope = text(tokens.get("scope"));
    t.expires_at = tokens.get("expiresAt").and_then(|v| {
        // 10^11 seconds is the year 5138; as milliseconds it is 1973.
        if number(v)? > 1e11 {
            from_millis(v)
        } else {
            from_seconds(v)
        }
    });
    let client_secret = secret(client.get("clientSecret"));
    Ok(Login {
        key: shown(hash),
        place: shown(hash),
        file: tokens_file.clone(),
        server,
        client: Client {
            client_id,
            client_secret,
            redirect_uri: text(client.get("redirectUri")),
            issuer: text(client.get("authorizationServerUrl")),
            ..Client::default()
        },
        tokens: t,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copilot_pairs_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("abc.json"),
            r#"{"serverUrl":"https://a/mcp","clientId":"c","authorizationServerUrl":"https://as/"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("abc.tokens.json"),
            r#"{"accessToken":"at","expiresAt":4102444800}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("def.tokens.json"),
            r#"{"accessToken":"another"}"#,
        )
        .unwrap();
        let scan = scan(dir.path()).unwrap();
        assert_eq!(scan.logins.len(), 1);
        assert_eq!(
            scan.logins[0].tokens.expires_at.unwrap().timestamp(),
            4_102_444_800
        );
        assert_eq!(scan.logins[0].client.issuer.as_deref(), Some("https://as/"));
        assert!(scan.problems[0].reason.contains("def.json"));
    }

    /// As Copilot CLI 1.0.102 left its folder after signing in to one server.
    #[test]
    fn copilot_ignores_the_second_copy_of_a_paired_login() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a67a.json"),
            r#"{"serverUrl":"https://a/mcp","authorizationServerUrl":"https://a","clientId":"c","clientSecret":null,"redirectUri":"http://127.0.0.1:44909/","resourceUrl":"https://a/mcp","issuedAt":1796401410,"isStatic":false,"httpsRedirect":null}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a67a.tokens.json"),
            r#"{"accessToken":"at","requestedScope":"s","expiresAt":1796405010,"scope":"s","refreshToken":"rt"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("fbc5.tokens.json"),
            r#"{"accessToken":"at","requestedScope":"s","expiresAt":1796405010,"scope":"s"}"#,
        )
        .unwrap();
        let scan = scan(dir.path()).unwrap();
        assert_eq!(scan.logins.len(), 1);
        assert_eq!(scan.logins[0].key, "a67a");
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
    }
}
