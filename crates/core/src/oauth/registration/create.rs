//! Making a new client for a login: an RFC 7591 dynamic registration as a native app, or a
//! client named by its Client ID Metadata Document. Keeps a registration's RFC 7592
//! management URL only where it is safe to send the registration access token.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use super::RegistrationError;
use crate::oauth::token::{DEVICE_CODE_GRANT, describe};
use crate::printable::printable;
use crate::secret::Secret;
use crate::vault::{ClientRegistration, RegistrationMethod, RegistrationStatus};

const CLIENT_NAME: &str = "tether";

/// A free port on 127.0.0.1, pinned into the redirect URI of a new registration.
fn free_loopback_port() -> Result<u16, RegistrationError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RegistrationError::NoPort(e.to_string()))
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<Secret>,
    #[serde(default)]
    client_secret_expires_at: Option<i64>,
    #[serde(default)]
    registration_access_token: Option<Secret>,
    #[serde(default)]
    registration_client_uri: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
}

/// The grants a new registration asks for: `refresh_token` always (a grant must outlive its first access token), and the
/// device grant only for a login that will use it — a server may refuse a registration
/// that asks for more than it lets such clients have.
fn grant_types(device: bool) -> Vec<&'static str> {
    let mut grants = vec!["authorization_code", "refresh_token"];
    if device {
        grants.push(DEVICE_CODE_GRANT);
    }
    grants
}

/// RFC 7591 registration as a native app, with `refresh_token` among its grants.
pub(super) async fn register(
    http: &reqwest::Client,
    endpoint: &Url,
    issuer: &str,
    scopes_supported: Option<&[String]>,
    device: bool,
) -> Result<(ClientRegistration, Option<String>), RegistrationError> {
    let port = free_loopback_port()?;
    let redirect_uri = crate::oauth::callback_url(port);
    let mut body = serde_json::json!({
        "client_name": CLIENT_NAME,
        "redirect_uris": [redirect_uri],
        "grant_types": grant_types(device),
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
        "software_id": "tether",
        "software_version": env!("CARGO_PKG_VERSION"),
    });
    if let Some(scopes) = scopes_supported {
        body["scope"] = serde_json::Value::String(scopes.join(" "));
    }
    let failed = |reason: String| RegistrationError::Failed {
        url: endpoint.to_string(),
        reason,
    };
    let res = http
        .post(endpoint.clone())
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(describe(&e)))?;
    if let Some(target) = crate::http::redirect_target(&res) {
        return Err(failed(format!(
            "the server {}",
            crate::http::refused(&target, "registration requests")
        )));
    }
    let status = res.status();
    let text = res.text().await.map_err(|e| failed(describe(&e)))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                let e = v.get("error")?.as_str()?.to_string();
                let d = v
                    .get("error_description")
                    .and_then(|d| d.as_str())
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                Some(printable(&format!("{e}{d}"), 300))
            })
            .unwrap_or_else(|| "no OAuth error in the answer".to_string());
        return Err(failed(format!("HTTP {} {detail}", status.as_u16())));
    }
    let r: RegistrationResponse = serde_json::from_str(&text)
        .map_err(|e| failed(format!("the answer is not a registration ({e})")))?;
    // RFC 7591 §3.2.1: the server may change what was asked; use what it returns.
    let redirect = r
        .redirect_uris
        .and_then(|uris| {
            uris.into_iter()
                .find(|u| u.starts_with("http://127.0.0.1:"))
        })
        .unwrap_or(redirect_uri);
    let (registration_client_uri, registration_access_token, note) = management(
        endpoint,
        r.registration_client_uri.as_deref(),
        r.registration_access_token,
    );
    let registration = ClientRegistration {
        client_id: r.client_id,
        client_secret: r.client_secret.filter(|s| !s.is_empty()),
        issuer: issuer.to_string(),
        method: RegistrationMethod::Dcr,
        redirect_uri: Some(redirect),
        registered_at: Utc::now(),
        secret_expires_at: r
            .client_secret_expires_at
            .filter(|at| *at > 0)
            .and_then(|at| DateTime::from_timestamp(at, 0)),
        registration_access_token,
        registration_client_uri,
        status: RegistrationStatus::Active,
        token_endpoint_auth_method: r.token_endpoint_auth_method,
    };
    Ok((registration, note))
}

/// RFC 7592's management URL and its registration access token, kept only where the URL
/// is on the registration endpoint's origin: tether sends the token there to read or
/// delete the client, and a server may not have it sent anywhere else (another host, a
/// service inside the user's network). Otherwise neither is kept, and the note says why.
pub(super) fn management(
    endpoint: &Url,
    uri: Option<&str>,
    token: Option<Secret>,
) -> (Option<Url>, Option<Secret>, Option<String>) {
    let Some(raw) = uri else {
        return (None, token, None);
    };
    let shown = match Url::parse(raw) {
        Ok(u) if u.origin() == endpoint.origin() => return (Some(u), token, None),
        Ok(u) => crate::http::shown(&u),
        Err(_) => printable(raw, 200),
    };
    tracing::warn!(registration_client_uri = %shown, "not kept: not on the registration endpoint's origin");
    let note = format!(
        "its registration_client_uri '{shown}' is on another origin than the registration endpoint, so tether never sends the registration access token there and cannot read or delete this registration later"
    );
    (None, None, Some(note))
}

/// A Client ID Metadata Document client: the client id is the document's https URL,
/// and the document must name itself and a loopback redirect URI.
pub(super) async fn metadata_document_client(
    http: &reqwest::Client,
    url: &Url,
    issuer: &str,
) -> Result<ClientRegistration, RegistrationError> {
    let bad = |reason: String| RegistrationError::BadMetadataDocument {
        url: url.to_string(),
        reason,
    };
    // A client id is an https URL; plain http only on this machine (as everywhere else).
    if url.scheme() != "https" && !(url.scheme() == "http" && crate::vault::is_loopback(url)) {
        return Err(bad("a client id URL must be https".to_string()));
    }
    let res = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| bad(describe(&e)))?;
    // The document must be served at its own URL: it is the client's identity.
    if let Some(target) = crate::http::redirect_target(&res) {
        return Err(bad(format!(
            "it answered with a redirect to '{target}'; serve the document at its own URL"
        )));
    }
    let doc: serde_json::Value = res
        .json()
        .await
        .map_err(|e| bad(format!("not JSON ({e})")))?;
    if doc.get("client_id").and_then(|v| v.as_str()) != Some(url.as_str()) {
        return Err(bad("its client_id is not exactly its own URL".to_string()));
    }
    let redirect = doc
        .get("redirect_uris")
        .and_then(|v| v.as_array())
        .and_then(|uris| {
            uris.iter()
                .filter_map(|u| u.as_str())
                .find(|u| u.starts_with("http://127.0.0.1:") || u.starts_with("http://localhost:"))
        })
        .ok_or_else(|| bad("it lists no loopback redirect_uri".to_string()))?;
    Ok(ClientRegistration {
        client_id: url.to_string(),
        client_secret: None,
        issuer: issuer.to_string(),
        method: RegistrationMethod::Cimd,
        redirect_uri: Some(redirect.to_string()),
        registered_at: Utc::now(),
        secret_expires_at: None,
        registration_access_token: None,
        registration_client_uri: None,
        status: RegistrationStatus::Active,
        token_endpoint_auth_method: Some("none".to_string()),
    })
}
