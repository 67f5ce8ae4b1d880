//! The credential a connection sends upstream right now (`Current`), and the request header
//! made from it — what the proxy's hot path reads without touching the vault.

use std::sync::OnceLock;

use axum::http::{HeaderName, HeaderValue, header};
use chrono::{DateTime, Utc};

use crate::secret::Secret;
use crate::vault::{Auth, Connection};

/// What the proxy puts on an upstream request.
#[derive(Debug, Clone)]
pub enum Credential {
    Bearer(Secret),
    Header { name: String, value: Secret },
    None,
}

/// The token a connection uses right now.
#[derive(Debug)]
pub struct Current {
    pub credential: Credential,
    pub generation: u64,
    pub obtained_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The credential as an HTTP header, made on first use.
    header: OnceLock<Result<Option<CredentialHeader>, String>>,
}

/// A credential's request header; the value is marked sensitive (never logged by hyper).
pub type CredentialHeader = (HeaderName, HeaderValue);

impl Current {
    pub(super) fn new(
        credential: Credential,
        generation: u64,
        obtained_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            credential,
            generation,
            obtained_at,
            expires_at,
            header: OnceLock::new(),
        }
    }

    /// The header that carries the credential upstream (none for a public upstream),
    /// made once per token rather than for every request.
    pub fn header(&self) -> Result<Option<&CredentialHeader>, &str> {
        self.header
            .get_or_init(|| {
                let (name, value) = match &self.credential {
                    Credential::Bearer(token) => (
                        header::AUTHORIZATION,
                        HeaderValue::from_str(&format!("Bearer {}", token.expose())),
                    ),
                    Credential::Header { name, value } => (
                        HeaderName::from_bytes(name.as_bytes())
                            .map_err(|_| format!("'{name}' is not a header name"))?,
                        HeaderValue::from_str(value.expose()),
                    ),
                    Credential::None => return Ok(None),
                };
                let mut value =
                    value.map_err(|_| "the credential cannot be sent as a header".to_string())?;
                value.set_sensitive(true);
                Ok(Some((name, value)))
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(String::as_str)
    }

    /// Valid with a margin: a tenth of its lifetime, at most 30 s.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        match self.expires_at {
            None => true,
            Some(exp) => {
                let life = (exp - self.obtained_at).num_milliseconds().max(0);
                let skew = chrono::Duration::milliseconds((life / 10).min(30_000));
                now < exp - skew
            }
        }
    }

    /// Not expired yet (a token without expiry never is).
    pub fn is_valid(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|exp| now < exp)
    }

    pub(super) fn of(connection: &Connection) -> Option<Self> {
        match &connection.auth {
            Auth::None => Some(Self::forever(Credential::None, connection)),
            Auth::ApiKey { header, value } => {
                let value = match &header.prefix {
                    Some(p) => Secret::new(format!("{p} {}", value.expose())),
                    None => value.clone(),
                };
                let name = header.name.clone();
                Some(Self::forever(
                    Credential::Header { name, value },
                    connection,
                ))
            }
            Auth::OAuth { .. } => connection.token.as_ref().map(|t| {
                Self::new(
                    Credential::Bearer(t.access_token.clone()),
                    t.generation,
                    t.obtained_at,
                    t.expires_at,
                )
            }),
        }
    }

    fn forever(credential: Credential, connection: &Connection) -> Self {
        Self::new(credential, 0, connection.created_at, None)
    }
}
