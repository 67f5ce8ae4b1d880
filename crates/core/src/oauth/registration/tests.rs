//! Tests of which stored client a login reuses and where a management URL may be kept.

use super::create::management;
use super::manage::unsafe_management;
use super::*;
use crate::secret::Secret;

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
