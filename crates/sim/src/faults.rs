//! Fault knobs: failing token calls, a frozen token endpoint, connections reset before any
//! answer, a refresh whose response is lost in transit, and missing metadata documents —
//! set at start-up and changed at run time by the admin API.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::SimError;
use super::server::Shared;

/// How a failed token call fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FailKind {
    /// HTTP 500 with an OAuth-shaped body.
    #[default]
    #[serde(rename = "500")]
    ServerError,
    /// HTTP 429 with `Retry-After`.
    #[serde(rename = "429")]
    TooManyRequests,
    /// Hang for `timeout_secs`, then HTTP 500: the client's own timeout should fire first.
    #[serde(rename = "timeout")]
    Timeout,
}

/// The faults to inject. Counters count down as they fire; the admin API replaces the
/// whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    /// Fail this many of the next token-endpoint calls.
    pub fail_token_calls: u32,
    pub fail_kind: FailKind,
    /// `Retry-After` value sent with 429.
    pub retry_after_secs: u64,
    /// How long a `timeout` fault hangs before answering 500.
    pub timeout_secs: u64,
    /// Process the next successful refresh (the server really rotates) but cut the
    /// connection instead of sending the response.
    pub drop_next_refresh: bool,
    /// Process the next successful refresh, then hold the response this many seconds
    /// (0: no hold) — a client that dies meanwhile never learns the new token.
    pub hold_next_refresh_secs: u64,
    /// Request paths (e.g. `/.well-known/oauth-authorization-server`) answered with 404.
    pub missing_metadata: Vec<String>,
    /// Answer this many of the next device-code polls with `slow_down` (RFC 8628 §3.5),
    /// however patient the client was; each one adds 5 seconds to the interval.
    pub slow_down_polls: u32,
    /// Hold every token call, unprocessed, while this stays true (an authorization server
    /// that hangs); replacing the plan with one that does not freeze releases them, and
    /// each then runs as if it had just arrived.
    pub freeze_token_calls: bool,
    /// Reset this many of the next token connections once the request is read, before
    /// the token logic sees it (nothing rotates): the client gets a TCP reset and no byte
    /// of an answer — what a server that resumes from a freeze may do to a pending call.
    pub reset_token_calls: u32,
}

impl Default for FaultPlan {
    fn default() -> Self {
        FaultPlan {
            fail_token_calls: 0,
            fail_kind: FailKind::ServerError,
            retry_after_secs: 1,
            timeout_secs: 30,
            drop_next_refresh: false,
            hold_next_refresh_secs: 0,
            missing_metadata: Vec::new(),
            slow_down_polls: 0,
            freeze_token_calls: false,
            reset_token_calls: 0,
        }
    }
}

impl FailKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            FailKind::ServerError => "500",
            FailKind::TooManyRequests => "429",
            FailKind::Timeout => "timeout",
        }
    }
}

impl fmt::Display for FailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FailKind {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "500" => Ok(FailKind::ServerError),
            "429" => Ok(FailKind::TooManyRequests),
            "timeout" => Ok(FailKind::Timeout),
            _ => Err(SimError::UnknownFailKind(s.to_string())),
        }
    }
}

/// Answers 404 for every path the plan lists as missing, before any route runs.
pub(crate) async fn missing_metadata(
    State(shared): State<std::sync::Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    let missing = shared
        .faults()
        .missing_metadata
        .iter()
        .any(|p| p == req.uri().path());
    if missing {
        return (
            StatusCode::NOT_FOUND,
            "not found (simulated missing metadata)",
        )
            .into_response();
    }
    next.run(req).await
}

/// If the plan says the current token call must fail, takes one from the counter and
/// produces the failure (after hanging, for `timeout`).
pub(crate) async fn token_call_failure(shared: &Shared) -> Option<Response> {
    let (kind, retry_after, hang) = {
        let mut plan = shared.faults();
        if plan.fail_token_calls == 0 {
            return None;
        }
        plan.fail_token_calls -= 1;
        (plan.fail_kind, plan.retry_after_secs, plan.timeout_secs)
    };
    shared.count(|t| t.faults_injected += 1);
    let body = |error: &str, description: &str| {
        axum::Json(serde_json::json!({ "error": error, "error_description": description }))
    };
    Some(match kind {
        FailKind::ServerError => (
            StatusCode::INTERNAL_SERVER_ERROR,
            body("server_error", "simulated internal error"),
        )
            .into_response(),
        FailKind::TooManyRequests => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                body("temporarily_unavailable", "simulated rate limit"),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        FailKind::Timeout => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(hang)) => {}
                _ = shared.shutdown.cancelled() => {}
            }
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                body("server_error", "simulated timeout"),
            )
                .into_response()
        }
    })
}

/// Holds a token call while the plan freezes the token endpoint (or until shutdown).
pub(crate) async fn wait_while_frozen(shared: &Shared) {
    let mut changes = shared.fault_changes();
    let mut counted = false;
    loop {
        let frozen = shared.faults().freeze_token_calls;
        if !frozen {
            return;
        }
        if !counted {
            shared.count(|t| t.faults_injected += 1);
            counted = true;
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = shared.shutdown.cancelled() => return,
        }
    }
}

/// Whether the current token call's connection must be reset unanswered; takes one from
/// the counter.
pub(crate) fn take_reset(shared: &Shared) -> bool {
    let mut plan = shared.faults();
    if plan.reset_token_calls == 0 {
        return false;
    }
    plan.reset_token_calls -= 1;
    drop(plan);
    shared.count(|t| t.faults_injected += 1);
    true
}
