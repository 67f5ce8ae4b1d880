//! The authorization server's checks: discovery re-run with every URL tried and the
//! server's capabilities, and the client registration read back from the server.

use chrono::Utc;

use tether_core::oauth::discovery;
use tether_core::vault::{Connection, DiagnosisCode, RegistrationStatus};

use super::{Finding, Status};

/// The client the token belongs to (else the active one), read back from the server
/// where RFC 7592 allows: a client the server no longer knows, or whose registration
/// expired (Notion's do), cannot refresh — found before a refresh fails on it.
pub(super) async fn registration_finding(
    http: &reqwest::Client,
    c: &Connection,
) -> Option<Finding> {
    use tether_core::oauth::registration::{self, AtServer};
    let name = c.name.as_str();
    let bound = c.token.as_ref().map(|t| t.client_id.as_str());
    let r = c
        .clients
        .iter()
        .find(|r| Some(r.client_id.as_str()) == bound)
        .or_else(|| {
            c.clients
                .iter()
                .find(|r| r.status == RegistrationStatus::Active)
        })?;
    let client = tether_core::secret::mask(&r.client_id);
    let now = Utc::now();
    let at_server = registration::read(http, r).await;
    let f = match &at_server {
        AtServer::Unreadable => return None,
        AtServer::Known { secret_expires_at } if at_server.lost(now) => Finding::new(
            name,
            "registration",
            Status::Fail,
            format!(
                "the server's registration of client {client} expired {}",
                secret_expires_at
                    .map(|at| tether_core::summary::relative(at, now))
                    .unwrap_or_default()
            ),
        )
        .diagnosed(DiagnosisCode::ClientRejected, name),
        AtServer::Known { secret_expires_at } => Finding::new(
            name,
            "registration",
            Status::Ok,
            match secret_expires_at {
                Some(at) => format!(
                    "the server knows client {client}; it expires {}",
                    tether_core::summary::relative(*at, now)
                ),
                None => format!("the server knows client {client}"),
            },
        ),
        AtServer::Gone(status) => Finding::new(
            name,
            "registration",
            Status::Fail,
            format!("the server no longer knows client {client} (HTTP {status})"),
        )
        .diagnosed(DiagnosisCode::ClientRejected, name),
        AtServer::Unknown(why) => Finding::new(
            name,
            "registration",
            Status::Warn,
            format!("client {client} could not be read back: {why}"),
        ),
    };
    // (Not the registration's URL: it names the client id in full.)
    Some(
        f.with("client", client)
            .with("asked", "RFC 7592 read of the registration"),
    )
}

/// Discovery re-run, with every URL tried and the authorization server's capabilities.
pub(super) async fn discovery_finding(http: &reqwest::Client, c: &Connection) -> Finding {
    let name = c.name.as_str();
    match discovery::discover(http, &c.upstream).await {
        Ok(d) => {
            let m = &d.as_metadata;
            let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
            let listed = |list: &Option<Vec<String>>, item: &str| {
                list.as_ref().is_some_and(|l| l.iter().any(|x| x == item))
            };
            let mut f = Finding::new(
                name,
                "discovery",
                Status::Ok,
                format!("authorization server {}", d.issuer),
            );
            for t in &d.tried {
                f = f.with("tried", tried_line(t));
            }
            f = f
                .with(
                    "resource (RFC 8707, sent on every request)",
                    d.resource.clone(),
                )
                .with("PKCE S256", yes(m.supports_s256()))
                .with(
                    "iss in responses",
                    yes(m.authorization_response_iss_parameter_supported),
                )
                .with(
                    "refresh grant",
                    yes(m
                        .grant_types_supported
                        .as_ref()
                        .is_none_or(|g| g.iter().any(|x| x == "refresh_token"))),
                )
                .with(
                    "offline_access",
                    yes(listed(&m.scopes_supported, "offline_access")),
                )
                .with(
                    "dynamic registration",
                    yes(m.registration_endpoint.is_some()),
                );
            if let Some(t) = &c.token
                && t.issuer != d.issuer
            {
                f.status = Status::Fail;
                f.summary = format!(
                    "the authorization server changed from {} to {}: tokens and registrations do not carry over",
                    t.issuer, d.issuer
                );
                f = f.diagnosed(DiagnosisCode::ClientRejected, name);
            }
            f
        }
        Err(e) => {
            let mut f = Finding::new(name, "discovery", Status::Fail, e.to_string());
            for t in e.tried() {
                f = f.with("tried", tried_line(t));
            }
            f.diagnosed(e.code(), name)
        }
    }
}

/// `URL → status` (or the error, when no answer came).
fn tried_line(t: &tether_core::vault::TriedUrl) -> String {
    let outcome = t
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| t.error.clone().unwrap_or_default());
    format!("{} → {outcome}", t.url)
}
