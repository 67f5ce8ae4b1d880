//! Signing in to tether itself, over real sockets against `tether serve`: a client refused
//! on `/c/<name>/mcp` is pointed at the endpoint's metadata (RFC 9728), registers (RFC 7591),
//! sends the user to the consent page, and after the user allows it redeems its code with
//! its PKCE verifier for a labelled secret that works — and is refused again once revoked.
//! The page's answer must come from the page itself (same origin, its form token); a
//! denial goes back to the client as `access_denied`; a public bind offers none of it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::tether_signin::{
    VERIFIER, answer, challenge, get_json, location, open_page, query, register, token,
};
use crate::support::{Serve, http, signed_in};

const CALLBACK: &str = "http://127.0.0.1:1/callback";

/// The client's discovery, from the 401 to its registration: its client id.
async fn discover_and_register(base: &str) -> String {
    let refused = http()
        .post(format!("{base}/c/generic/mcp"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/c/generic/mcp");
    assert_eq!(
        refused.headers()["www-authenticate"],
        format!("Bearer resource_metadata=\"{metadata_url}\"").as_str()
    );
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("tether url"),
        "tether's own explanation stays: {body}"
    );
    let resource = get_json(&metadata_url).await;
    assert_eq!(resource["resource"], format!("{base}/c/generic/mcp"));
    assert_eq!(resource["authorization_servers"][0], base);
    let server = get_json(&format!("{base}/.well-known/oauth-authorization-server")).await;
    assert_eq!(server["issuer"], base);
    assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        server["registration_endpoint"],
        format!("{base}/oauth/register")
    );
    register(base, "Test Client", CALLBACK).await
}

/// The authorization request for the test's connection: the consent page's address.
async fn ask(base: &str, client_id: &str) -> String {
    crate::support::tether_signin::ask_for(base, client_id, "generic").await
}

async fn initialize_with(base: &str, token: &str) -> StatusCode {
    crate::support::tether_signin::initialize_with(base, "generic", token).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_signs_in_to_tether_with_the_users_consent_and_loses_it_when_revoked() {
    let (home, _sim) = signed_in("generic");
    let serve = Serve::start(&home);
    let base = serve.base.as_str();
    let client_id = discover_and_register(base).await;
    let page = ask(base, &client_id).await;
    let (body, csrf) = open_page(&page).await;
    assert!(
        body.contains("Test Client</span> wants to use <b>'generic'</b> through tether"),
        "{body}"
    );

    // Answers that are not the page's own are refused, and change nothing.
    for (origin, site, token) in [
        ("http://evil.example", "cross-site", csrf.as_str()),
        (base, "same-origin", "forged"),
    ] {
        let r = http()
            .post(&page)
            .header("origin", origin)
            .header("sec-fetch-site", site)
            .form(&[("csrf", token), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status(), StatusCode::FORBIDDEN),
            "{origin} {token}: {}",
            r.status()
        );
    }
    let (still, _) = open_page(&page).await;
    assert!(still.contains("wants to use"), "still waiting");

    let back = answer(base, &page, &csrf, "allow").await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let back = location(&back);
    assert!(
        back.starts_with("http://127.0.0.1:49999/callback?"),
        "{back}"
    );
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    assert_eq!(query(&back, "iss").as_deref(), Some(base));
    let code = query(&back, "code").unwrap();

    let (status, wrong) = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong["error"], "invalid_grant",
        "a wrong verifier spends the code"
    );
    let code = {
        let page = ask(base, &client_id).await;
        let (_, csrf) = open_page(&page).await;
        query(
            &location(&answer(base, &page, &csrf, "allow").await),
            "code",
        )
        .unwrap()
    };
    let (status, granted) = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:49999/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    let access = granted["access_token"].as_str().unwrap().to_string();
    let refresh = granted["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(initialize_with(base, &access).await, StatusCode::OK);
    assert_eq!(
        home.status("generic")["downstream_clients"],
        json!(["test-client"]),
        "named after the client"
    );
    let status = home.run(&["status", "generic"]).ok().stdout;
    assert!(
        status.contains("clients     test-client (signed in to tether as 'Test Client'"),
        "{status}"
    );

    // A refresh token sent twice strands no one: the same pair comes back.
    for _ in 0..2 {
        let (status, again) = token(
            base,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again["access_token"], access.as_str());
    }

    home.run(&["revoke", "generic", "--client", "test-client"])
        .ok();
    assert_eq!(
        initialize_with(base, &access).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, refused) = token(
        base,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &client_id),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"], "invalid_grant", "{refused}");
    crate::support::assert_no_tokens(&serve.stop());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_goes_back_to_the_client_and_bad_requests_are_shown_not_redirected() {
    let (home, _sim) = signed_in("generic");
    let serve = Serve::start(&home);
    let base = serve.base.as_str();
    let client_id = discover_and_register(base).await;
    let page = ask(base, &client_id).await;
    let (_, csrf) = open_page(&page).await;
    let back = location(&answer(base, &page, &csrf, "deny").await);
    assert_eq!(query(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&back, "code"), None);
    assert_eq!(home.status("generic")["downstream_clients"], json!([]));

    // A redirect URI the client did not register, or a client id tether did not make, is
    // shown to the user, never followed.
    for (client, redirect) in [
        (client_id.as_str(), "http://evil.example/cb"),
        (
            "tether-client.forged.forged",
            "http://127.0.0.1:49999/callback",
        ),
    ] {
        let r = http()
            .get(format!("{base}/oauth/authorize"))
            .query(&[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", redirect),
                ("code_challenge", &challenge()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{client} {redirect}");
        assert!(r.headers().get("location").is_none());
    }
    // Without PKCE the client is told so at its own redirect URI.
    let r = http()
        .get(format!("{base}/oauth/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", "http://127.0.0.1:49999/callback"),
            ("resource", &format!("{base}/c/generic/mcp")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        query(&location(&r), "error").as_deref(),
        Some("invalid_request")
    );
    serve.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_bind_offers_no_sign_in() {
    let (home, _sim) = signed_in("generic");
    std::fs::write(
        home.path().join("config.toml"),
        "[proxy]\npublic_names = [\"tether.internal\"]\n",
    )
    .unwrap();
    let serve = Serve::start(&home);
    let base = serve.base.as_str();
    let refused = http()
        .post(format!("{base}/c/generic/mcp"))
        .json(&crate::support::list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get("www-authenticate").is_none());
    let metadata = http()
        .get(format!("{base}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), StatusCode::NOT_FOUND);
    serve.stop();
}

/// An HTTP/2 client names the proxy in `:authority`, not `Host`: the challenge says the same.
#[test]
fn an_http2_client_is_pointed_at_the_same_metadata() {
    let (home, _sim) = signed_in("generic");
    let serve = Serve::start(&home);
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-i",
            "--http2-prior-knowledge",
            "-X",
            "POST",
            "-d",
            "{}",
        ])
        .arg(format!("{}/c/generic/mcp", serve.base))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/2 401"), "{head}");
    let expected = format!(
        "www-authenticate: bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/c/generic/mcp\"",
        serve.base
    );
    assert!(head.contains(&expected), "{head}");
    serve.stop();
}

/// A terminal UI of another tether process answers with the page's form token and a proof
/// made with the vault's key: a wrong proof is refused; the right one decides and leaves
/// the code to the browser waiting on the page, which takes it back to the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_from_a_terminal_needs_the_vaults_proof_and_leaves_the_code_to_the_browser() {
    use tether_core::local_auth::shared;
    let (home, _sim) = signed_in("generic");
    let serve = Serve::start(&home);
    let base = serve.base.as_str();
    let client_id = discover_and_register(base).await;
    let page = ask(base, &client_id).await;
    let (_, csrf) = open_page(&page).await;
    let id = page.rsplit('/').next().unwrap();
    let key = crate::support::vault_at(home.path());
    let terminal = |proof: String| {
        http()
            .post(&page)
            .form(&[
                ("csrf", csrf.clone()),
                ("decision", "allow".to_string()),
                (shared::PROOF_FIELD, proof),
            ])
            .send()
    };
    let other_vault = tether_core::vault::Key::from_bytes([9; 32]);
    for forged in [
        shared::proof(&other_vault, id, true),
        shared::proof(key.presence_key(), id, false),
    ] {
        let r = terminal(forged).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let (still, _) = open_page(&page).await;
    assert!(still.contains("wants to use"), "still waiting");

    let r = terminal(shared::proof(key.presence_key(), id, true))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        r.headers().get("location").is_none(),
        "no code for the terminal"
    );
    let again = terminal(shared::proof(key.presence_key(), id, true))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "answered already");

    let back = crate::support::tether_signin::page_redirect(&page).await;
    let code = query(&back, "code").expect("the browser takes the code back");
    let access = crate::support::tether_signin::redeem(base, &client_id, &code).await;
    assert_eq!(initialize_with(base, &access).await, StatusCode::OK);
    serve.stop();
}
