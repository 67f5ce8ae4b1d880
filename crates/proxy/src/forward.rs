//! Forwarding one request upstream with the connection's own credential: the buffered
//! body, the MCP headers both wire revisions use, never the client's `Authorization`;
//! the response streamed back as it arrives (SSE events are not buffered). An upstream
//! 401 gets one forced refresh and one retry; a connection that cannot authenticate is
//! answered with a JSON-RPC error that names the diagnosis and the fix.

use std::time::Instant;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde_json::json;

use super::calls::{Forwarded, Trace};
use super::signin::StepUp;
use super::upstream::{Call, Target, UpstreamError, UpstreamResponse};
use super::{Answer, Proxy, Reply};
use tether_core::oauth::refresh::{AuthError, Current};
use tether_core::oauth::www_authenticate;
use tether_core::vault::{Auth, Connection, DiagnosisCode, MAX_STEP_UPS};

mod answers;
mod body;
mod patience;
mod relay;

use answers::{AUTH_ERROR, auth_failure, rpc_error, timed_out, unreachable};
pub use answers::{no_connection, own, too_large, unreadable};
pub use body::{BodyError, read_body};
use patience::patience;
use relay::stream_back;

/// Forwards one call whose body has been read whole and counts it for its client; what
/// the forwarding learned comes back with the answer, for the call's record.
pub async fn forward(
    proxy: &Proxy,
    connection: &Connection,
    label: &str,
    parts: &Parts,
    body: &Bytes,
) -> (Answer, Forwarded) {
    let started = Instant::now();
    let name = connection.name.as_str();
    let mut trace = Trace::default();
    let response = forward_buffered(proxy, connection, parts, body, started, &mut trace).await;
    // An answer tether wrote itself stands for a failure (the upstream's are passed on).
    let ok = response.status().is_success() && matches!(response.body(), Reply::Upstream(_));
    let first_byte = started.elapsed();
    proxy.engine.record_traffic(name, label, ok, first_byte);
    let forwarded = Forwarded {
        started,
        first_byte,
        trace,
    };
    (response, forwarded)
}

async fn forward_buffered(
    proxy: &Proxy,
    connection: &Connection,
    parts: &Parts,
    body: &Bytes,
    at: Instant,
    trace: &mut Trace,
) -> Answer {
    let name = connection.name.as_str();
    let oauth = matches!(connection.auth, Auth::OAuth { .. });
    let api_key = matches!(connection.auth, Auth::ApiKey { .. });
    let target = match proxy.upstream.target(&connection.upstream) {
        Ok(target) => target,
        Err(e) => return unreachable(name, &e, parts, body),
    };
    let current = match proxy.engine.credential(name).await {
        Ok(c) => c,
        Err(e) => return Box::pin(cannot_authenticate(proxy, connection, &e, parts, body)).await,
    };
    // A session tether began while the connection awaited its sign-in is the upstream's
    // own from its first call after it.
    let joined;
    let parts = if proxy.signin.began_any() {
        match Box::pin(proxy.signin.join(connection, &target, &current, parts)).await {
            Ok(Some(head)) => {
                joined = head;
                &joined
            }
            Ok(None) => parts,
            Err(e) => return unreachable(name, &e, parts, body),
        }
    } else {
        parts
    };
    let mut result = send(proxy, &target, parts, body, &current, at).await;
    // The generation of the token the answer in `result` was given to.
    let mut sent = current.generation;
    if oauth
        && let Ok(res) = &result
        && res.status() == StatusCode::UNAUTHORIZED
    {
        let challenge = www_authenticate::bearer(res.headers()).unwrap_or_default();
        // Another request may have refreshed since this one took its token: then this
        // only picks up the newer token.
        // Boxed: rare, and large enough that every call would otherwise carry its state.
        trace.refreshed = true;
        let refreshed = Box::pin(proxy.engine.refresh_rejected(name, current.generation));
        let fresh = match refreshed.await {
            Ok(fresh) => fresh,
            Err(e) => {
                return Box::pin(cannot_authenticate(proxy, connection, &e, parts, body)).await;
            }
        };
        if fresh.generation > current.generation && current.revoked_early() {
            proxy
                .engine
                .record_eviction(name, &current, challenge.error_description.as_deref());
        }
        sent = fresh.generation;
        trace.retried = true;
        result = send(proxy, &target, parts, body, &fresh, Instant::now()).await;
    }
    match result {
        Ok(res) if res.status() == StatusCode::FORBIDDEN && oauth => {
            Box::pin(insufficient_scope(proxy, &target, name, res, parts, body)).await
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && oauth => {
            let e = AuthError::NeedsReauth {
                name: name.to_string(),
                diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
                detail: "the server refused a freshly refreshed token".to_string(),
            };
            // The client hears it must sign in again; `list`, `status` and the terminal UI
            // must say the same, not "healthy".
            proxy.engine.record_refused(name, sent);
            Box::pin(cannot_authenticate(proxy, connection, &e, parts, body)).await
        }
        Ok(res) if res.status() == StatusCode::UNAUTHORIZED && api_key => {
            let message = format!(
                "tether: the upstream of '{name}' rejected its API key (401): replace the key with `tether remove {name}` and `tether add {name} … --api-key-env VAR`"
            );
            let data =
                json!({"connection": name, "diagnosis": DiagnosisCode::TokenEvicted.as_str()});
            proxy.engine.record_key_rejected(name);
            rpc_error(
                StatusCode::BAD_GATEWAY,
                AUTH_ERROR,
                message,
                data,
                parts,
                body,
            )
        }
        Ok(res) => stream_back(res),
        Err(UpstreamError::Timeout(secs)) => timed_out(name, secs, parts, body),
        Err(e) => unreachable(name, &e, parts, body),
    }
}

/// A call on a connection that cannot authenticate: answered by the sign-in from the chat
/// where that is what helps (`signin`), else with the auth error.
async fn cannot_authenticate(
    proxy: &Proxy,
    connection: &Connection,
    error: &AuthError,
    parts: &Parts,
    body: &Bytes,
) -> Answer {
    match proxy.signin.answer(connection, error, parts, body).await {
        Some(answer) => answer,
        None => auth_failure(connection.name.as_str(), error, parts, body),
    }
}

async fn send(
    proxy: &Proxy,
    target: &Target,
    parts: &Parts,
    body: &Bytes,
    current: &Current,
    at: Instant,
) -> Result<UpstreamResponse, UpstreamError> {
    let credential = current
        .header()
        .map_err(|e| UpstreamError::Failed(e.into()))?;
    let call = Call {
        method: &parts.method,
        headers: &parts.headers,
        body,
        credential,
        at,
        patience: patience(parts, body),
    };
    proxy.upstream.send(target, &call).await
}

/// A 403: passed on as it is unless it is `insufficient_scope`, which becomes a step-up —
/// the scopes wanted are recorded for the next sign-in — and an error saying so.
async fn insufficient_scope(
    proxy: &Proxy,
    target: &Target,
    name: &str,
    res: UpstreamResponse,
    parts: &Parts,
    body: &Bytes,
) -> Answer {
    let challenge = www_authenticate::bearer(res.headers()).unwrap_or_default();
    if challenge.error.as_deref() != Some("insufficient_scope") {
        return stream_back(res);
    }
    drop(res);
    let needed: Vec<String> = challenge
        .scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect();
    let step = proxy
        .engine
        .want_scopes(name, needed.clone(), challenge.error_description)
        .await;
    let wanted = match &step {
        Ok(step) if !step.scopes.is_empty() => step.scopes.join(" "),
        _ => needed.join(" "),
    };
    let said = if wanted.is_empty() {
        String::new()
    } else {
        format!(": needs '{wanted}'")
    };
    let message = match &step {
        Ok(step) if step.to_ask().is_empty() && !step.scopes.is_empty() => format!(
            "tether: '{name}' still lacks scope '{wanted}' after {MAX_STEP_UPS} sign-ins that asked for it (insufficient_scope): the account may not be allowed it. `tether login {name} --scope \"{wanted}\"` asks once more."
        ),
        Ok(_) => format!(
            "tether: '{name}' needs re-authorization with more scope (insufficient_scope{said}). Run `tether login {name}` (it asks for that scope too) or press l in tether."
        ),
        Err(_) => format!(
            "tether: '{name}' needs re-authorization with more scope (insufficient_scope{said}). Run `tether login {name} --scope \"{wanted}\"` or press l in tether."
        ),
    };
    // A sign-in would ask for more than the grant has: on this machine, tether does it.
    if matches!(&step, Ok(step) if !step.to_ask().is_empty()) {
        match proxy.signin.step_up(name, &wanted, body).await {
            StepUp::Answer(answer) => return *answer,
            // Signed in at once: the call goes again, once, with the new token.
            StepUp::SignedIn => {
                if let Ok(fresh) = proxy.engine.credential(name).await
                    && let Ok(res) = send(proxy, target, parts, body, &fresh, Instant::now()).await
                    && res.status() != StatusCode::FORBIDDEN
                {
                    return stream_back(res);
                }
            }
            StepUp::NotHere => {}
        }
    }
    let data = json!({
        "connection": name,
        "diagnosis": DiagnosisCode::InsufficientScope.as_str(),
        "scope": wanted,
    });
    rpc_error(
        StatusCode::FORBIDDEN,
        AUTH_ERROR,
        message,
        data,
        parts,
        body,
    )
}
