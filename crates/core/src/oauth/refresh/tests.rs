//! Tests of the token rotation and the credential header.

use axum::http::header;

use super::*;

fn token_set(refresh: Option<&str>) -> TokenSet {
    TokenSet {
        client_id: "c".into(),
        issuer: "https://as.example".into(),
        access_token: Secret::new("at-1"),
        refresh_token: refresh.map(Secret::new),
        scope: Some("read".into()),
        expires_at: None,
        obtained_at: Utc::now(),
        generation: 4,
        used_refresh_hashes: Vec::new(),
        granted_at: None,
        refresh_expires_at: None,
    }
}

fn response(refresh: Option<&str>) -> TokenResponse {
    TokenResponse {
        access_token: Secret::new("at-2"),
        token_type: "Bearer".into(),
        expires_in: Some(3600),
        refresh_token: refresh.map(Secret::new),
        scope: None,
        refresh_token_expires_in: None,
    }
}

#[test]
fn a_refresh_token_that_does_not_come_back_or_comes_back_unchanged_is_kept() {
    let now = Utc::now();
    // None in the answer: the old one stays, and it was not spent.
    let next = rotated(token_set(Some("rt-1")), response(None), [1; 8], now);
    assert_eq!(next.refresh_token, Some(Secret::new("rt-1")));
    assert!(next.used_refresh_hashes.is_empty());
    assert_eq!(next.generation, 5);
    assert_eq!(next.access_token, Secret::new("at-2"));
    assert_eq!(next.scope.as_deref(), Some("read"), "no scope: the old one");
    // The same one again: kept, not spent.
    let next = rotated(token_set(Some("rt-1")), response(Some("rt-1")), [1; 8], now);
    assert_eq!(next.refresh_token, Some(Secret::new("rt-1")));
    assert!(next.used_refresh_hashes.is_empty());
    // A new one: rotation; the old one is remembered as spent.
    let next = rotated(token_set(Some("rt-1")), response(Some("rt-2")), [1; 8], now);
    assert_eq!(next.refresh_token, Some(Secret::new("rt-2")));
    assert_eq!(next.used_refresh_hashes, [[1; 8]]);
}

#[test]
fn the_credential_header_is_made_once_and_never_printed() {
    let token = "generic_at_9f8e7d6c5b4a39281706";
    let current = Current::new(Credential::Bearer(Secret::new(token)), 3, Utc::now(), None);
    let (name, value) = current.header().unwrap().unwrap();
    assert_eq!(name, header::AUTHORIZATION);
    assert_eq!(value.as_bytes(), format!("Bearer {token}").as_bytes());
    assert!(value.is_sensitive());
    assert!(std::ptr::eq(value, &current.header().unwrap().unwrap().1));
    let printed = format!("{current:?}");
    assert!(!printed.contains(&token[12..]), "{printed}");

    let key = Current::new(
        Credential::Header {
            name: "x api key".to_string(),
            value: Secret::new("sk-live-0123456789abcdef"),
        },
        0,
        Utc::now(),
        None,
    );
    let error = key.header().unwrap_err();
    assert_eq!(error, "'x api key' is not a header name");
    assert!(!format!("{key:?}").contains("0123456789abcdef"));
}
