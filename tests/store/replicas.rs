//! Several `tether serve` replicas on one PostgreSQL store, each with a home of its own
//! (so nothing on disk is shared: only the database keeps them from refreshing at once),
//! on one rotating grant: Linear's, where a refresh token spent twice kills the grant.

use std::time::{Duration, Instant};

use tether_sim::{FaultPlan, Profile, SimHandle};

use crate::support::postgres::Postgres;
use crate::support::{self, Hammer, Serve};
use crate::{Replica, database};

/// A simulator of `profile` (lifetimes divided by `scale`) and a first replica signed in
/// to it on a fresh store.
async fn signed_in(profile: Profile, scale: f64) -> Option<(Postgres, SimHandle, Replica)> {
    let (pg, url) = database("vault")?;
    let sim = tether_sim::start(tether_sim::SimOptions {
        time_scale: scale,
        ..tether_sim::SimOptions::new(profile)
    })
    .await
    .unwrap();
    let first = Replica::first(&url);
    first
        .run(&["add", profile.as_str(), sim.mcp_url().as_str()])
        .ok();
    first.login(profile.as_str()).ok();
    Some((pg, sim, first))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_rotating_grant_through_the_database() {
    const SECONDS: u64 = 120;
    // Linear's one-hour tokens live two seconds.
    let Some((pg, sim, first)) = signed_in(Profile::Linear, 1800.0).await else {
        return;
    };
    let secret = first.secret("linear", "hammer");
    let probes = sim.stats().totals.mcp_401s;
    let replicas = [Replica::beside(&first), Replica::beside(&first), first];
    let serves: Vec<Serve> = replicas.iter().map(Replica::serve).collect();
    let endpoints: Vec<String> = serves
        .iter()
        .map(|s| format!("{}/s/{secret}/mcp", s.base))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(SECONDS);
    let (calls, refused) = Hammer::start(&endpoints, 50, deadline).finish().await;
    for serve in serves {
        support::assert_no_tokens(&serve.stop());
    }
    assert_eq!(refused, 0, "{refused} of {calls} calls failed");
    assert!(calls > 1_000, "only {calls} calls");
    let totals = sim.stats().totals;
    assert_eq!(totals.invalid_grant_responses, 0);
    assert_eq!(
        totals.mcp_401s, probes,
        "a call reached the upstream with an expired token"
    );
    // Every refresh made the next generation: no replica spent a token another had
    // already replaced...
    let generation = replicas[0].status("linear")["token"]["generation"]
        .as_u64()
        .unwrap();
    assert_eq!(totals.refresh_calls, generation - 1);
    // ...and together they refreshed no more than one process would alone (its schedule
    // refreshes a two-second token after one second, never before half its life).
    assert!(
        totals.refresh_calls >= SECONDS / 2 && totals.refresh_calls <= SECONDS + 5,
        "{} refreshes in {SECONDS}s",
        totals.refresh_calls
    );
    // The rows and the history name the replica that wrote them: host and process id.
    let host = whoami_host();
    let by = pg.psql("vault", "SELECT updated_by FROM tether_connections");
    assert!(by.starts_with(&format!("{host}:")), "{by}");
    let history = replicas[0].status("linear")["history"].to_string();
    let pids: std::collections::BTreeSet<&str> = history
        .match_indices(&format!(" by {host}:"))
        .map(|(i, m)| {
            let rest = &history[i + m.len()..];
            &rest[..rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())]
        })
        .collect();
    assert!(!pids.is_empty(), "no refresh names its replica: {history}");
    eprintln!(
        "3 replicas × 50 clients, {SECONDS} s: {calls} calls, {} refreshes ({:.2} per two-second lifetime)",
        totals.refresh_calls,
        totals.refresh_calls as f64 / (SECONDS as f64 / 2.0)
    );
    sim.shutdown().await;
}

fn whoami_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// The process id of the replica holding a refresh lock, from the database's own view.
fn lock_holder(pg: &Postgres) -> Option<u32> {
    let name = pg.psql(
        "vault",
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted LIMIT 1",
    );
    name.trim().rsplit(':').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_mid_refresh_lose_only_grants_whose_answer_was_lost_and_name_them() {
    const ROUNDS: usize = 20;
    // Linear at 1/600: six-second tokens, refreshed every three.
    let Some((pg, sim, first)) = signed_in(Profile::Linear, 600.0).await else {
        return;
    };
    let replicas = [Replica::beside(&first), Replica::beside(&first), first];
    let mut serves: Vec<Option<Serve>> = replicas.iter().map(|r| Some(r.serve())).collect();
    let mut lost_named = 0;
    let mut generation = 1;
    for round in 0..ROUNDS {
        // Half the rounds hold a refresh's answer after the server rotated (the answer
        // is then lost with the replica); the others kill whoever is refreshing.
        let held = round % 2 == 0;
        let injected = sim.stats().totals.faults_injected;
        if held {
            sim.set_faults(FaultPlan {
                hold_next_refresh_secs: 3,
                ..FaultPlan::default()
            });
        }
        let started = Instant::now();
        let holder = loop {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no refresh in round {round}"
            );
            let in_hold = sim.stats().totals.faults_injected > injected;
            if (!held || in_hold)
                && let Some(pid) = lock_holder(&pg)
            {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let index = serves
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.pid() == holder))
            .unwrap_or_else(|| panic!("the lock holder {holder} is no replica of this test"));
        support::assert_no_tokens(&serves[index].take().unwrap().kill_hard());
        serves[index] = Some(replicas[index].serve());

        // The store is whole, and the connection goes on or names why it cannot.
        let settled = Instant::now();
        let state = loop {
            let status = replicas[(index + 1) % 3].status("linear");
            let g = status["token"]["generation"].as_u64().unwrap();
            assert!(
                g >= generation,
                "generation went back from {generation} to {g}"
            );
            generation = g;
            let state = status["state"].as_str().unwrap().to_string();
            if state == "needs-reauth"
                || (!held && settled.elapsed() > Duration::from_secs(4))
                || (held && settled.elapsed() > Duration::from_secs(15))
            {
                break (state, status);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let (state, status) = state;
        if state == "needs-reauth" {
            assert_eq!(
                status["diagnosis"], "invalid_grant.lost_response",
                "round {round}: {status}"
            );
            lost_named += 1;
            replicas[round % 3].login("linear").ok();
        } else {
            assert!(
                !held,
                "round {round}: the lost answer went unnoticed: {status}"
            );
        }
        sim.set_faults(FaultPlan::default());
    }
    let totals = sim.stats().totals;
    // Every grant the server ended was one whose answer died with a replica, and each
    // was named as such.
    assert_eq!(totals.family_revocations, lost_named, "{totals:?}");
    assert!(
        lost_named >= ROUNDS as u64 / 2,
        "{lost_named} lost answers named"
    );
    for serve in serves.into_iter().flatten() {
        support::assert_no_tokens(&serve.stop());
    }
    eprintln!("{ROUNDS} kills: {lost_named} lost answers, each named lost_response");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_on_while_the_database_restarts_and_refreshes_resume() {
    // Linear at 1/180: twenty-second tokens, refreshed after ten.
    let Some((pg, sim, first)) = signed_in(Profile::Linear, 180.0).await else {
        return;
    };
    let secret = first.secret("linear", "hammer");
    let replicas = [Replica::beside(&first), first];
    let serves: Vec<Serve> = replicas.iter().map(Replica::serve).collect();
    let endpoints: Vec<String> = serves
        .iter()
        .map(|s| format!("{}/s/{secret}/mcp", s.base))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(40);
    let hammer = Hammer::start(&endpoints, 5, deadline);
    // Down from just after a refresh until past the next one's time.
    let grants = sim.stats().totals.refresh_grants;
    while sim.stats().totals.refresh_grants == grants {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let down_at = sim.stats().totals.refresh_grants;
    pg.stop_server();
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert_eq!(
        sim.stats().totals.refresh_grants,
        down_at,
        "refreshed without the store"
    );
    pg.start_server();
    let (calls, refused) = hammer.finish().await;
    let totals = sim.stats().totals;
    assert!(
        totals.refresh_grants > down_at,
        "no refresh after the store came back"
    );
    assert_eq!(refused, 0, "{refused} of {calls} calls failed");
    assert_eq!(totals.invalid_grant_responses, 0);
    let status = replicas[0].status("linear");
    assert_eq!(status["state"], "healthy", "{status}");
    // Each serve says once that its refresh waits for the store, and once that the store
    // answers again, not once per retry (every second).
    let mut waited = 0;
    for serve in serves {
        let log = serve.stop();
        support::assert_no_tokens(&log);
        let waits = log.matches("the refresh waits for the store").count();
        let back = log.matches("the store answers again").count();
        assert!(
            waits <= 1 && back == waits,
            "{waits} waits, {back} back:\n{log}"
        );
        waited += waits;
    }
    assert!(
        waited >= 1,
        "no serve said its refresh waited for the store"
    );
    sim.shutdown().await;
}

/// The terminal UI serving the proxy on a PostgreSQL store: with the database away, a
/// refresh that falls due waits, and the connection shows as degraded with the reason;
/// when the database is back it refreshes and shows healthy again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_shows_a_refresh_waiting_for_the_database() {
    // Linear at 1/600: six-second tokens, refreshed after three.
    let Some((pg, sim, first)) = signed_in(Profile::Linear, 600.0).await else {
        return;
    };
    let mut cmd = first.cmd();
    cmd.env("TETHER_BIND", format!("127.0.0.1:{}", support::free_port()))
        .env("TERM", "xterm-256color")
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let Some(tui) = support::tmux::program("store-degraded", (140, 30), &cmd) else {
        return;
    };
    tui.wait_for("1 healthy", Duration::from_secs(15));
    pg.stop_server();
    let screen = tui.wait_for("degraded", Duration::from_secs(15));
    assert!(screen.contains("waiting for the store"), "{screen}");
    let grants = sim.stats().totals.refresh_grants;
    pg.start_server();
    tui.wait_until("healthy again", Duration::from_secs(20), |pane| {
        pane.contains("1 healthy") && !pane.contains("degraded")
    });
    assert!(
        sim.stats().totals.refresh_grants > grants,
        "no refresh after the store came back"
    );
    tui.end_with("q");
    sim.shutdown().await;
}
