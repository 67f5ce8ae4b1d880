//! Servers that try to pull credentials elsewhere, through the `tether` binary against
//! small loopback providers: a token endpoint that redirects, a registration that names
//! another origin for its management URL, metadata that describes another resource.

use serde_json::{Value, json};

use crate::support::site::*;
use crate::support::{Home, Run};

const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const OAUTH_ROOT: &str = "/.well-known/oauth-authorization-server";

fn tokens(n: u32) -> Value {
    json!({
        "access_token": format!("fake_at_{n}xxxxxxxx"),
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": format!("fake_rt_{n}xxxxxxxx"),
    })
}

/// A provider on one loopback site: a 401 at `/mcp`, its metadata, registration, a
/// consent that signs in at once, and a token endpoint.
async fn provider() -> Site {
    let site = Site::start().await;
    site.post("/mcp", Reply::unauthorized(&[r#"Bearer realm="mcp""#]));
    site.get(
        PRM_PATH,
        Reply::json(prm_doc(&site.url("/mcp"), &site.base)),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    site.post(
        "/register",
        Reply::json(json!({ "client_id": "fake-client" })),
    );
    site.get("/authorize", Reply::consent("fake-code-secret"));
    site.post("/token", Reply::json(tokens(1)));
    site
}

fn added(site: &Site, name: &str) -> Home {
    let home = Home::new();
    home.run(&["add", name, site.mcp().as_str()]).ok();
    home
}

/// The code, the PKCE verifier and the client's proof would travel again to wherever a
/// token endpoint redirects, and its answer would be stored: the redirect is refused and
/// named instead, at login and at refresh alike.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_that_redirects_receives_no_grant_elsewhere() {
    let elsewhere = Site::start().await;
    elsewhere.post("/token", Reply::json(tokens(9)));
    let target = elsewhere.url("/token");
    let site = provider().await;
    site.post("/token", Reply::status(307).with("location", &target));
    let home = added(&site, "fake");

    let out = home.login("fake");
    refused_redirect(&out, &target);
    assert!(!out.stderr.contains("fake-code-secret"), "{}", out.stderr);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    assert!(home.status("fake")["token"].is_null());

    // Signed in, a refresh meets the same redirect: refused, and the token kept.
    site.post("/token", Reply::json(tokens(1)));
    home.login("fake").ok();
    site.post("/token", Reply::status(308).with("location", &target));
    let out = home.run(&["refresh", "fake"]);
    refused_redirect(&out, &target);
    assert!(!out.stderr.contains("fake_rt_1xxxxxxxx"), "{}", out.stderr);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    assert_eq!(home.status("fake")["token"]["generation"], 1);
}

/// A command that failed on a redirect it did not follow, naming the target.
fn refused_redirect(out: &Run, target: &str) {
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!("redirect to '{target}'")),
        "{}",
        out.stderr
    );
}

/// A registration endpoint that redirects receives the registration once, and nothing
/// follows it elsewhere.
#[tokio::test(flavor = "multi_thread")]
async fn a_registration_endpoint_that_redirects_is_named() {
    let elsewhere = Site::start().await;
    elsewhere.post("/register", Reply::json(json!({ "client_id": "stolen" })));
    let target = elsewhere.url("/register");
    let site = provider().await;
    site.post("/register", Reply::status(307).with("location", &target));
    let home = added(&site, "fake");
    let out = home.login("fake");
    refused_redirect(&out, &target);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
}

/// RFC 9728 §3.3: metadata that describes another resource — here another path on the same
/// origin, perhaps another tenant — is not used; the error names both.
#[tokio::test(flavor = "multi_thread")]
async fn metadata_for_another_path_is_refused_naming_both_resources() {
    let site = provider().await;
    let other = site.url("/other");
    site.get(PRM_PATH, Reply::json(prm_doc(&other, &site.base)));
    let home = added(&site, "fake");
    let out = home.login("fake");
    assert_eq!(out.status, 1, "{}", out.stderr);
    let mcp = site.url("/mcp");
    assert!(
        out.stderr.contains(&format!("'{other}'")) && out.stderr.contains(&format!("'{mcp}'")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("discovery_failed"), "{}", out.stderr);
    assert!(
        site.seen().iter().all(|s| s.path != "/register"),
        "{:?}",
        site.seen()
    );
}

/// A registration answer may name where the client is managed (RFC 7592), and tether sends
/// the registration access token there to read or delete it: a URL on another origin than
/// the registration endpoint is not kept, and is never asked — by the doctor or by
/// `tether orphans --delete`.
#[tokio::test(flavor = "multi_thread")]
async fn a_registration_managed_on_another_origin_is_never_asked() {
    let elsewhere = Site::start().await;
    let managed = elsewhere.url("/clients/fake-client");
    elsewhere.get(
        "/clients/fake-client",
        Reply::json(json!({ "client_id": "fake-client" })),
    );
    let site = provider().await;
    site.post(
        "/register",
        Reply::json(json!({
            "client_id": "fake-client",
            "registration_access_token": "rat-secret-value",
            "registration_client_uri": managed,
        })),
    );
    let home = added(&site, "fake");
    let out = home.login("fake").ok();
    assert!(
        out.stderr.contains(&format!("'{managed}'")) && out.stderr.contains("another origin"),
        "{}",
        out.stderr
    );
    let doctor = home.run(&["doctor", "fake", "--json"]);
    // A second registration leaves the first one an orphan, which is then deleted.
    site.post(
        "/register",
        Reply::json(json!({ "client_id": "fake-client-2" })),
    );
    Run::of(home.login_cmd("fake").arg("--reregister").output().unwrap()).ok();
    let orphans = home.run(&["orphans", "--delete"]);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    for text in [
        &out.stderr,
        &doctor.stdout,
        &orphans.stdout,
        &orphans.stderr,
    ] {
        assert!(!text.contains("rat-secret-value"), "{text}");
    }
}
