//! One login as every source's reader hands it over: the client it was issued to, its
//! tokens, and what the store says about its server. The readers (`store.rs` for
//! mcp-remote, `sources/` for the MCP clients) only read files; discovery, the issuer check
//! and placing are shared (`mod.rs`, `place.rs`, `convert.rs`).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::servers::Candidate;
use crate::secret::Secret;

/// One server's login in some tool's store.
#[derive(Debug)]
pub struct Login {
    /// The store's own key for it: mcp-remote's hash, Claude Code's `name|hash`, a server
    /// name.
    pub key: String,
    /// Where in the store: mcp-remote's version folder, else the server's name there.
    pub place: String,
    /// The file holding the token.
    pub file: PathBuf,
    pub server: Server,
    pub client: Client,
    pub tokens: Tokens,
}

/// What the store tells about the login's server.
#[derive(Debug, Clone)]
pub enum Server {
    /// Only a hash of the URL (mcp-remote): looked up among the URLs tether can find.
    Hash(String),
    /// The URL, and where it was found.
    Known(Candidate),
    /// Not knowable from what is on disk; why, and what the user can do.
    Unknown { reason: String, fix: String },
}

/// The OAuth client the token was issued to, as far as the store kept it.
#[derive(Debug, Default)]
pub struct Client {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Epoch seconds; 0 or absent: never.
    pub secret_expires_at: Option<i64>,
    /// Epoch seconds.
    pub issued_at: Option<i64>,
    pub redirect_uri: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub registration_access_token: Option<Secret>,
    pub registration_client_uri: Option<String>,
    /// The authorization server the store says registered the client.
    pub issuer: Option<String>,
    /// The token endpoint the store says the client used.
    pub token_endpoint: Option<String>,
}

/// The token set, its times already in UTC.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub scope: Option<String>,
    /// The scope asked for at sign-in, when the store kept it apart from the granted one.
    pub requested_scope: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub obtained_at: Option<DateTime<Utc>>,
    /// The issuer the token response named, when kept.
    pub issuer: Option<String>,
}

impl Tokens {
    pub fn new(access_token: Secret) -> Self {
        Self {
            access_token,
            refresh_token: None,
            scope: None,
            requested_scope: None,
            expires_at: None,
            obtained_at: None,
            issuer: None,
        }
    }
}

impl Login {
    /// The issuer the store says the client belongs to, if it says.
    pub fn stored_issuer(&self) -> Option<&str> {
        self.client
            .issuer
            .as_deref()
            .or(self.tokens.issuer.as_deref())
            .filter(|s| !s.trim().is_empty())
    }
}

/// A login (or a whole file) that could not be used, why, and what the user can do.
#[derive(Debug, Clone)]
pub struct FileProblem {
    pub file: PathBuf,
    pub key: String,
    pub place: String,
    pub reason: String,
    pub fix: String,
}

/// What a reader found in a store.
#[derive(Debug, Default)]
pub struct Scan {
    pub logins: Vec<Login>,
    pub problems: Vec<FileProblem>,
    /// mcp-remote's version folders read, newest first; empty for the other sources.
    pub folders: Vec<String>,
}

/// A store that is not there at all, or cannot be listed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "no mcp-remote store at '{0}': mcp-remote keeps its logins in ~/.mcp-auth, or in $MCP_REMOTE_CONFIG_DIR when set; pass --dir DIR if yours is elsewhere"
    )]
    Missing(String),
    #[error("no {tool} token store at '{path}': {hint}; pass --file PATH if yours is elsewhere")]
    NoStore {
        tool: &'static str,
        path: String,
        hint: &'static str,
    },
    #[error("cannot read '{0}': {1}; check its permissions, or pass --dir DIR")]
    Unreadable(String, String),
}

/// Reads and decodes one file. The reason never quotes the file's content: a type error
/// could otherwise echo a token.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path, format: &str) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read ({e})"))?;
    decode(&bytes, format)
}

/// Decodes JSON bytes, with [`read_json`]'s care for secrets in the reason.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], format: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| {
        let at = format!("line {}, column {}", e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Data => {
                let missing = e.to_string();
                let field = missing
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next());
                match field {
                    Some(f) => format!("is not in {format}'s format: it has no '{f}'"),
                    None => {
                        format!("is not in {format}'s format: a field has the wrong type ({at})")
                    }
                }
            }
            _ => format!("is not valid JSON ({at})"),
        }
    })
}

/// A JSON number, or a string holding one (several clients write either).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite() && *n >= 0.0)
}

/// Epoch milliseconds as a time.
pub fn from_millis(v: &Value) -> Option<DateTime<Utc>> {
    number(v).and_then(|ms| DateTime::from_timestamp_millis(ms as i64))
}

/// Epoch seconds as a time.
pub fn from_seconds(v: &Value) -> Option<DateTime<Utc>> {
    number(v).and_then(|s| DateTime::from_timestamp_millis((s * 1000.0) as i64))
}

/// A non-empty string field.
pub fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// A non-empty secret field.
pub fn secret(v: Option<&Value>) -> Option<Secret> {
    text(v).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_type_error_never_quotes_the_value() {
        let reason =
            decode::<serde_json::Map<String, Value>>(br#"["123456789012345678"]"#, "Codex")
                .unwrap_err();
        assert!(!reason.contains("123456789012345678"), "{reason}");
        assert!(reason.contains("Codex's format"), "{reason}");
    }

    #[test]
    fn times_come_in_both_units() {
        let ms = serde_json::json!(4_102_444_800_000u64);
        let s = serde_json::json!(4_102_444_800.5);
        assert_eq!(from_millis(&ms).unwrap().timestamp(), 4_102_444_800);
        assert_eq!(
            from_seconds(&s).unwrap().timestamp_millis(),
            4_102_444_800_500
        );
        assert!(from_millis(&serde_json::json!("x")).is_none());
    }
}
