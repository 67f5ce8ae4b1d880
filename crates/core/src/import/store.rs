//! mcp-remote's on-disk store, read only: the logins it holds, in which version folder, and
//! what each file says. Nothing here writes, locks, renames or deletes a file of mcp-remote's.
//!
//! Layout (mcp-remote 0.15.1, `src/lib/mcp-auth-config.ts`): `<dir>/mcp-remote-v1/` (older
//! releases: one `mcp-remote-<version>/` folder each), holding `<hash>_tokens.json` and
//! `<hash>_client_info.json` per server, where `<hash>` is the md5 of the server URL (see
//! `servers.rs`).

use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::login::{
    self, FileProblem, Login, Scan, ScanError, Server, Tokens, from_millis, number,
};
use crate::secret::Secret;

const TOKENS_SUFFIX: &str = "_tokens.json";
const CLIENT_SUFFIX: &str = "_client_info.json";
const FOLDER_PREFIX: &str = "mcp-remote-";

/// `<hash>_tokens.json`: the token response mcp-remote saved, plus its own fields.
#[derive(Debug, Deserialize)]
pub struct StoredTokens {
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub scope: Option<String>,
    /// The original lifetime in seconds, not the time left.
    #[serde(default)]
    pub expires_in: Option<Value>,
    /// Epoch milliseconds (0.1x releases did not write it).
    #[serde(default)]
    pub expires_at: Option<Value>,
    /// Only after a code exchange; mcp-remote's own refreshes drop it.
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub requested_scope: Option<String>,
}

/// `<hash>_client_info.json`: the RFC 7591 registration response as mcp-remote stored it.
#[derive(Debug, Deserialize)]
pub struct StoredClient {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_expires_at: Option<i64>,
    #[serde(default)]
    pub client_id_issued_at: Option<i64>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub registration_access_token: Option<Secret>,
    #[serde(default)]
    pub registration_client_uri: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
}

/// Reads every version folder under `dir` (or `dir` itself when it is a version folder).
pub fn scan(dir: &Path) -> Result<Scan, ScanError> {
    if !dir.is_dir() {
        return Err(ScanError::Missing(dir.display().to_string()));
    }
    let unreadable =
        |e: std::io::Error| ScanError::Unreadable(dir.display().to_string(), e.to_string());
    let mut folders: Vec<(FolderAge, String)> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| FolderAge::of(&name).map(|age| (age, name)))
        .collect();
    folders.sort_by(|a, b| b.0.cmp(&a.0));
    let mut scan = Scan::default();
    if folders.is_empty() && has_logins(dir) {
        // Pointed straight at a version folder.
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        read_folder(dir, &name.unwrap_or_default(), &mut scan);
        return Ok(scan);
    }
    for (_, name) in folders {
        read_folder(&dir.join(&name), &name, &mut scan);
    }
    Ok(scan)
}

/// Orders version folders: `mcp-remote-vN` (the store format, 0.1.30 on) newest, then the
/// per-release folders of older versions by version.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum FolderAge {
    Release(Vec<u64>),
    Format(u64),
}

impl FolderAge {
    fn of(name: &str) -> Option<Self> {
        let rest = name.strip_prefix(FOLDER_PREFIX)?;
        if let Some(n) = rest.strip_prefix('v').and_then(|n| n.parse().ok()) {
            return Some(Self::Format(n));
        }
        let core = rest.split(['-', '+']).next()?;
        let parts: Option<Vec<u64>> = core.split('.').map(|p| p.parse().ok()).collect();
        parts.filter(|p| !p.is_empty()).map(Self::Release)
    }
}

fn has_logins(dir: &Path) -> bool {
    file_names(dir).iter().any(|n| n.ends_with(TOKENS_SUFFIX))
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn read_folder(dir: &Path, folder: &str, scan: &mut Scan) {
    scan.folders.push(folder.to_string());
    for name in file_names(dir) {
        let Some(hash) = name.strip_suffix(TOKENS_SUFFIX) else {
            continue;
        };
        if scan.logins.iter().any(|l| l.key == hash) {
            continue;
        }
        match read_login(dir, folder, hash) {
            Ok(login) => scan.logins.push(login),
            Err(problem) => scan.problems.push(problem),
        }
    }
}

fn read_login(dir: &Path, folder: &str, hash: &str) -> Result<Login, FileProblem> {
    let tokens_file = dir.join(format!("{hash}{TOKENS_SUFFIX}"));
    let client_file = dir.join(format!("{hash}{CLIENT_SUFFIX}"));
    let problem = |file: &Path, reason: String, fix: &str| FileProblem {
        file: file.to_path_buf(),
        key: hash.to_string(),
        place: folder.to_string(),
        reason,
        fix: fix.to_string(),
    };
    let rerun = "run mcp-remote for that server once so it signs in again and rewrites it, then import again; or sign in with `tether add` and `tether login`";
    let tokens: StoredTokens = login::read_json(&tokens_file, "mcp-remote")
        .map_err(|reason| problem(&tokens_file, reason, rerun))?;
    if tokens.access_token.is_empty() {
        return Err(problem(
            &tokens_file,
            "holds an empty access_token".into(),
            rerun,
        ));
    }
    if !client_file.exists() {
        return Err(problem(
            &tokens_file,
            format!(
                "has no {hash}{CLIENT_SUFFIX} beside it, so the client the token was issued to is unknown and the token could never be refreshed"
            ),
            "add the server with `tether add NAME URL` and sign in with `tether login NAME`",
        ));
    }
    let client: StoredClient = login::read_json(&client_file, "mcp-remote")
        .map_err(|reason| problem(&client_file, reason, rerun))?;
    let written_at = std::fs::metadata(&tokens_file)
        .and_then(|m| m.modified())
        .ok()
        .map(DateTime::<Utc>::from)
        .filter(|t| *t > DateTime::<Utc>::from(SystemTime::UNIX_EPOCH));
    Ok(Login {
        key: hash.to_string(),
        place: folder.to_string(),
        file: tokens_file,
        server: Server::Hash(hash.to_string()),
        tokens: tokens.into_tokens(written_at),
        client: client.into_client(),
    })
}

impl StoredTokens {
    /// `expires_at` (ms) when written, else the file's time plus `expires_in`; issued at
    /// `expires_at − expires_in`, else when the file was written.
    fn into_tokens(self, written_at: Option<DateTime<Utc>>) -> Tokens {
        let lifetime = self.expires_in.as_ref().and_then(number);
        let expires_at = self.expires_at.as_ref().and_then(from_millis).or_else(|| {
            let lifetime = lifetime?;
            Some(written_at? + chrono::Duration::seconds(lifetime as i64))
        });
        let obtained_at = match (expires_at, lifetime) {
            (Some(at), Some(s)) => Some(at - chrono::Duration::seconds(s as i64)),
            _ => written_at,
        };
        Tokens {
            access_token: self.access_token,
            refresh_token: self.refresh_token.filter(|r| !r.is_empty()),
            scope: self.scope,
            requested_scope: self.requested_scope,
            expires_at,
            obtained_at,
            issuer: self.issuer,
        }
    }
}

impl StoredClient {
    fn into_client(self) -> login::Client {
        login::Client {
            client_id: self.client_id,
            client_secret: self.client_secret,
            secret_expires_at: self.client_secret_expires_at,
            issued_at: self.client_id_issued_at,
            redirect_uri: self.redirect_uris.into_iter().next(),
            token_endpoint_auth_method: self.token_endpoint_auth_method,
            registration_access_token: self.registration_access_token,
            registration_client_uri: self.registration_client_uri,
            issuer: self.issuer,
            token_endpoint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_order_newest_first() {
        let mut names = vec![
            "mcp-remote-0.1.9",
            "mcp-remote-v1",
            "mcp-remote-0.1.29",
            "mcp-remote-0.0.22",
        ];
        names.sort_by_key(|n| std::cmp::Reverse(FolderAge::of(n)));
        assert_eq!(
            names,
            [
                "mcp-remote-v1",
                "mcp-remote-0.1.29",
                "mcp-remote-0.1.9",
                "mcp-remote-0.0.22"
            ]
        );
        assert!(FolderAge::of("other").is_none());
        assert!(FolderAge::of("mcp-remote-x").is_none());
    }

    #[test]
    fn the_newest_folder_wins_and_older_releases_expire_from_the_file_time() {
        let dir = tempfile::tempdir().unwrap();
        let write = |folder: &str, hash: &str, tokens: &str| {
            let d = dir.path().join(folder);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(format!("{hash}{TOKENS_SUFFIX}")), tokens).unwrap();
            std::fs::write(
                d.join(format!("{hash}{CLIENT_SUFFIX}")),
                r#"{"client_id":"c"}"#,
            )
            .unwrap();
        };
        let current = r#"{"access_token":"new","expires_in":60,"expires_at":4102444800000}"#;
        write("mcp-remote-v1", "aa", current);
        write("mcp-remote-0.1.29", "aa", r#"{"access_token":"old"}"#);
        write(
            "mcp-remote-0.1.29",
            "bb",
            r#"{"access_token":"old","expires_in":3600}"#,
        );
        let scan = scan(dir.path()).unwrap();
        assert_eq!(scan.folders, ["mcp-remote-v1", "mcp-remote-0.1.29"]);
        assert_eq!(scan.logins.len(), 2);
        let aa = &scan.logins[0];
        assert_eq!(
            (aa.key.as_str(), aa.place.as_str()),
            ("aa", "mcp-remote-v1")
        );
        assert_eq!(aa.tokens.expires_at.unwrap().timestamp(), 4_102_444_800);
        assert_eq!(aa.tokens.obtained_at.unwrap().timestamp(), 4_102_444_740);
        let bb = &scan.logins[1];
        let lifetime = bb.tokens.expires_at.unwrap() - bb.tokens.obtained_at.unwrap();
        assert_eq!(lifetime.num_seconds(), 3600);
        // Pointed at the version folder itself.
        let inner = super::scan(&dir.path().join("mcp-remote-v1")).unwrap();
        assert_eq!(inner.logins.len(), 1);
    }

    #[test]
    fn a_type_error_never_quotes_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x");
        std::fs::write(&file, r#"{"access_token": 123456789012345678}"#).unwrap();
        let reason = login::read_json::<StoredTokens>(&file, "mcp-remote").unwrap_err();
        assert!(!reason.contains("123456789012345678"), "{reason}");
        std::fs::write(&file, r#"{"scope": "a"}"#).unwrap();
        let reason = login::read_json::<StoredTokens>(&file, "mcp-remote").unwrap_err();
        assert!(reason.contains("'access_token'"), "{reason}");
    }
}
