//! tether against an OAuth server it did not write: oidc-provider (npm), with open dynamic
//! registration, PKCE S256 required, RFC 8707 resource indicators, rotating refresh tokens
//! with reuse detection (a reused token revokes the whole grant) and 3-second access
//! tokens, in front of a small MCP server that checks every bearer token with the
//! provider (`tests/peers/oidc-peer.mjs`). Consent is scripted by the peer; the stand-in
//! browser `tests/peers/browser` follows its interaction pages and cookies.
//!
//! Everything a user does goes through the `tether` binary; the engine test drives the
//! library's engine exactly as `tether serve` does. Needs `tests/peers/install.sh`.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tether_core::engine::{Engine, EngineOptions, ProxyStatus};
use tether_core::oauth::authorize::Browser;
use tether_core::oauth::refresh::Credential;

use crate::support::{Home, Run, peers, vault_at};

/// The oidc-provider peer, stopped when dropped.
struct Peer {
    child: Child,
    mcp_url: String,
    issuer: String,
    admin: String,
}

impl Peer {
    /// `None` when the peers are not installed (skipped; a failure under CI).
    fn start() -> Option<Self> {
        let node = peers::require(&["oidc-provider"])?;
        let mut child = Command::new(node)
            .arg(peers::dir().join("oidc-peer.mjs"))
            .env("PEER_ACCESS_TTL", "3")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the oidc-provider peer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the peer prints its URLs");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the peer did not start ({e}): {line:?}"));
        let s = |k: &str| info[k].as_str().expect(k).to_string();
        Some(Self {
            mcp_url: s("mcp_url"),
            issuer: s("issuer"),
            admin: s("admin"),
            child,
        })
    }

    fn stats(&self) -> Value {
        let out = Command::new("curl")
            .args(["-fsS", &format!("{}/stats", self.admin)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The next token response is processed by the provider, then cut off.
    fn drop_next_token_response(&self) {
        let ok = Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "-X", "POST"])
            .arg(format!("{}/drop-next-token-response", self.admin))
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tether login NAME` through the peer's scripted consent.
fn login(home: &Home, name: &str) -> Run {
    home.login_via(name, peers::dir().join("browser"))
}

/// A home with connection `oidc` added and logged in through the scripted consent.
fn connected(peer: &Peer) -> Home {
    let home = Home::new();
    home.run(&["add", "oidc", &peer.mcp_url]).ok();
    let out = login(&home, "oidc").ok();
    assert!(out.stdout.contains("Authorized 'oidc'"), "{}", out.stdout);
    home
}

/// One `tools/call echo` with `token`: the HTTP status, and the echoed text on success.
async fn echo(http: &reqwest::Client, url: &str, token: &str, message: &str) -> (u16, String) {
    let res = http
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "echo", "arguments": { "message": message } },
        }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, text)
}

fn refresh_grants(peer: &Peer) -> u64 {
    peer.stats()["grants"]["refresh_token"]
        .as_u64()
        .unwrap_or(0)
}

#[test]
fn login_registers_a_client_and_gets_a_rotating_grant_for_the_mcp_resource() {
    let Some(peer) = Peer::start() else { return };
    let home = connected(&peer);
    let s = home.status("oidc");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["issuer"], peer.issuer.as_str());
    assert_eq!(s["token"]["generation"], 1);
    assert_eq!(s["token"]["has_refresh_token"], true);
    assert_eq!(
        s["token"]["scope"], "mcp:tools",
        "the resource's scope, from its protected resource metadata"
    );
    assert_eq!(s["registrations"][0]["method"], "dcr");
    let stats = peer.stats();
    assert_eq!(stats["registrations"], 1);
    assert_eq!(stats["grants"]["authorization_code"], 1);

    // Three rotations by hand: each spends the refresh token and stores the new one.
    for generation in 2..=4 {
        let out = home.run(&["refresh", "oidc"]).ok();
        assert!(
            out.stdout.contains(&format!("generation {generation}")),
            "{}",
            out.stdout
        );
    }
    assert_eq!(refresh_grants(&peer), 3);
    assert_eq!(peer.stats()["grant_errors"], json!([]));

    // A second login reuses the registration.
    let again = login(&home, "oidc").ok();
    assert!(again.stderr.contains("reusing client"), "{}", again.stderr);
    assert_eq!(peer.stats()["registrations"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_keeps_three_second_tokens_fresh_for_a_busy_client() {
    let Some(peer) = Peer::start() else { return };
    let home = connected(&peer);
    let vault = vault_at(home.path());
    let engine = Engine::start(
        vault,
        tether_core::http::client(),
        EngineOptions {
            schedule: true,
            browser: Browser::Print,
            proxy: ProxyStatus::Off {
                reason: "test".into(),
            },
        },
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let before = refresh_grants(&peer);
    let started = Instant::now();
    let mut calls = 0;
    // Ten seconds is three lifetimes and more: every call must find a valid token.
    while started.elapsed() < Duration::from_secs(10) {
        let current = engine.credential("oidc").await.expect("a token");
        let Credential::Bearer(token) = &current.credential else {
            panic!("not a bearer token")
        };
        let message = format!("call {calls}");
        let (status, text) = echo(&http, &peer.mcp_url, token.expose(), &message).await;
        assert_eq!(status, 200, "{message} (generation {})", current.generation);
        assert_eq!(text, message);
        calls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    engine.shutdown();
    let refreshed = refresh_grants(&peer) - before;
    assert!(
        refreshed >= 3,
        "the scheduler refreshed {refreshed} times in 10 s"
    );
    let stats = peer.stats();
    assert_eq!(stats["grant_errors"], json!([]), "no refresh was refused");
    assert_eq!(stats["mcp"]["ok"].as_u64().unwrap(), calls);
    let s = home.status("oidc");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"].as_u64().unwrap(), 1 + refreshed);
}

/// The provider rotates the refresh token, but its answer never arrives: tether kept the
/// journal of that refresh, so when the old token is refused it names the cause.
#[test]
fn a_lost_refresh_response_is_diagnosed_as_lost_response() {
    let Some(peer) = Peer::start() else { return };
    let home = connected(&peer);
    peer.drop_next_token_response();
    let first = home.run(&["refresh", "oidc"]);
    assert_eq!(first.status, 1, "{}", first.stderr);
    assert!(
        first.stderr.contains("keeps the refresh token and retries"),
        "{}",
        first.stderr
    );
    assert_eq!(home.status("oidc")["state"], "degraded");

    let second = home.run(&["refresh", "oidc"]);
    assert_eq!(second.status, 1);
    let s = home.status("oidc");
    assert_eq!(s["state"], "needs-reauth");
    assert_eq!(s["diagnosis"], "invalid_grant.lost_response");
    // The server's side of it: the replay of the rotated token revoked the grant.
    let stats = peer.stats();
    assert_eq!(stats["dropped_token_responses"], 1);
    assert_eq!(stats["reuse_detected"], 1);
    assert_eq!(stats["grants_revoked"], 1);

    let healed = login(&home, "oidc").ok();
    assert!(healed.stdout.contains("Authorized"), "{}", healed.stdout);
    assert_eq!(home.status("oidc")["state"], "healthy");
}

/// An old copy of tether's refresh token is presented after tether rotated past it: once
/// by tether itself from a restored vault backup, once by another program at the token
/// endpoint. tether never sends the spent copy; the other program's replay makes
/// oidc-provider revoke the grant.
///
/// What tether can infer: the restored vault's token is one the refresh high-water mark
/// (kept outside the vault) records as spent, so the first case is `invalid_grant.reused`
/// — found before anything is sent, so the provider has nothing to revoke.
/// In the second, tether's own token was never spent by tether nor lost, and the provider
/// does not say the grant expired or was revoked: another holder of the grant used it,
/// `invalid_grant.rotated_elsewhere`.
#[test]
fn a_replayed_old_refresh_token_revokes_the_grant_and_tether_asks_for_a_login() {
    let Some(peer) = Peer::start() else { return };
    let home = connected(&peer);

    // 1. A vault backup from before a rotation, restored.
    let backup = std::fs::read(home.vault_file()).unwrap();
    home.run(&["refresh", "oidc"]).ok();
    std::fs::write(home.vault_file(), &backup).unwrap();
    let out = home.run(&["refresh", "oidc"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let s = home.status("oidc");
    assert_eq!(s["state"], "needs-reauth");
    assert_eq!(s["diagnosis"], "invalid_grant.reused");
    let evidence = &s["history"].as_array().unwrap().last().unwrap()["evidence"];
    assert!(
        evidence.to_string().contains("high-water mark"),
        "{evidence}"
    );
    let stats = peer.stats();
    assert_eq!(
        stats["reuse_detected"], 0,
        "the spent token was sent: {stats}"
    );
    assert_eq!(stats["grants_revoked"], 0);
    assert!(out.stderr.contains("tether login oidc"), "{}", out.stderr);

    // 2. Another program replays a refresh token tether already spent.
    login(&home, "oidc").ok();
    let spent = {
        let store = vault_at(home.path()).load().unwrap();
        let token = store.get("oidc").unwrap().token.clone().unwrap();
        (token.refresh_token.unwrap(), token.client_id)
    };
    home.run(&["refresh", "oidc"]).ok();
    let replay = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("-d")
        .arg(format!(
            "grant_type=refresh_token&refresh_token={}&client_id={}",
            spent.0.expose(),
            spent.1
        ))
        .arg(format!("{}/token", peer.issuer))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&replay.stdout), "400");
    assert_eq!(peer.stats()["reuse_detected"], 1);
    let out = home.run(&["refresh", "oidc"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    let s = home.status("oidc");
    assert_eq!(s["state"], "needs-reauth");
    assert_eq!(s["diagnosis"], "invalid_grant.rotated_elsewhere");

    login(&home, "oidc").ok();
    assert_eq!(home.status("oidc")["state"], "healthy");
}

/// The same through `tether serve`, as an MCP client uses it: every call goes to the local
/// endpoint, which forwards it to the SDK server with a token kept fresh across several
/// three-second lifetimes — no call ever meets an expired one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_carries_a_busy_client_across_expiries() {
    let Some(peer) = Peer::start() else { return };
    let home = connected(&peer);
    let secret = support::secret_for(&home, "oidc", "busy");
    let serve = support::Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let http = reqwest::Client::new();
    let before = refresh_grants(&peer);
    // The login's discovery probe was refused, as it should be.
    let refused_before = peer.stats()["mcp"]["unauthorized"].clone();
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed() < Duration::from_secs(10) {
        let message = format!("call {calls}");
        // The client sends no token of its own: tether adds the connection's.
        let (status, text) = echo(&http, &url, "not-a-token", &message).await;
        assert_eq!(status, 200, "{message}");
        assert_eq!(text, message);
        calls += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let refreshed = refresh_grants(&peer) - before;
    assert!(refreshed >= 3, "{refreshed} refreshes in 10 s");
    let stats = peer.stats();
    assert_eq!(stats["grant_errors"], json!([]), "no refresh was refused");
    assert_eq!(
        stats["mcp"]["unauthorized"], refused_before,
        "no call met an expired token"
    );
    support::assert_no_tokens(&serve.stop());
}
