//! `tether service` on Linux, through the binary: the unit it writes, systemd's own
//! verifier accepting it, the unit's ExecStart line starting a tether that reports readiness
//! and keep-alives over a real notify socket (a datagram socket here stands in for systemd)
//! and stops cleanly on SIGTERM, and installing twice, over a hand-edited unit, and
//! uninstalling when nothing is installed. No user manager answers in these tests (the
//! runtime folder is empty), so nothing on the machine running them is enabled or started.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Home, Run, free_port};

/// `tether ARGS` with no systemd user manager to reach.
fn run(home: &Home, args: &[&str]) -> Run {
    Run::of(service_cmd(home).args(args).output().unwrap())
}

fn service_cmd(home: &Home) -> Command {
    let runtime = home.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = home.cmd();
    cmd.env("XDG_RUNTIME_DIR", &runtime);
    cmd
}

fn unit_path(home: &Home) -> PathBuf {
    home.user().join(".config/systemd/user/tether.service")
}

/// The words of a systemd command line, unquoted.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {}
            '"' => {
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => word.extend(chars.next()),
                        '"' => break,
                        '%' | '$' if chars.peek() == Some(&c) => {
                            chars.next();
                            word.push(c);
                        }
                        c => word.push(c),
                    }
                }
                words.push(word);
            }
            c => {
                let mut word = String::from(c);
                while let Some(&c) = chars.peek().filter(|c| **c != ' ') {
                    word.push(c);
                    chars.next();
                }
                words.push(word);
            }
        }
    }
    words
}

fn setting<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// `systemd-analyze verify` on the unit; None where systemd's tools are not installed
/// (always present under `CI=true`, where .ci/run installs them).
fn verify(home: &Home, unit: &Path) -> Option<std::process::Output> {
    let runtime = home.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(unit)
        .env("HOME", home.user())
        .env("XDG_CONFIG_HOME", home.user().join(".config"))
        .env("XDG_RUNTIME_DIR", &runtime)
        .output();
    match out {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").is_err(),
                "systemd-analyze is missing under CI=true: .ci/run installs Debian's systemd"
            );
            eprintln!("skipped: systemd-analyze is not installed (Debian package systemd)");
            None
        }
        Err(e) => panic!("systemd-analyze: {e}"),
    }
}

#[test]
fn install_writes_a_unit_systemd_accepts_and_keeps_hand_edits() {
    let home = Home::new();
    let port = free_port().to_string();
    let bind = format!("127.0.0.1:{port}");

    let out = run(&home, &["service", "install", "--bind", &bind]).ok();
    let unit = unit_path(&home);
    assert!(out.stdout.contains("Wrote "), "{}", out.stdout);
    // No user manager answers: nothing started, the exact commands printed instead.
    assert!(
        out.stdout.contains("systemctl --user daemon-reload")
            && out
                .stdout
                .contains("systemctl --user enable --now tether.service"),
        "{}",
        out.stdout
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    assert_eq!(setting(&text, "Type"), Some("notify"), "{text}");
    assert_eq!(setting(&text, "WatchdogSec"), Some("30"), "{text}");
    assert_eq!(setting(&text, "Restart"), Some("on-failure"), "{text}");
    let exec = words(setting(&text, "ExecStart").unwrap());
    let binary = std::fs::canonicalize(crate::support::bin()).unwrap();
    assert_eq!(Path::new(&exec[0]), binary, "{text}");
    assert_eq!(
        exec[1..],
        ["serve", "--service", "systemd", "--bind", &bind]
    );
    let environment = words(setting(&text, "Environment").unwrap());
    assert_eq!(
        environment,
        [format!("TETHER_HOME={}", home.path().display())]
    );
    assert!(!text.contains("KEY"), "no key source in the unit: {text}");

    if let Some(out) = verify(&home, &unit) {
        assert!(
            out.status.success(),
            "systemd-analyze verify refused the unit: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Twice: nothing changes.
    let again = run(&home, &["service", "install", "--bind", &bind]).ok();
    assert!(
        again.stdout.contains("already installed"),
        "{}",
        again.stdout
    );
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), text);

    // Edited by hand: left alone, and the way forward named.
    let edited = text.replace("RestartSec=2", "RestartSec=9");
    std::fs::write(&unit, &edited).unwrap();
    let refused = run(&home, &["service", "install", "--bind", &bind]);
    assert_eq!(refused.status, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("was edited") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), edited);
    let status = run(&home, &["service", "status"]).ok();
    assert!(
        status.stdout.contains("edited by hand"),
        "{}",
        status.stdout
    );
    let uninstall = run(&home, &["service", "uninstall"]);
    assert_eq!(uninstall.status, 2, "{}", uninstall.stderr);
    assert!(unit.exists());

    // --force replaces it and keeps the user's version beside it.
    let forced = run(&home, &["service", "install", "--force", "--bind", &bind]).ok();
    assert!(forced.stdout.contains("kept as"), "{}", forced.stdout);
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), text);
    let copies: Vec<PathBuf> = std::fs::read_dir(unit.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bak"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(std::fs::read_to_string(&copies[0]).unwrap(), edited);

    let status = run(&home, &["service", "status"]).ok();
    assert!(
        status.stdout.contains("service: installed as")
            && status.stdout.contains("serve --service systemd")
            && status.stdout.contains("no user manager answers")
            && status.stdout.contains("nothing serves this vault"),
        "{}",
        status.stdout
    );

    let removed = run(&home, &["service", "uninstall"]).ok();
    assert!(removed.stdout.contains("Removed "), "{}", removed.stdout);
    assert!(!unit.exists());
    let nothing = run(&home, &["service", "uninstall"]).ok();
    assert!(
        nothing.stdout.contains("not installed"),
        "{}",
        nothing.stdout
    );
    let restart = run(&home, &["service", "restart"]);
    assert_eq!(restart.status, 2, "{}", restart.stderr);
    assert!(
        restart.stderr.contains("tether service install"),
        "{}",
        restart.stderr
    );
}

#[test]
fn status_names_a_binary_moved_after_install() {
    let home = Home::new();
    run(&home, &["service", "install"]).ok();
    let unit = unit_path(&home);
    // What a moved binary leaves: tether's own unit, pointing at a path that is gone. The
    // unit is rewritten through `install` from a copy of the binary, then the copy removed.
    let copy = home.path().join("tether-copy");
    std::fs::copy(crate::support::bin(), &copy).unwrap();
    let out = Command::new(&copy)
        .args(["service", "install", "--force"])
        .envs(
            service_cmd(&home)
                .get_envs()
                .filter_map(|(k, v)| Some((k, v?))),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_file(&copy).unwrap();
    let status = run(&home, &["service", "status"]).ok();
    assert!(
        status.stdout.contains("no longer exists")
            && status.stdout.contains("tether service install"),
        "{}",
        status.stdout
    );
    assert!(unit.exists());
}

/// Reads datagrams until one contains `want`; every datagram read.
fn until(socket: &UnixDatagram, want: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = message.lines().any(|l| l == want);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
    panic!("no {want} within {within:?}; got {seen:?}");
}

#[test]
fn the_units_command_serves_with_readiness_and_keep_alives() {
    let home = Home::new();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    run(&home, &["service", "install", "--bind", &bind]).ok();
    let out = home
        .cmd()
        .args(["add", "todoist", "https://ai.todoist.net/mcp"])
        .args(["--api-key-env", "TODOIST_KEY"])
        .env("TODOIST_KEY", "tk_live_0123456789abcdef")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let text = std::fs::read_to_string(unit_path(&home)).unwrap();
    let exec = words(setting(&text, "ExecStart").unwrap());
    let environment = words(setting(&text, "Environment").unwrap());
    let (key, value) = environment[0].split_once('=').unwrap();

    // What systemd does for Type=notify with WatchdogSec=: a notify socket in the
    // environment, and the watchdog interval.
    let socket_path = home.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = home
        .cmd()
        .env_remove("TETHER_HOME")
        .env(key, value)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "3000000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .args(&exec[1..])
        .spawn()
        .unwrap();
    // `home.cmd()` runs the binary the unit names.
    assert_eq!(
        std::fs::canonicalize(crate::support::bin()).unwrap(),
        Path::new(&exec[0])
    );

    let first = until(&socket, "READY=1", Duration::from_secs(30));
    let ready = first.last().unwrap();
    assert!(ready.contains("STATUS="), "{ready}");
    // Keep-alives follow, about one a second.
    let mut beats = 0;
    while beats < 3 {
        until(&socket, "WATCHDOG=1", Duration::from_secs(5));
        beats += 1;
    }

    // Ready means serving: the endpoint answers, and the commands name the served address.
    let health = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{bind}/healthz"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&health.stdout), "200");
    let url = home.run(&["url", "todoist"]).ok();
    assert!(
        url.stdout.contains(&format!("http://{bind}/")),
        "{}",
        url.stdout
    );
    let status = run(&home, &["service", "status"]).ok();
    assert!(
        status.stdout.contains(&format!("serving: http://{bind}"))
            && status.stdout.contains(&format!("pid {}", child.id()))
            && status.stdout.contains("run by systemd"),
        "{}",
        status.stdout
    );
    assert!(home.path().join("serving.json").exists());

    // SIGTERM, as `systemctl stop` sends: STOPPING=1, a clean exit, the record withdrawn.
    let pid = child.id() as i32;
    assert_eq!(unsafe_free_kill(pid), 0);
    until(&socket, "STOPPING=1", Duration::from_secs(15));
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!home.path().join("serving.json").exists());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("tk_live_0123456789abcdef"), "{stderr}");
}

/// SIGTERM through the `kill` command (the tests forbid unsafe code).
fn unsafe_free_kill(pid: i32) -> i32 {
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}
