//! Storing a login's results: a new client registration at once, and the token with its
//! client and discovery in one locked vault transaction.

use chrono::Utc;

use super::super::discovery::Discovery;
use super::super::refresh::lock_refresh;
use super::super::registration;
use super::super::token::TokenResponse;
use super::{LoginError, LoginOutcome};
use crate::secret::mask;
use crate::vault::{
    Auth, ClientRegistration, Connection, ConnectionState, DiagnosisCode, Discovered, Event,
    EventKind, Evidence, MAX_STEP_UPS, StepUp, Store, TokenSet, Vault, VaultError,
};

pub(super) async fn store_registration(
    vault: &Vault,
    name: &str,
    registration: ClientRegistration,
) -> Result<(), LoginError> {
    let name = name.to_string();
    let now = Utc::now();
    vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| LoginError::NotFound(name.clone()))?;
            let mut event = Event::new(
                now,
                EventKind::Registered,
                format!(
                    "registered client {} at {}",
                    mask(&registration.client_id),
                    registration.issuer
                ),
            );
            event.evidence = vec![
                Evidence::new("client", mask(&registration.client_id)),
                Evidence::new("issuer", registration.issuer.clone()),
                Evidence::new(
                    "redirect_uri",
                    registration.redirect_uri.clone().unwrap_or_default(),
                ),
            ];
            c.record(event);
            registration::adopt(c, registration);
            Ok(())
        })
        .await
}

pub(super) async fn store_login(
    vault: &Vault,
    name: &str,
    found: &Discovery,
    client: &ClientRegistration,
    scope: Option<String>,
    response: TokenResponse,
) -> Result<LoginOutcome, LoginError> {
    // The token may only change under the connection's refresh lock, so a refresh in
    // another process never interleaves with a login.
    let lock_file = crate::oauth::refresh::lock_file(vault, name);
    let _lock = lock_refresh(vault, name).await?;
    let name = name.to_string();
    let now = Utc::now();
    let discovered = found.to_discovered(now);
    let client = client.clone();
    let requested: Vec<String> = scope
        .as_deref()
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let outcome = vault
        .transact_async(move |store: &mut Store| {
            let c = store
                .get_mut(&name)
                .ok_or_else(|| LoginError::NotFound(name.clone()))?;
            Ok::<_, LoginError>(apply_login(c, discovered, client, requested, response, now))
        })
        .await?;
    // Still under the refresh lock: the mark never lags the vault.
    super::super::watermark::raise(
        super::super::watermark::path(&lock_file),
        outcome.generation,
        None,
    )
    .await;
    Ok(outcome)
}

fn apply_login(
    c: &mut Connection,
    discovered: Discovered,
    client: ClientRegistration,
    requested: Vec<String>,
    response: TokenResponse,
    now: chrono::DateTime<Utc>,
) -> LoginOutcome {
    let previous = c.token.as_ref();
    let generation = previous.map(|t| t.generation + 1).unwrap_or(1);
    let used = previous
        .map(|t| t.used_refresh_hashes.clone())
        .unwrap_or_default();
    let issuer = discovered.issuer.clone();
    let outcome = LoginOutcome {
        issuer: issuer.clone(),
        client_id: client.client_id.clone(),
        scope: response
            .scope
            .clone()
            .or_else(|| Some(requested.join(" ")).filter(|s| !s.is_empty())),
        expires_in: response.expires_in,
        has_refresh_token: response.refresh_token.is_some(),
        generation,
    };
    c.auth = Auth::OAuth {
        scopes: requested,
        discovery: Some(discovered),
    };
    let expires_at = response.expires_at(now);
    let refresh_expires_at = response.refresh_expires_at(now);
    c.token = Some(TokenSet {
        client_id: client.client_id.clone(),
        issuer: issuer.clone(),
        access_token: response.access_token,
        expires_at,
        refresh_expires_at,
        refresh_token: response.refresh_token,
        scope: outcome.scope.clone(),
        obtained_at: now,
        generation,
        used_refresh_hashes: used,
        // A sign-in starts a new grant.
        granted_at: Some(now),
    });
    c.journal = None;
    c.state = ConnectionState::Healthy;
    settle_step_up(c, outcome.scope.as_deref());
    registration::adopt(c, client);
    let mut event = Event::new(
        now,
        EventKind::Authorized,
        format!("authorized at {issuer} (generation {generation})"),
    );
    event.evidence = vec![
        Evidence::new("issuer", issuer),
        Evidence::new("client", mask(&outcome.client_id)),
        Evidence::new(
            "scope",
            outcome.scope.clone().unwrap_or_else(|| "(none)".into()),
        ),
        Evidence::new(
            "lifetime",
            outcome
                .expires_in
                .map(|s| crate::summary::duration(s as i64))
                .unwrap_or_else(|| "no expiry".into()),
        ),
    ];
    // Worth knowing, not worth alarming: how this server's tokens behave.
    if !outcome.has_refresh_token {
        event.diagnosis = Some(DiagnosisCode::NoRefreshToken);
    } else if outcome.expires_in.is_some_and(|s| s < 3600) {
        event.diagnosis = Some(DiagnosisCode::ShortLived);
    }
    c.record(event);
    outcome
}

/// After a sign-in: a step-up whose scopes were all granted is done. Otherwise one more
/// sign-in has asked for them, and the scopes not granted are dropped from those every
/// later sign-in asks for — only the step-up asks for them, up to its limit.
fn settle_step_up(c: &mut Connection, granted: Option<&str>) {
    let Some(step) = &mut c.step_up else {
        return;
    };
    let granted: Vec<&str> = granted.unwrap_or_default().split_whitespace().collect();
    let missing: Vec<String> = step
        .scopes
        .iter()
        .filter(|s| !granted.contains(&s.as_str()))
        .cloned()
        .collect();
    if missing.is_empty() {
        c.step_up = None;
        return;
    }
    if step.logins < MAX_STEP_UPS {
        step.logins += 1;
    }
    if let Auth::OAuth { scopes, .. } = &mut c.auth {
        scopes.retain(|s| !missing.contains(s));
    }
}

/// The upstream refused a call with 403 `insufficient_scope`, wanting `needed`: the next
/// sign-in asks for those scopes too (a step-up), and the history says so once per new
/// scope. The step-up as it now stands.
pub async fn want_scopes(
    vault: &Vault,
    name: &str,
    needed: Vec<String>,
    description: Option<String>,
) -> Result<StepUp, VaultError> {
    let name = name.to_string();
    vault
        .transact_async(move |store: &mut Store| {
            let Some(c) = store.get_mut(&name) else {
                return Ok(StepUp::default());
            };
            let granted = c
                .token
                .as_ref()
                .and_then(|t| t.scope.clone())
                .unwrap_or_default();
            let step = c.step_up.get_or_insert_with(StepUp::default);
            let new: Vec<String> = needed
                .into_iter()
                .filter(|s| !step.scopes.contains(s))
                .collect();
            step.scopes.extend(new.iter().cloned());
            let step = step.clone();
            if !new.is_empty() {
                let mut event = Event::new(
                    Utc::now(),
                    EventKind::Rejected,
                    format!(
                        "the upstream wants scope '{}' for some calls: the next sign-in asks for it",
                        new.join(" ")
                    ),
                );
                event.diagnosis = Some(DiagnosisCode::InsufficientScope);
                event.evidence = vec![
                    Evidence::new("status", "403 insufficient_scope"),
                    Evidence::new("scope wanted", step.scopes.join(" ")),
                    Evidence::new("scope granted", granted),
                ];
                if let Some(d) = description {
                    event.evidence.push(Evidence::new(
                        "error_description",
                        crate::printable::printable(&d, 200),
                    ));
                }
                c.record(event);
            }
            Ok(step)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_asks_three_times_then_stops_and_ends_once_granted() {
        let mut c = Connection::new(
            "linear".parse().unwrap(),
            crate::vault::parse_upstream("https://mcp.example/mcp").unwrap(),
            Auth::OAuth {
                scopes: vec!["read".into(), "admin".into()],
                discovery: None,
            },
            Utc::now(),
        );
        c.step_up = Some(StepUp {
            scopes: vec!["admin".into()],
            logins: 0,
        });
        for asked in 1..=MAX_STEP_UPS {
            assert_eq!(c.step_up.as_ref().unwrap().to_ask(), ["admin".to_string()]);
            settle_step_up(&mut c, Some("read"));
            assert_eq!(c.step_up.as_ref().unwrap().logins, asked);
            // Not granted: later sign-ins do not keep asking for it on their own.
            assert_eq!(
                c.auth,
                Auth::OAuth {
                    scopes: vec!["read".into()],
                    discovery: None
                }
            );
        }
        assert!(c.step_up.as_ref().unwrap().to_ask().is_empty());
        settle_step_up(&mut c, Some("read"));
        assert_eq!(c.step_up.as_ref().unwrap().logins, MAX_STEP_UPS);
        // Granted (by a `--scope` sign-in): the step-up is done.
        settle_step_up(&mut c, Some("read admin"));
        assert_eq!(c.step_up, None);
    }
}
