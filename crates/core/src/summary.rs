//! What users see of a connection, shared by the text and `--json` forms of `list` and
//! `status`. Built from the vault model with every secret already masked, so an output
//! path cannot print a token by accident.

mod refreshing;

pub use refreshing::{Overdue, overdue_refresh, shown_state};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::forecast::{self, Forecast};
use crate::vault::{
    Auth, ClientRegistration, Connection, ConnectionState, Event, EventKind, RegistrationMethod,
    RegistrationStatus,
};

#[derive(Debug, Serialize)]
pub struct ConnectionSummary {
    pub name: String,
    pub upstream: String,
    pub auth: &'static str,
    pub state: &'static str,
    pub diagnosis: Option<String>,
    /// How long a refresh has been running past the token's expiry (then `state` is
    /// `degraded`).
    pub refreshing_seconds: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub expires_in_seconds: Option<i64>,
    pub last_refresh: Option<DateTime<Utc>>,
    pub refreshes_ok: u64,
    pub refreshes_failed: u64,
    pub clients: usize,
    /// The earliest known limit of the login (`crate::forecast`), near or not.
    pub forecast: Option<Forecast>,
}

impl ConnectionSummary {
    /// The summary, forecast from this connection's own history of ended grants.
    pub fn of(c: &Connection, now: DateTime<Utc>) -> Self {
        Self::with_observed(c, &forecast::observed_in(std::slice::from_ref(c)), now)
    }

    /// The summary, forecast from the grant lifetimes seen at every issuer
    /// ([`forecast::observed`] over the whole store).
    pub fn with_observed(
        c: &Connection,
        observed: &forecast::Observed,
        now: DateTime<Utc>,
    ) -> Self {
        let expires_at = c.token.as_ref().and_then(|t| t.expires_at);
        Self {
            name: c.name.to_string(),
            upstream: c.upstream.to_string(),
            auth: c.auth.kind(),
            state: shown_state(c, now).word(),
            diagnosis: c.state.diagnosis().map(|d| d.to_string()),
            refreshing_seconds: overdue_refresh(c, now).map(|o| o.seconds(now)),
            expires_at,
            expires_in_seconds: expires_at.map(|at| (at - now).num_seconds()),
            last_refresh: c
                .history
                .iter()
                .rev()
                .find(|e| e.kind == EventKind::Refreshed)
                .map(|e| e.at),
            refreshes_ok: c.counters().refreshes_ok,
            refreshes_failed: c.counters().refreshes_failed,
            clients: c.access.len(),
            forecast: forecast::forecast(c, observed, now),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectionDetail {
    #[serde(flatten)]
    pub summary: ConnectionSummary,
    pub state_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub api_key: Option<ApiKeyView>,
    pub scopes: Vec<String>,
    pub issuer: Option<String>,
    pub token: Option<TokenView>,
    pub registrations: Vec<RegistrationView>,
    pub downstream_clients: Vec<String>,
    /// When each local client was last served (by any tether process), by label.
    pub clients_last_seen: BTreeMap<String, DateTime<Utc>>,
    /// The clients that signed in to tether itself, by label: the name each gave.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub clients_signed_in: BTreeMap<String, String>,
    pub refresh_in_progress: Option<String>,
    /// Scopes the upstream asked for that the next sign-in adds (403 insufficient_scope).
    pub step_up: Option<crate::vault::StepUp>,
    pub history: Vec<Event>,
    /// Other possible holders of a dead grant seen on this machine (`clients::holders`),
    /// filled in by the command that shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ApiKeyView {
    pub header: String,
    pub key: String,
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub client_id: String,
    pub access_token: String,
    pub has_refresh_token: bool,
    pub scope: Option<String>,
    pub obtained_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub generation: u64,
}

#[derive(Debug, Serialize)]
pub struct RegistrationView {
    pub client_id: String,
    pub issuer: String,
    pub method: RegistrationMethod,
    pub status: RegistrationStatus,
    pub registered_at: DateTime<Utc>,
    pub secret_expires_at: Option<DateTime<Utc>>,
    pub deletable: bool,
}

/// Text a server chose (issuers, scopes, error details), its controls escaped: `--json` is
/// read with `jq -r` as often as by programs.
fn shown(text: &str) -> String {
    crate::printable::lines(text)
}

impl RegistrationView {
    fn of(r: &ClientRegistration) -> Self {
        Self {
            client_id: crate::secret::mask(&r.client_id),
            issuer: shown(&r.issuer),
            method: r.method,
            status: r.status,
            registered_at: r.registered_at,
            secret_expires_at: r.secret_expires_at,
            deletable: r.registration_access_token.is_some() && r.registration_client_uri.is_some(),
        }
    }
}

impl ConnectionDetail {
    pub fn of(c: &Connection, now: DateTime<Utc>) -> Self {
        Self::with_observed(c, &forecast::observed_in(std::slice::from_ref(c)), now)
    }

    /// The detail, forecast from the grant lifetimes seen at every issuer.
    pub fn with_observed(
        c: &Connection,
        observed: &forecast::Observed,
        now: DateTime<Utc>,
    ) -> Self {
        let (api_key, scopes, issuer) = match &c.auth {
            Auth::ApiKey { header, value } => (
                Some(ApiKeyView {
                    header: header.to_string(),
                    key: value.masked(),
                }),
                Vec::new(),
                None,
            ),
            Auth::OAuth { scopes, discovery } => (
                None,
                scopes.iter().map(|s| shown(s)).collect(),
                discovery.as_ref().map(|d| shown(&d.issuer)),
            ),
            Auth::None => (None, Vec::new(), None),
        };
        Self {
            summary: ConnectionSummary::with_observed(c, observed, now),
            state_detail: match shown_state(c, now).as_ref() {
                ConnectionState::Degraded { why } => Some(shown(why)),
                ConnectionState::NeedsReauth { detail, .. } => Some(shown(detail)),
                _ => None,
            },
            created_at: c.created_at,
            api_key,
            scopes,
            issuer,
            token: c.token.as_ref().map(|t| TokenView {
                client_id: crate::secret::mask(&t.client_id),
                access_token: t.access_token.masked(),
                has_refresh_token: t.refresh_token.is_some(),
                scope: t.scope.as_deref().map(shown),
                obtained_at: t.obtained_at,
                expires_at: t.expires_at,
                generation: t.generation,
            }),
            registrations: c.clients.iter().map(RegistrationView::of).collect(),
            downstream_clients: c.access.iter().map(|a| a.label.clone()).collect(),
            clients_last_seen: c
                .access
                .iter()
                .filter_map(|a| Some((a.label.clone(), a.last_seen?)))
                .collect(),
            clients_signed_in: c
                .access
                .iter()
                .filter_map(|a| {
                    let g = a.signed_in.as_ref()?;
                    Some((a.label.clone(), shown(&g.client_name)))
                })
                .collect(),
            refresh_in_progress: c.journal.as_ref().map(|j| {
                format!(
                    "refresh from generation {} started {} by process {}",
                    j.generation,
                    relative(j.started_at, now),
                    j.pid
                )
            }),
            step_up: c.step_up.clone(),
            history: c.history.clone(),
            candidates: Vec::new(),
        }
    }
}

/// "in 4m 10s", "3h 2m ago", "now".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (at - now).num_seconds();
    match secs {
        0 => "now".to_string(),
        s if s > 0 => format!("in {}", duration(s)),
        s => format!("{} ago", duration(-s)),
    }
}

/// A compact duration: `42s`, `4m 10s`, `3h 2m`, `12d 4h`.
pub fn duration(secs: i64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match () {
        _ if d > 0 => format!("{d}d {h}h"),
        _ if h > 0 => format!("{h}h {m}m"),
        _ if m > 0 => format!("{m}m {s}s"),
        _ => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(42), "42s");
        assert_eq!(duration(250), "4m 10s");
        assert_eq!(duration(3 * 3600 + 120), "3h 2m");
        assert_eq!(duration(10 * 86_400 * 365), "3650d 0h");
        let now = Utc::now();
        assert_eq!(relative(now, now), "now");
        assert_eq!(
            relative(now - chrono::Duration::seconds(90), now),
            "1m 30s ago"
        );
    }
}
