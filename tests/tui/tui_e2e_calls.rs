//! The call views as a user sees them, in tmux: the real `tether` against `tether sim`,
//! a client (curl) calling through the proxy. The terminal UI serving the proxy shows each
//! call in the Calls tab with its tool, status and time, every connection's calls with `C`,
//! and a failed call's JSON-RPC error when opened; a terminal UI watching another tether's
//! proxy shows that tether's calls from the audit log, as they are written.

use crate::support;

use std::process::Command;
use std::time::Duration;

use crate::support::{Home, Serve, Sim, secret_for, signed_in};
use crate::tui_e2e::{Session, start};

/// Enough for the proxy, the collector's tick and a redraw; a bound, not a target.
const SHOWN_WITHIN: Duration = Duration::from_secs(20);

/// One JSON-RPC request as a 2026-07-28 client sends it, through `url`; the answer.
fn call(url: &str, method: &str, name: Option<&str>, body: &str) -> String {
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-X", "POST", url])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-H", "mcp-protocol-version: 2026-07-28"])
        .args(["-H", &format!("mcp-method: {method}")]);
    if let Some(name) = name {
        curl.args(["-H", &format!("mcp-name: {name}")]);
    }
    let out = curl.args(["-d", body]).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn list_tools(url: &str) -> String {
    call(
        url,
        "tools/list",
        None,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
    )
}

fn echo(url: &str, arguments: &str) -> String {
    call(
        url,
        "tools/call",
        Some("echo"),
        &format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{arguments}}}}}"#
        ),
    )
}

/// The terminal UI over `home`'s vault, its proxy (or another tether's) on `bind`.
fn tui(home: &Home, bind: &str) -> String {
    format!(
        "TETHER_HOME='{home}' HOME='{user}' XDG_CONFIG_HOME='{user}/.config' TETHER_KEY_SOURCE=file \
         DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent TETHER_NOTIFICATIONS=0 TETHER_BIND={bind} '{bin}'",
        home = home.path().display(),
        user = home.user().display(),
        bin = support::bin(),
    )
}

/// The pane's line that holds every one of `words`, once one does.
fn line_with(session: &Session, words: &[&str]) -> String {
    let start = std::time::Instant::now();
    loop {
        let pane = session.capture();
        if let Some(line) = pane.lines().find(|l| words.iter().all(|w| l.contains(w))) {
            return line.to_string();
        }
        assert!(
            start.elapsed() < SHOWN_WITHIN,
            "no line with {words:?}; the pane:\n{pane}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn calls_through_the_proxy_show_live_in_the_calls_views() {
    let (home, _generic) = signed_in("generic");
    let linear = Sim::start("linear", "1");
    home.run(&["add", "linear", &linear.mcp_url]).ok();
    home.login("linear").ok();
    let bind = format!("127.0.0.1:{}", support::free_port());
    let generic_url = format!(
        "http://{bind}/s/{}/mcp",
        secret_for(&home, "generic", "cursor")
    );
    let linear_url = format!(
        "http://{bind}/s/{}/mcp",
        secret_for(&home, "linear", "claude-code")
    );
    let Some(session) = start("calls", &tui(&home, &bind)) else {
        return;
    };
    session.wait_for("proxy on", SHOWN_WITHIN);

    // The Calls tab of generic (the first connection): tool, status and timings.
    session.keys(&["6"]);
    session.wait_for("No calls yet", SHOWN_WITHIN);
    assert!(list_tools(&generic_url).contains("echo"));
    assert!(echo(&generic_url, r#"{"text":"hi"}"#).contains("hi"));
    let row = line_with(&session, &["tools/call echo", "cursor"]);
    assert!(row.contains(" 200 ") && row.contains(" ms"), "{row}");
    line_with(&session, &["tools/list", "200"]);

    // A failed call, and one on the other connection: C shows both connections' calls.
    let refused = echo(&generic_url, "{}");
    assert!(refused.contains("-32602"), "{refused}");
    assert!(list_tools(&linear_url).contains("tools"));
    session.keys(&["C"]);
    session.wait_for("All calls", SHOWN_WITHIN);
    let linear_row = line_with(&session, &["linear", "claude-code", "tools/list"]);
    assert!(linear_row.contains(" 200 "), "{linear_row}");
    let failed = line_with(
        &session,
        &["generic", "cursor", "tools/call echo", "-32602"],
    );
    assert!(failed.contains(" ms"), "{failed}");

    // Errors only, then the failed call opened: its JSON-RPC error.
    session.keys(&["e"]);
    session.wait_for("errors only", SHOWN_WITHIN);
    session.keys(&["Enter"]);
    let pane = session.wait_for("Call — generic", SHOWN_WITHIN);
    let error = line_with(&session, &["error", "-32602"]);
    assert!(error.contains("text"), "{error}\n{pane}");
    assert!(
        pane.contains("first byte") && pane.contains("total"),
        "{pane}"
    );

    // Esc back to the list, Esc clears the filter, Esc closes it.
    session.keys(&["Escape"]);
    session.wait_for("All calls", SHOWN_WITHIN);
    session.keys(&["Escape", "Escape"]);
    session.wait_for("Overview", SHOWN_WITHIN);
    let pane = session.capture();
    assert!(!pane.contains("All calls"), "{pane}");
    session.end_with("q");
}

#[test]
fn a_tui_watching_another_tethers_proxy_shows_its_calls_from_the_audit_log() {
    let (home, _sim) = signed_in("generic");
    let secret = secret_for(&home, "generic", "cursor");
    let serve = Serve::start(&home);
    let url = format!("{}/s/{secret}/mcp", serve.base);
    assert!(list_tools(&url).contains("echo"));
    let bind = serve.base.trim_start_matches("http://").to_string();
    let Some(session) = start("calls-log", &tui(&home, &bind)) else {
        return;
    };
    session.wait_for("proxy served by another tether", SHOWN_WITHIN);

    // What the other tether recorded before this one started…
    session.keys(&["6"]);
    line_with(&session, &["cursor", "tools/list", "200"]);
    // …and what it records while this one watches.
    assert!(echo(&url, r#"{"text":"later"}"#).contains("later"));
    line_with(&session, &["cursor", "tools/call echo", "200"]);
    session.keys(&["C"]);
    session.wait_for("from the audit log", SHOWN_WITHIN);
    session.keys(&["q"]);
    session.wait_for("Overview", SHOWN_WITHIN);
    session.end_with("q");
    drop(serve);
}
