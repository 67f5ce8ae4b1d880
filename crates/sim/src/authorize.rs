//! The authorization endpoint: automatic consent for the one simulated user, with the
//! checks and error routing of RFC 6749 §4.1, PKCE (RFC 7636), RFC 8707 and RFC 9207.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::params::{OAuthError, Params};
use super::server::{Config, Shared, now_ms};
use super::state::{Code, secret};

/// Authorization codes live a minute of real time: the redirect hop is not part of a
/// provider's token policy, and scaling it would make `tether demo` flaky.
const CODE_LIFE_MS: u64 = 60_000;

/// An error that must not be redirected: the redirect target cannot be trusted
/// (RFC 6749 §4.1.2.1), so the user sees a page instead.
fn error_page(message: &str) -> Response {
    let body = format!("tether-sim: authorization request rejected\n\n{message}\n");
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Where the browser goes next: the registered redirect URI with the result appended.
struct Target {
    redirect_uri: String,
    state: Option<String>,
}

impl Target {
    fn redirect(&self, cfg: &Config, pairs: &[(&str, &str)]) -> Response {
        let Ok(mut url) = url::Url::parse(&self.redirect_uri) else {
            return error_page("the registered redirect URI is not a valid URL");
        };
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in pairs {
                q.append_pair(k, v);
            }
            if let Some(state) = &self.state {
                q.append_pair("state", state);
            }
            q.append_pair("iss", &cfg.issuer);
        }
        let Ok(location) = HeaderValue::from_str(url.as_str()) else {
            return error_page("the redirect URI cannot be sent in a header");
        };
        let mut resp = StatusCode::FOUND.into_response();
        resp.headers_mut().insert(header::LOCATION, location);
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    fn error(&self, cfg: &Config, e: OAuthError) -> Response {
        self.redirect(
            cfg,
            &[("error", e.error), ("error_description", &e.description)],
        )
    }
}

fn pkce_challenge_ok(c: &str) -> bool {
    (43..=128).contains(&c.len())
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or(""));
    let cfg = &shared.cfg;
    let now = now_ms();
    let client_id = match params.get("client_id") {
        Ok(Some(id)) => id.to_string(),
        Ok(None) => return error_page("client_id is missing"),
        Err(e) => return error_page(&e.description),
    };
    let mut client = shared.store().clients.get(&client_id).cloned();
    if client.is_none() && shared.cfg.cimd && client_id.contains("://") {
        match super::register::metadata_document_client(&shared, &client_id).await {
            Ok(c) => client = Some(c),
            Err(why) => return error_page(&format!("client metadata document: {why}")),
        }
    }
    let client = match client {
        Some(c) if !c.deleted && !c.expired(now) => c,
        Some(c) if c.deleted => return error_page("this client registration was deleted"),
        Some(_) => return error_page("this client registration has expired"),
        None => return error_page("unknown client_id"),
    };
    let asked_redirect = match params.get("redirect_uri") {
        Ok(r) => r.map(str::to_string),
        Err(e) => return error_page(&e.description),
    };
    let redirect_uri = match &asked_redirect {
        Some(r) if client.redirect_uris.contains(r) => r.clone(),
        Some(_) => {
            return error_page("redirect_uri does not exactly match a registered redirect URI");
        }
        // OAuth 2.1 §4.1.1: optional only when exactly one is registered.
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return error_page("redirect_uri is required: the client registered several"),
    };
    let target = Target {
        redirect_uri,
        state: params.get("state").ok().flatten().map(str::to_string),
    };
    match check_request(cfg, &params) {
        Ok((challenge, scope, resource)) => {
            let code = secret(cfg.policy.prefix, "code");
            {
                let mut store = shared.store();
                store.totals.authorizations += 1;
                store.codes.insert(
                    code.clone(),
                    Code {
                        client_id,
                        redirect_uri: asked_redirect,
                        challenge,
                        scope,
                        resource,
                        expires_ms: now + CODE_LIFE_MS,
                        used: false,
                        family: None,
                    },
                );
            }
            target.redirect(cfg, &[("code", &code)])
        }
        Err(e) => target.error(cfg, e),
    }
}

/// The checks whose failures are redirected to the client. Returns the PKCE challenge,
/// the granted scope and the requested resource.
fn check_request(
    cfg: &Config,
    params: &Params,
) -> Result<(String, String, Option<String>), OAuthError> {
    match params.get("response_type")? {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_response_type",
                format!("response_type '{other}' is not supported; use 'code'"),
            ));
        }
    }
    let challenge = params.get("code_challenge")?.ok_or_else(|| {
        OAuthError::invalid_request("code_challenge is required (PKCE with S256)")
    })?;
    match params.get("code_challenge_method")? {
        Some("S256") => {}
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "code_challenge_method '{other}' is not supported; use S256"
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "code_challenge_method is required and must be S256",
            ));
        }
    }
    if !pkce_challenge_ok(challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge must be 43-128 base64url characters",
        ));
    }
    let scope = granted_scope(cfg, params.get("scope")?)?;
    let resource = requested_resource(cfg, params)?;
    Ok((challenge.to_string(), scope, resource))
}

/// The RFC 8707 `resource` a request names, if any: every value must be this server's.
pub(crate) fn requested_resource(
    cfg: &Config,
    params: &Params,
) -> Result<Option<String>, OAuthError> {
    let resources = params.get_all("resource");
    if let Some(bad) = resources.iter().find(|r| **r != cfg.resource) {
        return Err(OAuthError::new(
            "invalid_target",
            format!(
                "resource '{bad}' is not served here; use '{}'",
                cfg.resource
            ),
        ));
    }
    Ok(resources.first().map(|r| r.to_string()))
}

/// The scope to grant: the requested one if every part is known, else the profile's
/// default when none was asked for.
pub(crate) fn granted_scope(cfg: &Config, asked: Option<&str>) -> Result<String, OAuthError> {
    let Some(asked) = asked else {
        return Ok(cfg.policy.default_scope.to_string());
    };
    let mut parts: Vec<&str> = Vec::new();
    for s in asked.split(' ').filter(|s| !s.is_empty()) {
        if !cfg.policy.scopes_supported.contains(&s) {
            return Err(OAuthError::new(
                "invalid_scope",
                format!("scope '{s}' is not supported"),
            ));
        }
        if !parts.contains(&s) {
            parts.push(s);
        }
    }
    if parts.is_empty() {
        return Ok(cfg.policy.default_scope.to_string());
    }
    Ok(parts.join(" "))
}
