//! What a refresh writes into a connection's history: the move to "needs
//! re-authorization" with its evidence, an early eviction, a rejected API key — kept apart
//! from the refresh algorithm itself.

use chrono::{DateTime, Utc};

use super::Current;
use crate::oauth::token::TokenError;
use crate::secret::mask;
use crate::vault::{
    Connection, ConnectionState, DiagnosisCode, Event, EventKind, Evidence, Store, Vault,
    VaultError,
};

pub fn mark_needs_reauth(
    c: &mut Connection,
    diagnosis: DiagnosisCode,
    detail: &str,
    evidence: Vec<Evidence>,
    now: DateTime<Utc>,
) {
    let already =
        matches!(&c.state, ConnectionState::NeedsReauth { diagnosis: d, .. } if *d == diagnosis);
    c.state = ConnectionState::NeedsReauth {
        diagnosis,
        detail: detail.to_string(),
    };
    if !already {
        let mut event = Event::new(
            now,
            EventKind::StateChanged,
            format!("needs re-authorization: {detail}"),
        );
        event.diagnosis = Some(diagnosis);
        event.evidence = evidence;
        c.record(event);
    }
}

pub(super) fn evidence_for(error: &TokenError, client_id: &str, generation: u64) -> Vec<Evidence> {
    let mut lines = Vec::new();
    if let Some(status) = error.status() {
        lines.push(Evidence::new("status", status.to_string()));
    }
    if let TokenError::OAuth { body, .. } = error {
        lines.push(Evidence::new("error", body.error.clone()));
        if let Some(d) = &body.error_description {
            lines.push(Evidence::new("error_description", d.clone()));
        }
    }
    lines.push(Evidence::new("url", error.url()));
    if let TokenError::Network { reason, .. } = error {
        lines.push(Evidence::new("network", reason.clone()));
    }
    lines.push(Evidence::new("client", mask(client_id)));
    lines.push(Evidence::new("generation", generation.to_string()));
    lines
}

impl Current {
    /// Whether this token, refused now, was revoked early (a per-user token cap,
    /// typically) rather than merely expired: it had over a quarter of its lifetime left.
    pub fn revoked_early(&self) -> bool {
        let Some(expires) = self.expires_at else {
            return true;
        };
        let life = expires - self.obtained_at;
        expires - Utc::now() > life / 4
    }
}

/// The history entry for `rejected`, refused by the upstream (401) while it should have
/// been good, and replaced by a refresh.
pub fn eviction_event(rejected: &Current, description: Option<&str>) -> Event {
    let left = rejected
        .expires_at
        .map(|at| crate::summary::duration((at - Utc::now()).num_seconds().max(0)))
        .unwrap_or_else(|| "no expiry".to_string());
    let mut evidence = vec![
        Evidence::new("status", "401 invalid_token"),
        Evidence::new("generation", rejected.generation.to_string()),
        Evidence::new("time left", left.clone()),
    ];
    if let Some(d) = description {
        evidence.push(Evidence::new(
            "error_description",
            crate::printable::printable(d, 200),
        ));
    }
    let mut event = Event::new(
        Utc::now(),
        EventKind::Rejected,
        format!("the upstream revoked the access token early ({left} left); refreshed"),
    );
    event.diagnosis = Some(DiagnosisCode::TokenEvicted);
    event.evidence = evidence;
    event
}

/// Changes connection `name` in one vault transaction (a connection removed meanwhile is
/// left alone; a vault that cannot be written is said in the log, since the caller — an
/// answer already on its way to a client — has no one to tell).
async fn change(vault: &Vault, name: &str, apply: impl FnOnce(&mut Connection) + Send + 'static) {
    let name = name.to_string();
    let recorded = vault
        .transact_async(move |store: &mut Store| {
            if let Some(c) = store.get_mut(&name) {
                apply(c);
            }
            Ok::<_, VaultError>(())
        })
        .await;
    if let Err(e) = recorded {
        tracing::warn!("the vault could not record what happened to a connection: {e}");
    }
}

/// The upstream refused an API-key connection's key (401): said once in its history (not
/// again while the last entry already says so, within a minute), so `tether status`, the
/// TUI and `tether doctor`'s evidence show it.
pub async fn record_key_rejected(vault: &Vault, name: &str) {
    change(vault, name, |c| {
        let now = Utc::now();
        let said = c.history.last().is_some_and(|e| {
            e.kind == EventKind::Rejected
                && e.diagnosis == Some(DiagnosisCode::TokenEvicted)
                && now - e.at < chrono::Duration::minutes(1)
        });
        if !said {
            let mut event = Event::new(
                now,
                EventKind::Rejected,
                "the upstream rejected the API key (401): replace it (tether remove, then tether add --api-key-env)".to_string(),
            );
            event.diagnosis = Some(DiagnosisCode::TokenEvicted);
            event.evidence = vec![Evidence::new("status", "401")];
            c.record(event);
        }
    })
    .await;
}

/// The upstream refused the token of generation `generation` again after the one refresh
/// (or, with no refresh token, the one retry) a 401 gets: the client is told to sign in
/// again, so the connection says so too — unless a newer token arrived meanwhile.
pub async fn record_refused(vault: &Vault, name: &str, generation: u64) {
    change(vault, name, move |c| {
        let current = c.token.as_ref().map(|t| (t.generation, t.refresh_token.is_some()));
        let Some((stored, refreshable)) = current.filter(|(g, _)| *g == generation) else {
            return;
        };
        let detail = if refreshable {
            "the server refused a freshly refreshed token"
        } else {
            "the server refused the token before it expired, and issued no refresh token to get another"
        };
        let evidence = vec![
            Evidence::new("status", "401 twice (after a refresh or a retry)"),
            Evidence::new("generation", stored.to_string()),
        ];
        mark_needs_reauth(
            c,
            DiagnosisCode::InvalidGrantExpiredOrRevoked,
            detail,
            evidence,
            Utc::now(),
        );
    })
    .await;
}

/// Adds `event` to the history of connection `name`.
pub async fn record(vault: &Vault, name: &str, event: Event) {
    change(vault, name, |c| c.record(event)).await;
}
