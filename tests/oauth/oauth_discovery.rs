//! Discovery against loopback servers that each publish one metadata layout, and against
//! the provider simulator: which URLs are asked, in which order, and what is refused.

#[path = "oauth_discovery/transport.rs"]
mod transport;

use serde_json::json;
// Discovery runs on the client the product builds, which follows no redirect by itself.
use tether_core::http::client as http;
use tether_core::oauth::discovery::{DiscoveryError, MetadataSource, discover};
use tether_core::vault::DiagnosisCode;
use tether_sim::{FaultPlan, SimOptions};

use crate::support::site::*;

const PRM_PATH: &str = "/.well-known/oauth-protected-resource/mcp";
const PRM_ROOT: &str = "/.well-known/oauth-protected-resource";
const OAUTH_ROOT: &str = "/.well-known/oauth-authorization-server";
const OIDC_ROOT: &str = "/.well-known/openid-configuration";

/// A site whose MCP endpoint asks for a login without naming its metadata.
async fn protected_site() -> Site {
    let site = Site::start().await;
    site.post("/mcp", Reply::unauthorized(&[r#"Bearer realm="mcp""#]));
    site
}

/// PRM at the path-insert location naming `issuer`, for a site at `site`.
fn publish_prm(site: &Site, issuer: &str) {
    site.get(PRM_PATH, Reply::json(prm_doc(&site.url("/mcp"), issuer)));
}

#[tokio::test]
async fn the_challenge_url_is_used_first_and_resource_is_kept_byte_for_byte() {
    let site = Site::start().await;
    let prm_url = site.url("/meta/prm");
    site.post(
        "/mcp",
        Reply::unauthorized(&[
            r#"Basic realm="legacy""#,
            &format!(
                r#"Bearer error="invalid_request", resource_metadata="{prm_url}", scope="read""#
            ),
        ]),
    );
    // Same origin and path, spelt differently: it must travel as sent.
    let resource = site.url("/mcp").replace("http://", "HTTP://");
    site.get(
        "/meta/prm",
        Reply::json(json!({ "resource": resource, "authorization_servers": [site.base] })),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));

    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.resource, resource);
    assert_eq!(
        d.resource_metadata_url.as_ref().map(|u| u.as_str()),
        Some(prm_url.as_str())
    );
    assert_eq!(d.issuer, site.base);
    assert_eq!(d.source, MetadataSource::Discovered);
    let challenge = d.challenge.clone().unwrap();
    assert_eq!(challenge.scope.as_deref(), Some("read"));
    assert_eq!(challenge.error.as_deref(), Some("invalid_request"));
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(401)),
            (prm_url, Some(200)),
            (site.url(OAUTH_ROOT), Some(200)),
        ]
    );
    assert_eq!(d.as_metadata.token_endpoint.as_str(), site.url("/token"));
    let stored = d.to_discovered(chrono::Utc::now());
    assert_eq!(stored.as_metadata, d.as_metadata.raw);
    assert_eq!(stored.tried, d.tried);
}

#[tokio::test]
async fn the_probe_is_an_unauthenticated_initialize() {
    let site = protected_site().await;
    publish_prm(&site, &site.base);
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    discover(&http(), &site.mcp()).await.unwrap();

    let probe = &site.seen()[0];
    assert_eq!(probe.method, "POST");
    assert_eq!(probe.path, "/mcp");
    assert_eq!(
        probe.headers["accept"],
        "application/json, text/event-stream"
    );
    assert_eq!(probe.headers["content-type"], "application/json");
    assert!(probe.headers.get("authorization").is_none());
    let body: serde_json::Value = serde_json::from_str(&probe.body).unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert_eq!(body["method"], "initialize");
}

#[tokio::test]
async fn without_a_challenge_url_the_path_insert_prm_is_used() {
    let site = protected_site().await;
    publish_prm(&site, &site.base);
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(401)),
            (site.url(PRM_PATH), Some(200)),
            (site.url(OAUTH_ROOT), Some(200)),
        ]
    );
    assert_eq!(d.resource, site.url("/mcp"));
}

#[tokio::test]
async fn the_root_prm_is_the_fallback_and_every_try_is_listed_in_order() {
    let site = protected_site().await;
    site.get(PRM_ROOT, Reply::json(prm_doc(&site.base, &site.base)));
    site.get(OIDC_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(401)),
            (site.url(PRM_PATH), Some(404)),
            (site.url(PRM_ROOT), Some(200)),
            (site.url(OAUTH_ROOT), Some(404)),
            (site.url(OIDC_ROOT), Some(200)),
        ]
    );
    // The root PRM names the origin, which covers /mcp.
    assert_eq!(d.resource, site.base);
}

#[tokio::test]
async fn a_failing_challenge_url_falls_back_to_well_known_without_asking_twice() {
    let site = Site::start().await;
    let hinted = site.url(PRM_PATH);
    site.post(
        "/mcp",
        Reply::unauthorized(&[&format!("Bearer resource_metadata=\"{hinted}\"")]),
    );
    site.get(
        PRM_ROOT,
        Reply::json(prm_doc(&site.url("/mcp"), &site.base)),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(401)),
            (hinted, Some(404)),
            (site.url(PRM_ROOT), Some(200)),
            (site.url(OAUTH_ROOT), Some(200)),
        ]
    );
}

/// An issuer `{base}/tenant1` whose metadata lives only at `only`.
async fn path_issuer_with_only(only: &str) -> (Site, Vec<(String, Option<u16>)>) {
    let site = protected_site().await;
    let issuer = site.url("/tenant1");
    publish_prm(&site, &issuer);
    site.get(only, Reply::json(as_doc(&issuer, &issuer)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.issuer, issuer);
    assert_eq!(d.as_metadata.issuer, issuer);
    assert_eq!(
        d.as_metadata.authorization_endpoint.as_str(),
        site.url("/tenant1/authorize")
    );
    (site, statuses(&d.tried[2..]))
}

#[tokio::test]
async fn a_path_issuer_is_found_at_the_oauth_path_insert_form() {
    let form = "/.well-known/oauth-authorization-server/tenant1";
    let (site, tried) = path_issuer_with_only(form).await;
    assert_eq!(tried, vec![(site.url(form), Some(200))]);
}

#[tokio::test]
async fn a_path_issuer_is_found_at_the_oidc_path_insert_form() {
    let form = "/.well-known/openid-configuration/tenant1";
    let (site, tried) = path_issuer_with_only(form).await;
    assert_eq!(
        tried,
        vec![
            (
                site.url("/.well-known/oauth-authorization-server/tenant1"),
                Some(404)
            ),
            (site.url(form), Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_path_issuer_is_found_at_the_oidc_path_append_form() {
    let form = "/tenant1/.well-known/openid-configuration";
    let (site, tried) = path_issuer_with_only(form).await;
    assert_eq!(
        tried,
        vec![
            (
                site.url("/.well-known/oauth-authorization-server/tenant1"),
                Some(404)
            ),
            (
                site.url("/.well-known/openid-configuration/tenant1"),
                Some(404)
            ),
            (site.url(form), Some(200)),
        ]
    );
}

#[tokio::test]
async fn a_root_issuer_is_found_at_either_root_form() {
    for (only, expected) in [
        (OAUTH_ROOT, vec![Some(200)]),
        (OIDC_ROOT, vec![Some(404), Some(200)]),
    ] {
        let site = protected_site().await;
        publish_prm(&site, &site.base);
        let mut doc = as_doc(&site.base, &site.base);
        doc["subject_types_supported"] = json!(["public"]);
        site.get(only, Reply::json(doc));
        let d = discover(&http(), &site.mcp()).await.unwrap();
        let got: Vec<Option<u16>> = d.tried[2..].iter().map(|t| t.status).collect();
        assert_eq!(got, expected, "{only}");
        assert!(d.tried.last().unwrap().url.ends_with(only));
    }
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_not_used() {
    let site = protected_site().await;
    publish_prm(&site, &site.base);
    // A trailing slash is enough: the comparison is byte for byte.
    let other = format!("{}/", site.base);
    site.get(OAUTH_ROOT, Reply::json(as_doc(&other, &site.base)));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    match &err {
        DiscoveryError::IssuerMismatch {
            expected,
            found,
            url,
            tried,
        } => {
            assert_eq!(expected, &site.base);
            assert_eq!(found, &other);
            assert_eq!(url, &site.url(OAUTH_ROOT));
            assert_eq!(tried.len(), 4, "both root forms were tried: {tried:?}");
        }
        other => panic!("expected IssuerMismatch, got {other:?}"),
    }
    assert_eq!(err.code(), DiagnosisCode::DiscoveryFailed);
    assert!(
        err.to_string().contains(&format!("names issuer '{other}'")),
        "{err}"
    );
}

#[tokio::test]
async fn an_authorization_server_without_s256_is_refused() {
    for methods in [None, Some(json!(["plain"]))] {
        let site = protected_site().await;
        publish_prm(&site, &site.base);
        let mut doc = as_doc(&site.base, &site.base);
        match &methods {
            Some(m) => doc["code_challenge_methods_supported"] = m.clone(),
            None => drop(
                doc.as_object_mut()
                    .unwrap()
                    .remove("code_challenge_methods_supported"),
            ),
        }
        site.get(OAUTH_ROOT, Reply::json(doc));
        let err = discover(&http(), &site.mcp()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::PkceUnsupported { .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), DiagnosisCode::PkceUnsupported);
        assert!(err.to_string().contains("S256"), "{err}");
    }
}

#[tokio::test]
async fn a_prm_for_another_resource_is_refused_before_any_authorization_server_is_asked() {
    let site = protected_site().await;
    site.get(
        PRM_PATH,
        Reply::json(prm_doc("https://evil.example.com/mcp", &site.base)),
    );
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    let DiscoveryError::BadDocument { url, reason, tried } = &err else {
        panic!("expected BadDocument, got {err:?}");
    };
    assert_eq!(url, &site.url(PRM_PATH));
    assert!(reason.contains("https://evil.example.com/mcp"), "{reason}");
    assert!(reason.contains(&site.url("/mcp")), "{reason}");
    assert_eq!(tried.len(), 2, "{tried:?}");
}

#[tokio::test]
async fn a_prm_for_another_path_on_the_same_origin_is_refused() {
    let site = protected_site().await;
    let sibling = site.url("/v1/sse");
    site.get(PRM_PATH, Reply::json(prm_doc(&sibling, &site.base)));
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    let DiscoveryError::BadDocument { reason, .. } = &err else {
        panic!("expected BadDocument, got {err:?}");
    };
    assert!(reason.contains(&sibling), "{reason}");
    assert_eq!(err.code(), DiagnosisCode::DiscoveryFailed);
}

#[tokio::test]
async fn a_prm_naming_this_url_with_a_trailing_slash_is_accepted_as_sent() {
    let site = protected_site().await;
    let spelt = format!("{}/", site.url("/mcp"));
    site.get(PRM_PATH, Reply::json(prm_doc(&spelt, &site.base)));
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.resource, spelt);
}

#[tokio::test]
async fn a_prm_whose_resource_is_not_a_url_is_refused() {
    let site = protected_site().await;
    site.get(PRM_PATH, Reply::json(prm_doc("mcp-server", &site.base)));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::BadDocument { .. }), "{err:?}");
}

#[tokio::test]
async fn without_prm_the_origin_metadata_of_a_2025_03_26_server_is_used() {
    let site = protected_site().await;
    site.get(
        OAUTH_ROOT,
        Reply::json(as_doc(&site.base, &format!("{}/oauth", site.base))),
    );
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.source, MetadataSource::Legacy2025_03_26Origin);
    assert_eq!(d.issuer, site.base);
    assert_eq!(d.resource, site.url("/mcp"));
    assert!(d.resource_metadata.is_none() && d.resource_metadata_url.is_none());
    assert_eq!(
        d.as_metadata.token_endpoint.as_str(),
        site.url("/oauth/token")
    );
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(401)),
            (site.url(PRM_PATH), Some(404)),
            (site.url(PRM_ROOT), Some(404)),
            (site.url(OAUTH_ROOT), Some(200)),
        ]
    );
}

#[tokio::test]
async fn without_any_metadata_the_default_endpoints_are_used() {
    let site = protected_site().await;
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.source, MetadataSource::DefaultEndpoints);
    let md = &d.as_metadata;
    assert_eq!(md.authorization_endpoint.as_str(), site.url("/authorize"));
    assert_eq!(md.token_endpoint.as_str(), site.url("/token"));
    assert_eq!(
        md.registration_endpoint.as_ref().unwrap().as_str(),
        site.url("/register")
    );
    assert!(md.supports_s256());
    assert_eq!(d.issuer, site.base);
    let got: Vec<Option<u16>> = d.tried.iter().map(|t| t.status).collect();
    assert_eq!(
        got,
        vec![Some(401), Some(404), Some(404), Some(404), Some(404)]
    );
}

#[tokio::test]
async fn a_server_that_never_asked_for_a_login_gets_no_guessed_endpoints() {
    let site = Site::start().await;
    site.post("/mcp", Reply::status(405));
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::NotFound { .. }), "{err:?}");
    assert_eq!(err.tried()[0].status, Some(405));
    assert_eq!(err.tried().len(), 5);
    assert!(
        err.to_string()
            .contains(&format!("{} → 405", site.url("/mcp"))),
        "{err}"
    );
}

#[tokio::test]
async fn a_405_probe_still_leads_to_well_known_discovery() {
    let site = Site::start().await;
    site.post("/mcp", Reply::status(405));
    publish_prm(&site, &site.base);
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.tried[0].status, Some(405));
    assert!(d.challenge.is_none());
    assert_eq!(d.source, MetadataSource::Discovered);
}

#[tokio::test]
async fn a_server_answering_2xx_without_resource_metadata_needs_no_authorization() {
    let site = Site::start().await;
    site.post(
        "/mcp",
        Reply::json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
    );
    let err = discover(&http(), &site.mcp()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NoAuthRequired { .. }),
        "{err:?}"
    );
    assert_eq!(
        statuses(err.tried()),
        vec![
            (site.url("/mcp"), Some(200)),
            (site.url(PRM_PATH), Some(404)),
            (site.url(PRM_ROOT), Some(404)),
        ],
        "only the protected resource metadata is looked for; no authorization server"
    );
}

/// Servers that authorize per method let `initialize` through and ask for a token (or
/// more scope) on later calls; their protected resource metadata still names the
/// authorization server, so a login can start.
#[tokio::test]
async fn a_server_that_lets_initialize_through_but_publishes_resource_metadata_is_discovered() {
    let site = Site::start().await;
    site.post(
        "/mcp",
        Reply::json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})),
    );
    publish_prm(&site, &site.base);
    site.get(OAUTH_ROOT, Reply::json(as_doc(&site.base, &site.base)));
    let d = discover(&http(), &site.mcp()).await.unwrap();
    assert_eq!(d.source, MetadataSource::Discovered);
    assert!(d.challenge.is_none());
    assert_eq!(d.issuer, site.base);
    assert_eq!(
        statuses(&d.tried),
        vec![
            (site.url("/mcp"), Some(200)),
            (site.url(PRM_PATH), Some(200)),
            (site.url(OAUTH_ROOT), Some(200)),
        ]
    );
}

#[tokio::test]
async fn the_simulator_with_a_path_issuer_is_discovered_by_path_insert() {
    let sim = tether_sim::start(SimOptions {
        issuer_path: Some("/oauth".into()),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let d = discover(&http(), &sim.mcp_url()).await.unwrap();
    assert_eq!(d.issuer, sim.issuer());
    assert!(d.issuer.ends_with("/oauth"));
    assert_eq!(d.resource, sim.mcp_url().as_str());
    let base = sim.base_url().as_str().trim_end_matches('/').to_string();
    assert_eq!(
        statuses(&d.tried),
        vec![
            (sim.mcp_url().to_string(), Some(401)),
            (format!("{base}{PRM_PATH}"), Some(200)),
            (
                format!("{base}/.well-known/oauth-authorization-server/oauth"),
                Some(200)
            ),
        ]
    );
    assert!(d.as_metadata.authorization_response_iss_parameter_supported);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_simulator_without_path_insert_prm_is_discovered_through_the_root() {
    let sim = tether_sim::start(SimOptions {
        faults: FaultPlan {
            missing_metadata: vec![PRM_PATH.into()],
            ..FaultPlan::default()
        },
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let d = discover(&http(), &sim.mcp_url()).await.unwrap();
    let base = sim.base_url().as_str().trim_end_matches('/').to_string();
    assert_eq!(
        statuses(&d.tried),
        vec![
            (sim.mcp_url().to_string(), Some(401)),
            (format!("{base}{PRM_PATH}"), Some(404)),
            (format!("{base}{PRM_ROOT}"), Some(200)),
            (format!("{base}{OAUTH_ROOT}"), Some(200)),
        ]
    );
    assert_eq!(d.issuer, sim.issuer());
    assert_eq!(d.source, MetadataSource::Discovered);
    sim.shutdown().await;
}
