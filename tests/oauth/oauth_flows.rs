//! Authorize once, refresh forever — through the `tether` binary, against `tether sim`
//! processes on loopback, with a stand-in browser that follows the automatic consent.
//! Each provider profile's quirk and each token-endpoint fault, as a user meets them.

#[path = "oauth_flows/hostile.rs"]
mod hostile;
use crate::support;

use serde_json::{Value, json};

use crate::support::{Home, Run, Sim, free_port, signed_in_at};

#[test]
fn login_discovers_registers_and_stores_a_token() {
    let (home, sim) = signed_in_at("generic", "1");
    let s = home.status("generic");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"], 1);
    assert_eq!(s["token"]["has_refresh_token"], true);
    assert_eq!(s["registrations"][0]["method"], "dcr");
    assert_eq!(s["issuer"], sim.base);
    // The progress lines name each step; the URL is shown for SSH users.
    let again = home.login("generic").ok();
    assert!(again.stderr.contains("reusing client"), "{}", again.stderr);
    assert!(again.stderr.contains("/authorize?"), "{}", again.stderr);
    assert_eq!(
        sim.stats()["registrations"],
        1,
        "the registration must be reused"
    );
    assert_eq!(home.status("generic")["token"]["generation"], 2);
}

#[test]
fn linear_rotates_a_hundred_times_without_invalid_grant() {
    let (home, sim) = signed_in_at("linear", "3600");
    for i in 0..100 {
        let out = home.run(&["refresh", "linear"]);
        assert_eq!(out.status, 0, "refresh {i}: {}", out.stderr);
    }
    let stats = sim.stats();
    assert_eq!(stats["totals"]["invalid_grant_responses"], 0);
    assert_eq!(stats["totals"]["refresh_calls"], 100);
    let s = home.status("linear");
    assert_eq!(s["token"]["generation"], 101);
    assert_eq!(s["state"], "healthy");
}

#[test]
fn todoist_without_a_refresh_token_is_healthy() {
    let (home, sim) = signed_in_at("todoist", "1");
    let s = home.status("todoist");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["has_refresh_token"], false);
    assert!(s["expires_in_seconds"].as_i64().unwrap() > 9 * 365 * 86_400);
    let out = home.run(&["refresh", "todoist"]).ok();
    assert!(out.stdout.contains("generation 1"), "{}", out.stdout);
    assert_eq!(sim.stats()["totals"]["refresh_calls"], 0);
    assert_eq!(home.status("todoist")["state"], "healthy");
}

#[test]
fn notion_client_expiry_is_diagnosed_and_healed_by_a_new_registration() {
    // A day of client lifetime lasts two seconds.
    let (home, sim) = signed_in_at("notion", "43200");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let out = home.run(&["refresh", "notion"]);
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("client_rejected"), "{}", out.stderr);
    let s = home.status("notion");
    assert_eq!(s["state"], "needs-reauth");
    assert_eq!(s["diagnosis"], "client_rejected");
    assert_eq!(
        s["token"]["has_refresh_token"], true,
        "the refresh token is kept"
    );
    assert_eq!(s["registrations"][0]["status"], "rejected");

    home.login("notion").ok();
    let s = home.status("notion");
    assert_eq!(s["state"], "healthy");
    let regs = s["registrations"].as_array().unwrap();
    assert_eq!(regs.len(), 2, "the old registration is kept: {regs:?}");
    assert_eq!(regs[1]["status"], "active");
    assert_eq!(sim.stats()["registrations"], 2);
}

#[test]
fn transient_token_faults_never_lose_the_refresh_token() {
    let (home, sim) = signed_in_at("linear", "3600");
    for kind in ["500", "429", "timeout"] {
        sim.faults(json!({"fail_token_calls": 1, "fail_kind": kind, "timeout_secs": 3, "retry_after_secs": 1}));
        let out = Run::of(
            home.cmd()
                .args(["refresh", "linear"])
                .env("TETHER_HTTP_TIMEOUT_SECS", "1")
                .output()
                .unwrap(),
        );
        assert_eq!(out.status, 1, "{kind}");
        assert!(
            out.stderr.contains("keeps the refresh token"),
            "{kind}: {}",
            out.stderr
        );
        let s = home.status("linear");
        assert_eq!(s["state"], "degraded", "{kind}");
        assert_eq!(s["token"]["has_refresh_token"], true, "{kind}");
        // The fault is over: the same refresh token still works.
        std::thread::sleep(std::time::Duration::from_millis(if kind == "timeout" {
            3000
        } else {
            0
        }));
        home.run(&["refresh", "linear"]).ok();
        assert_eq!(home.status("linear")["state"], "healthy", "{kind}");
    }
    assert_eq!(sim.stats()["totals"]["invalid_grant_responses"], 0);
}

/// `tether refresh` run by several processes at once against single-use rotation: the
/// cross-process lock lets one refresh at a time, and each later one starts from the
/// newest token (or adopts it) — no refresh token is ever presented twice.
#[test]
fn refreshes_from_several_processes_at_once_never_reuse_a_token() {
    let (home, sim) = signed_in_at("linear", "1");
    let children: Vec<_> = (0..4)
        .map(|_| {
            home.cmd()
                .args(["refresh", "linear"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let totals = &sim.stats()["totals"];
    assert_eq!(totals["invalid_grant_responses"], 0, "{totals}");
    assert_eq!(totals["family_revocations"], 0, "{totals}");
    let refreshes = totals["refresh_grants"].as_u64().unwrap();
    assert!((1..=4).contains(&refreshes), "{totals}");
    let s = home.status("linear");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"].as_u64().unwrap(), 1 + refreshes);
}

/// Failing token calls while `tether serve` keeps the token fresh: the scheduler retries
/// with backoff by itself and heals when the fault ends — no one runs `tether refresh`.
#[test]
fn the_scheduler_retries_a_failed_refresh_by_itself() {
    // Linear's one-hour tokens live two seconds: due for refresh within about a second.
    let (home, sim) = signed_in_at("linear", "1800");
    sim.faults(json!({"fail_token_calls": 2, "fail_kind": "500"}));
    let serve = support::Serve::start(&home);
    let start = std::time::Instant::now();
    loop {
        let totals = sim.stats()["totals"].clone();
        if totals["refresh_grants"].as_u64().unwrap() >= 1
            && home.status("linear")["state"] == "healthy"
        {
            assert!(totals["faults_injected"].as_u64().unwrap() >= 2, "{totals}");
            assert_eq!(totals["invalid_grant_responses"], 0, "{totals}");
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "not healed: {totals}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let history = home.status("linear")["history"].to_string();
    assert!(
        history.contains("refresh_failed") || history.contains("upstream_unreachable"),
        "{history}"
    );
    support::assert_no_tokens(&serve.stop());
}

#[test]
fn a_lost_refresh_response_is_diagnosed_as_such() {
    let (home, sim) = signed_in_at("linear", "3600");
    sim.faults(json!({"drop_next_refresh": true}));
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert_eq!(home.status("linear")["state"], "degraded");
    // The server rotated; tether's refresh token is now the spent one.
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("invalid_grant.lost_response"),
        "{}",
        out.stderr
    );
    let s = home.status("linear");
    assert_eq!(s["diagnosis"], "invalid_grant.lost_response");
    let last = s["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["diagnosis"], "invalid_grant.lost_response");
    let evidence = serde_json::to_string(&last["evidence"]).unwrap();
    assert!(evidence.contains("invalid_grant"), "{evidence}");
    // A re-authorization heals it.
    home.login("linear").ok();
    assert_eq!(home.status("linear")["state"], "healthy");
    assert_eq!(sim.stats()["totals"]["dropped_responses"], 1);
}

#[test]
fn sigkill_in_the_middle_of_a_refresh_leaves_a_readable_vault() {
    let (home, sim) = signed_in_at("linear", "3600");
    sim.faults(json!({"fail_token_calls": 1, "fail_kind": "timeout", "timeout_secs": 3}));
    let mut child = home.cmd().args(["refresh", "linear"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    child.kill().unwrap();
    child.wait().unwrap();
    let s = home.status("linear");
    assert!(
        s["refresh_in_progress"]
            .as_str()
            .unwrap()
            .contains("generation 1"),
        "the journal records the interrupted refresh: {s}"
    );
    assert_eq!(s["token"]["has_refresh_token"], true);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    home.run(&["refresh", "linear"]).ok();
    let s = home.status("linear");
    assert_eq!(s["state"], "healthy");
    assert!(s["refresh_in_progress"].is_null());
    assert_eq!(s["token"]["generation"], 2);
}

/// The server rotated, then tether died before the answer arrived (the simulator holds
/// it): the journal remembers, so the `invalid_grant` the spent token meets next is named
/// a lost response, not a mystery.
#[test]
fn a_refresh_cut_short_by_a_crash_reads_as_a_lost_response() {
    let (home, sim) = signed_in_at("linear", "1");
    sim.faults(json!({"hold_next_refresh_secs": 10}));
    let mut child = home.cmd().args(["refresh", "linear"]).spawn().unwrap();
    let start = std::time::Instant::now();
    while sim.stats()["totals"]["refresh_grants"] != 1 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the refresh never reached the server"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let s = home.status("linear");
    assert_eq!(s["diagnosis"], "invalid_grant.lost_response", "{s}");
    assert!(s["refresh_in_progress"].is_null(), "{s}");
}

/// Re-registering leaves the old client without a token: an orphan, which `tether
/// orphans` lists (read back from the server, RFC 7592) and `--delete` deletes there.
#[test]
fn an_orphan_is_read_back_then_deleted_at_the_server() {
    let (home, sim) = signed_in_at("generic", "1");
    let out = Run::of(
        home.login_cmd("generic")
            .arg("--reregister")
            .output()
            .unwrap(),
    )
    .ok();
    assert!(out.stdout.contains("Authorized"), "{}", out.stdout);
    let listed: Value =
        serde_json::from_str(&home.run(&["orphans", "--json"]).ok().stdout).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed}");
    assert_eq!(rows[0]["connection"], "generic");
    assert_eq!(rows[0]["at_server"], "registered", "{listed}");
    assert_eq!(rows[0]["deletable"], true);
    let text = home.run(&["orphans"]).ok().stdout;
    assert!(text.contains("at the server: registered"), "{text}");

    let deleted = home.run(&["orphans", "generic", "--delete"]).ok().stdout;
    assert!(deleted.contains("deleted at the server"), "{deleted}");
    let clients = sim.stats()["clients"].clone();
    let gone = clients
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["deleted"] == true)
        .count();
    assert_eq!(gone, 1, "{clients}");
    let after: Value = serde_json::from_str(&home.run(&["orphans", "--json"]).ok().stdout).unwrap();
    assert_eq!(after, json!([]));
    // The connection works on its new client.
    assert_eq!(home.status("generic")["state"], "healthy");
    home.run(&["refresh", "generic"]).ok();
}

/// Serves `body` as JSON to every request on a free loopback port, on a thread of its
/// own; the port.
fn serve_json(body: impl Fn(u16) -> String + Send + 'static) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = body(port);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// A Client ID Metadata Document the user names: the server fetches it, the client id is
/// its URL, no registration happens, and the login and refreshes use that client.
#[test]
fn a_client_id_metadata_document_signs_in_without_registering() {
    let sim = Sim::start_with("generic", "1", &["--cimd"]);
    let callback = free_port();
    let doc_port = serve_json(move |port| {
        json!({
            "client_id": format!("http://127.0.0.1:{port}/client.json"),
            "client_name": "tether (test)",
            "redirect_uris": [format!("http://127.0.0.1:{callback}/callback")],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        })
        .to_string()
    });
    let doc_url = format!("http://127.0.0.1:{doc_port}/client.json");
    let home = Home::new();
    home.run(&["add", "cimd", &sim.mcp_url]).ok();
    let out = Run::of(
        home.login_cmd("cimd")
            .args(["--client-metadata-url", &doc_url])
            .output()
            .unwrap(),
    )
    .ok();
    assert!(out.stdout.contains("Authorized"), "{}", out.stderr);
    let s = home.status("cimd");
    assert_eq!(s["registrations"][0]["method"], "cimd", "{s}");
    let totals = &sim.stats()["totals"];
    assert_eq!(totals["registrations"], 0, "{totals}");
    assert_eq!(totals["metadata_document_clients"], 1, "{totals}");
    home.run(&["refresh", "cimd"]).ok();
    assert_eq!(home.status("cimd")["token"]["generation"], 2);
    // A later login reuses it.
    home.login("cimd").ok();
    assert_eq!(sim.stats()["totals"]["metadata_document_clients"], 1);
    assert_eq!(sim.stats()["totals"]["registrations"], 0);
    // A document that names another client, or no loopback redirect, is refused and
    // named; nothing is registered instead.
    for (doc, why) in [
        (
            json!({"client_id": "http://127.0.0.1:1/other.json", "redirect_uris": ["http://127.0.0.1:9/cb"]}),
            "its client_id is not exactly its own URL",
        ),
        (
            json!({"client_id": "SELF", "redirect_uris": ["https://app.example.com/cb"]}),
            "it lists no loopback redirect_uri",
        ),
    ] {
        let port = serve_json(move |port| {
            doc.to_string()
                .replace("SELF", &format!("http://127.0.0.1:{port}/bad.json"))
        });
        home.run(&["add", "bad", &sim.mcp_url]).ok();
        let out = home.run(&[
            "login",
            "bad",
            "--client-metadata-url",
            &format!("http://127.0.0.1:{port}/bad.json"),
            "--no-browser",
        ]);
        assert_eq!(out.status, 1);
        assert!(
            out.stderr.contains(why) && out.stderr.contains("/bad.json"),
            "{}",
            out.stderr
        );
        home.run(&["remove", "bad"]).ok();
    }
    assert_eq!(sim.stats()["totals"]["registrations"], 0);
    // A client id off this machine must be https.
    home.run(&["add", "plain", &sim.mcp_url]).ok();
    let out = home.run(&[
        "login",
        "plain",
        "--client-metadata-url",
        "http://clients.example.com/tether.json",
        "--no-browser",
    ]);
    assert_eq!(out.status, 1);
    assert!(out.stderr.contains("must be https"), "{}", out.stderr);
}

/// The browser is started without tether's own secrets in its environment: a browser
/// (or anything it runs) has no business with the vault key.
#[test]
fn the_browser_is_started_without_the_vault_key() {
    const KEY: &str = "dGV0aGVyLXRlc3Qta2V5LTMyLWJ5dGVzLWxvbmchISE=";
    let sim = Sim::start("generic", "1");
    let home = Home::new();
    let with_key = |args: &[&str]| {
        let mut cmd = home.cmd();
        cmd.args(args)
            .env("TETHER_KEY_SOURCE", "env")
            .env("TETHER_VAULT_KEY", KEY);
        cmd
    };
    Run::of(
        with_key(&["add", "generic", &sim.mcp_url])
            .output()
            .unwrap(),
    )
    .ok();
    let seen = home.path().join("browser-env");
    let browser = support::repo().join("tests/fixtures/env-browser");
    let out = Run::of(
        with_key(&["login", "generic", "--timeout", "20"])
            .env("BROWSER", browser)
            .env("ENV_BROWSER_OUT", &seen)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(out.stdout.contains("Authorized"), "{}", out.stdout);
    let env = std::fs::read_to_string(&seen).unwrap();
    assert!(
        env.contains("ENV_BROWSER_OUT="),
        "the rest of the environment is kept"
    );
    assert!(!env.contains("TETHER_VAULT_KEY"), "{env}");
    assert!(!env.contains(KEY), "{env}");
}

#[test]
fn login_errors_are_clear() {
    let home = Home::new();
    home.run(&["add", "nowhere", "http://127.0.0.1:9/mcp"]).ok();
    let out = home.login("nowhere");
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("upstream_unreachable"),
        "{}",
        out.stderr
    );
    home.run(&["add", "open", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let out = home.login("open");
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("not OAuth"), "{}", out.stderr);
}

#[test]
fn a_vault_restored_from_an_old_backup_is_diagnosed_as_reuse() {
    let (home, sim) = signed_in_at("linear", "3600");
    let backup = std::fs::read(home.vault_file()).unwrap();
    home.run(&["refresh", "linear"]).ok();
    // The user restores yesterday's vault: its refresh token is the one tether spent.
    std::fs::write(home.vault_file(), &backup).unwrap();
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains("invalid_grant.reused"),
        "{}",
        out.stderr
    );
    let s = home.status("linear");
    assert_eq!(s["diagnosis"], "invalid_grant.reused");
    // Named before sending: the spent token never reached the server, so it revoked nothing.
    assert_eq!(sim.stats()["totals"]["family_revocations"], 0);
}

#[test]
fn a_removed_connection_leaves_no_refresh_mark_behind() {
    let (home, sim) = signed_in_at("linear", "3600");
    for _ in 0..3 {
        home.run(&["refresh", "linear"]).ok();
    }
    let mark = home.path().join("locks/linear.mark");
    assert!(mark.exists(), "refreshes keep a high-water mark");
    home.run(&["remove", "linear"]).ok();
    assert!(!mark.exists(), "the mark outlived its connection");
    // A new connection of the same name starts afresh and refreshes normally.
    home.run(&["add", "linear", &sim.mcp_url]).ok();
    home.login("linear").ok();
    home.run(&["refresh", "linear"]).ok();
    let s = home.status("linear");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"], 2);
}

/// A server resuming from a freeze may reset a pending connection before reading it: the
/// refresh request that provably never reached its token logic is sent again at once, and
/// the refresh that triggered it succeeds.
#[test]
fn a_token_call_reset_before_any_answer_is_sent_once_more() {
    let (home, sim) = signed_in_at("linear", "3600");
    sim.faults(serde_json::json!({"reset_token_calls": 1}));
    let out = home.run(&["refresh", "linear"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let totals = sim.stats()["totals"].clone();
    assert_eq!(totals["faults_injected"], 1, "{totals}");
    assert_eq!(totals["refresh_grants"], 1, "{totals}");
    assert_eq!(totals["invalid_grant_responses"], 0, "{totals}");
    let s = home.status("linear");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"], 2);
    // Once only: a second reset fails the refresh, which keeps its refresh token.
    sim.faults(serde_json::json!({"reset_token_calls": 2}));
    let out = home.run(&["refresh", "linear"]);
    assert_ne!(out.status, 0, "{}", out.stdout);
    assert_eq!(sim.stats()["totals"]["faults_injected"], 3);
    home.run(&["refresh", "linear"]).ok();
    assert_eq!(home.status("linear")["token"]["generation"], 3);
}
