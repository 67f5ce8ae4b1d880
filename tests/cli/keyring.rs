//! The vault key in a real OS keyring: the Secret Service of gnome-keyring, inside a private
//! D-Bus session (`dbus-run-session`), as on a Linux desktop. `.ci/run` installs
//! gnome-keyring, libsecret-tools and dbus; elsewhere the test says it was skipped, but in
//! CI (`CI=true`) a missing tool is a failure.

use std::path::Path;
use std::process::Command;

use crate::support::{Run, bin, test_name};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn the_vault_key_lives_in_the_real_keyring() {
    let tools = ["dbus-run-session", "gnome-keyring-daemon", "secret-tool"];
    if let Some(missing) = tools.iter().find(|t| !have(t)) {
        assert!(
            std::env::var("CI").is_err(),
            "{missing} is missing: .ci/run must install gnome-keyring, libsecret-tools and dbus"
        );
        eprintln!("skipped: {missing} is not installed");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let tether_home = tempfile::tempdir().unwrap();
    let script = format!(
        "printf %s test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec '{}' --ignored --exact {} --nocapture",
        std::env::current_exe().unwrap().display(),
        test_name(module_path!(), "inside_a_keyring_session"),
    );
    let out = Command::new("timeout")
        .args(["60", "dbus-run-session", "--", "sh", "-c", &script])
        .env("HOME", home.path())
        .env("TETHER_HOME", tether_home.path())
        .env("TETHER_TEST_KEYRING_SESSION", "1")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("TETHER_VAULT_KEY")
        .env_remove("TETHER_KEY_SOURCE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the session test did not run:\n{stdout}"
    );
}

fn tether(args: &[&str]) -> Run {
    Run::of(Command::new(bin()).args(args).output().unwrap())
}

fn keyring_entries() -> String {
    let out = Command::new("secret-tool")
        .args(["search", "--all", "service", "tether"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Runs inside the D-Bus session started above.
#[test]
#[ignore = "runs inside a private D-Bus session started by the_vault_key_lives_in_the_real_keyring"]
fn inside_a_keyring_session() {
    if std::env::var("TETHER_TEST_KEYRING_SESSION").is_err() {
        return;
    }
    let home = std::env::var("TETHER_HOME").unwrap();
    let home = Path::new(&home);

    // Automatic choice with a keyring present: the key goes there, no key file, no warning.
    let added = tether(&["add", "linear", "https://mcp.linear.app/mcp"]).ok();
    assert!(added.stderr.is_empty(), "{}", added.stderr);
    assert!(
        !home.join("vault.key").exists(),
        "key written to disk despite a keyring"
    );
    let entries = keyring_entries();
    assert!(entries.contains("vault-key:"), "{entries}");
    assert!(entries.contains("vault.tether"), "{entries}");
    assert!(tether(&["list"]).ok().stdout.contains("linear"));

    // Losing the keyring entry must not cost the vault: clear error, file unchanged.
    let before = std::fs::read(home.join("vault.tether")).unwrap();
    let cleared = Command::new("secret-tool")
        .args(["clear", "service", "tether"])
        .status()
        .unwrap();
    assert!(cleared.success());
    let refused = tether(&["add", "other", "https://e.example/mcp"]);
    assert_eq!(refused.status, 1);
    assert!(
        refused.stderr.contains("its key is not in the OS keyring"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(home.join("vault.tether")).unwrap(), before);
    assert!(!home.join("vault.key").exists());
}
