//! The device authorization grant (RFC 8628), as GitHub offers it: a device code and a
//! short user code, a verification page that approves automatically (or denies with
//! `deny=1`), and token-endpoint polls answered `authorization_pending`, `slow_down`,
//! `expired_token` or `access_denied` until the tokens are issued.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::authorize::{granted_scope, requested_resource};
use super::params::{OAuthError, Params, authenticate, presented};
use super::profile::{DEVICE_CODE_LIFE, DEVICE_GRANT, DEVICE_POLL_INTERVAL, scaled, scaled_secs};
use super::server::{Shared, now_ms};
use super::state::{Client, DeviceAuthorization, DeviceStatus, Family, Issued, secret};
use super::token::{form_params, lost_grant};

/// RFC 8628 §6.1: consonants only, so no word can be spelt and nothing is misread.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

/// What RFC 8628 §3.5 adds to the interval after each `slow_down`.
const SLOW_DOWN_MS: u64 = 5_000;

/// `XXXX-XXXX`, eight letters from the alphabet above.
fn user_code() -> String {
    let letter = || USER_CODE_ALPHABET[rand::random_range(0..USER_CODE_ALPHABET.len())] as char;
    let half = || (0..4).map(|_| letter()).collect::<String>();
    format!("{}-{}", half(), half())
}

/// Users type codes in any case, with or without the dash (RFC 8628 §6.1).
fn normalize(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `POST {iss}/device_authorization` (RFC 8628 §3.1–3.2).
pub(crate) async fn authorization(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match start(&shared, &headers, &body) {
        Ok(doc) => {
            let mut resp = Json(doc).into_response();
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => e.into_response(),
    }
}

fn start(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let cfg = &shared.cfg;
    let params = form_params(headers, body)?;
    let now = now_ms();
    let client = authenticate(shared, &presented(headers, &params)?, now)?;
    if !client.grant_types.iter().any(|g| g == DEVICE_GRANT) {
        return Err(OAuthError::new(
            "unauthorized_client",
            "this client did not register the device_code grant type",
        ));
    }
    let scope = granted_scope(cfg, params.get("scope")?)?;
    let resource = requested_resource(cfg, &params)?;
    let device_code = secret(cfg.policy.prefix, "dc");
    let code = user_code();
    let interval = scaled_secs(DEVICE_POLL_INTERVAL, cfg.time_scale);
    let verification_uri = cfg.endpoint("device");
    {
        let mut store = shared.store();
        store.totals.device_authorizations += 1;
        store.devices.insert(
            device_code.clone(),
            DeviceAuthorization {
                client_id: client.id,
                user_code: code.clone(),
                scope,
                resource,
                expires_ms: now + scaled(DEVICE_CODE_LIFE, cfg.time_scale).as_millis() as u64,
                interval_ms: interval * 1000,
                last_poll_ms: now,
                status: DeviceStatus::Pending,
            },
        );
    }
    Ok(json!({
        "device_code": device_code,
        "user_code": code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={code}"),
        "expires_in": scaled_secs(DEVICE_CODE_LIFE, cfg.time_scale),
        "interval": interval,
    }))
}

fn page(status: StatusCode, message: &str) -> Response {
    let body = format!("tether-sim: device sign-in\n\n{message}\n");
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (status, headers, body).into_response()
}

/// `GET {iss}/device?user_code=…[&deny=1]`: the one simulated user approves (or denies)
/// at once, like the automatic consent of `/authorize`.
pub(crate) async fn verify(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let Ok(Some(asked)) = params.get("user_code") else {
        return page(
            StatusCode::BAD_REQUEST,
            "enter the code your device shows: /device?user_code=XXXX-XXXX",
        );
    };
    let deny = params.get("deny").ok().flatten().is_some_and(|v| v != "0");
    let asked = normalize(asked);
    let now = now_ms();
    let mut guard = shared.store();
    let store = &mut *guard;
    let Some(device) = store
        .devices
        .values_mut()
        .find(|d| normalize(&d.user_code) == asked)
    else {
        return page(StatusCode::NOT_FOUND, "no sign-in is waiting for this code");
    };
    if now >= device.expires_ms {
        return page(
            StatusCode::BAD_REQUEST,
            "this code has expired: start again on your device",
        );
    }
    if device.status != DeviceStatus::Pending {
        return page(StatusCode::BAD_REQUEST, "this code was already used");
    }
    if deny {
        device.status = DeviceStatus::Denied;
        store.totals.device_denials += 1;
        return page(StatusCode::OK, "sign-in denied: your device will be told");
    }
    device.status = DeviceStatus::Approved;
    store.totals.device_approvals += 1;
    page(
        StatusCode::OK,
        "device approved: you can return to your device",
    )
}

/// Takes one armed `slow_down` fault, if any.
fn take_slow_down(shared: &Shared) -> bool {
    let mut plan = shared.faults();
    if plan.slow_down_polls == 0 {
        return false;
    }
    plan.slow_down_polls -= 1;
    true
}

/// The device-code grant at the token endpoint (RFC 8628 §3.4–3.5).
pub(crate) fn grant(
    shared: &Shared,
    client: &Client,
    params: &Params,
    resource: Option<&str>,
    now: u64,
) -> Result<Issued, OAuthError> {
    let cfg = &shared.cfg;
    let value = params.require("device_code")?;
    let forced = take_slow_down(shared);
    let mut guard = shared.store();
    let store = &mut *guard;
    store.totals.device_polls += 1;
    let device = match store.devices.get_mut(value) {
        Some(d) if d.client_id == client.id => d,
        _ => return Err(OAuthError::invalid_grant("the device code is not valid")),
    };
    let too_fast = now < device.last_poll_ms + device.interval_ms;
    device.last_poll_ms = now;
    if now >= device.expires_ms {
        store.totals.expired_token_responses += 1;
        return Err(OAuthError::new(
            "expired_token",
            "the device code expired: start a new device authorization",
        ));
    }
    if too_fast || forced {
        device.interval_ms += SLOW_DOWN_MS;
        store.totals.slow_down_responses += 1;
        store.totals.device_polls_too_fast += u64::from(too_fast);
        store.totals.faults_injected += u64::from(forced);
        return Err(OAuthError::new(
            "slow_down",
            format!("poll at most every {} seconds", device.interval_ms / 1000),
        ));
    }
    match device.status {
        DeviceStatus::Approved => {}
        DeviceStatus::Pending => {
            return Err(OAuthError::new(
                "authorization_pending",
                "the user has not approved this device yet",
            ));
        }
        DeviceStatus::Denied => {
            return Err(OAuthError::new(
                "access_denied",
                "the user denied the authorization",
            ));
        }
        DeviceStatus::Used => {
            return Err(OAuthError::invalid_grant(
                "the device code was already used",
            ));
        }
    }
    device.status = DeviceStatus::Used;
    let family = Family {
        client_id: client.id.clone(),
        scope: device.scope.clone(),
        resource: resource.map(str::to_string).or(device.resource.clone()),
    };
    let scope = family.scope.clone();
    let family = store.new_family(family);
    store.totals.device_code_grants += 1;
    store
        .issue(family, &scope, &cfg.policy, cfg.time_scale, now)
        .ok_or_else(lost_grant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typeable_and_normalized() {
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert!(
            normalize(&code)
                .bytes()
                .all(|b| USER_CODE_ALPHABET.contains(&b))
        );
        assert_eq!(normalize("wdjb-mjht "), "WDJBMJHT");
    }
}
