//! The admin API under `/__sim/`: counters for tests and the demo, the fault plan, and
//! "the user revoked the app". It reports ids and counts, never a secret.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::faults::FaultPlan;
use super::server::{Shared, now_ms};
use super::state::Totals;

/// `GET /__sim/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub profile: String,
    pub time_scale: f64,
    pub issuer: String,
    pub resource: String,
    pub registrations: u64,
    pub clients: Vec<ClientStats>,
    pub totals: Totals,
    pub faults: FaultPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientStats {
    pub client_id: String,
    pub created: DateTime<Utc>,
    /// When a short-lived registration stops working (Notion); `None` = never.
    pub expires_at: Option<DateTime<Utc>>,
    pub expired: bool,
    pub deleted: bool,
    pub token_endpoint_auth_method: String,
    pub token_calls: u64,
    pub refresh_calls: u64,
    pub live_access_tokens: u64,
}

fn time(ms: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

pub(crate) fn snapshot(shared: &Shared) -> Stats {
    let now = now_ms();
    let faults = shared.faults().clone();
    let store = shared.store();
    let clients = store
        .client_order
        .iter()
        .filter_map(|id| store.clients.get(id))
        .map(|c| ClientStats {
            client_id: c.id.clone(),
            created: time(c.created_ms),
            expires_at: c.expires_ms.map(time),
            expired: c.expired(now),
            deleted: c.deleted,
            token_endpoint_auth_method: c.auth_method.as_str().to_string(),
            token_calls: c.token_calls,
            refresh_calls: c.refresh_calls,
            live_access_tokens: store.live_access_for(&c.id, now),
        })
        .collect();
    let mut totals = store.totals.clone();
    let (access, refresh) = store.live_counts(now);
    totals.live_access_tokens = access;
    totals.live_refresh_tokens = refresh;
    Stats {
        profile: shared.cfg.profile.to_string(),
        time_scale: shared.cfg.time_scale,
        issuer: shared.cfg.issuer.clone(),
        resource: shared.cfg.resource.clone(),
        registrations: totals.registrations,
        clients,
        totals,
        faults,
    }
}

pub(crate) async fn stats(State(shared): State<Arc<Shared>>) -> Json<Stats> {
    Json(snapshot(&shared))
}

pub(crate) async fn get_faults(State(shared): State<Arc<Shared>>) -> Json<FaultPlan> {
    Json(shared.faults().clone())
}

/// Replaces the whole plan; fields left out take their defaults.
pub(crate) async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let plan: FaultPlan = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("invalid fault plan: {e}")).into_response();
        }
    };
    if let Some(bad) = plan.missing_metadata.iter().find(|p| !p.starts_with('/')) {
        let msg = format!("missing_metadata entry '{bad}' must be a path starting with '/'");
        return (StatusCode::BAD_REQUEST, msg).into_response();
    }
    shared.replace_faults(plan.clone());
    Json(plan).into_response()
}

/// The user revoked the app at the provider: every token dies.
pub(crate) async fn revoke_all(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.store().kill_all();
    StatusCode::NO_CONTENT
}

pub(crate) async fn evict_access(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.store().evict_all_access();
    StatusCode::NO_CONTENT
}
