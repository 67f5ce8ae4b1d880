//! Client identity (docs/architecture.md, "Signing in"): a pre-registered client → a stored registration
//! for this issuer → a Client ID Metadata Document → a new RFC 7591 registration. A
//! registration is reused on every later login; a new one is made only after the server
//! rejected the old one, the issuer changed, or the user asked — and the old one is kept
//! (legacy, or orphan once no token is bound to it). RFC 7592 read/delete where the
//! server gave a registration access token.

use chrono::{DateTime, Utc};
use url::Url;

use super::discovery::Discovery;
use crate::vault::{ClientRegistration, Connection, RegistrationMethod, RegistrationStatus};

mod create;
mod manage;
#[cfg(test)]
mod tests;

use create::{metadata_document_client, register};
pub use manage::{AtServer, Cleanup, delete, read};

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
