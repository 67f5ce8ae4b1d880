//! Client identity (DESIGN §5, SPEC §A.5): a pre-registered client → a stored registration
//! for this issuer → a Client ID Metadata Document → a new RFC 7591 registration. A
//! registration is reused on every later login; a new one is made only after the server
//! rejected the old one, the issuer changed, or the user asked — and the old one is kept
//! (legacy, or orphan once no token is bound to it). RFC 7592 read/delete where the
//! server gave a registration access token.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use super::discovery::Discovery;
use super::token::{DEVICE_CODE_GRANT, describe};
use crate::printable::printable;
use crate::secret::Secret;
use crate::vault::{ClientRegistration, Connection, RegistrationMethod, RegistrationStatus};

const CLIENT_NAME: &str = "tether";

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "the authorization server {issuer} offers no dynamic client registration: register tether there by hand and add the connection with --client-id"
    )]
    NoRegistrationEndpoint { issuer: String },
    #[error("client registration at {url} failed: {reason}")]
    Failed { url: String, reason: String },
    #[error("no free loopback port for the OAuth callback: {0}")]
    NoPort(String),
    #[error("client metadata document {url} is not usable: {reason}")]
    BadMetadataDocument { url: String, reason: String },
}

/// The client a login will use, and whether it was just created.
pub struct Chosen {
    pub registration: ClientRegistration,
    pub created: bool,
    /// What the user should know about it (a part of the server's answer not kept).
    pub note: Option<String>,
}

/// The stored client to reuse for `issuer`, if any: pre-registered first, then the
/// newest active registration whose secret has not expired.
pub fn reusable<'a>(
    clients: &'a [ClientRegistration],
    issuer: &str,
    now: DateTime<Utc>,
) -> Option<&'a ClientRegistration> {
    let usable = |r: &&ClientRegistration| {
        r.status == RegistrationStatus::Active
            && (r.issuer == issuer || r.issuer.is_empty())
            && r.secret_expires_at.is_none_or(|at| at > now)
    };
    clients
        .iter()
        .rev()
        .filter(usable)
        .find(|r| r.method == RegistrationMethod::Preregistered)
        .or_else(|| clients.iter().rev().find(usable))
}

/// Picks or creates the client for a login. Does not write the vault: the caller stores
/// a created registration (see [`adopt`]) before using it.
pub async fn choose(
    http: &reqwest::Client,
    connection: &Connection,
    discovery: &Discovery,
    reregister: bool,
    client_metadata_url: Option<&Url>,
    device: bool,
) -> Result<Chosen, RegistrationError> {
    let now = Utc::now();
    if !reregister && let Some(existing) = reusable(&connection.clients, &discovery.issuer, now) {
        let mut registration = existing.clone();
        registration.issuer = discovery.issuer.clone();
        if registration.token_endpoint_auth_method.is_none() {
            registration.token_endpoint_auth_method = Some(pick_auth_method(
                discovery
                    .as_metadata
                    .token_endpoint_auth_methods_supported
                    .as_deref(),
                registration.client_secret.is_some(),
            ));
        }
        return Ok(Chosen {
            registration,
            created: false,
            note: None,
        });
    }
    let meta = &discovery.as_metadata;
    if let Some(url) = client_metadata_url
        && meta.client_id_metadata_document_supported
    {
        let registration = metadata_document_client(http, url, &discovery.issuer).await?;
        return Ok(Chosen {
            registration,
            created: true,
            note: None,
        });
    }
    let endpoint = meta.registration_endpoint.as_ref().ok_or_else(|| {
        RegistrationError::NoRegistrationEndpoint {
            issuer: discovery.issuer.clone(),
        }
    })?;
    let (registration, note) = register(
        http,
        endpoint,
        &discovery.issuer,
        meta.scopes_supported.as_deref(),
        device,
    )
    .await?;
    Ok(Chosen {
        registration,
        created: true,
        note,
    })
}

/// How a pre-registered client authenticates: what the server supports, preferring
/// `client_secret_basic` (RFC 6749 §2.3.1 requires servers to support it).
fn pick_auth_method(supported: Option<&[String]>, has_secret: bool) -> String {
    if !has_secret {
        return "none".to_string();
    }
    let listed = |m: &str| supported.is_none_or(|s| s.iter().any(|x| x == m));
    if listed("client_secret_basic") {
        "client_secret_basic".to_string()
    } else if listed("client_secret_post") {
        "client_secret_post".to_string()
    } else {
        "none".to_string()
    }
}

/// Adds a new registration as the active one; older active ones become legacy while a
/// token is bound to them and orphans otherwise. Nothing is replaced in place.
pub fn adopt(connection: &mut Connection, registration: ClientRegistration) {
    if let Some(existing) = connection
        .clients
        .iter_mut()
        .find(|r| r.client_id == registration.client_id)
    {
        existing.issuer = registration.issuer;
        existing.status = RegistrationStatus::Active;
        if existing.token_endpoint_auth_method.is_none() {
            existing.token_endpoint_auth_method = registration.token_endpoint_auth_method;
        }
    } else {
        for r in connection.clients.iter_mut() {
            if r.status == RegistrationStatus::Active {
                r.status = RegistrationStatus::Legacy;
            }
        }
        connection.clients.push(registration);
    }
    settle_statuses(connection);
}

/// Legacy registrations that no longer back the token become orphans; the token's own
/// client is never an orphan.
pub fn settle_statuses(connection: &mut Connection) {
    let bound = connection.token.as_ref().map(|t| t.client_id.clone());
    for r in connection.clients.iter_mut() {
        let has_token = bound.as_deref() == Some(r.client_id.as_str());
        match r.status {
            RegistrationStatus::Legacy if !has_token => r.status = RegistrationStatus::Orphan,
            RegistrationStatus::Orphan if has_token => r.status = RegistrationStatus::Legacy,
            _ => {}
        }
    }
}

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

/// The grants a new registration asks for: `refresh_token` always (SPEC §A.11), and the
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
async fn register(
    http: &reqwest::Client,
    endpoint: &Url,
    issuer: &str,
    scopes_supported: Option<&[String]>,
    device: bool,
) -> Result<(ClientRegistration, Option<String>), RegistrationError> {
    let port = free_loopback_port()?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
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
fn management(
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
async fn metadata_document_client(
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

/// What became of an orphan when cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// RFC 7592 DELETE answered 204 (or 401/404: the server no longer knows it).
    Deleted,
    /// No registration access token, or the server does not support deletion (405):
    /// tether forgets it locally.
    Forgotten(String),
    /// The server refused or could not be reached; kept for a later try.
    Kept(String),
}

/// What the server says of a registration when asked (RFC 7592 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtServer {
    /// It knows the client; when the client's secret (and with it, on servers like
    /// Notion, the client) expires, where it says.
    Known {
        secret_expires_at: Option<DateTime<Utc>>,
    },
    /// It no longer knows the client, or its registration access token (RFC 7592 answers
    /// 401 for both, some servers 403 or 404): the HTTP status.
    Gone(u16),
    /// The server gave no registration access token: it cannot be asked.
    Unreadable,
    /// No answer, or one that says nothing either way.
    Unknown(String),
}

impl AtServer {
    /// Whether the client can no longer be used: gone, or expired at `now`.
    pub fn lost(&self, now: DateTime<Utc>) -> bool {
        match self {
            AtServer::Gone(_) => true,
            AtServer::Known { secret_expires_at } => secret_expires_at.is_some_and(|at| at <= now),
            AtServer::Unreadable | AtServer::Unknown(_) => false,
        }
    }
}

/// Why a stored management URL may not be sent the registration access token: one that
/// reaches deeper into the user's network than its issuer (kept by an older tether,
/// before only the registration endpoint's origin was accepted).
fn unsafe_management(r: &ClientRegistration, uri: &Url) -> Option<String> {
    let issuer = Url::parse(&r.issuer).ok()?;
    let reason = super::reach::refusal(&issuer, uri)?;
    Some(format!(
        "its management URL '{}' is {reason}, so tether does not send the registration access token there",
        crate::http::shown(uri)
    ))
}

/// Reads a registration back from the server where RFC 7592 allows.
pub async fn read(http: &reqwest::Client, r: &ClientRegistration) -> AtServer {
    #[derive(Deserialize)]
    struct Read {
        client_id: String,
        #[serde(default)]
        client_secret_expires_at: Option<i64>,
    }
    let (Some(uri), Some(token)) = (&r.registration_client_uri, &r.registration_access_token)
    else {
        return AtServer::Unreadable;
    };
    if let Some(why) = unsafe_management(r, uri) {
        return AtServer::Unknown(why);
    }
    let res = match http
        .get(uri.clone())
        .bearer_auth(token.expose())
        .send()
        .await
    {
        Ok(res) => res,
        Err(e) => return AtServer::Unknown(describe(&e)),
    };
    if let Some(target) = crate::http::redirect_target(&res) {
        return AtServer::Unknown(format!(
            "the server {}",
            crate::http::refused(&target, "the registration access token")
        ));
    }
    match res.status().as_u16() {
        200 => match res.json::<Read>().await {
            Ok(read) if read.client_id == r.client_id => AtServer::Known {
                // RFC 7591 §3.2.1: 0 means it never expires.
                secret_expires_at: read
                    .client_secret_expires_at
                    .filter(|at| *at > 0)
                    .and_then(|at| DateTime::from_timestamp(at, 0)),
            },
            Ok(_) => AtServer::Unknown("the server described another client".to_string()),
            // (`describe`: reqwest's own message names the URL, with the client id.)
            Err(e) => AtServer::Unknown(format!(
                "the answer is not a registration ({})",
                describe(&e)
            )),
        },
        s @ (401 | 403 | 404) => AtServer::Gone(s),
        s => AtServer::Unknown(format!("the server answered HTTP {s}")),
    }
}

/// Deletes a registration at the server where RFC 7592 allows.
pub async fn delete(http: &reqwest::Client, r: &ClientRegistration) -> Cleanup {
    let (Some(uri), Some(token)) = (&r.registration_client_uri, &r.registration_access_token)
    else {
        return Cleanup::Forgotten("the server gave no registration access token".to_string());
    };
    if let Some(why) = unsafe_management(r, uri) {
        return Cleanup::Forgotten(why);
    }
    match http
        .delete(uri.clone())
        .bearer_auth(token.expose())
        .send()
        .await
    {
        Ok(res) if crate::http::is_redirect(res.status()) => {
            let target = crate::http::redirect_target(&res).unwrap_or_default();
            Cleanup::Kept(format!(
                "the server {}",
                crate::http::refused(&target, "the registration access token")
            ))
        }
        Ok(res) => match res.status().as_u16() {
            200..=299 | 401 | 404 => Cleanup::Deleted,
            405 => Cleanup::Forgotten("the server does not support deletion (405)".to_string()),
            s => Cleanup::Kept(format!("the server answered HTTP {s}")),
        },
        Err(e) => Cleanup::Kept(describe(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(
        id: &str,
        issuer: &str,
        method: RegistrationMethod,
        status: RegistrationStatus,
    ) -> ClientRegistration {
        ClientRegistration {
            client_id: id.into(),
            client_secret: None,
            issuer: issuer.into(),
            method,
            redirect_uri: None,
            registered_at: Utc::now(),
            secret_expires_at: None,
            registration_access_token: None,
            registration_client_uri: None,
            status,
            token_endpoint_auth_method: None,
        }
    }

    #[test]
    fn a_management_url_is_kept_on_the_registration_endpoints_origin_only() {
        let endpoint = Url::parse("https://as.example/register").unwrap();
        let token = || Some(Secret::new("rat"));
        let (uri, kept, note) = management(&endpoint, Some("https://as.example/r/c1"), token());
        assert!(uri.is_some() && kept.is_some() && note.is_none());
        for elsewhere in [
            "https://other.example/r/c1",
            "http://as.example/r/c1",
            "https://as.example:8443/r/c1",
            "https://127.0.0.1/r/c1",
        ] {
            let (uri, kept, note) = management(&endpoint, Some(elsewhere), token());
            assert!(uri.is_none() && kept.is_none(), "{elsewhere}");
            assert!(
                note.is_some_and(|n| n.contains("another origin")),
                "{elsewhere}"
            );
        }
        let mut stored = reg(
            "c1",
            "https://as.example",
            RegistrationMethod::Dcr,
            RegistrationStatus::Orphan,
        );
        let inside = Url::parse("https://10.0.0.5/r/c1").unwrap();
        assert!(unsafe_management(&stored, &inside).is_some());
        stored.issuer = "https://10.0.0.4".into();
        assert!(unsafe_management(&stored, &inside).is_none());
    }

    #[test]
    fn reuse_prefers_preregistered_then_newest_active_for_the_issuer() {
        use RegistrationMethod::*;
        use RegistrationStatus::*;
        let now = Utc::now();
        let clients = vec![
            reg("old", "https://as", Dcr, Active),
            reg("other-issuer", "https://elsewhere", Dcr, Active),
            reg("rejected", "https://as", Dcr, Rejected),
            reg("new", "https://as", Dcr, Active),
        ];
        assert_eq!(
            reusable(&clients, "https://as", now).unwrap().client_id,
            "new"
        );
        let mut with_pre = clients.clone();
        with_pre.insert(0, reg("pre", "", Preregistered, Active));
        assert_eq!(
            reusable(&with_pre, "https://as", now).unwrap().client_id,
            "pre"
        );
        assert!(reusable(&clients, "https://nowhere", now).is_none());
        let mut expired = reg("expired", "https://as", Dcr, Active);
        expired.secret_expires_at = Some(now - chrono::Duration::seconds(1));
        assert!(reusable(&[expired], "https://as", now).is_none());
    }
}
