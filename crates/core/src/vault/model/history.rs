//! What happened to a connection: its events, the evidence each carries, and the stable
//! diagnosis codes that name what went wrong.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    #[serde(with = "crate::vault::time::ts")]
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
    /// The connection was given a new name (`tether rename`).
    Renamed,
    /// Written by a newer tether; kept so history survives a downgrade.
    #[serde(other)]
    Other,
}

/// The stable diagnosis codes (docs/diagnoses.md). Explanations and remedies live in
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
