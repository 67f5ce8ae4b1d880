//! Each provider profile's token policy, checked over loopback HTTP against the
//! simulator's own counters, plus the time scale and the lost refresh response.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_sim::{FaultPlan, Profile, SimOptions};

use crate::support::http;
use crate::support::oauth_client::*;

#[tokio::test]
async fn linear_reuse_of_a_rotated_refresh_token_revokes_the_whole_grant() {
    let sim = sim(Profile::Linear).await;
    let http = http();
    let (client, t1) = login(&http, &sim).await;
    let at1 = s(&t1["access_token"]).to_string();
    let rt1 = s(&t1["refresh_token"]).to_string();
    assert!(at1.starts_with("lin_at_") && rt1.starts_with("lin_rt_"));
    assert_eq!(t1["expires_in"], 3600);

    let t2: Value = refresh(&http, &sim, &client, &rt1)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at2 = s(&t2["access_token"]).to_string();
    let rt2 = s(&t2["refresh_token"]).to_string();
    assert_ne!(rt1, rt2, "linear rotates refresh tokens");
    probe(&http, &sim, &at2)
        .await
        .expect("newest access token works");

    // Someone presents the already-rotated token again.
    let reused = refresh(&http, &sim, &client, &rt1).await.unwrap();
    assert_eq!(
        oauth_error(reused).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );

    // The newest tokens die with the family.
    let challenge = probe(&http, &sim, &at2)
        .await
        .expect_err("newest access token is revoked");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(probe(&http, &sim, &at1).await.is_err());
    let newest = refresh(&http, &sim, &client, &rt2).await.unwrap();
    assert_eq!(oauth_error(newest).await.1, "invalid_grant");

    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["family_revocations"], 1);
    assert_eq!(st["totals"]["invalid_grant_responses"], 2);
    assert_eq!(st["totals"]["live_access_tokens"], 0);
    assert_eq!(st["totals"]["live_refresh_tokens"], 0);
    assert_eq!(st["totals"]["refresh_calls"], 3);
    assert_eq!(st["clients"][0]["refresh_calls"], 3);
}

#[tokio::test]
async fn generic_rejects_a_reused_refresh_token_without_revoking_the_grant() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t1) = login(&http, &sim).await;
    let rt1 = s(&t1["refresh_token"]).to_string();
    let t2: Value = refresh(&http, &sim, &client, &rt1)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reused = refresh(&http, &sim, &client, &rt1).await.unwrap();
    assert_eq!(oauth_error(reused).await.1, "invalid_grant");
    probe(&http, &sim, s(&t2["access_token"]))
        .await
        .expect("grant survives");
    let t3 = refresh(&http, &sim, &client, s(&t2["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(t3.status(), StatusCode::OK);
    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["family_revocations"], 0);
    assert_eq!(st["totals"]["invalid_grant_responses"], 1);
}

#[tokio::test]
async fn github_eleventh_token_evicts_the_oldest_before_it_expires() {
    let sim = sim(Profile::Github).await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    let mut tokens = Vec::new();
    for _ in 0..10 {
        let t = login_as(&http, &sim, &client, None).await;
        assert_eq!(t["expires_in"], 8 * 3600);
        tokens.push(s(&t["access_token"]).to_string());
    }
    for t in &tokens {
        probe(&http, &sim, t)
            .await
            .expect("ten live tokens are allowed");
    }
    assert_eq!(stats(&http, &sim).await["totals"]["evictions"], 0);

    let eleventh = login_as(&http, &sim, &client, None).await;
    let challenge = probe(&http, &sim, &tokens[0])
        .await
        .expect_err("oldest is evicted");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    probe(&http, &sim, &tokens[1])
        .await
        .expect("second oldest lives");
    probe(&http, &sim, s(&eleventh["access_token"]))
        .await
        .expect("newest lives");

    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["evictions"], 1);
    assert_eq!(st["totals"]["live_access_tokens"], 10);
    assert_eq!(st["clients"][0]["live_access_tokens"], 10);
    assert_eq!(st["totals"]["authorization_code_grants"], 11);
}

#[tokio::test]
async fn notion_clients_expire_and_tokens_stay_bound_to_their_client() {
    // One day at 43200x is two seconds.
    let sim = sim_with(SimOptions {
        time_scale: 43200.0,
        ..SimOptions::new(Profile::Notion)
    })
    .await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    // Notion hands out a secret so the expiry field means something; the client must
    // follow the returned metadata.
    assert_eq!(client.method, "client_secret_post");
    assert!(client.secret.is_some());
    let expires_at = client.registration["client_secret_expires_at"]
        .as_u64()
        .unwrap();
    let now = chrono::Utc::now().timestamp() as u64;
    assert!(
        expires_at >= now && expires_at <= now + 3,
        "{expires_at} vs {now}"
    );

    let tokens = login_as(&http, &sim, &client, None).await;
    let rt = s(&tokens["refresh_token"]).to_string();
    let other = register(&http, &sim, "client_secret_post").await;
    let stolen = refresh(&http, &sim, &other, &rt).await.unwrap();
    assert_eq!(
        oauth_error(stolen).await.1,
        "invalid_grant",
        "bound to its client"
    );

    tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
    let late = refresh(&http, &sim, &client, &rt).await.unwrap();
    assert_eq!(
        oauth_error(late).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    // An expired client cannot start a new authorization either: a page, no redirect.
    let (_, challenge) = pkce();
    let page = authorize_raw(
        &http,
        &sim,
        &[
            ("response_type", "code"),
            ("client_id", client.id.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.headers().get("location").is_none());
    let st = stats(&http, &sim).await;
    assert_eq!(st["clients"][0]["expired"], true);
    assert!(st["clients"][0]["expires_at"].is_string());
    assert_eq!(st["totals"]["invalid_client_responses"], 1);
    assert_eq!(st["registrations"], 2);
}

#[tokio::test]
async fn todoist_issues_a_ten_year_token_and_no_refresh_token() {
    let sim = sim(Profile::Todoist).await;
    let http = http();
    let (client, tokens) = login(&http, &sim).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["expires_in"], 3650 * 24 * 3600);
    assert!(s(&tokens["access_token"]).starts_with("td_at_"));
    assert_eq!(
        client.registration["grant_types"],
        json!(["authorization_code"])
    );
    let meta: Value = http
        .get(url(&sim, "/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["grant_types_supported"], json!(["authorization_code"]));
    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["live_refresh_tokens"], 0);
    assert_eq!(st["totals"]["live_access_tokens"], 1);
}

#[tokio::test]
async fn atlassian_access_tokens_live_30_to_55_scaled_minutes() {
    // At 60x a minute is a second.
    let sim = sim_with(SimOptions {
        time_scale: 60.0,
        ..SimOptions::new(Profile::Atlassian)
    })
    .await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        let t = login_as(&http, &sim, &client, None).await;
        let life = t["expires_in"].as_u64().unwrap();
        assert!((30..=55).contains(&life), "lifetime {life}s");
        assert!(
            t["refresh_token"].is_string(),
            "offline_access is in the default scope"
        );
        seen.push(life);
    }
    // Random, not one fixed lifetime (six equal draws of 26 values: odds of 1 in 11 million).
    seen.sort_unstable();
    seen.dedup();
    assert!(seen.len() > 1, "every token lived {seen:?}");
    // Refresh rotates and stays within the range.
    let t = login_as(&http, &sim, &client, Some("mcp:read offline_access")).await;
    let r: Value = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!((30..=55).contains(&r["expires_in"].as_u64().unwrap()));
    assert_ne!(r["refresh_token"], t["refresh_token"]);
    let totals = sim.stats().totals;
    assert_eq!(totals.refresh_grants, 1);
    assert_eq!(totals.authorization_code_grants, 7);
    // Without offline_access Atlassian gives no refresh token.
    let short = login_as(&http, &sim, &client, Some("mcp:read")).await;
    assert!(short.get("refresh_token").is_none());
}

#[tokio::test]
async fn time_scale_shortens_lifetimes_and_tokens_really_expire() {
    let sim = sim_with(SimOptions {
        time_scale: 3600.0,
        ..SimOptions::new(Profile::Generic)
    })
    .await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    assert_eq!(t["expires_in"], 1, "one hour at 3600x");
    probe(&http, &sim, s(&t["access_token"]))
        .await
        .expect("fresh token works");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let challenge = probe(&http, &sim, s(&t["access_token"]))
        .await
        .expect_err("expired");
    assert!(
        challenge.contains("invalid_token") && challenge.contains("expired"),
        "{challenge}"
    );
    let r = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stats(&http, &sim).await["totals"]["live_access_tokens"], 1);
}

#[tokio::test]
async fn a_dropped_refresh_response_is_a_transport_error_after_the_server_rotated() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    let rt = s(&t["refresh_token"]).to_string();
    let set = http
        .post(url(&sim, "/__sim/faults"))
        .json(&json!({ "drop_next_refresh": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);

    // Not even a status line arrives: the connection closes under the request.
    let err = refresh(&http, &sim, &client, &rt)
        .await
        .expect_err("the client must see a transport error, not an HTTP answer");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");

    // The server did rotate: the old token is spent, a new one (never delivered) lives.
    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["refresh_grants"], 1);
    assert_eq!(st["totals"]["dropped_responses"], 1);
    assert_eq!(st["totals"]["live_refresh_tokens"], 1);
    assert_eq!(st["faults"]["drop_next_refresh"], false);
    let again = refresh(&http, &sim, &client, &rt).await.unwrap();
    assert_eq!(oauth_error(again).await.1, "invalid_grant");
}

#[tokio::test]
async fn dropped_refresh_armed_at_start_only_affects_refreshes() {
    let sim = sim_with(SimOptions {
        faults: FaultPlan {
            drop_next_refresh: true,
            ..FaultPlan::default()
        },
        ..SimOptions::new(Profile::Linear)
    })
    .await;
    let http = http();
    // The code exchange is not a refresh: it answers normally.
    let (client, t) = login(&http, &sim).await;
    let first = refresh(&http, &sim, &client, s(&t["refresh_token"])).await;
    assert!(first.is_err(), "refresh response dropped: {first:?}");
    assert_eq!(sim.stats().totals.dropped_responses, 1);
}
