//! `tether doctor` as a user runs it when something is wrong: every check on a healthy
//! connection, and the exact diagnosis (and a non-zero exit) on a broken one.

use serde_json::Value;

use crate::support::{Home, Run, Sim, signed_in, signed_in_at};

fn findings(run: &Run) -> Vec<Value> {
    serde_json::from_str::<Value>(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(all: &'a [Value], subject: &str, check: &str) -> &'a Value {
    all.iter()
        .find(|f| f["subject"] == subject && f["check"] == check)
        .unwrap_or_else(|| panic!("no {subject}/{check} finding in {all:?}"))
}

#[test]
fn a_healthy_connection_passes_every_check() {
    let (home, sim) = signed_in("generic");
    let run = home.run(&["doctor", "--json"]).ok();
    let all = findings(&run);
    assert_eq!(find(&all, "vault", "readable")["status"], "ok");
    assert_eq!(
        find(&all, "proxy", "reachable")["status"],
        "warn",
        "no serve runs here"
    );
    assert_eq!(find(&all, "generic", "state")["status"], "ok");
    let discovery = find(&all, "generic", "discovery");
    assert_eq!(discovery["status"], "ok");
    let evidence = discovery["evidence"].to_string();
    assert!(evidence.contains("oauth-protected-resource"), "{evidence}");
    assert!(evidence.contains("PKCE S256"), "{evidence}");
    assert_eq!(find(&all, "generic", "upstream")["status"], "ok");
    assert_eq!(find(&all, "generic", "clock")["status"], "ok");
    assert!(!run.stdout.contains("gen_at_"), "a token leaked");
    let text = home.run(&["doctor", "generic"]).ok().stdout;
    assert!(text.contains("✓ upstream"), "{text}");
    drop(sim);
}

/// The check's `initialize` opens an MCP session on a 2025-11-25 upstream: it is ended
/// again.
#[test]
fn the_upstream_check_leaves_no_session_open() {
    let (home, sim) = signed_in("generic");
    home.run(&["doctor", "generic", "--json"]).ok();
    let totals = &sim.stats()["totals"];
    assert_eq!(totals["sessions_begun"], 1, "{totals}");
    assert_eq!(totals["sessions_ended"], 1, "{totals}");
}

/// A token cap evicted the token tether holds: the check meets the 401 as the proxy does —
/// one refresh, and the call again — and says what happened; nothing left to do.
#[test]
fn an_evicted_token_is_refreshed_and_named() {
    let (home, sim) = signed_in("github");
    sim.admin("evict-access");
    let run = home.run(&["doctor", "github", "--json"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let all = findings(&run);
    let upstream = find(&all, "github", "upstream");
    assert_eq!(upstream["status"], "warn", "{upstream}");
    assert_eq!(upstream["diagnosis"], "token_evicted");
    assert_eq!(upstream["remedy"], Value::Null);
    let evidence = upstream["evidence"].to_string();
    assert!(evidence.contains("invalid_token"), "{evidence}");
    assert_eq!(sim.stats()["totals"]["refresh_grants"], 1);
    assert!(!run.stdout.contains("gh_at_") && !run.stdout.contains("gh_rt_"));
    // The eviction is in the connection's history, as when the proxy meets one.
    let status: Value = home.status("github");
    let history = status["history"].as_array().unwrap();
    assert!(
        history.iter().any(|e| e["diagnosis"] == "token_evicted"),
        "{status}"
    );
    // Healed: the next run finds nothing wrong with the upstream.
    let run = home.run(&["doctor", "github", "--json"]).ok();
    assert_eq!(find(&findings(&run), "github", "upstream")["status"], "ok");
}

/// An API key the upstream no longer takes is named as such, with how to replace it.
#[test]
fn a_rejected_api_key_fails_the_run_with_its_fix() {
    let sim = Sim::start("generic", "1");
    let home = Home::new();
    let added = home
        .cmd()
        .args(["add", "keyed", &sim.mcp_url, "--api-key-env", "KEYED_KEY"])
        .env("KEYED_KEY", "not-a-token-the-simulator-issued")
        .output()
        .unwrap();
    assert!(added.status.success());
    let run = home.run(&["doctor", "keyed", "--json"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let upstream = find(&findings(&run), "keyed", "upstream").clone();
    assert_eq!(upstream["status"], "fail");
    assert_eq!(
        upstream["summary"],
        "the upstream rejects the API key (401)"
    );
    let remedy = upstream["remedy"].as_str().unwrap();
    assert!(
        remedy.starts_with("replace the key: `tether remove keyed`"),
        "{remedy}"
    );
    assert!(!run.stdout.contains("not-a-token"), "the key leaked");
}

/// An upstream that redirects would receive the API key again at the redirect target:
/// the check does not follow it, fails, and names where it pointed.
#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_check_sends_no_credential_to_a_redirect_target() {
    use crate::support::site::{Reply, Site};
    let elsewhere = Site::start().await;
    let site = Site::start().await;
    let target = elsewhere.url("/mcp");
    site.post("/mcp", Reply::status(307).with("location", &target));
    let home = Home::new();
    let added = home
        .cmd()
        .args(["add", "keyed", site.mcp().as_str()])
        .args(["--api-key-env", "KEYED_KEY", "--header", "X-API-Key"])
        .env("KEYED_KEY", "key-that-must-stay-home")
        .output()
        .unwrap();
    assert!(added.status.success());
    let run = home.run(&["doctor", "keyed", "--json"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(elsewhere.seen().is_empty(), "{:?}", elsewhere.seen());
    let upstream = find(&findings(&run), "keyed", "upstream").clone();
    assert_eq!(upstream["status"], "fail");
    let summary = upstream["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("redirect to '{target}'")),
        "{summary}"
    );
    assert!(
        !run.stdout.contains("key-that-must-stay-home"),
        "the key leaked"
    );
}

/// Notion's registrations expire. The doctor reads the client back (RFC 7592) and says so
/// before any refresh has failed on it — and the forecast already fails: the login dies
/// within a day.
#[test]
fn an_expired_registration_is_read_back_and_named() {
    // A day lasts six seconds here.
    let (home, sim) = signed_in_at("notion", "14400");
    let run = home.run(&["doctor", "notion", "--json"]);
    assert_eq!(run.status, 1, "{}", run.stdout);
    let forecast = find(&findings(&run), "notion", "forecast").clone();
    assert_eq!(forecast["status"], "fail", "{forecast}");
    assert_eq!(forecast["remedy"], "tether login notion");
    let registration = find(&findings(&run), "notion", "registration").clone();
    assert_eq!(registration["status"], "ok", "{registration}");
    assert!(
        registration["summary"]
            .as_str()
            .unwrap()
            .contains("expires in"),
        "{registration}"
    );
    std::thread::sleep(std::time::Duration::from_millis(6500));
    let run = home.run(&["doctor", "notion", "--json"]);
    assert_eq!(run.status, 1, "{}", run.stdout);
    let registration = find(&findings(&run), "notion", "registration").clone();
    assert_eq!(registration["status"], "fail", "{registration}");
    assert_eq!(registration["diagnosis"], "client_rejected");
    assert_eq!(registration["remedy"], "tether login notion");
    for secret in ["ntn_at_", "ntn_rt_", "ntn_cs_", "ntn_reg_"] {
        assert!(!run.stdout.contains(secret), "a secret leaked");
    }
    // The fix shown is the simplest that works: a plain sign-in registers anew.
    relogin_registers_anew(&home, &sim);
}

/// `tether login notion`, without --reregister, signs in with a new registration.
fn relogin_registers_anew(home: &Home, sim: &Sim) {
    let before = sim.stats()["totals"]["registrations"].clone();
    home.login("notion").ok();
    let after = sim.stats()["totals"]["registrations"].clone();
    assert_ne!(before, after, "a new client was registered");
    let status: serde_json::Value = home.status("notion");
    assert_eq!(status["state"], "healthy", "{status}");
}

#[test]
fn a_revoked_grant_is_named_and_fails_the_run() {
    let (home, sim) = signed_in("linear");
    sim.admin("revoke-all");
    // The next refresh discovers the dead grant.
    assert_eq!(home.run(&["refresh", "linear"]).status, 1);
    let run = home.run(&["doctor", "linear", "--json"]);
    assert_eq!(run.status, 1, "doctor must exit non-zero: {}", run.stderr);
    let all = findings(&run);
    let state = find(&all, "linear", "state");
    assert_eq!(state["status"], "fail");
    assert_eq!(state["diagnosis"], "invalid_grant.expired_or_revoked");
    assert_eq!(state["remedy"], "tether login linear");
    assert!(!run.stdout.contains("lin_rt_") && !run.stdout.contains("lin_at_"));
    let unknown = home.run(&["doctor", "nope"]);
    assert_eq!(unknown.status, 2);
}

/// The same revoked grant, with Cursor configured to sign in to the same server on its own:
/// the server said the grant was revoked, so that is the diagnosis; Cursor is listed as a
/// candidate holder, never as the cause.
#[test]
fn a_revoked_grant_beside_a_client_of_its_own_lists_it_as_a_candidate_only() {
    let (home, sim) = signed_in("linear");
    let cursor = home.user().join(".cursor/mcp.json");
    std::fs::create_dir_all(cursor.parent().unwrap()).unwrap();
    std::fs::write(
        &cursor,
        format!(
            r#"{{"mcpServers": {{"linear-direct": {{"url": "{}"}}}}}}"#,
            sim.mcp_url
        ),
    )
    .unwrap();
    sim.admin("revoke-all");
    assert_eq!(home.run(&["refresh", "linear"]).status, 1);
    let status = home.run(&["status", "linear", "--json"]).ok();
    let state: Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        state["diagnosis"], "invalid_grant.expired_or_revoked",
        "{}",
        status.stdout
    );
    let run = home.run(&["doctor", "linear", "--json"]);
    assert_eq!(run.status, 1);
    let all = findings(&run);
    let finding = find(&all, "linear", "state");
    assert_eq!(finding["diagnosis"], "invalid_grant.expired_or_revoked");
    let evidence = finding["evidence"].to_string();
    assert!(
        evidence.contains("candidate (not proven)")
            && evidence.contains("Cursor: 'linear-direct' in ~/.cursor/mcp.json"),
        "{evidence}"
    );
    assert!(!evidence.contains("also signed in"), "{evidence}");
    assert!(!run.stdout.contains("lin_rt_") && !run.stdout.contains("lin_at_"));
}

#[test]
fn a_client_talking_to_the_upstream_directly_is_drift() {
    let home = Home::new();
    // A loopback upstream nobody serves: doctor's network checks fail fast.
    let upstream = "http://127.0.0.1:9/mcp";
    home.run(&["add", "local", upstream, "--no-auth"]).ok();
    let cursor = home.user().join(".cursor/mcp.json");
    std::fs::create_dir_all(cursor.parent().unwrap()).unwrap();
    std::fs::write(
        &cursor,
        format!(r#"{{"mcpServers": {{"local-direct": {{"url": "{upstream}"}}}}}}"#),
    )
    .unwrap();
    let run = home.run(&["doctor", "local", "--json"]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    let all = findings(&run);
    let drift = find(&all, "local", "clients");
    assert_eq!(drift["status"], "fail");
    assert_eq!(drift["diagnosis"], "client.drift");
    let evidence = drift["evidence"].to_string();
    for shown in ["cursor", "~/.cursor/mcp.json", "local-direct", upstream] {
        assert!(evidence.contains(shown), "{shown} missing: {evidence}");
    }
    assert_eq!(
        drift["remedy"],
        "tether config cursor local --write, then remove the entry 'local-direct'"
    );
    let text = home.run(&["doctor", "local"]).stdout;
    assert!(text.contains("[client.drift]"), "{text}");
}

/// The state finding `doctor NAME --json` gives, with the exit status it expects; no token
/// of the simulator (`<prefix>_at_…`, `<prefix>_rt_…`) may appear.
fn state_finding(home: &Home, name: &str, prefix: &str, exit: i32) -> (Value, Vec<Value>) {
    let run = home.run(&["doctor", name, "--json"]);
    assert_eq!(run.status, exit, "{}\n{}", run.stdout, run.stderr);
    for marker in ["_at_", "_rt_"] {
        let token = format!("{prefix}{marker}");
        assert!(
            !run.stdout.contains(&token),
            "a token leaked: {}",
            run.stdout
        );
    }
    let all = findings(&run);
    (find(&all, name, "state").clone(), all)
}

#[test]
fn each_provider_quirk_reads_as_its_diagnosis() {
    // Linear: a refresh whose response was lost, then the spent token refused.
    let (home, sim) = signed_in_at("linear", "1");
    sim.faults(serde_json::json!({"drop_next_refresh": true}));
    assert_eq!(home.run(&["refresh", "linear"]).status, 1);
    assert_eq!(home.run(&["refresh", "linear"]).status, 1);
    let (state, _) = state_finding(&home, "linear", "lin", 1);
    assert_eq!(state["status"], "fail");
    assert_eq!(state["diagnosis"], "invalid_grant.lost_response");
    assert_eq!(state["remedy"], "tether login linear");

    // Notion: the dynamic client expired (a day lasts two seconds here).
    let (home, sim) = signed_in_at("notion", "43200");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(home.run(&["refresh", "notion"]).status, 1);
    let (state, _) = state_finding(&home, "notion", "ntn", 1);
    assert_eq!(state["status"], "fail");
    assert_eq!(state["diagnosis"], "client_rejected");
    assert_eq!(state["remedy"], "tether login notion");
    relogin_registers_anew(&home, &sim);

    // Todoist: no refresh token, and none needed for a ten-year token.
    let (home, _sim) = signed_in_at("todoist", "1");
    let (state, all) = state_finding(&home, "todoist", "td", 0);
    assert_eq!(state["status"], "ok");
    let discovery = find(&all, "todoist", "discovery")["evidence"].to_string();
    assert!(discovery.contains("refresh grant"), "{discovery}");
    assert_eq!(find(&all, "todoist", "upstream")["status"], "ok");

    // Atlassian: 30–55 minute tokens, refreshed ahead of time; healthy.
    let (home, _sim) = signed_in_at("atlassian", "1");
    let (state, all) = state_finding(&home, "atlassian", "atl", 0);
    assert_eq!(state["status"], "ok");
    assert_eq!(find(&all, "atlassian", "upstream")["status"], "ok");
}

/// A vault restored from a backup holds a refresh token tether already spent: tether says
/// so and asks for a sign-in without sending it — sending it would make a server that
/// detects reuse revoke the whole grant.
#[test]
fn a_restored_vault_never_sends_a_spent_refresh_token() {
    let (home, sim) = signed_in("linear");
    let backup = std::fs::read(home.vault_file()).unwrap();
    home.run(&["refresh", "linear"]).ok();
    home.run(&["refresh", "linear"]).ok();
    std::fs::write(home.vault_file(), &backup).unwrap();
    let before = sim.stats()["totals"].clone();
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("tether login linear"), "{}", out.stderr);
    let after = sim.stats()["totals"].clone();
    assert_eq!(
        (after["token_calls"].clone(), after["refresh_calls"].clone()),
        (
            before["token_calls"].clone(),
            before["refresh_calls"].clone()
        ),
        "a token request was sent"
    );
    assert_eq!(after["invalid_grant_responses"], 0);
    let status: Value = home.status("linear");
    assert_eq!(status["state"], "needs-reauth");
    assert_eq!(status["diagnosis"], "invalid_grant.reused");
    let event = status["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(event["diagnosis"], "invalid_grant.reused");
    let evidence = event["evidence"].to_string();
    for shown in ["high-water mark", "vault generation", "3", "1"] {
        assert!(evidence.contains(shown), "{shown} missing: {evidence}");
    }
    assert!(!out.stderr.contains("lin_rt_") && !evidence.contains("lin_rt_"));
    // The sign-in it asks for heals it.
    home.login("linear").ok();
    home.run(&["refresh", "linear"]).ok();
}

/// Two tether homes hold the same grant (the vault and its key copied): B refreshes, then
/// A presents the token B spent. A says another holder refreshed it, and lists what it can
/// see on this machine — a client configured with the server directly — as candidates, not
/// as the cause.
#[test]
fn a_grant_refreshed_by_another_holder_names_candidates_not_a_cause() {
    let (a, sim) = signed_in("linear");
    let b = Home::new();
    for file in std::fs::read_dir(a.path()).unwrap().flatten() {
        if file.path().is_file() {
            std::fs::copy(file.path(), b.path().join(file.file_name())).unwrap();
        }
    }
    let cursor = a.user().join(".cursor/mcp.json");
    std::fs::create_dir_all(cursor.parent().unwrap()).unwrap();
    std::fs::write(
        &cursor,
        format!(
            r#"{{"mcpServers": {{"linear-direct": {{"url": "{}"}}}}}}"#,
            sim.mcp_url
        ),
    )
    .unwrap();
    b.run(&["refresh", "linear"]).ok();
    let out = a.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("another holder"), "{}", out.stderr);
    let status: Value = a.status("linear");
    assert_eq!(
        status["diagnosis"], "invalid_grant.rotated_elsewhere",
        "{status}"
    );
    let candidates = status["candidates"].to_string();
    assert!(candidates.contains("'linear-direct'"), "{candidates}");
    let text = a.run(&["status", "linear"]).ok().stdout;
    assert!(text.contains("another holder of this grant"), "{text}");
    assert!(text.contains("candidate"), "{text}");
    let run = a.run(&["doctor", "linear", "--json"]);
    let all = findings(&run);
    let finding = find(&all, "linear", "state");
    assert_eq!(finding["diagnosis"], "invalid_grant.rotated_elsewhere");
    let evidence = finding["evidence"].to_string();
    assert!(evidence.contains("candidate"), "{evidence}");
    assert!(evidence.contains("Cursor: 'linear-direct'"), "{evidence}");
    // The client config is a candidate, never named as the one that signed in or refreshed.
    assert!(!evidence.contains("also signed in"), "{evidence}");
    assert!(!run.stdout.contains("lin_rt_") && !run.stdout.contains("lin_at_"));
}
