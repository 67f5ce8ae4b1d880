//! Forecasts and notifications through the binary: a GitHub-style refresh token that says
//! how long it lives and a Notion-style registration that expires show "sign in again
//! within …" in `list`, `status` and `doctor`; a grant the server ends is said once as a
//! desktop notification over a real session D-Bus (`dbus-run-session`, watched with
//! `dbus-monitor`), and so is a client that keeps sending a refused endpoint secret.
//! Without those tools the bus test says it was skipped, but in CI (`CI=true`) a missing
//! tool is a failure.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Home, Serve, signed_in_at, test_name};

const DAY: i64 = 86_400;

fn list_json(home: &Home) -> Value {
    serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap()
}

fn finding<'a>(doctor: &'a Value, check: &str) -> &'a Value {
    doctor["findings"]
        .as_array()
        .or_else(|| doctor.as_array())
        .unwrap()
        .iter()
        .find(|f| f["check"] == check)
        .unwrap_or_else(|| panic!("no {check} finding in {doctor}"))
}

fn doctor(home: &Home, name: &str) -> (i32, Value) {
    let run = home.run(&["doctor", name, "--json"]);
    (run.status, serde_json::from_str(&run.stdout).unwrap())
}

/// GitHub's refresh tokens live six months and the token response says so; at a time
/// scale of 50 that is 3.7 days: a warning.
#[test]
fn a_refresh_token_that_says_when_it_expires_is_forecast() {
    let (home, _sim) = signed_in_at("github", "50");
    let list = list_json(&home);
    let forecast = &list[0]["forecast"];
    assert_eq!(forecast["level"], "warn", "{forecast}");
    assert_eq!(forecast["reason"], "the refresh token expires");
    assert_eq!(forecast["cause"], "refresh_token");
    let within = forecast["within_secs"].as_i64().unwrap();
    assert!((3 * DAY..4 * DAY).contains(&within), "{forecast}");
    assert!(forecast["until"].is_string());

    let text = home.run(&["list"]).ok().stdout;
    assert!(
        text.contains("warn: github: sign in again within 3d (the refresh token expires)"),
        "{text}"
    );
    let status = home.run(&["status", "github"]).ok().stdout;
    assert!(
        status.contains("forecast    warn: sign in again within 3d (the refresh token expires)"),
        "{status}"
    );
    assert_eq!(home.status("github")["forecast"]["level"], "warn");

    let (code, report) = doctor(&home, "github");
    let f = finding(&report, "forecast");
    assert_eq!(f["status"], "warn", "{f}");
    assert_eq!(f["remedy"], "tether login github");
    assert_eq!(
        code, 0,
        "a warning alone does not fail the doctor: {report}"
    );
}

/// Notion's dynamic registrations expire after a day (`client_secret_expires_at`); at a
/// time scale of 4, in six hours: an error.
#[test]
fn a_registration_that_expires_is_forecast() {
    let (home, _sim) = signed_in_at("notion", "4");
    let forecast = list_json(&home)[0]["forecast"].clone();
    assert_eq!(forecast["level"], "error", "{forecast}");
    assert_eq!(forecast["reason"], "the client registration expires");
    let within = forecast["within_secs"].as_i64().unwrap();
    assert!((5 * 3600..=6 * 3600).contains(&within), "{forecast}");

    let status = home.run(&["status", "notion"]).ok().stdout;
    assert!(
        status.contains("error: sign in again within 5h (the client registration expires)"),
        "{status}"
    );
    let (code, report) = doctor(&home, "notion");
    let f = finding(&report, "forecast");
    assert_eq!(f["status"], "fail", "{f}");
    assert_eq!(f["remedy"], "tether login notion");
    assert_eq!(code, 1);
}

/// A profile that says nothing about lifetimes has no forecast.
#[test]
fn no_known_limit_no_forecast() {
    let (home, _sim) = signed_in_at("generic", "1");
    assert!(list_json(&home)[0]["forecast"].is_null());
    let (_, report) = doctor(&home, "generic");
    let checks: Vec<&Value> = report["findings"]
        .as_array()
        .or_else(|| report.as_array())
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "forecast")
        .collect();
    assert!(checks.is_empty(), "{checks:?}");
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn a_dead_grant_is_notified_once_over_the_session_bus() {
    if let Some(missing) = ["dbus-run-session", "dbus-monitor"]
        .iter()
        .find(|t| !have(t))
    {
        assert!(
            std::env::var("CI").is_err(),
            "{missing} is missing: .ci/run must install dbus"
        );
        eprintln!("skipped: {missing} is not installed");
        return;
    }
    let out = Command::new("timeout")
        .args(["120", "dbus-run-session", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            &test_name(module_path!(), "inside_a_bus_session"),
            "--nocapture",
        ])
        .env("TETHER_TEST_BUS_SESSION", "1")
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

/// Runs inside the D-Bus session started above: `tether serve` with notifications on, a
/// grant the server revokes, and `dbus-monitor` counting what reached the bus.
#[test]
#[ignore = "runs inside a private D-Bus session started by a_dead_grant_is_notified_once_over_the_session_bus"]
fn inside_a_bus_session() {
    if std::env::var("TETHER_TEST_BUS_SESSION").is_err() {
        return;
    }
    let bus = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap();
    let watched = tempfile::NamedTempFile::new().unwrap();
    let mut monitor = Command::new("dbus-monitor")
        .args(["--session", "interface='org.freedesktop.Notifications'"])
        .stdout(Stdio::from(watched.reopen().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Access tokens live two seconds: the scheduler refreshes every second and a half.
    let (home, sim) = signed_in_at("generic", "1800");
    let serve = Serve::start_env(
        &home,
        &[
            ("DBUS_SESSION_BUS_ADDRESS", bus.as_str()),
            ("TETHER_NOTIFICATIONS", "1"),
        ],
    );
    // A client that keeps sending a wrong secret is told about once.
    for _ in 0..7 {
        let refused = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", "authorization: Bearer not-the-secret"])
            .arg(format!("{}/c/generic/mcp", serve.base))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&refused.stdout), "401");
    }
    std::thread::sleep(Duration::from_secs(2));
    sim.admin("revoke-all");
    let deadline = Instant::now() + Duration::from_secs(30);
    while home.status("generic")["state"] != "needs-reauth" {
        assert!(Instant::now() < deadline, "the grant never died");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Time for the notification, and for more of them if the cause were said again.
    std::thread::sleep(Duration::from_secs(3));
    let log = serve.stop();
    let _ = monitor.kill();
    let _ = monitor.wait();
    let seen = std::fs::read_to_string(watched.path()).unwrap();
    let calls: Vec<&str> = seen
        .split("method call ")
        .filter(|m| m.contains("member=Notify"))
        .collect();
    let about = |what: &str| calls.iter().filter(|c| c.contains(what)).count();
    assert_eq!(calls.len(), 2, "monitor saw:\n{seen}\nserve logged:\n{log}");
    assert_eq!(about("'generic' needs a new sign-in"), 1, "{seen}");
    assert_eq!(about("tether login generic"), 1, "{seen}");
    assert_eq!(about("a secret refused for 'generic' 5 times"), 1, "{seen}");
    assert!(!seen.contains("not-the-secret"), "{seen}");
    crate::support::assert_no_tokens(&seen);
}
