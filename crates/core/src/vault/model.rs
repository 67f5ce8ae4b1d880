//! The data tether keeps (DESIGN §3): a versioned serde model. Secrets are `Secret`, so any
//! human-readable rendering of these types is masked; only the sealed vault holds them whole.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::codec::SealedForm;
use crate::secret::Secret;

/// The schema version this build writes. A vault written by a newer tether is refused,
/// never rewritten: the newer fields would be lost. Version 2 added
/// [`Connection::step_up`], version 3 [`Connection::counters`]; an older vault reads as
/// having none.
pub const SCHEMA_VERSION: u32 = 3;

/// Events kept per connection, newest last.
pub const HISTORY_CAP: usize = 200;

/// Every connection tether knows. Mutable access goes through methods so that each
/// changed connection forgets its cached encoded form (see `codec.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Store {
    pub version: u32,
    #[serde(default)]
    connections: Vec<Connection>,
}

impl Default for Store {
    fn default() -> Self {
        Self::from_connections(Vec::new())
    }
}

impl Store {
    pub fn from_connections(connections: Vec<Connection>) -> Self {
        Self {
            version: SCHEMA_VERSION,
            connections,
        }
    }

    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name.as_str() == name)
    }

    /// Where the connection `name` is in [`Store::connections`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.connections
            .iter()
            .position(|c| c.name.as_str() == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Connection> {
        let c = self
            .connections
            .iter_mut()
            .find(|c| c.name.as_str() == name)?;
        c.sealed.forget();
        Some(c)
    }

    pub fn push(&mut self, mut connection: Connection) {
        connection.sealed.forget();
        self.connections.push(connection);
    }

    pub fn remove(&mut self, name: &str) -> Option<Connection> {
        let index = self
            .connections
            .iter()
            .position(|c| c.name.as_str() == name)?;
        Some(self.connections.remove(index))
    }

    /// Every connection, mutably (all of them will be re-encoded).
    pub fn connections_mut(&mut self) -> &mut Vec<Connection> {
        for c in &mut self.connections {
            c.sealed.forget();
        }
        &mut self.connections
    }

    pub(super) fn connections_for_codec(&mut self) -> &mut [Connection] {
        &mut self.connections
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Connection {
    pub name: ConnectionName,
    pub upstream: Url,
    pub auth: Auth,
    /// Every OAuth client id ever used for this connection, newest last.
    #[serde(default)]
    pub clients: Vec<ClientRegistration>,
    #[serde(default)]
    pub token: Option<TokenSet>,
    #[serde(default)]
    pub history: Vec<Event>,
    /// Downstream MCP clients allowed to use this connection through the proxy.
    #[serde(default)]
    pub access: Vec<ClientAccess>,
    /// Present from just before a refresh request until its result is stored.
    #[serde(default)]
    pub journal: Option<RefreshJournal>,
    pub state: ConnectionState,
    #[serde(with = "super::time::ts")]
    pub created_at: DateTime<Utc>,
    /// The key downstream client secrets are derived from (HMAC), created with the
    /// first endpoint; only their hashes are stored.
    #[serde(default)]
    pub access_key: Option<Secret>,
    /// Scopes the upstream asked for that the token lacks (a step-up), until a sign-in
    /// gets them. (Schema 2.)
    #[serde(default)]
    pub step_up: Option<StepUp>,
    /// Lifetime counts, kept apart from the bounded history (which forgets). Absent in a
    /// vault written before they were kept: then counted from the history at first use.
    #[serde(default)]
    pub counters: Option<Counters>,
    #[serde(skip)]
    pub(super) sealed: SealedForm,
}

impl Connection {
    pub fn new(name: ConnectionName, upstream: Url, auth: Auth, now: DateTime<Utc>) -> Self {
        let state = match auth {
            Auth::OAuth { .. } => ConnectionState::NeedsLogin,
            Auth::ApiKey { .. } | Auth::None => ConnectionState::Healthy,
        };
        Self {
            name,
            upstream,
            auth,
            clients: Vec::new(),
            token: None,
            history: Vec::new(),
            access: Vec::new(),
            journal: None,
            step_up: None,
            counters: Some(Counters::default()),
            state,
            created_at: now,
            access_key: None,
            sealed: SealedForm::default(),
        }
    }

    /// Appends to the history ring, dropping the oldest entries past [`HISTORY_CAP`], and
    /// counts the event in the lifetime counters.
    pub fn record(&mut self, event: Event) {
        let mut counters = self.counters();
        counters.count(event.kind);
        self.counters = Some(counters);
        self.history.push(event);
        if self.history.len() > HISTORY_CAP {
            let excess = self.history.len() - HISTORY_CAP;
            self.history.drain(..excess);
        }
    }
}

impl Connection {
    /// Refreshes since the connection was added (or since counters were first kept).
    pub fn counters(&self) -> Counters {
        self.counters
            .unwrap_or_else(|| Counters::from_history(&self.history))
    }
}

/// How many refreshes a connection has had, for as long as it exists.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counters {
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
}

impl Counters {
    fn from_history(history: &[Event]) -> Self {
        let mut counters = Self::default();
        for event in history {
            counters.count(event.kind);
        }
        counters
    }

    fn count(&mut self, kind: EventKind) {
        match kind {
            EventKind::Refreshed => self.refreshes_ok += 1,
            EventKind::RefreshFailed => self.refreshes_failed += 1,
            _ => {}
        }
    }
}

/// A connection name: `[a-z0-9-]{1,32}`, used in URLs and commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectionName(String);

/// How many sign-ins ask for a step-up's scopes before tether stops adding them by itself.
pub const MAX_STEP_UPS: u32 = 3;

/// Scopes the upstream asked for with 403 `insufficient_scope`, and how many sign-ins have
/// asked for them since: the next login asks for them too (the union with what it asks
/// anyway), at most [`MAX_STEP_UPS`] times.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepUp {
    pub scopes: Vec<String>,
    #[serde(default)]
    pub logins: u32,
}

impl StepUp {
    /// The scopes the next sign-in adds: none once [`MAX_STEP_UPS`] have asked.
    pub fn to_ask(&self) -> &[String] {
        if self.logins < MAX_STEP_UPS {
            &self.scopes
        } else {
            &[]
        }
    }
}

impl ConnectionName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "connection name '{0}' is not valid: use 1 to 32 characters from a-z, 0-9 and '-' (for example 'linear' or 'github-work')"
)]
pub struct InvalidName(pub String);

impl TryFrom<String> for ConnectionName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, InvalidName> {
        let ok = (1..=32).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(value))
        } else {
            Err(InvalidName(value))
        }
    }
}

impl std::str::FromStr for ConnectionName {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, InvalidName> {
        Self::try_from(s.to_string())
    }
}

impl From<ConnectionName> for String {
    fn from(name: ConnectionName) -> String {
        name.0
    }
}

impl fmt::Display for ConnectionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUpstream {
    #[error(
        "URL '{0}' is not valid: {1}; give an absolute URL such as https://mcp.example.com/mcp"
    )]
    Parse(String, String),
    #[error("URL '{0}' uses '{1}': use an https:// URL (http:// only for 127.0.0.1 or localhost)")]
    Scheme(String, String),
    #[error(
        "URL '{0}' uses plain http for a host that is not loopback: use https:// (tokens would travel in the clear)"
    )]
    InsecureHost(String),
    #[error(
        "URL '{0}' carries a user name or password: remove it and use --api-key-env for credentials"
    )]
    Credentials(String),
}

/// Checks an upstream MCP URL: absolute http(s), plain http only for loopback, no
/// credentials in the URL, no fragment.
pub fn parse_upstream(raw: &str) -> Result<Url, InvalidUpstream> {
    let mut url =
        Url::parse(raw).map_err(|e| InvalidUpstream::Parse(raw.to_string(), e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(InvalidUpstream::InsecureHost(raw.to_string())),
        other => return Err(InvalidUpstream::Scheme(raw.to_string(), other.to_string())),
    }
    if url.host().is_none() {
        return Err(InvalidUpstream::Parse(
            raw.to_string(),
            "it has no host".to_string(),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidUpstream::Credentials(raw.to_string()));
    }
    url.set_fragment(None);
    Ok(url)
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

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
    #[serde(with = "super::time::ts")]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientRegistration {
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    pub issuer: String,
    pub method: RegistrationMethod,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(with = "super::time::ts")]
    pub registered_at: DateTime<Utc>,
    #[serde(default, with = "super::time::ts_opt")]
    pub secret_expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub registration_access_token: Option<Secret>,
    #[serde(default)]
    pub registration_client_uri: Option<Url>,
    pub status: RegistrationStatus,
    /// How this client authenticates at the token endpoint, as the server registered it:
    /// `none`, `client_secret_post` or `client_secret_basic`.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

impl ClientRegistration {
    /// A client the user registered by hand; its issuer is bound at the first login.
    pub fn preregistered(
        client_id: String,
        client_secret: Option<Secret>,
        redirect_uri: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            client_id,
            client_secret,
            issuer: String::new(),
            method: RegistrationMethod::Preregistered,
            redirect_uri: Some(redirect_uri),
            registered_at: now,
            secret_expires_at: None,
            registration_access_token: None,
            registration_client_uri: None,
            status: RegistrationStatus::Active,
            token_endpoint_auth_method: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMethod {
    Dcr,
    Preregistered,
    Cimd,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Active,
    Legacy,
    Orphan,
    Rejected,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenSet {
    /// The client this token was issued to; a refresh uses exactly this client.
    pub client_id: String,
    pub issuer: String,
    pub access_token: Secret,
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default, with = "super::time::ts_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(with = "super::time::ts")]
    pub obtained_at: DateTime<Utc>,
    /// Grows by one per successful token change; never reused.
    pub generation: u64,
    /// Short hashes of refresh tokens tether has already spent, to tell reuse apart from
    /// rotation elsewhere when a server answers `invalid_grant`.
    #[serde(default)]
    pub used_refresh_hashes: Vec<[u8; 8]>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(with = "super::time::ts")]
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub detail: String,
    #[serde(default)]
    pub diagnosis: Option<DiagnosisCode>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// What was observed, as label/value lines (HTTP status, OAuth error, URL, client id),
    /// every value already masked where it could hold a secret.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

impl Event {
    /// An event; its detail often quotes a server, so its controls are escaped here, once,
    /// for every place that shows history.
    pub fn new(at: DateTime<Utc>, kind: EventKind, detail: impl Into<String>) -> Self {
        Self {
            at,
            kind,
            detail: crate::printable::lines(&detail.into()),
            diagnosis: None,
            latency_ms: None,
            evidence: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Evidence {
    pub label: String,
    pub value: String,
}

impl Evidence {
    /// Evidence quotes servers (URLs, error descriptions): its controls are escaped here.
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value: crate::printable::lines(&value.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Added,
    Discovered,
    Registered,
    Authorized,
    Refreshed,
    RefreshFailed,
    /// Another process stored a newer token; this one took it instead of refreshing.
    Adopted,
    StateChanged,
    ClientAdded,
    ClientRevoked,
    /// The upstream refused an access token before its expiry (e.g. a per-user cap).
    Rejected,
    /// Written by a newer tether; kept so history survives a downgrade.
    #[serde(other)]
    Other,
}

/// The stable diagnosis codes of DESIGN §6. Explanations and remedies live in
/// `diagnosis.rs`; the vault only stores the code.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum DiagnosisCode {
    #[serde(rename = "invalid_grant.reused")]
    InvalidGrantReused,
    #[serde(rename = "invalid_grant.rotated_elsewhere")]
    InvalidGrantRotatedElsewhere,
    #[serde(rename = "invalid_grant.lost_response")]
    InvalidGrantLostResponse,
    #[serde(rename = "invalid_grant.expired_or_revoked")]
    InvalidGrantExpiredOrRevoked,
    #[serde(rename = "client_mismatch")]
    ClientMismatch,
    #[serde(rename = "client_rejected")]
    ClientRejected,
    #[serde(rename = "dcr_orphan")]
    DcrOrphan,
    #[serde(rename = "token_evicted")]
    TokenEvicted,
    #[serde(rename = "no_refresh_token")]
    NoRefreshToken,
    #[serde(rename = "short_lived")]
    ShortLived,
    #[serde(rename = "insufficient_scope")]
    InsufficientScope,
    #[serde(rename = "discovery_failed")]
    DiscoveryFailed,
    #[serde(rename = "pkce_unsupported")]
    PkceUnsupported,
    #[serde(rename = "upstream_unreachable")]
    UpstreamUnreachable,
    #[serde(rename = "downstream_unauthorized")]
    DownstreamUnauthorized,
    #[serde(rename = "client.drift")]
    ClientDrift,
}

impl DiagnosisCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidGrantReused => "invalid_grant.reused",
            Self::InvalidGrantRotatedElsewhere => "invalid_grant.rotated_elsewhere",
            Self::InvalidGrantLostResponse => "invalid_grant.lost_response",
            Self::InvalidGrantExpiredOrRevoked => "invalid_grant.expired_or_revoked",
            Self::ClientMismatch => "client_mismatch",
            Self::ClientRejected => "client_rejected",
            Self::DcrOrphan => "dcr_orphan",
            Self::TokenEvicted => "token_evicted",
            Self::NoRefreshToken => "no_refresh_token",
            Self::ShortLived => "short_lived",
            Self::InsufficientScope => "insufficient_scope",
            Self::DiscoveryFailed => "discovery_failed",
            Self::PkceUnsupported => "pkce_unsupported",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::DownstreamUnauthorized => "downstream_unauthorized",
            Self::ClientDrift => "client.drift",
        }
    }
}

impl fmt::Display for DiagnosisCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClientAccess {
    pub label: String,
    /// SHA-256 of the downstream secret; the secret itself is never stored.
    pub secret_hash: [u8; 32],
    #[serde(with = "super::time::ts")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "super::time::ts_opt")]
    pub last_seen: Option<DateTime<Utc>>,
    /// Random input to the secret's derivation: a label revoked and created again gets
    /// a different secret.
    #[serde(default)]
    pub nonce: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefreshJournal {
    /// The token generation the refresh started from.
    pub generation: u64,
    pub client_id: String,
    #[serde(with = "super::time::ts")]
    pub started_at: DateTime<Utc>,
    pub pid: u32,
    /// An earlier refresh from this same generation never reported back (the process
    /// died, or the connection broke after the request went out): the server may have
    /// rotated the token already, so an `invalid_grant` now means the response was lost.
    #[serde(default)]
    pub suspect: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Added but not yet authorized: `tether login NAME`.
    NeedsLogin,
    Healthy,
    Expiring,
    Refreshing,
    Degraded {
        why: String,
    },
    NeedsReauth {
        diagnosis: DiagnosisCode,
        detail: String,
    },
    Disabled,
}

impl ConnectionState {
    /// One word for tables and the TUI.
    pub fn word(&self) -> &'static str {
        match self {
            Self::NeedsLogin => "needs-login",
            Self::Healthy => "healthy",
            Self::Expiring => "expiring",
            Self::Refreshing => "refreshing",
            Self::Degraded { .. } => "degraded",
            Self::NeedsReauth { .. } => "needs-reauth",
            Self::Disabled => "disabled",
        }
    }

    pub fn diagnosis(&self) -> Option<DiagnosisCode> {
        match self {
            Self::NeedsReauth { diagnosis, .. } => Some(*diagnosis),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
