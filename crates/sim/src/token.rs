//! The token endpoint (authorization-code and refresh grants, RFC 6749 §4.1.3 and §6,
//! PKCE verification, RFC 8707 binding; the device-code grant lives in `device.rs`) and the revocation endpoint (RFC 7009).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::authorize::requested_resource;
use super::device;
use super::faults;
use super::net::ConnCutter;
use super::params::{OAuthError, Params, authenticate, presented};
use super::profile::{DEVICE_GRANT, ReusePolicy};
use super::server::{Shared, now_ms};
use super::state::{Client, Death, Family, Issued, Kind};

pub(crate) fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the body is not UTF-8"))?;
    Ok(Params::parse(text))
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(cutter): ConnectInfo<ConnCutter>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    count_call(&shared, &headers, &body);
    faults::wait_while_frozen(&shared).await;
    if faults::take_reset(&shared) {
        // Read but never handed to the grant logic: nothing was processed.
        cutter.reset();
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if let Some(failure) = faults::token_call_failure(&shared).await {
        return failure;
    }
    let result = form_params(&headers, &body).and_then(|p| grant(&shared, &headers, &p));
    match result {
        Ok((issued, refreshed)) => {
            if refreshed && take_drop_fault(&shared) {
                // The server has rotated; now the answer is lost on the way back.
                cutter.cut();
            }
            if let Some(hold) = refreshed.then(|| take_hold_fault(&shared)).flatten() {
                // Rotated; the answer waits.
                tokio::time::sleep(hold).await;
            }
            success(&issued)
        }
        Err(e) => {
            if e.error == "invalid_grant" {
                shared.count(|t| t.invalid_grant_responses += 1);
            }
            e.into_response()
        }
    }
}

/// Counts the call in the totals and on the client it names, before any fault fires,
/// so a failed call is still seen.
fn count_call(shared: &Shared, headers: &HeaderMap, body: &[u8]) {
    let params = std::str::from_utf8(body)
        .map(Params::parse)
        .unwrap_or_default();
    let refresh = params.get("grant_type").ok().flatten() == Some("refresh_token");
    let client_id = presented(headers, &params).ok().and_then(|p| p.client_id);
    let mut store = shared.store();
    store.totals.token_calls += 1;
    if refresh {
        store.totals.refresh_calls += 1;
    }
    if let Some(client) = client_id.and_then(|id| store.clients.get_mut(&id)) {
        client.token_calls += 1;
        if refresh {
            client.refresh_calls += 1;
        }
    }
}

fn take_drop_fault(shared: &Shared) -> bool {
    let mut plan = shared.faults();
    if !plan.drop_next_refresh {
        return false;
    }
    plan.drop_next_refresh = false;
    drop(plan);
    shared.count(|t| {
        t.faults_injected += 1;
        t.dropped_responses += 1;
    });
    true
}

fn take_hold_fault(shared: &Shared) -> Option<std::time::Duration> {
    let mut plan = shared.faults();
    let secs = std::mem::take(&mut plan.hold_next_refresh_secs);
    drop(plan);
    (secs > 0).then(|| {
        shared.count(|t| t.faults_injected += 1);
        std::time::Duration::from_secs(secs)
    })
}

fn success(issued: &Issued) -> Response {
    let mut body = serde_json::json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    });
    if let Some(rt) = &issued.refresh_token {
        body["refresh_token"] = rt.clone().into();
    }
    if let Some(secs) = issued.refresh_token_expires_in {
        body["refresh_token_expires_in"] = secs.into();
    }
    let mut resp = (StatusCode::OK, Json(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// Runs one grant. Returns the tokens and whether this was a refresh.
fn grant(
    shared: &Shared,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(Issued, bool), OAuthError> {
    let cfg = &shared.cfg;
    let grant_type = params.require("grant_type")?;
    let refresh = match grant_type {
        "authorization_code" => false,
        "refresh_token" if cfg.policy.refresh.is_some() => true,
        DEVICE_GRANT if cfg.device_flow => false,
        other => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!("grant_type '{other}' is not supported by this server"),
            ));
        }
    };
    let creds = presented(headers, params)?;
    let now = now_ms();
    let client = authenticate(shared, &creds, now)?;
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("this client did not register the '{grant_type}' grant type"),
        ));
    }
    let resource = requested_resource(cfg, params)?;
    let resource = resource.as_deref();
    let issued = match grant_type {
        "refresh_token" => refresh_grant(shared, &client, params, now)?,
        DEVICE_GRANT => device::grant(shared, &client, params, resource, now)?,
        _ => code_grant(shared, &client, params, resource, now)?,
    };
    Ok((issued, refresh))
}

/// A token whose grant family is gone: cannot happen while families are never removed,
/// but answered as a server error rather than with empty tokens.
pub(crate) fn lost_grant() -> OAuthError {
    OAuthError::new("server_error", "the grant for this token no longer exists")
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn code_grant(
    shared: &Shared,
    client: &Client,
    params: &Params,
    resource: Option<&str>,
    now: u64,
) -> Result<Issued, OAuthError> {
    let cfg = &shared.cfg;
    let value = params.require("code")?;
    let redirect_uri = params.get("redirect_uri")?;
    let verifier = params.get("code_verifier")?;
    let mut store = shared.store();
    let Some(code) = store.codes.get_mut(value) else {
        return Err(OAuthError::invalid_grant(
            "the authorization code is not valid",
        ));
    };
    if code.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.used {
        // RFC 6749 §4.1.2: a replayed code revokes what it already produced.
        if let Some(family) = code.family {
            store.kill_family(family, Death::CodeReplayed);
        }
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; the tokens issued from it are revoked",
        ));
    }
    // Presented by its own client: spent now, whatever happens next.
    code.used = true;
    let code = code.clone();
    if now >= code.expires_ms {
        return Err(OAuthError::invalid_grant("the authorization code expired"));
    }
    let redirect_ok = match (&code.redirect_uri, redirect_uri) {
        (Some(expected), Some(got)) => expected == got,
        (Some(_), None) => false,
        (None, Some(got)) => client.redirect_uris.iter().any(|r| r == got),
        (None, None) => true,
    };
    if !redirect_ok {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one in the authorization request",
        ));
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::invalid_request(
            "code_verifier is required (PKCE)",
        ));
    };
    let verifier_ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !verifier_ok || s256(verifier) != code.challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let family = store.new_family(Family {
        client_id: client.id.clone(),
        scope: code.scope.clone(),
        resource: resource.map(str::to_string).or(code.resource.clone()),
    });
    if let Some(c) = store.codes.get_mut(value) {
        c.family = Some(family);
    }
    store.totals.authorization_code_grants += 1;
    store
        .issue(family, &code.scope, &cfg.policy, cfg.time_scale, now)
        .ok_or_else(lost_grant)
}

fn refresh_grant(
    shared: &Shared,
    client: &Client,
    params: &Params,
    now: u64,
) -> Result<Issued, OAuthError> {
    let cfg = &shared.cfg;
    let value = params.require("refresh_token")?;
    let asked_scope = params.get("scope")?;
    let mut store = shared.store();
    let token = match store.tokens.get(value) {
        Some(t) if t.kind == Kind::Refresh => t.clone(),
        _ => return Err(OAuthError::invalid_grant("the refresh token is not valid")),
    };
    if token.client_id != client.id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    match token.dead {
        Some(Death::Rotated) => {
            let reuse = cfg
                .policy
                .refresh
                .as_ref()
                .map_or(ReusePolicy::Reject, |r| r.reuse);
            store.on_refresh_reuse(token.family, reuse);
            let description = match reuse {
                ReusePolicy::RevokeFamily => {
                    "the refresh token was already used; the whole grant is now revoked"
                }
                ReusePolicy::Reject => "the refresh token was already used",
            };
            return Err(OAuthError::invalid_grant(description));
        }
        Some(death) => {
            return Err(OAuthError::invalid_grant(format!(
                "the refresh token is no longer valid: {}",
                death.description()
            )));
        }
        None => {}
    }
    if token.expires_ms.is_some_and(|e| now >= e) {
        return Err(OAuthError::invalid_grant("the refresh token expired"));
    }
    let scope = match asked_scope {
        None => token.scope.clone(),
        Some(asked) => {
            let granted: Vec<&str> = token.scope.split(' ').collect();
            if let Some(extra) = asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .find(|s| !granted.contains(s))
            {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("scope '{extra}' exceeds the scope originally granted"),
                ));
            }
            asked
                .split(' ')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    store.kill(value, Death::Rotated);
    store.totals.refresh_grants += 1;
    store
        .issue(token.family, &scope, &cfg.policy, cfg.time_scale, now)
        .ok_or_else(lost_grant)
}

/// RFC 7009: 200 whether or not the token existed; a refresh token takes its whole
/// grant with it, an access token only itself.
pub(crate) async fn revoke(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match revoke_inner(&shared, &headers, &body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

fn revoke_inner(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let params = form_params(headers, body)?;
    let value = params.require("token")?;
    let creds = presented(headers, &params)?;
    let now = now_ms();
    // Revocation by a client that does not identify itself is allowed, as at many
    // providers; a client that does must authenticate properly.
    let client_id = match creds.client_id {
        Some(_) => Some(authenticate(shared, &creds, now)?.id),
        None => None,
    };
    let mut store = shared.store();
    let Some(token) = store.tokens.get(value).cloned() else {
        return Ok(());
    };
    // RFC 7009 §2.1: a client may only revoke its own tokens; others are ignored.
    if client_id.is_some_and(|id| id != token.client_id) {
        return Ok(());
    }
    match token.kind {
        Kind::Refresh => store.kill_family(token.family, Death::Revoked),
        Kind::Access => {
            store.kill(value, Death::Revoked);
        }
    }
    Ok(())
}
