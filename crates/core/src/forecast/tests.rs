//! The forecast's rules: the earliest limit wins, the levels' thresholds, and what is not
//! forecast at all.

use chrono::Duration;

use super::*;
use crate::secret::Secret;
use crate::vault::{ClientRegistration, EndedGrant, TokenSet};

const ISSUER: &str = "https://auth.example.com";

fn signed_in(now: DateTime<Utc>) -> Connection {
    let mut c = Connection::new(
        "notion".parse().unwrap(),
        "https://mcp.example.com/mcp".parse().unwrap(),
        Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        },
        now - Duration::days(40),
    );
    c.state = ConnectionState::Healthy;
    c.clients.push(ClientRegistration::preregistered(
        "client-1".into(),
        None,
        "http://127.0.0.1:1/callback".into(),
        now - Duration::days(40),
    ));
    c.token = Some(TokenSet {
        client_id: "client-1".into(),
        issuer: ISSUER.into(),
        access_token: Secret::new("at"),
        refresh_token: Some(Secret::new("rt")),
        scope: None,
        expires_at: Some(now + Duration::hours(1)),
        obtained_at: now,
        generation: 3,
        used_refresh_hashes: Vec::new(),
        granted_at: Some(now - Duration::days(2)),
        refresh_expires_at: None,
    });
    c
}

fn none() -> Observed {
    Observed::new()
}

#[test]
fn no_known_limit_no_forecast() {
    let now = Utc::now();
    assert_eq!(forecast(&signed_in(now), &none(), now), None);
}

#[test]
fn the_earliest_limit_wins_with_its_reason() {
    let now = Utc::now();
    let mut c = signed_in(now);
    c.clients[0].secret_expires_at = Some(now + Duration::days(5));
    c.token.as_mut().unwrap().refresh_expires_at =
        Some(now + Duration::days(3) + Duration::hours(20));
    let f = forecast(&c, &none(), now).unwrap();
    assert_eq!(f.cause, Cause::RefreshToken);
    assert_eq!(f.level, Level::Warn);
    assert_eq!(
        f.sentence(),
        "sign in again within 3d (the refresh token expires)"
    );

    c.clients[0].secret_expires_at = Some(now + Duration::hours(5));
    let f = forecast(&c, &none(), now).unwrap();
    assert_eq!(f.cause, Cause::Registration);
    assert_eq!(f.level, Level::Error);
    assert_eq!(
        f.sentence(),
        "sign in again within 5h (the client registration expires)"
    );
}

#[test]
fn levels_follow_the_thresholds() {
    let now = Utc::now();
    let mut c = signed_in(now);
    for (left, level) in [
        (Duration::days(30), Level::Ok),
        (Duration::days(7) + Duration::seconds(1), Level::Ok),
        (Duration::days(7) - Duration::seconds(1), Level::Warn),
        (Duration::days(1), Level::Warn),
        (Duration::days(1) - Duration::seconds(1), Level::Error),
        (-Duration::hours(1), Level::Error),
    ] {
        c.clients[0].secret_expires_at = Some(now + left);
        let f = forecast(&c, &none(), now).unwrap();
        assert_eq!(f.level, level, "{left}");
        assert_eq!(f.is_near(), level != Level::Ok);
    }
    assert_eq!(
        forecast(&c, &none(), now).unwrap().advice(),
        "sign in again now"
    );
}

#[test]
fn only_the_registration_the_token_belongs_to_counts() {
    let now = Utc::now();
    let mut c = signed_in(now);
    let mut old = c.clients[0].clone();
    old.client_id = "client-0".into();
    old.secret_expires_at = Some(now + Duration::hours(1));
    c.clients.insert(0, old);
    assert_eq!(forecast(&c, &none(), now), None);
}

#[test]
fn a_refresh_tokens_expiry_needs_a_refresh_token() {
    let now = Utc::now();
    let mut c = signed_in(now);
    let t = c.token.as_mut().unwrap();
    t.refresh_expires_at = Some(now + Duration::hours(2));
    t.refresh_token = None;
    assert_eq!(forecast(&c, &none(), now), None);
}

#[test]
fn grants_this_issuer_ended_before_forecast_this_one() {
    let now = Utc::now();
    let c = signed_in(now);
    let days = |d: u64| d * 86_400;
    // Granted two days ago; the issuer ended grants after 3, 30 and 31 days: the middle.
    let observed: Observed = [(ISSUER.to_string(), vec![days(31), days(3), days(30)])].into();
    let f = forecast(&c, &observed, now).unwrap();
    assert_eq!(f.cause, Cause::Observed);
    assert_eq!(f.within_secs, days(28) as i64);
    assert_eq!(f.reason, "this server ended grants after ~30 days before");
    assert_eq!(f.level, Level::Ok);
    // Another issuer's lifetimes say nothing about this one.
    let elsewhere: Observed = [("https://other".to_string(), vec![days(3)])].into();
    assert_eq!(forecast(&c, &elsewhere, now), None);
    // A grant that already outlived them is not forecast from them.
    let shorter: Observed = [(ISSUER.to_string(), vec![days(1)])].into();
    assert_eq!(forecast(&c, &shorter, now), None);
}

#[test]
fn a_dead_or_absent_login_has_no_forecast() {
    let now = Utc::now();
    let mut c = signed_in(now);
    c.clients[0].secret_expires_at = Some(now + Duration::hours(1));
    c.state = ConnectionState::NeedsReauth {
        diagnosis: crate::vault::DiagnosisCode::ClientRejected,
        detail: String::new(),
    };
    assert_eq!(forecast(&c, &none(), now), None);
    c.state = ConnectionState::Healthy;
    c.token = None;
    assert_eq!(forecast(&c, &none(), now), None);
}

#[test]
fn an_ended_grant_is_kept_once_and_bounded() {
    let now = Utc::now();
    let mut c = signed_in(now);
    c.note_grant_ended(now);
    c.note_grant_ended(now + Duration::minutes(5));
    assert_eq!(
        c.ended_grants,
        [EndedGrant {
            issuer: ISSUER.into(),
            lasted_secs: 2 * 86_400,
            ended_at: now,
        }]
    );
    for n in 1..=20 {
        let t = c.token.as_mut().unwrap();
        t.granted_at = Some(now + Duration::days(n));
        c.note_grant_ended(now + Duration::days(n) + Duration::hours(1));
    }
    assert_eq!(c.ended_grants.len(), crate::vault::ENDED_GRANTS_CAP);
    assert_eq!(observed_in(std::slice::from_ref(&c))[ISSUER].len(), 8);
    // A grant whose start is unknown (imported, or from an older vault) teaches nothing.
    c.token.as_mut().unwrap().granted_at = None;
    c.note_grant_ended(now + Duration::days(40));
    assert_eq!(c.ended_grants.len(), crate::vault::ENDED_GRANTS_CAP);
}
