//! One key per cause: the same death or forecast keeps its key, a new one gets another.

use chrono::Duration;

use super::*;
use crate::secret::Secret;
use crate::vault::{Auth, ClientRegistration, DiagnosisCode, TokenSet};

fn signed_in(now: DateTime<Utc>) -> Connection {
    let mut c = Connection::new(
        "work".parse().unwrap(),
        "https://mcp.example.com/mcp".parse().unwrap(),
        Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        },
        now,
    );
    c.state = ConnectionState::Healthy;
    let mut client = ClientRegistration::preregistered(
        "client-1".into(),
        None,
        "http://127.0.0.1:1/callback".into(),
        now,
    );
    client.secret_expires_at = Some(now + Duration::days(30));
    c.clients.push(client);
    c.token = Some(TokenSet {
        client_id: "client-1".into(),
        issuer: "https://auth.example.com".into(),
        access_token: Secret::new("at-secret"),
        refresh_token: Some(Secret::new("rt-secret")),
        scope: None,
        expires_at: Some(now + Duration::hours(1)),
        obtained_at: now,
        generation: 4,
        used_refresh_hashes: Vec::new(),
        granted_at: Some(now - Duration::days(1)),
        refresh_expires_at: Some(now + Duration::days(3)),
    });
    c
}

fn keys(c: &Connection, now: DateTime<Utc>) -> Vec<String> {
    due(&Store::from_connections(vec![c.clone()]), now)
        .into_iter()
        .map(|a| a.key)
        .collect()
}

#[test]
fn a_near_forecast_alerts_once_per_grant() {
    let now = Utc::now();
    let mut c = signed_in(now);
    let first = due(&Store::from_connections(vec![c.clone()]), now);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].summary, "tether: 'work': sign in again within 3d");
    assert_eq!(
        first[0].body,
        "The refresh token expires. Run: tether login work"
    );
    // A refresh moves the refresh token's expiry: the same cause.
    let t = c.token.as_mut().unwrap();
    t.refresh_expires_at = Some(now + Duration::days(3) + Duration::hours(8));
    t.generation += 1;
    assert_eq!(keys(&c, now), std::slice::from_ref(&first[0].key));
    // A new sign-in is a new grant.
    c.token.as_mut().unwrap().granted_at = Some(now);
    assert_ne!(keys(&c, now), std::slice::from_ref(&first[0].key));
    // Far limits say nothing.
    c.token.as_mut().unwrap().refresh_expires_at = Some(now + Duration::days(30));
    assert!(keys(&c, now).is_empty());
}

#[test]
fn a_dead_grant_alerts_with_its_fix_and_no_secret() {
    let now = Utc::now();
    let mut c = signed_in(now);
    c.state = ConnectionState::NeedsReauth {
        diagnosis: DiagnosisCode::InvalidGrantExpiredOrRevoked,
        detail: "server said \u{1b}[31m rt-secret".into(),
    };
    let alerts = due(&Store::from_connections(vec![c.clone()]), now);
    assert_eq!(alerts.len(), 1, "a dead grant has no forecast besides");
    let a = &alerts[0];
    assert_eq!(a.key, "work:reauth:4:invalid_grant.expired_or_revoked");
    assert_eq!(a.summary, "tether: 'work' needs a new sign-in");
    assert!(a.body.contains("tether login work"), "{}", a.body);
    for text in [&a.summary, &a.body] {
        assert!(
            !text.contains("secret") && !text.contains('\u{1b}'),
            "{text}"
        );
    }
    // Signed in again and dead again: a new generation, a new cause.
    c.token.as_mut().unwrap().generation = 9;
    assert_ne!(keys(&c, now), std::slice::from_ref(&a.key));
}
