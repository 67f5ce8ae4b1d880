//! The terminal UI as a user drives it: `tether demo` in tmux, keys sent, the pane captured
//! and read. `.ci/run` installs tmux; elsewhere the test says it was skipped, but under
//! `CI=true` a missing tmux is a failure.

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().expect("tmux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct Session(String);

impl Session {
    fn capture(&self) -> String {
        tmux(&["capture-pane", "-t", &self.0, "-p"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            tmux(&["send-keys", "-t", &self.0, k]);
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the pane shows `text`, returning the pane.
    fn wait_for(&self, text: &str, within: Duration) -> String {
        let start = Instant::now();
        loop {
            let pane = self.capture();
            if pane.contains(text) {
                return pane;
            }
            assert!(
                start.elapsed() < within,
                "'{text}' never appeared; the pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn a_user_drives_the_demo() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing: .ci/run must install it"
        );
        eprintln!("skipped: tmux is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let name = format!("tether-e2e-{}", std::process::id());
    let command = format!(
        "TETHER_HOME='{}' DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent '{}' demo --time-scale 600",
        home.path().display(),
        env!("CARGO_BIN_EXE_tether")
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "34",
        &command,
    ]);
    let session = Session(name);

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
    let pane = session.wait_for("this help", Duration::from_secs(5));
    assert!(pane.contains("refresh the token now"), "{pane}");
    session.keys(&["Escape"]);

    // Short demo tokens refresh by themselves while the user watches.
    session.wait_for("refreshed: generation", Duration::from_secs(10));

    // No secret on screen: tokens show as a masked prefix only.
    let pane = session.capture();
    for marker in ["_at_", "_rt_"] {
        assert!(!pane.contains(marker), "a token is visible:\n{pane}");
    }

    session.keys(&["q"]);
    let start = Instant::now();
    while session.alive() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!session.alive(), "q did not quit");
}
