//! The simulator as an OAuth server: discovery documents, registration (RFC 7591/7592),
//! the RFC 6749 error codes for bad input, revocation, and the token-endpoint faults.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_sim::{Profile, SimOptions};

use crate::support::http;
use crate::support::oauth_client::*;

async fn get_json(http: &reqwest::Client, u: &str) -> (StatusCode, Value) {
    let resp = http.get(u).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_documents_name_the_resource_and_issuer() {
    let sim = sim(Profile::Linear).await;
    let http = http();
    let mcp = sim.mcp_url().to_string();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let (status, prm) = get_json(&http, &url(&sim, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(prm["resource"], mcp.as_str());
        assert_eq!(prm["authorization_servers"], json!([sim.issuer()]));
        assert!(
            prm["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("mcp:admin"))
        );
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (status, meta) = get_json(&http, &url(&sim, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(meta["issuer"], sim.issuer().as_str());
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            meta["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_post", "client_secret_basic"])
        );
        assert_eq!(meta["token_endpoint"], endpoint(&sim, "token").as_str());
        assert!(meta["registration_endpoint"].is_string());
        assert!(meta["revocation_endpoint"].is_string());
        assert_eq!(
            meta["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
    }
    assert!(!sim.issuer().ends_with('/'));
}

#[tokio::test]
async fn an_issuer_with_a_path_is_found_only_by_path_insert() {
    let sim = sim_with(SimOptions {
        issuer_path: Some("/oauth".into()),
        ..SimOptions::new(Profile::Generic)
    })
    .await;
    let http = http();
    assert!(sim.issuer().ends_with("/oauth"));
    let (_, prm) = get_json(
        &http,
        &url(&sim, "/.well-known/oauth-protected-resource/mcp"),
    )
    .await;
    assert_eq!(prm["authorization_servers"], json!([sim.issuer()]));
    for path in [
        "/.well-known/oauth-authorization-server/oauth",
        "/.well-known/openid-configuration/oauth",
        "/oauth/.well-known/openid-configuration",
    ] {
        let (status, meta) = get_json(&http, &url(&sim, path)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(meta["issuer"], sim.issuer().as_str());
        assert!(s(&meta["token_endpoint"]).ends_with("/oauth/token"));
    }
    let (status, _) = get_json(&http, &url(&sim, "/.well-known/oauth-authorization-server")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the root form is not served for a path issuer"
    );
    // The whole flow works under the path, with iss carrying the path.
    let (_, tokens) = login(&http, &sim).await;
    probe(&http, &sim, s(&tokens["access_token"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_validates_metadata_like_a_real_server() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let reg = |body: Value| {
        let http = http.clone();
        let u = endpoint(&sim, "register");
        async move {
            let resp = http.post(u).json(&body).send().await.unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    for (body, error) in [
        (
            json!({"redirect_uris": ["http://example.com/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["myapp://cb"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({"client_name": "x"}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
    ] {
        let (status, err) = reg(body.clone()).await;
        assert_eq!(
            (status, s(&err["error"])),
            (StatusCode::BAD_REQUEST, error),
            "{body}"
        );
    }

    let (status, public) =
        reg(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        public.get("client_secret").is_none() && public.get("client_secret_expires_at").is_none()
    );
    assert!(public["client_id_issued_at"].as_u64().unwrap() > 1_600_000_000);
    assert!(s(&public["registration_access_token"]).starts_with("gen_reg_"));

    // RFC 7591: the default method is client_secret_basic, and a secret comes with an expiry.
    let (_, confidential) =
        reg(json!({"redirect_uris": ["https://app.example/cb"], "client_name": "n"})).await;
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        "client_secret_basic"
    );
    assert!(s(&confidential["client_secret"]).starts_with("gen_cs_"));
    assert_eq!(confidential["client_secret_expires_at"], 0);
    assert_eq!(confidential["client_name"], "n");
    assert_eq!(confidential["grant_types"], json!(["authorization_code"]));
    assert_eq!(stats(&http, &sim).await["registrations"], 2);
}

#[tokio::test]
async fn registration_management_reads_and_deletes_and_deletion_revokes_grants() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, tokens) = login(&http, &sim).await;
    let uri = s(&client.registration["registration_client_uri"]).to_string();
    let rat = s(&client.registration["registration_access_token"]).to_string();
    assert_eq!(uri, format!("{}/register/{}", sim.issuer(), client.id));

    let read = http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(
        read.json::<Value>().await.unwrap()["client_id"],
        client.id.as_str()
    );
    let wrong = http.get(&uri).bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let missing = http.get(&uri).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let unknown = http
        .get(format!("{}/register/unknown", sim.issuer()))
        .bearer_auth(&rat)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let deleted = http.delete(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(
        probe(&http, &sim, s(&tokens["access_token"]))
            .await
            .is_err()
    );
    let r = refresh(&http, &sim, &client, s(&tokens["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(
        oauth_error(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let after = http.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let st = stats(&http, &sim).await;
    assert_eq!(st["clients"][0]["deleted"], true);
    assert_eq!(st["totals"]["live_access_tokens"], 0);
    assert_eq!(st["totals"]["revoked_tokens"], 2);
}

#[tokio::test]
async fn authorization_errors_redirect_only_to_a_trusted_redirect_uri() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    let (_, challenge) = pkce();
    let mcp = sim.mcp_url().to_string();
    let good = [
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st"),
        ("resource", mcp.as_str()),
    ];
    let with = |key: &str, value: Option<&str>| -> Vec<(String, String)> {
        let mut pairs: Vec<(String, String)> = good
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if let Some(v) = value {
            pairs.push((key.to_string(), v.to_string()));
        }
        pairs
    };
    let go = |pairs: Vec<(String, String)>| {
        let http = http.clone();
        let u = endpoint(&sim, "authorize");
        async move { http.get(u).query(&pairs).send().await.unwrap() }
    };

    // No redirect when the client or the redirect URI cannot be trusted.
    for pairs in [
        with("client_id", Some("unknown")),
        with("client_id", None),
        with("redirect_uri", Some("http://127.0.0.1:9/other")),
    ] {
        let resp = go(pairs).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get("location").is_none());
    }

    for (pairs, error) in [
        (with("code_challenge", None), "invalid_request"),
        (
            with("code_challenge_method", Some("plain")),
            "invalid_request",
        ),
        (with("code_challenge_method", None), "invalid_request"),
        (with("scope", Some("mcp:read repo")), "invalid_scope"),
        (
            with("resource", Some("http://127.0.0.1:1/mcp")),
            "invalid_target",
        ),
        (
            with("response_type", Some("token")),
            "unsupported_response_type",
        ),
    ] {
        let resp = go(pairs).await;
        assert_eq!(resp.status(), StatusCode::FOUND);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(REDIRECT), "{location}");
        let q = query(&location);
        assert_eq!(q["error"], error, "{location}");
        assert_eq!(q["state"], "st");
        assert_eq!(q["iss"], sim.issuer().as_str());
        assert!(q.get("code").is_none());
    }
}

#[tokio::test]
async fn token_endpoint_answers_bad_requests_with_rfc6749_errors() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    let other = register(&http, &sim, "none").await;
    let mcp = sim.mcp_url().to_string();
    let code_req = |code: &str, verifier: Option<&str>, redirect: &str, resource: &str| {
        let mut p = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.to_string()),
            ("redirect_uri".to_string(), redirect.to_string()),
            ("resource".to_string(), resource.to_string()),
        ];
        if let Some(v) = verifier {
            p.push(("code_verifier".to_string(), v.to_string()));
        }
        p
    };
    let call = |c: &TestClient, p: Vec<(String, String)>| {
        let (http, sim, c) = (http.clone(), &sim, c.clone());
        async move {
            let pairs: Vec<(&str, &str)> =
                p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            oauth_error(token_call(&http, sim, &c, &pairs).await.unwrap()).await
        }
    };
    let fresh = || async {
        let (verifier, challenge) = pkce();
        (
            authorize(&http, &sim, &client, &challenge, None).await,
            verifier,
        )
    };
    let bad = (StatusCode::BAD_REQUEST, "invalid_grant".to_string());

    let (code, _) = fresh().await;
    assert_eq!(
        call(&client, code_req(&code, None, REDIRECT, &mcp)).await.1,
        "invalid_request"
    );
    let (code, _) = fresh().await;
    let (wrong_verifier, _) = pkce();
    assert_eq!(
        call(
            &client,
            code_req(&code, Some(&wrong_verifier), REDIRECT, &mcp)
        )
        .await,
        bad
    );
    let (code, v) = fresh().await;
    assert_eq!(
        call(
            &client,
            code_req(&code, Some(&v), "http://127.0.0.1:53682/x", &mcp)
        )
        .await,
        bad
    );
    let (code, v) = fresh().await;
    assert_eq!(
        call(&other, code_req(&code, Some(&v), REDIRECT, &mcp)).await,
        bad,
        "another client's code"
    );
    let (code, v) = fresh().await;
    assert_eq!(
        call(
            &client,
            code_req(&code, Some(&v), REDIRECT, "http://127.0.0.1:1/mcp")
        )
        .await
        .1,
        "invalid_target"
    );
    let ghost = TestClient {
        id: "ghost".into(),
        ..client.clone()
    };
    let (code, v) = fresh().await;
    assert_eq!(
        call(&ghost, code_req(&code, Some(&v), REDIRECT, &mcp)).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".to_string())
    );
    assert_eq!(
        call(&client, vec![("grant_type".into(), "password".into())])
            .await
            .1,
        "unsupported_grant_type"
    );

    // A replayed code fails and takes the tokens it produced with it.
    let (code, v) = fresh().await;
    let first = exchange(&http, &sim, &client, &code, &v).await;
    assert_eq!(first.status(), StatusCode::OK);
    let tokens: Value = first.json().await.unwrap();
    let replay = exchange(&http, &sim, &client, &code, &v).await;
    assert_eq!(oauth_error(replay).await, bad);
    assert!(
        probe(&http, &sim, s(&tokens["access_token"]))
            .await
            .is_err()
    );

    // Refresh: bound to its client, scope may only narrow.
    let t = login_as(&http, &sim, &client, Some("mcp:read")).await;
    let rt = s(&t["refresh_token"]).to_string();
    let wider = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        ("refresh_token".to_string(), rt.clone()),
        ("scope".to_string(), "mcp:read mcp:admin".to_string()),
    ];
    assert_eq!(call(&client, wider).await.1, "invalid_scope");
    let stolen = refresh(&http, &sim, &other, &rt).await.unwrap();
    assert_eq!(oauth_error(stolen).await, bad);

    // Not a form body.
    let json_body = http
        .post(endpoint(&sim, "token"))
        .json(&json!({"grant_type": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth_error(json_body).await.1, "invalid_request");
    assert!(
        stats(&http, &sim).await["totals"]["invalid_grant_responses"]
            .as_u64()
            .unwrap()
            >= 5
    );
}

#[tokio::test]
async fn confidential_clients_authenticate_by_post_and_basic() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    for method in ["client_secret_post", "client_secret_basic"] {
        let client = register(&http, &sim, method).await;
        let tokens = login_as(&http, &sim, &client, None).await;
        let r = refresh(&http, &sim, &client, s(&tokens["refresh_token"]))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{method}");
    }
    // A wrong secret over Basic: 401 invalid_client with a Basic challenge.
    let mut client = register(&http, &sim, "client_secret_basic").await;
    client.secret = Some("wrong".into());
    let resp = token_call(
        &http,
        &sim,
        &client,
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await
    .unwrap();
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        oauth_error(resp).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // The secret sent the wrong way is refused too.
    let mut post_instead = register(&http, &sim, "client_secret_basic").await;
    post_instead.method = "client_secret_post".into();
    let resp = token_call(
        &http,
        &sim,
        &post_instead,
        &[("grant_type", "authorization_code"), ("code", "x")],
    )
    .await
    .unwrap();
    assert_eq!(oauth_error(resp).await.1, "invalid_client");
}

#[tokio::test]
async fn bad_options_are_refused_with_the_value_and_the_fix() {
    let err = tether_sim::start(SimOptions {
        time_scale: 0.5,
        ..SimOptions::default()
    })
    .await
    .expect_err("a time scale below 1 is refused");
    assert!(err.to_string().contains("'0.5'"), "{err}");
    let err = tether_sim::start(SimOptions {
        issuer_path: Some("oauth/".into()),
        ..SimOptions::default()
    })
    .await
    .expect_err("a bad issuer path is refused");
    assert!(err.to_string().contains("'oauth/'"), "{err}");
    let err = "nope".parse::<Profile>().expect_err("unknown profile");
    assert!(err.to_string().contains("'nope'") && err.to_string().contains("linear"));
    for p in Profile::ALL {
        assert_eq!(p.to_string().parse::<Profile>().unwrap(), p);
        assert!(!p.description().is_empty());
    }
}

#[tokio::test]
async fn the_device_grant_is_offered_only_where_configured_and_polls_follow_rfc8628() {
    let http = http();
    let plain = sim(Profile::Generic).await;
    let (_, meta) = get_json(
        &http,
        &url(&plain, "/.well-known/oauth-authorization-server"),
    )
    .await;
    assert!(meta.get("device_authorization_endpoint").is_none());
    let resp = http
        .post(endpoint(&plain, "device_authorization"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // GitHub offers it; a 5-second interval lasts one.
    let sim = sim_with(SimOptions {
        time_scale: 5.0,
        ..SimOptions::new(Profile::Github)
    })
    .await;
    let (_, meta) = get_json(&http, &url(&sim, "/.well-known/oauth-authorization-server")).await;
    assert_eq!(
        meta["device_authorization_endpoint"],
        endpoint(&sim, "device_authorization").as_str()
    );
    let device_grant = "urn:ietf:params:oauth:grant-type:device_code";
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(device_grant))
    );
    let start = |client_id: String, resource: String| {
        http.post(endpoint(&sim, "device_authorization"))
            .form(&[("client_id", client_id), ("resource", resource)])
            .send()
    };
    let without = register(&http, &sim, "none").await;
    let resp = start(without.id.clone(), sim.mcp_url().to_string())
        .await
        .unwrap();
    assert_eq!(oauth_error(resp).await.1, "unauthorized_client");

    let grants = ["authorization_code", "refresh_token", device_grant];
    let client_id = register_for(&http, &sim, "none", &grants).await.id;
    let resp = start(client_id.clone(), "https://elsewhere/mcp".into())
        .await
        .unwrap();
    assert_eq!(oauth_error(resp).await.1, "invalid_target");
    let begin = || async {
        let resp = start(client_id.clone(), sim.mcp_url().to_string()).await;
        resp.unwrap().json::<Value>().await.unwrap()
    };
    let poll = |started: &Value| {
        let form = [
            ("grant_type", device_grant.to_string()),
            ("device_code", s(&started["device_code"]).to_string()),
            ("client_id", client_id.clone()),
        ];
        http.post(endpoint(&sim, "token")).form(&form).send()
    };
    let hasty = begin().await;
    let (_, error) = oauth_error(poll(&hasty).await.unwrap()).await;
    assert_eq!(
        error, "slow_down",
        "polled before the first interval passed"
    );

    let started = begin().await;
    assert_eq!(started["interval"], 1);
    assert_eq!(started["expires_in"], 180);
    let unknown = http.get(format!("{}?user_code=BBBB-BBBB", endpoint(&sim, "device")));
    assert_eq!(
        unknown.send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let second = std::time::Duration::from_millis(1100);
    tokio::time::sleep(second).await;
    let (_, error) = oauth_error(poll(&started).await.unwrap()).await;
    assert_eq!(error, "authorization_pending");
    let typed = s(&started["user_code"]).to_lowercase().replace('-', "");
    let page = http.get(format!("{}?user_code={typed}", endpoint(&sim, "device")));
    assert_eq!(page.send().await.unwrap().status(), StatusCode::OK);
    tokio::time::sleep(second).await;
    let tokens: Value = poll(&started).await.unwrap().json().await.unwrap();
    probe(&http, &sim, s(&tokens["access_token"]))
        .await
        .unwrap();
    tokio::time::sleep(second).await;
    let (_, error) = oauth_error(poll(&started).await.unwrap()).await;
    assert_eq!(error, "invalid_grant", "a device code is spent once used");
    let totals = &stats(&http, &sim).await["totals"];
    assert_eq!(totals["device_authorizations"], 2);
    assert_eq!(totals["device_approvals"], 1);
    assert_eq!(totals["device_polls"], 4);
    assert_eq!(totals["device_polls_too_fast"], 1);
    assert_eq!(totals["device_code_grants"], 1);
}
