//! The data tether keeps (docs/architecture.md, "What the vault holds"): a versioned serde model. Secrets are `Secret`, so any
//! human-readable rendering of these types is masked; only the sealed vault holds them whole.
//!
//! This file holds the store and the connection itself; the parts of a connection each have a
//! file of their own below, re-exported here so the model reads as one namespace.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::codec::SealedForm;
use crate::secret::Secret;

mod auth;
mod history;
mod lifetimes;
mod names;
mod registration;
mod token;

pub use auth::{ApiKeyHeader, Auth, Discovered, InvalidHeader, TriedUrl};
pub use history::{DiagnosisCode, Event, EventKind, Evidence};
pub use lifetimes::{ENDED_GRANTS_CAP, EndedGrant};
pub use names::{ConnectionName, InvalidName, InvalidUpstream, is_loopback, parse_upstream};
pub use registration::{ClientRegistration, RegistrationMethod, RegistrationStatus};
pub use token::{RefreshJournal, TokenSet};

/// The schema version this build writes. A vault written by a newer tether is refused,
/// never rewritten: the newer fields would be lost. Version 2 added
/// [`Connection::step_up`], version 3 [`Connection::counters`], version 4
/// [`Connection::ended_grants`] and the token's `granted_at` and `refresh_expires_at`,
/// version 5 [`ClientAccess::signed_in`]; an older vault reads as having none.
pub const SCHEMA_VERSION: u32 = 5;

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
    /// How long this connection's grants lasted before the server ended them with
    /// `invalid_grant`, newest last, at most [`ENDED_GRANTS_CAP`]. (Schema 4.)
    #[serde(default)]
    pub ended_grants: Vec<EndedGrant>,
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
            ended_grants: Vec::new(),
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
    /// The connection's name when this secret was made, once it has been renamed: the
    /// secret is derived from it, so a rename changes no client's endpoint secret.
    #[serde(default)]
    pub derived_for: Option<String>,
    /// Set when the client got this secret by signing in to tether itself (see
    /// `local_auth`) rather than from `tether url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_in: Option<LocalGrant>,
}

/// A client that signed in to tether itself: who it said it was, and its refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LocalGrant {
    pub client_id: String,
    pub client_name: String,
    /// SHA-256 of its refresh token; the token is derived again, never stored.
    pub refresh_hash: [u8; 32],
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
