//! Fault knobs and revocation on the simulated OAuth server: failing token calls (500,
//! 429, timeout), missing metadata documents, RFC 7009 and "the user revoked the app".

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tether_sim::{FailKind, FaultPlan, Profile, SimOptions};

use crate::support::http;
use crate::support::oauth_client::*;

async fn status_of(http: &reqwest::Client, u: &str) -> StatusCode {
    http.get(u).send().await.unwrap().status()
}

#[tokio::test]
async fn revocation_answers_200_and_kills_the_token() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    let revoke = |token: String| {
        let (http, u, id) = (http.clone(), endpoint(&sim, "revoke"), client.id.clone());
        async move {
            http.post(u)
                .form(&[("token", token.as_str()), ("client_id", id.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke(s(&t["access_token"]).to_string()).await,
        StatusCode::OK
    );
    assert!(probe(&http, &sim, s(&t["access_token"])).await.is_err());
    assert_eq!(revoke("never-issued".into()).await, StatusCode::OK);
    // Revoking a refresh token ends its grant.
    let t2 = login_as(&http, &sim, &client, None).await;
    assert_eq!(
        revoke(s(&t2["refresh_token"]).to_string()).await,
        StatusCode::OK
    );
    assert!(probe(&http, &sim, s(&t2["access_token"])).await.is_err());
    let r = refresh(&http, &sim, &client, s(&t2["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(oauth_error(r).await.1, "invalid_grant");
    assert_eq!(stats(&http, &sim).await["totals"]["revoked_tokens"], 3);

    // The user revokes the app at the provider.
    let t3 = login_as(&http, &sim, &client, None).await;
    let all = http
        .post(url(&sim, "/__sim/revoke-all"))
        .send()
        .await
        .unwrap();
    assert!(all.status().is_success());
    assert!(probe(&http, &sim, s(&t3["access_token"])).await.is_err());
}

#[tokio::test]
async fn token_calls_fail_with_500_then_429_then_recover() {
    let sim = sim_with(SimOptions {
        faults: FaultPlan {
            fail_token_calls: 2,
            fail_kind: FailKind::ServerError,
            ..FaultPlan::default()
        },
        ..SimOptions::new(Profile::Generic)
    })
    .await;
    let http = http();
    let client = register(&http, &sim, "none").await;
    let (verifier, challenge) = pkce();
    let code = authorize(&http, &sim, &client, &challenge, None).await;
    for _ in 0..2 {
        let resp = exchange(&http, &sim, &client, &code, &verifier).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    // The code was never seen by the grant logic, so it still works.
    let ok = exchange(&http, &sim, &client, &code, &verifier).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let t: Value = ok.json().await.unwrap();

    let plan = json!({"fail_token_calls": 1, "fail_kind": "429", "retry_after_secs": 7});
    let set = http
        .post(url(&sim, "/__sim/faults"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let limited = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "7");
    let again = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the refresh token survived the 429"
    );

    let st = stats(&http, &sim).await;
    assert_eq!(st["totals"]["faults_injected"], 3);
    assert_eq!(st["totals"]["token_calls"], 5);
    assert_eq!(st["clients"][0]["token_calls"], 5);
    assert_eq!(st["faults"]["fail_token_calls"], 0);
}

#[tokio::test]
async fn a_timeout_fault_hangs_longer_than_the_client_waits() {
    let sim = sim(Profile::Generic).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    sim.set_faults(FaultPlan {
        fail_token_calls: 1,
        fail_kind: FailKind::Timeout,
        timeout_secs: 5,
        ..FaultPlan::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = refresh(&impatient, &sim, &client, s(&t["refresh_token"]))
        .await
        .expect_err("the client's timeout fires first");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.stats().totals.faults_injected, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_metadata_paths_answer_404_and_the_rest_still_works() {
    let sim = sim_with(SimOptions {
        faults: FaultPlan {
            missing_metadata: vec!["/.well-known/oauth-protected-resource/mcp".into()],
            ..FaultPlan::default()
        },
        ..SimOptions::new(Profile::Generic)
    })
    .await;
    let http = http();
    let status = status_of(
        &http,
        &url(&sim, "/.well-known/oauth-protected-resource/mcp"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = status_of(&http, &url(&sim, "/.well-known/oauth-protected-resource")).await;
    assert_eq!(status, StatusCode::OK);

    let plan = json!({"missing_metadata": ["/.well-known/oauth-authorization-server"]});
    http.post(url(&sim, "/__sim/faults"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    let status = status_of(&http, &url(&sim, "/.well-known/oauth-authorization-server")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let status = status_of(
        &http,
        &url(&sim, "/.well-known/oauth-protected-resource/mcp"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the plan is replaced as a whole");
    let status = status_of(&http, &url(&sim, "/.well-known/openid-configuration")).await;
    assert_eq!(status, StatusCode::OK);

    let bad = http
        .post(url(&sim, "/__sim/faults"))
        .json(&json!({"fail_kind": "teapot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_frozen_token_endpoint_holds_calls_unprocessed_until_released() {
    let sim = sim(Profile::Linear).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    sim.set_faults(FaultPlan {
        freeze_token_calls: true,
        ..FaultPlan::default()
    });
    let call = Box::pin(refresh(&http, &sim, &client, s(&t["refresh_token"])));
    let mut call = call;
    // Held: the call is counted, the freeze fires, and no answer comes.
    loop {
        tokio::select! {
            answer = &mut call => panic!("answered while frozen: {answer:?}"),
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        if sim.stats().totals.faults_injected == 1 {
            break;
        }
    }
    assert_eq!(
        sim.stats().totals.refresh_grants,
        0,
        "nothing processed yet"
    );
    sim.set_faults(FaultPlan::default());
    let answer = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("released")
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(sim.stats().totals.refresh_grants, 1);
}

#[tokio::test]
async fn a_reset_token_call_gets_no_answer_and_changes_nothing() {
    let sim = sim(Profile::Linear).await;
    let http = http();
    let (client, t) = login(&http, &sim).await;
    let plan = json!({"reset_token_calls": 1});
    let set = http
        .post(url(&sim, "/__sim/faults"))
        .json(&plan)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), StatusCode::OK);
    let err = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .expect_err("the connection is reset, not answered");
    assert!(!err.is_timeout(), "{err:?}");
    let chain = format!("{err:?}");
    assert!(
        chain.contains("ConnectionReset") || chain.contains("IncompleteMessage"),
        "{chain}"
    );
    let st = sim.stats().totals;
    assert_eq!((st.faults_injected, st.refresh_grants), (1, 0));
    // The refresh token was never seen by the grant logic: it still works, once.
    let again = refresh(&http, &sim, &client, s(&t["refresh_token"]))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    sim.shutdown().await;
}
