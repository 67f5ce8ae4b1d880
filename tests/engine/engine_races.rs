//! The refresh engine under pressure, as users run it: three `tether serve` processes
//! sharing one vault and one rotating grant, fifty clients calling each one's local
//! endpoint while the token expires every two seconds; and one `tether serve` keeping
//! 30–55-minute tokens (scaled) fresh so that a busy client never meets an expired one.

use crate::support;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tether_sim::{FaultPlan, Profile, SimHandle};

use crate::support::{Home, Serve, secret_for};

fn generation(home: &Home, name: &str) -> u64 {
    home.status(name)["token"]["generation"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_rotating_grant() {
    const SECONDS: u64 = 120;
    // Linear's one-hour tokens live two seconds; a spent refresh token kills the grant.
    let (sim, home) = support::signed_in_here(Profile::Linear, 1800.0).await;
    let secret = secret_for(&home, "linear", "hammer");
    let probes = sim.stats().totals.mcp_401s;
    let serves: Vec<Serve> = (0..3).map(|_| Serve::start(&home)).collect();
    let endpoints: Vec<String> = serves
        .iter()
        .map(|serve| format!("{}/s/{secret}/mcp", serve.base))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let (calls, refused) = support::Hammer::start(&endpoints, 50, deadline)
        .finish()
        .await;
    for serve in serves {
        support::assert_no_tokens(&serve.stop());
    }
    assert_eq!(refused, 0, "{refused} of {calls} calls failed");
    assert!(calls > 1_000, "only {calls} calls");
    let totals = sim.stats().totals;
    assert_eq!(totals.invalid_grant_responses, 0);
    // No call reached the upstream with an expired token.
    assert_eq!(totals.mcp_401s, probes);
    // Every refresh produced the next generation: no process refreshed a token another
    // had already replaced.
    assert_eq!(totals.refresh_calls, generation(&home, "linear") - 1);
    // About one refresh per lifetime (at 50–75% of two seconds), never a storm.
    assert!(
        totals.refresh_calls >= SECONDS / 2 && totals.refresh_calls <= SECONDS + 5,
        "{} refreshes in {SECONDS}s",
        totals.refresh_calls
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atlassian_tokens_never_expire_under_a_busy_client() {
    // Atlassian's 30–55-minute tokens live 1–2 seconds; 50 lifetimes.
    let (sim, home) = support::signed_in_here(Profile::Atlassian, 1800.0).await;
    let secret = secret_for(&home, "atlassian", "busy");
    // The login's unauthenticated discovery probe is the only 401 allowed.
    let probes = sim.stats().totals.mcp_401s;
    let serve = Serve::start(&home);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    let http = reqwest::Client::new();
    let mut refused = 0;
    let mut calls = 0;
    let start = Instant::now();
    while sim.stats().totals.refresh_grants < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "only {} refreshes",
            sim.stats().totals.refresh_grants
        );
        if !support::tools_listed(&http, &endpoint).await {
            refused += 1;
        }
        calls += 1;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    support::assert_no_tokens(&serve.stop());
    assert_eq!(
        refused, 0,
        "{refused} of {calls} calls met an expired token"
    );
    let totals = sim.stats().totals;
    assert_eq!(totals.mcp_401s, probes);
    assert_eq!(totals.invalid_grant_responses, 0);
    sim.shutdown().await;
}

/// The token's `(obtained_at, expires_at)` as `tether status --json` shows them.
fn token_times(home: &Home, name: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let status = home.status(name);
    let at = |key: &str| {
        status["token"][key]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    };
    (at("obtained_at"), at("expires_at"))
}

/// A signed-in generic connection (lifetimes divided by `scale`) served by `tether serve`,
/// whose authorization server has just frozen its token endpoint.
struct Frozen {
    sim: SimHandle,
    home: Home,
    serve: Serve,
    endpoint: String,
    secret: String,
}

async fn frozen(scale: f64, client: &str) -> Frozen {
    let (sim, home) = support::signed_in_here(Profile::Generic, scale).await;
    let secret = secret_for(&home, "generic", client);
    // The hung refresh must outlast the token, not end in tether's own timeout.
    let serve = Serve::start_env(&home, &[("TETHER_HTTP_TIMEOUT_SECS", "300")]);
    let endpoint = format!("{}/s/{secret}/mcp", serve.base);
    sim.set_faults(FaultPlan {
        freeze_token_calls: true,
        ..FaultPlan::default()
    });
    Frozen {
        sim,
        home,
        serve,
        endpoint,
        secret,
    }
}

/// Sleeps until `at` (at once if it has passed).
async fn sleep_until(at: DateTime<Utc>) {
    if let Ok(wait) = (at - Utc::now()).to_std() {
        tokio::time::sleep(wait).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_with_a_valid_token_while_its_refresh_hangs() {
    // One-hour tokens live 40 s: the last tenth of their life, when a call asks for a
    // refresh, is 4 s long.
    let Frozen {
        sim,
        home,
        serve,
        endpoint,
        ..
    } = frozen(90.0, "patient").await;
    let http = reqwest::Client::new();
    // The scheduler's refresh (at half the lifetime) reaches the frozen server and hangs.
    let (obtained, expires) = token_times(&home, "generic");
    let safety = Instant::now() + Duration::from_secs(120);
    while sim.stats().totals.faults_injected == 0 {
        assert!(Instant::now() < safety, "no refresh reached the server");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Into the last tenth of the token's life, where every call wants a refresh.
    let tenth = (expires - obtained) / 10;
    sleep_until(expires - tenth + chrono::Duration::milliseconds(300)).await;
    let mut calls = 0;
    while Utc::now() < expires - chrono::Duration::milliseconds(1500) || calls == 0 {
        let answered = tokio::time::timeout(
            Duration::from_secs(30),
            support::tools_listed(&http, &endpoint),
        )
        .await
        .expect("a call waited on the hung refresh");
        assert!(answered, "a call failed while the token was valid");
        calls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        sim.stats().totals.refresh_grants,
        0,
        "the refresh still hangs"
    );
    // Released, the refresh completes: the next generation is stored.
    sim.set_faults(FaultPlan::default());
    while generation(&home, "generic") < 2 {
        assert!(Instant::now() < safety, "the refresh never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(support::tools_listed(&http, &endpoint).await);
    support::assert_no_tokens(&serve.stop());
    sim.shutdown().await;
}

/// `tether list --json`'s row for `name`.
fn listed(home: &Home, name: &str) -> Value {
    let list: Value = serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == name)
        .cloned()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_hung_past_expiry_shows_as_such_everywhere() {
    // One-hour tokens live 4 s.
    let Frozen {
        sim,
        home,
        serve,
        endpoint,
        secret,
    } = frozen(900.0, "waiting").await;
    let http = reqwest::Client::new();
    // `tether list`, another process, sees the refresh running past the token's expiry.
    let safety = Instant::now() + Duration::from_secs(120);
    let row = loop {
        let row = listed(&home, "generic");
        if row["refreshing_seconds"].is_i64() {
            break row;
        }
        assert_eq!(row["state"], "healthy", "{row}");
        assert!(Instant::now() < safety, "never shown as refreshing: {row}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(row["state"], "degraded", "{row}");
    assert!(row["expires_in_seconds"].as_i64().unwrap() <= 0, "{row}");
    let status = home.run(&["status", "generic"]).ok().stdout;
    assert!(status.contains("degraded"), "{status}");
    assert!(status.contains("refreshing for"), "{status}");
    let detail: Value = home.status("generic");
    assert!(
        detail["state_detail"]
            .as_str()
            .is_some_and(|d| d.starts_with("refreshing for")),
        "{detail}"
    );
    // The proxy's metrics say so too: by name to a holder of the connection's secret, as
    // the longest overdue refresh to anyone else.
    let metrics = http
        .get(format!("{}/metrics", serve.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\ntether_refresh_in_flight_seconds ") && !metrics.contains("generic"),
        "{metrics}"
    );
    let metrics = http
        .get(format!("{}/metrics", serve.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tether_refresh_in_flight_seconds{connection=\"generic\"}"),
        "{metrics}"
    );
    // A call with the expired token waits a bounded time, then hears why.
    let res = tokio::time::timeout(
        Duration::from_secs(60),
        http.post(&endpoint)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/list")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"}))
            .send(),
    )
    .await
    .expect("the call hung")
    .unwrap();
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("still running"), "{body}");
    // Released, the refresh completes and the connection is healthy again.
    sim.set_faults(FaultPlan::default());
    loop {
        let row = listed(&home, "generic");
        if row["state"] == "healthy" && row["refreshing_seconds"].is_null() {
            break;
        }
        assert!(Instant::now() < safety, "never healthy again: {row}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(support::tools_listed(&http, &endpoint).await);
    support::assert_no_tokens(&serve.stop());
    sim.shutdown().await;
}

/// Two processes share a grant; the first to refresh is told 429 (come back in 5 s), the
/// other refreshes a moment later and succeeds. When the first one's retry comes, it
/// adopts that token: its failure was about a token no longer in use, so it must not
/// refresh the new one at once — the soak saw one grant wasted per such failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_whose_refresh_failed_adopts_the_token_another_one_got() {
    // One-hour tokens live 30 s; the scheduler refreshes at half of that.
    let (sim, home) = support::signed_in_here(Profile::Generic, 120.0).await;
    let serves: Vec<Serve> = (0..2).map(|_| Serve::start(&home)).collect();
    sim.set_faults(FaultPlan {
        fail_token_calls: 1,
        fail_kind: tether_sim::FailKind::TooManyRequests,
        retry_after_secs: 5,
        ..FaultPlan::default()
    });
    let safety = Instant::now() + Duration::from_secs(60);
    while sim.stats().totals.refresh_grants == 0 {
        assert!(Instant::now() < safety, "no refresh in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let totals = sim.stats().totals;
    assert_eq!(totals.faults_injected, 1, "the 429 came first");
    // Past the failed process's retry (5 s), well before the next scheduled refresh (15 s).
    tokio::time::sleep(Duration::from_secs(9)).await;
    let totals = sim.stats().totals;
    assert_eq!(
        totals.refresh_grants, 1,
        "one token lifetime, one grant ({} refresh calls)",
        totals.refresh_calls
    );
    assert_eq!(generation(&home, "generic"), 2);
    for serve in serves {
        support::assert_no_tokens(&serve.stop());
    }
    sim.shutdown().await;
}
