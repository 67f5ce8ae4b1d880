//! How a connection authenticates upstream — OAuth, an API key in a header, or nothing — and
//! what discovery found for an OAuth one.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::secret::Secret;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Auth {
    #[serde(rename = "oauth")]
    OAuth {
        #[serde(default)]
        scopes: Vec<String>,
        #[serde(default)]
        discovery: Option<Discovered>,
    },
    ApiKey {
        header: ApiKeyHeader,
        value: Secret,
    },
    None,
}

impl Auth {
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::OAuth { .. } => "oauth",
            Auth::ApiKey { .. } => "api-key",
            Auth::None => "none",
        }
    }
}

/// The header an API key travels in: `Authorization: Bearer <key>` or `X-API-Key: <key>`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiKeyHeader {
    pub name: String,
    #[serde(default)]
    pub prefix: Option<String>,
}

impl Default for ApiKeyHeader {
    fn default() -> Self {
        Self {
            name: "Authorization".to_string(),
            prefix: Some("Bearer".to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "header '{0}' is not valid: give a header name, optionally with a value prefix, such as 'Authorization: Bearer' or 'X-API-Key'"
)]
pub struct InvalidHeader(pub String);

impl std::str::FromStr for ApiKeyHeader {
    type Err = InvalidHeader;
    /// `NAME` or `NAME: PREFIX`.
    fn from_str(s: &str) -> Result<Self, InvalidHeader> {
        let (name, prefix) = match s.split_once(':') {
            Some((name, prefix)) => (name.trim(), Some(prefix.trim())),
            None => (s.trim(), None),
        };
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && p.chars().all(token_char));
        if name.is_empty() || !name.chars().all(token_char) || !prefix_ok {
            return Err(InvalidHeader(s.to_string()));
        }
        Ok(Self {
            name: name.to_string(),
            prefix: prefix.map(str::to_string),
        })
    }
}

impl fmt::Display for ApiKeyHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{}: {p}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// What discovery found, kept so later logins and `doctor` can compare.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Discovered {
    pub resource_metadata_url: Option<Url>,
    pub resource: String,
    pub issuer: String,
    /// The authorization server's metadata document as received (JSON text).
    pub as_metadata: String,
    #[serde(default)]
    pub tried: Vec<TriedUrl>,
    #[serde(with = "crate::vault::time::ts")]
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TriedUrl {
    pub url: String,
    /// HTTP status, or `None` when no response came back.
    pub status: Option<u16>,
    #[serde(default)]
    pub error: Option<String>,
}
