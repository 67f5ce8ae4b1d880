//! The terminal UI as a user drives it: `tether demo`, and `tether` over an SSH-like
//! session whose browser is elsewhere, in tmux — keys sent, the pane captured and read.
//! `.ci/run` installs tmux; elsewhere the tests say they were skipped, but under `CI=true` a
//! missing tmux is a failure.

use crate::support;

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Home, Sim};

pub(crate) use crate::support::tmux::Session;

/// `command` running in a new terminal of 120×34, or `None` (said) without tmux.
pub(crate) fn start(test: &str, command: &str) -> Option<Session> {
    support::tmux::shell(test, (120, 34), command)
}

#[test]
fn a_user_drives_the_demo() {
    let home = tempfile::tempdir().unwrap();
    let command = format!(
        "TETHER_HOME='{}' DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent '{}' demo --time-scale 600",
        home.path().display(),
        support::bin()
    );
    let Some(session) = start("demo", &command) else {
        return;
    };

    let pane = session.wait_for("6 healthy", Duration::from_secs(30));
    for profile in [
        "linear",
        "github",
        "notion",
        "todoist",
        "atlassian",
        "generic",
    ] {
        assert!(pane.contains(profile), "{profile} missing:\n{pane}");
    }
    assert!(pane.contains("proxy on http://127.0.0.1:"), "{pane}");
    assert!(pane.contains("Overview"), "{pane}");
    // 120 columns are wide enough for the upstream host column.
    assert!(pane.contains("Host"), "{pane}");

    // Down to github, History tab: the timeline shows its sign-in.
    session.keys(&["j", "Tab"]);
    let pane = session.wait_for("authorized at", Duration::from_secs(5));
    assert!(pane.contains("github 127.0.0.1"), "{pane}");
    assert!(pane.contains("registered client"), "{pane}");

    // Refresh it now: a new generation appears in the timeline.
    session.keys(&["r"]);
    session.wait_for("generation 1 → 2", Duration::from_secs(10));

    // The help overlay lists the keys.
    session.keys(&["?"]);
    let pane = session.wait_for("the calls of all connections", Duration::from_secs(5));
    assert!(pane.contains("refresh the token now"), "{pane}");
    session.keys(&["Escape"]);

    // Short demo tokens refresh by themselves while the user watches.
    session.wait_for("refreshed: generation", Duration::from_secs(10));

    // No secret on screen: tokens show as a masked prefix only.
    let pane = session.capture();
    for marker in ["_at_", "_rt_"] {
        assert!(!pane.contains(marker), "a token is visible:\n{pane}");
    }

    session.end_with("q");
}

/// The terminal UI over `home`'s vault, serving the proxy on a free loopback port unless
/// another tether serves it, with `env` (`NAME='value' …`) added.
pub(crate) fn tui_over(home: &Home, env: &str) -> String {
    format!(
        "TETHER_HOME='{home}' HOME='{user}' XDG_CONFIG_HOME='{user}/.config' TETHER_KEY_SOURCE=file \
         DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent TETHER_BIND=127.0.0.1:0 {env} '{bin}'",
        home = home.path().display(),
        user = home.user().display(),
        bin = support::bin(),
    )
}

/// The terminal UI over `home`'s vault, with a browser "on another machine": it writes
/// the URL it is given to `url_file` and goes no further, so the sign-in waits.
fn tui_with_browser_elsewhere(home: &Home, url_file: &std::path::Path) -> String {
    let browser = support::repo().join("tests/fixtures/elsewhere-browser");
    tui_over(
        home,
        &format!(
            "BROWSER='{}' TETHER_TEST_URL_FILE='{}'",
            browser.display(),
            url_file.display()
        ),
    )
}

/// Over SSH the browser is on another machine: the sign-in ends there on the loopback
/// address of *that* machine, which does not load. The user pastes that address into the
/// TUI, and the login completes.
#[test]
fn a_sign_in_whose_browser_is_elsewhere_is_finished_by_pasting() {
    let sim = Sim::start("generic", "1");
    let home = Home::new();
    home.run(&["add", "remote", &sim.mcp_url]).ok();
    let url_file = home.path().join("opened-url");
    let command = tui_with_browser_elsewhere(&home, &url_file);
    let Some(session) = start("paste", &command) else {
        return;
    };
    session.wait_for("remote", Duration::from_secs(20));
    session.keys(&["l"]);
    session.wait_for("paste that page's address", Duration::from_secs(20));

    // On the other machine: the browser opens the URL, the provider consents and sends it
    // to the loopback callback, which loads nothing there; the user copies that address.
    let start = Instant::now();
    let url = loop {
        match std::fs::read_to_string(&url_file) {
            Ok(url) if !url.is_empty() => break url,
            _ => assert!(
                start.elapsed() < Duration::from_secs(10),
                "no browser was opened"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let redirect = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{redirect_url}", &url])
        .output()
        .unwrap();
    let address = String::from_utf8(redirect.stdout).unwrap();
    assert!(address.contains("code="), "{address}");
    let code = address
        .split("code=")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .unwrap()
        .to_string();

    session.type_text(&address);
    let pane = session.wait_for("code=", Duration::from_secs(5));
    assert!(!pane.contains(&code), "the code is on screen:\n{pane}");
    session.keys(&["Enter"]);
    let pane = session.wait_for("Connected", Duration::from_secs(20));
    assert!(pane.contains("pasted address accepted"), "{pane}");
    assert!(!pane.contains(&code), "the code is on screen:\n{pane}");

    let status = home.run(&["status", "remote", "--json"]).ok();
    assert!(status.stdout.contains("\"healthy\""), "{}", status.stdout);
    session.keys(&["Enter"]);
    session.end_with("q");
}

/// The add wizard adds a connection and starts its sign-in in one go; Esc — while the
/// browser is out, or straight after Enter, before the new connection has even shown —
/// leaves nothing of it behind.
#[test]
fn the_add_wizard_starts_a_sign_in_and_esc_leaves_nothing_behind() {
    let sim = Sim::start("generic", "1");
    let home = Home::new();
    let url_file = home.path().join("opened-url");
    let command = tui_with_browser_elsewhere(&home, &url_file);
    let Some(session) = start("wizard", &command) else {
        return;
    };
    session.wait_for("press a to add one", Duration::from_secs(20));
    let names = || {
        let list = home.run(&["list", "--json"]).ok().stdout;
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let fill_in = |name: &str| {
        session.keys(&["a"]);
        session.wait_for("MCP URL", Duration::from_secs(5));
        session.type_text(name);
        session.keys(&["Tab"]);
        session.type_text(&sim.mcp_url);
        session.keys(&["Tab"]);
    };

    // Added and signing in: the browser was sent to the provider.
    fill_in("drafted");
    session.keys(&["Enter"]);
    session.wait_for("paste that page's address", Duration::from_secs(20));
    assert_eq!(names(), ["drafted"]);
    session.keys(&["Escape"]);
    let start = Instant::now();
    while !names().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a cancelled wizard left {:?} behind",
            names()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Enter and Esc in one go: the Add has not shown yet when Esc comes.
    fill_in("hurried");
    session.burst(&["Enter", "Escape"]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(names(), Vec::<String>::new());
    let pane = session.wait_for("press a to add one", Duration::from_secs(5));
    assert!(pane.contains("Connections 0"), "{pane}");
    assert!(
        pane.contains("'hurried' was not added: its sign-in was cancelled"),
        "{pane}"
    );
    session.end_with("q");
}

/// A tether already serves the proxy port: the terminal UI says so and keeps watching the
/// shared vault — a connection another process adds shows within a second or two. Its log
/// goes to a file, never onto the screen.
#[test]
fn another_tether_serving_the_port_is_named_and_its_changes_show() {
    let home = Home::new();
    home.run(&["add", "first", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let serve = support::Serve::start(&home);
    let bind = serve.base.trim_start_matches("http://").to_string();
    let command = format!(
        "TETHER_HOME='{home}' HOME='{user}' XDG_CONFIG_HOME='{user}/.config' TETHER_KEY_SOURCE=file \
         DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent TETHER_BIND={bind} RUST_LOG=debug '{bin}'",
        home = home.path().display(),
        user = home.user().display(),
        bin = support::bin(),
    );
    let Some(session) = start("elsewhere", &command) else {
        return;
    };
    let pane = session.wait_for("proxy served by another tether", Duration::from_secs(20));
    assert!(pane.contains(&bind), "{pane}");
    assert!(pane.contains("first"), "{pane}");
    home.run(&["add", "second", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    // The vault is watched once a second; the wait's bound is generous, not a target.
    session.wait_for("second", Duration::from_secs(10));
    session.end_with("q");
    let log = std::fs::read_to_string(home.path().join("logs/tether.log")).unwrap();
    assert!(!log.is_empty(), "the log file is empty");
    assert!(
        !session.capture().contains("DEBUG"),
        "log lines reached the screen"
    );
    drop(serve);
}

/// A tether over another vault on the proxy port (another user's, say): the TUI starts no
/// proxy of its own elsewhere and says plainly who holds the port and what to do.
#[test]
fn a_port_held_by_a_stranger_is_named_and_no_proxy_starts_elsewhere() {
    let theirs = Home::new();
    let serve = support::Serve::start(&theirs);
    let bind = serve.base.trim_start_matches("http://").to_string();
    let home = Home::new();
    let command = format!(
        "TETHER_HOME='{home}' HOME='{user}' XDG_CONFIG_HOME='{user}/.config' TETHER_KEY_SOURCE=file \
         DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent TETHER_BIND={bind} '{bin}'",
        home = home.path().display(),
        user = home.user().display(),
        bin = support::bin(),
    );
    let Some(session) = start("stranger", &command) else {
        return;
    };
    let pane = session.wait_for("proxy off", Duration::from_secs(20));
    let flat = pane.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(&format!(
            "{bind} is held by a program calling itself tether"
        )) && flat.contains("cannot prove it holds this vault"),
        "{pane}"
    );
    assert!(!pane.contains("proxy on"), "{pane}");
    session.end_with("q");
    drop(serve);
}
