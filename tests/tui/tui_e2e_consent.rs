//! A client signing in to tether, answered in the terminal UI as a user does it: the real
//! binary in tmux, a client made of HTTP requests (it registers and sends "the browser" to
//! the authorization endpoint), the request read off the pane, the dialog's key pressed,
//! and the consent page then sending the browser back to the client — with a code that
//! redeems for a secret that works, or with `access_denied`. Once with the proxy served by
//! the terminal UI itself, once by `tether serve` while the terminal UI watches.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::support::tether_signin::{ask_for, initialize_with, open_page, query, redeem, register};
use crate::support::{Home, Serve, signed_in};
use crate::tui_e2e::{Session, start, tui_over};

/// The connection the tests' homes hold, signed in to a simulator.
const NAME: &str = "generic";

/// Where the terminal UI over `home` serves the proxy, once it says so in `serving.json`.
fn served_by_the_tui(home: &Home) -> String {
    let file = home.path().join("serving.json");
    let begun = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(record) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(addr) = record["addr"].as_str()
        {
            let addr: SocketAddr = addr.parse().unwrap();
            return format!("http://{addr}");
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the terminal UI never said where it serves"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Nothing secret on the pane: the page's form token, the code, the client's secret.
fn assert_not_shown(session: &Session, secrets: &[&str]) {
    let pane = session.capture();
    for secret in secrets {
        assert!(!pane.contains(secret), "a secret is on screen:\n{pane}");
    }
}

/// The answer the page gives the browser once the dialog's key was pressed: the page
/// refreshes until the request is answered, as the browser does every 3 s.
async fn answered_page(page: &str) -> String {
    let begun = Instant::now();
    loop {
        let (body, _) = open_page_or_redirect(page).await;
        if let Some(back) = body {
            return back;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "the page never sent the browser back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `Some(location)` once the page redirects; `None` while it still asks.
async fn open_page_or_redirect(page: &str) -> (Option<String>, StatusCode) {
    let r = crate::support::http().get(page).send().await.unwrap();
    let status = r.status();
    if status == StatusCode::SEE_OTHER {
        return (Some(crate::support::tether_signin::location(&r)), status);
    }
    assert_eq!(status, StatusCode::OK);
    (None, status)
}

/// The client's sign-in is allowed in the terminal UI, and the secret it gets works.
async fn allowed_in_the_tui(session: &Session, base: &str, client: &str) {
    let client_id = register(base, client, crate::support::tether_signin::REDIRECT).await;
    let page = ask_for(base, &client_id, NAME).await;
    let (_, csrf) = open_page(&page).await;
    let pane = session.wait_for(
        &format!("{client} wants to use '{NAME}' through tether."),
        Duration::from_secs(20),
    );
    assert!(pane.contains("returns to http://127.0.0.1."), "{pane}");
    assert!(pane.contains("Ctrl-o allow"), "{pane}");

    session.keys(&["C-o"]);
    session.wait_for(&format!("allowed {client} to use"), Duration::from_secs(10));
    let back = answered_page(&page).await;
    assert!(
        back.starts_with(crate::support::tether_signin::REDIRECT),
        "{back}"
    );
    assert_eq!(query(&back, "state").as_deref(), Some("st-1"));
    let code = query(&back, "code").expect("a code for the client");
    let access = redeem(base, &client_id, &code).await;
    assert_eq!(initialize_with(base, NAME, &access).await, StatusCode::OK);
    assert_not_shown(session, &[&csrf, &code, &access]);
}

/// The client's sign-in is denied in the terminal UI: the browser goes back with
/// `access_denied`, and the client gets nothing.
async fn denied_in_the_tui(session: &Session, base: &str, client: &str, home: &Home) {
    let client_id = register(base, client, crate::support::tether_signin::REDIRECT).await;
    let page = ask_for(base, &client_id, NAME).await;
    session.wait_for(
        &format!("{client} wants to use '{NAME}'"),
        Duration::from_secs(20),
    );
    session.keys(&["C-d"]);
    session.wait_for(&format!("denied {client}"), Duration::from_secs(10));
    let back = answered_page(&page).await;
    assert_eq!(
        query(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert_eq!(query(&back, "code"), None);
    assert_eq!(page_redirect_after_done(&page).await, StatusCode::OK);
    let clients = home.status(NAME)["downstream_clients"].clone();
    let label = tether_core::local_auth::label_from_name(client);
    assert!(
        !clients.to_string().contains(&label),
        "{client} got access: {clients}"
    );
}

/// The page once it sent the browser back: it only says the request was answered.
async fn page_redirect_after_done(page: &str) -> StatusCode {
    open_page_or_redirect(page).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_ui_serving_the_proxy_shows_a_sign_in_and_answers_it() {
    let (home, _sim) = signed_in(NAME);
    let Some(session) = start("consent-here", &tui_over(&home, "")) else {
        return;
    };
    session.wait_for("proxy on http://127.0.0.1:", Duration::from_secs(20));
    let base = served_by_the_tui(&home);

    // Two clients ask: one at a time, the oldest first.
    let client_id = register(&base, "Codex", crate::support::tether_signin::REDIRECT).await;
    let first = ask_for(&base, &client_id, NAME).await;
    session.wait_for("Codex wants to use", Duration::from_secs(20));
    let (body, _) = open_page(&first).await;
    assert!(body.contains("wants to use"), "the page waits too");
    allowed_in_the_tui_after(&session, &base, &client_id, &first, "Claude Code").await;
    denied_in_the_tui(&session, &base, "Gemini CLI", &home).await;
    session.end_with("q");
}

/// With `first` (from `client_id`) already shown, another client asks: "1 of 2"; the
/// first is allowed, and its code works; then the other's is allowed too.
async fn allowed_in_the_tui_after(
    session: &Session,
    base: &str,
    client_id: &str,
    first: &str,
    other: &str,
) {
    let other_id = register(base, other, crate::support::tether_signin::REDIRECT).await;
    let second = ask_for(base, &other_id, NAME).await;
    let pane = session.wait_for("1 of 2", Duration::from_secs(20));
    assert!(pane.contains("Codex wants to use"), "oldest first:\n{pane}");
    session.keys(&["C-o"]);
    let pane = session.wait_for(&format!("{other} wants to use"), Duration::from_secs(10));
    assert!(!pane.contains("1 of 2"), "{pane}");
    let back = answered_page(first).await;
    let code = query(&back, "code").expect("a code for Codex");
    let access = redeem(base, client_id, &code).await;
    assert_eq!(initialize_with(base, NAME, &access).await, StatusCode::OK);

    session.keys(&["C-o"]);
    session.wait_for(&format!("allowed {other}"), Duration::from_secs(10));
    let back = answered_page(&second).await;
    let code = query(&back, "code").expect("a code for the second client");
    let access = redeem(base, &other_id, &code).await;
    assert_eq!(initialize_with(base, NAME, &access).await, StatusCode::OK);
    assert_not_shown(session, &[&code, &access]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_ui_watching_tether_serve_shows_its_sign_ins_and_answers_them() {
    let (home, _sim) = signed_in(NAME);
    let serve = Serve::start(&home);
    let Some(session) = start("consent-watching", &tui_over(&home, "")) else {
        return;
    };
    let served = serve.base.trim_start_matches("http://").to_string();
    session.wait_for(
        &format!("proxy served by another tether at {served}"),
        Duration::from_secs(20),
    );
    allowed_in_the_tui(&session, &serve.base, "Codex").await;
    denied_in_the_tui(&session, &serve.base, "Claude Code", &home).await;
    session.end_with("q");
    let log = serve.stop();
    crate::support::assert_no_tokens(&log);
    let tui_log = std::fs::read_to_string(home.path().join("logs/tether.log")).unwrap_or_default();
    assert!(
        !tui_log.contains("csrf=") && !tui_log.contains("code="),
        "{tui_log}"
    );
    assert!(
        !home.path().join("consents.json").exists(),
        "nothing waits, so nothing is shared"
    );
}
