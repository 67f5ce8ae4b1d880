//! Asking the server about a registration it already has (RFC 7592): read it back, or delete
//! an orphan — never sending the registration access token somewhere it should not go.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::oauth::token::describe;
use crate::vault::ClientRegistration;

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
pub(super) fn unsafe_management(r: &ClientRegistration, uri: &Url) -> Option<String> {
    let issuer = Url::parse(&r.issuer).ok()?;
    let reason = crate::oauth::reach::refusal(&issuer, uri)?;
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
