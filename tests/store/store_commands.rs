//! Commands on a PostgreSQL store, what the database holds, and moving a vault there.

use serde_json::Value;
use tether_sim::Profile;

use crate::support::postgres::Postgres;
use crate::support::{self, Home};
use crate::{Replica, database};

/// An API key no other value in a test could contain.
const API_KEY: &str = "sk-test-4f1c9a7e2b8d6035ee91";

/// An MCP `initialize` through `serve` with the endpoint `secret`: the HTTP status.
async fn initialize(serve: &support::Serve, secret: &str) -> reqwest::StatusCode {
    support::http()
        .post(format!("{}/s/{secret}/mcp", serve.base))
        .header("accept", "application/json, text/event-stream")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap()
        .status()
}

fn names(list: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(list).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_works_on_a_postgres_store_and_the_database_holds_no_secret() {
    let Some((pg, url)) = database("vault") else {
        return;
    };
    let sim = tether_sim::start(tether_sim::SimOptions::new(Profile::Linear))
        .await
        .unwrap();
    let one = Replica::first(&url);
    one.run(&["add", "linear", sim.mcp_url().as_str()]).ok();
    let login = one.login("linear").ok();
    assert!(
        login.stdout.contains("Authorized 'linear'"),
        "{}",
        login.stdout
    );
    one.add_keyed("keyed", API_KEY);
    let secret = one.secret("linear", "claude-code");
    let refreshed = one.run(&["refresh", "linear"]).ok();
    assert!(
        refreshed.stdout.contains("generation 2"),
        "{}",
        refreshed.stdout
    );

    // Another machine with the key sees the same vault, and its proxy serves the client
    // the first one's `tether url` made.
    let two = Replica::beside(&one);
    let listed = names(&two.run(&["list", "--json"]).ok().stdout);
    assert_eq!(
        listed,
        [
            ("linear".to_string(), "healthy".to_string()),
            ("keyed".to_string(), "healthy".to_string())
        ]
    );
    let serve = two.serve();
    assert_eq!(initialize(&serve, &secret).await, 200);
    support::assert_no_tokens(&serve.stop());

    // What an operator reads with psql: names, upstreams, kinds, states, generations.
    let rows = pg.psql(
        "vault",
        "SELECT name, auth, state, coalesce(generation, 0) FROM tether_connections ORDER BY position",
    );
    assert_eq!(rows, "linear|oauth|healthy|2\nkeyed|api-key|healthy|0\n");
    let doctor = two.run(&["doctor", "--json"]);
    assert!(
        doctor
            .stdout
            .contains(&format!("postgres://tether@127.0.0.1:{}/vault", pg.port)),
        "{}",
        doctor.stdout
    );

    // And what it does not: no token, key or endpoint secret in a dump of the database.
    let dump = pg.dump("vault");
    let text = String::from_utf8_lossy(&dump);
    assert!(text.contains("tether_connections") && text.contains(sim.mcp_url().as_str()));
    assert!(
        !support::contains(&dump, API_KEY.as_bytes()),
        "the API key is in the dump"
    );
    assert!(!support::contains(&dump, &API_KEY.as_bytes()[8..]));
    assert!(
        !support::contains(&dump, secret.as_bytes()),
        "the endpoint secret is in the dump"
    );
    support::assert_no_tokens(&text);
    sim.shutdown().await;
}

#[test]
fn a_value_copied_to_another_row_fails_its_check_and_nothing_is_overwritten() {
    let Some((pg, url)) = database("vault") else {
        return;
    };
    let one = Replica::first(&url);
    for name in ["alpha", "beta"] {
        one.add_keyed(name, API_KEY);
    }
    // Someone with write access to the database gives beta alpha's sealed value.
    pg.psql(
        "vault",
        "UPDATE tether_connections SET sealed = (SELECT sealed FROM tether_connections WHERE name = 'alpha') WHERE name = 'beta'",
    );
    let swapped = pg.psql(
        "vault",
        "SELECT md5(sealed) FROM tether_connections ORDER BY name",
    );
    let listed = one.run(&["list"]);
    assert_eq!(listed.status, 1, "{}", listed.stdout);
    assert!(
        listed.stderr.contains("connection 'beta'")
            && listed.stderr.contains("copied from another row")
            && listed.stderr.contains("untouched"),
        "{}",
        listed.stderr
    );
    // A change is refused too, and the rows stay as they were for someone to restore.
    let add = one.run(&["add", "gamma", "http://127.0.0.1:9/mcp", "--no-auth"]);
    assert_eq!(add.status, 1, "{}", add.stdout);
    assert_eq!(
        pg.psql(
            "vault",
            "SELECT md5(sealed) FROM tether_connections ORDER BY name"
        ),
        swapped
    );
    assert_eq!(
        pg.psql("vault", "SELECT count(*) FROM tether_connections"),
        "2\n"
    );
}

#[test]
fn a_store_sealed_with_another_key_or_by_a_newer_tether_is_refused() {
    let Some((pg, url)) = database("vault") else {
        return;
    };
    let one = Replica::first(&url);
    one.run(&["add", "open", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let key_id = pg.psql("vault", "SELECT key_id FROM tether_vault");

    // A machine that was not given the key makes none for a vault that exists...
    let stranger = Replica::first(&url);
    let refused = stranger.run(&["list"]);
    assert_eq!(refused.status, 1);
    assert!(
        refused.stderr.contains("this machine has no key for it")
            && refused.stderr.contains("copy the vault key from a replica"),
        "{}",
        refused.stderr
    );
    assert!(!stranger.home.path().join("vault.key").exists());
    // ...and one given another key is told which key the store wants.
    let other = support::Run::of(
        stranger
            .cmd()
            .env("TETHER_KEY_SOURCE", "env")
            .env(
                "TETHER_VAULT_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            )
            .arg("list")
            .output()
            .unwrap(),
    );
    assert_eq!(other.status, 1);
    assert!(
        other.stderr.contains("different key") && other.stderr.contains(key_id.trim()),
        "{}",
        other.stderr
    );
    assert_eq!(pg.psql("vault", "SELECT key_id FROM tether_vault"), key_id);

    pg.psql("vault", "UPDATE tether_schema SET version = 99");
    let newer = one.run(&["list"]);
    assert_eq!(newer.status, 1);
    assert!(
        newer.stderr.contains("newer tether") && newer.stderr.contains("database schema 99"),
        "{}",
        newer.stderr
    );
    assert_eq!(
        pg.psql("vault", "SELECT version FROM tether_schema"),
        "99\n"
    );
}

#[test]
fn a_store_that_cannot_be_reached_or_used_says_so_without_its_password() {
    let home = Home::new();
    let port = support::free_port();
    let out = support::Run::of(
        home.cmd()
            .args(["list"])
            .env(
                "TETHER_STORE",
                format!("postgres://tether:hunter2hunter2@127.0.0.1:{port}/vault"),
            )
            .output()
            .unwrap(),
    );
    assert_eq!(out.status, 1);
    assert!(
        out.stderr.contains(&format!(
            "cannot connect to the store 'postgres://tether@127.0.0.1:{port}/vault'"
        )) && out.stderr.contains("Check that PostgreSQL runs there"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    let garbled = home.run(&[
        "--store",
        "postgres://tether:hunter2@127.0.0.1:notaport/vault",
        "list",
    ]);
    assert_eq!(garbled.status, 1);
    assert!(
        garbled.stderr.contains("not a PostgreSQL connection URL")
            && garbled
                .stderr
                .contains("postgres://USER@HOST:PORT/DATABASE"),
        "{}",
        garbled.stderr
    );
    assert!(!garbled.stderr.contains("hunter2"), "{}", garbled.stderr);
    let other = home.run(&["--store", "mysql://root:hunter2@db/vault", "list"]);
    assert_eq!(other.status, 1);
    assert!(
        other.stderr.contains("file or in PostgreSQL"),
        "{}",
        other.stderr
    );
    assert!(!other.stderr.contains("hunter2"), "{}", other.stderr);
    assert!(
        !home.vault_file().exists(),
        "no file vault was made instead"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_vault_moves_to_postgres_and_back_and_the_source_is_left_as_it_was() {
    let Some((pg, url)) = database("vault") else {
        return;
    };
    let (sim, home) = support::signed_in_here(Profile::Notion, 1.0).await;
    let secret = support::secret_for(&home, "notion", "cursor");
    let before = std::fs::read(home.vault_file()).unwrap();
    let file_list = names(&home.run(&["list", "--json"]).ok().stdout);

    let moved = home.run(&["store", "migrate", "--to", &url]).ok();
    assert!(
        moved.stdout.contains("copied 1 connection (notion)")
            && moved.stdout.contains("the source is unchanged"),
        "{}",
        moved.stdout
    );
    assert_eq!(
        std::fs::read(home.vault_file()).unwrap(),
        before,
        "the file was changed"
    );
    // Onto itself: refused, naming the fix.
    let itself = home.run(&["store", "migrate", "--to", "file"]);
    assert_eq!(itself.status, 2, "{}", itself.stdout);
    assert!(itself.stderr.contains("already in"), "{}", itself.stderr);
    // Again: the same copy, nothing doubled.
    home.run(&["store", "migrate", "--to", &url]).ok();
    assert_eq!(
        pg.psql("vault", "SELECT count(*) FROM tether_connections"),
        "1\n"
    );

    // The copy serves the same client with the same secret and refreshes the same grant.
    let on_pg = Replica {
        home: Home::new(),
        store: url.clone(),
    };
    std::fs::copy(
        home.path().join("vault.key"),
        on_pg.home.path().join("vault.key"),
    )
    .unwrap();
    assert_eq!(
        names(&on_pg.run(&["list", "--json"]).ok().stdout),
        file_list
    );
    let registrations = sim.stats().totals.registrations;
    on_pg.run(&["refresh", "notion"]).ok();
    assert_eq!(
        sim.stats().totals.registrations,
        registrations,
        "no new client"
    );
    assert_eq!(on_pg.status("notion")["token"]["generation"], 2);
    let serve = on_pg.serve();
    assert_eq!(initialize(&serve, &secret).await, 200);
    drop(serve);

    // Back to a file; refused once the file holds a connection the store does not...
    let back = on_pg.run(&["store", "migrate", "--to", "file"]).ok();
    assert!(
        back.stdout.contains("copied 1 connection"),
        "{}",
        back.stdout
    );
    on_pg
        .home
        .run(&["add", "extra", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let blocked = on_pg.run(&["store", "migrate", "--to", "file"]);
    assert_eq!(blocked.status, 2, "{}", blocked.stdout);
    assert!(
        blocked
            .stderr
            .contains("already holds connections the source does not (extra)"),
        "{}",
        blocked.stderr
    );
    // ...and the file copy holds the refreshed grant.
    assert_eq!(on_pg.home.status("notion")["token"]["generation"], 2);
    sim.shutdown().await;
}

#[test]
fn the_store_is_reached_over_tls_checked_against_the_authority_given() {
    let Some((pg, ca_pem)) = Postgres::start_tls() else {
        return;
    };
    pg.psql("postgres", "CREATE DATABASE vault");
    let url = format!(
        "postgres://tether@localhost:{}/vault?sslmode=require",
        pg.port
    );
    let one = Replica::first(&url);

    // The database's certificate is signed by no authority this machine knows.
    let refused = one.run(&["list"]);
    assert_eq!(refused.status, 1);
    assert!(
        refused.stderr.contains("cannot connect to the store")
            && refused.stderr.to_lowercase().contains("certificate"),
        "{}",
        refused.stderr
    );

    // Given its authority, every session is TLS.
    let ca = one.home.path().join("db-ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    std::fs::write(
        one.home.path().join("config.toml"),
        format!("[store]\nca_file = \"{}\"\n", ca.display()),
    )
    .unwrap();
    one.run(&["add", "open", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let serve = one.serve();
    let sessions = pg.psql(
        "vault",
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
         WHERE a.application_name LIKE 'tether %'",
    );
    assert!(
        !sessions.is_empty() && sessions.lines().all(|l| l == "t"),
        "{sessions}"
    );
    drop(serve);
}

#[test]
fn the_terminal_ui_on_one_replica_follows_what_another_changes() {
    let Some((_pg, url)) = database("vault") else {
        return;
    };
    let one = Replica::first(&url);
    one.run(&["add", "first", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let two = Replica::beside(&one);
    let mut cmd = two.cmd();
    cmd.env("TETHER_BIND", format!("127.0.0.1:{}", support::free_port()))
        .env("TERM", "xterm-256color")
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    let Some(tui) = support::tmux::program("store-tui", (120, 30), &cmd) else {
        return;
    };
    tui.wait_for("first", std::time::Duration::from_secs(15));
    // Added on the other machine: the change feed brings it to this screen.
    one.run(&["add", "second", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let screen = tui.wait_for("second", std::time::Duration::from_secs(5));
    assert!(screen.contains("2 healthy"), "{screen}");
    tui.end_with("q");
}

/// A replica serving other machines over HTTPS (`[proxy] tls_cert`, `tls_key`): its
/// clients' calls go over TLS, HTTP/2 by ALPN; plain HTTP gets nothing; a half-given
/// set-up stops `serve` with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_serves_clients_on_other_machines_over_https() {
    let Some((_pg, url)) = database("vault") else {
        return;
    };
    let one = Replica::first(&url);
    one.run(&["add", "open", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let secret = one.secret("open", "laptop");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = one.home.path();
    std::fs::write(dir.join("proxy.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("proxy.key"), key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("[proxy]\ntls_cert = \"{0}/proxy.crt\"\n", dir.display()),
    )
    .unwrap();
    let half = one.run(&["serve", "--bind", "127.0.0.1:0"]);
    assert_eq!(half.status, 2, "{}", half.stderr);
    assert!(
        half.stderr.contains("tls_cert and tls_key go together"),
        "{}",
        half.stderr
    );

    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[proxy]\ntls_cert = \"{0}/proxy.crt\"\ntls_key = \"{0}/proxy.key\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut serve = one
        .cmd()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line
        .trim()
        .strip_prefix("https://127.0.0.1:")
        .unwrap_or_else(|| panic!("serve printed {line:?}"))
        .to_string();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let answer = client
        .post(format!("https://localhost:{port}/s/{secret}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.version(), reqwest::Version::HTTP_2);
    // Past the endpoint's secret: the upstream is down, which tether says itself.
    assert_ne!(answer.status(), 401);
    assert_ne!(answer.status(), 403);
    let plain = support::http()
        .post(format!("http://127.0.0.1:{port}/s/{secret}/mcp"))
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    let _ = serve.kill();
    let _ = serve.wait();
}

/// The store's address may carry the database's password: the browser a sign-in starts
/// gets neither it nor `PGPASSWORD`, as it never gets the vault key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_never_sees_the_stores_address_or_password() {
    let Some((pg, _)) = database("vault") else {
        return;
    };
    let sim = tether_sim::start(tether_sim::SimOptions::new(Profile::Generic))
        .await
        .unwrap();
    // The cluster trusts loopback, so the password is carried but never checked.
    let url = format!(
        "postgres://tether:pw-4a7e19c2@127.0.0.1:{}/vault?sslmode=disable",
        pg.port
    );
    let one = Replica::first(&url);
    one.run(&["add", "generic", sim.mcp_url().as_str()]).ok();
    let seen = one.home.path().join("browser-env");
    let login = support::Run::of(
        one.cmd()
            .args(["login", "generic", "--timeout", "20"])
            .env("PGPASSWORD", "pw-5b8f20d3")
            .env(
                "BROWSER",
                support::repo().join("tests/fixtures/env-browser"),
            )
            .env("ENV_BROWSER_OUT", &seen)
            .output()
            .unwrap(),
    )
    .ok();
    assert!(login.stdout.contains("Authorized"), "{}", login.stdout);
    assert!(!login.stdout.contains("pw-") && !login.stderr.contains("pw-"));
    let env = std::fs::read_to_string(&seen).unwrap();
    assert!(env.contains("ENV_BROWSER_OUT="), "the rest is kept");
    for gone in ["TETHER_STORE", "PGPASSWORD", "pw-4a7e19c2", "pw-5b8f20d3"] {
        assert!(!env.contains(gone), "{gone} reached the browser");
    }
    sim.shutdown().await;
}
