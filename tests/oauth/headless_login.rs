//! Signing in over SSH, through the `tether` binary against `tether sim` on loopback:
//! `login --no-browser` with the redirect address pasted on stdin (the browser on another
//! machine) or the loopback callback (the browser on this one), and the device grant
//! (RFC 8628) where the simulated server offers it. No secret reaches the terminal.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;
use url::Url;

use crate::support::{Home, Run, added};

/// A `tether login` in progress, its stdin open for pastes, its stdout read line by line.
struct Login {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
}

impl Login {
    fn start(home: &Home, name: &str, flags: &[&str]) -> Self {
        let mut child = home
            .cmd()
            .args(["login", name, "--timeout", "30"])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
            all
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut all = String::new();
            let _ = err.read_to_string(&mut all);
            all
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            stdout,
            stderr,
        }
    }

    /// The first stdout line containing `needle`, waiting up to 20 s for it.
    fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no line with {needle:?} on stdout");
    }

    /// The authorization URL printed for the user.
    fn authorization_url(&self) -> Url {
        Url::parse(self.line_with("/authorize?").trim()).unwrap()
    }

    fn paste(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for the login to end (stdin left open: the login must not need its end).
    fn finish(mut self) -> Run {
        let deadline = Instant::now() + Duration::from_secs(40);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the login did not end");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(self.stdin.take());
        Run {
            status: status.code().unwrap_or(-1),
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

/// Plays the browser on another machine: GET the authorization URL without following
/// the redirect to a loopback it cannot reach, and return the address it ends on.
fn redirect_of(auth_url: &Url) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{redirect_url}",
            auth_url.as_str(),
        ])
        .output()
        .unwrap();
    let location = String::from_utf8(out.stdout).unwrap();
    assert!(location.contains("code="), "{location}");
    location
}

fn get(url: &str) -> String {
    let out = Command::new("curl").args(["-sS", url]).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn query(url: &Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

/// The login failed (exit 1) saying `why`, and left no token behind.
#[track_caller]
fn assert_failed_without_token(out: &Run, home: &Home, name: &str, why: &str) {
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains(why), "{}", out.stderr);
    assert!(home.status(name)["token"].is_null());
}

/// Secrets the simulator issues carry `<prefix>_<kind>_`; none may be printed whole.
#[track_caller]
fn assert_no_secrets(run: &Run, extra: &[&str]) {
    let all = format!("{}{}", run.stdout, run.stderr);
    for kind in ["_at_", "_rt_", "_code_", "_dc_", "_cs_"] {
        for prefix in ["gen", "gh"] {
            let marker = format!("{prefix}{kind}");
            assert!(!all.contains(&marker), "{marker} printed:\n{all}");
        }
    }
    for secret in extra {
        assert!(!all.contains(secret), "a secret was printed:\n{all}");
    }
}

#[test]
fn a_pasted_redirect_signs_in_after_a_typo_and_a_foreign_paste() {
    let (home, sim) = added("generic", "1", &[]);
    let mut login = Login::start(&home, "generic", &["--no-browser"]);
    let auth_url = login.authorization_url();
    login.line_with("paste it here");
    let location = redirect_of(&auth_url);
    let code = query(&Url::parse(&location).unwrap(), "code");
    login.paste("garbage");
    let state = query(&auth_url, "state");
    login.paste(&location.replace(&state, "another-sign-in"));
    login.paste(&location);
    let out = login.finish().ok();
    assert!(
        out.stdout.contains("Authorized 'generic'"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("that is not a web address"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("that address is from another sign-in (its state does not match)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("pasted address accepted"),
        "{}",
        out.stderr
    );
    assert_no_secrets(&out, &[&code]);
    let s = home.status("generic");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"], 1);
    assert_eq!(sim.stats()["totals"]["authorization_code_grants"], 1);
}

#[test]
fn a_pasted_error_redirect_fails_the_login_with_the_servers_reason() {
    let (home, sim) = added("generic", "1", &[]);
    let mut login = Login::start(&home, "generic", &["--no-browser"]);
    let auth_url = login.authorization_url();
    let mut denied = Url::parse(&query(&auth_url, "redirect_uri")).unwrap();
    denied
        .query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "the user said no")
        .append_pair("state", &query(&auth_url, "state"))
        .append_pair("iss", &sim.base);
    login.paste(denied.as_str());
    let why = "answered the login with 'access_denied' (the user said no)";
    assert_failed_without_token(&login.finish(), &home, "generic", why);
}

#[test]
fn the_loopback_callback_still_ends_a_login_that_waits_for_a_paste() {
    let (home, _sim) = added("generic", "1", &[]);
    let login = Login::start(&home, "generic", &["--no-browser"]);
    let auth_url = login.authorization_url();
    // The browser is on this machine after all: it follows the redirect to tether.
    let ok = Command::new("curl")
        .args(["-fsSL", "-o", "/dev/null", auth_url.as_str()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = login.finish().ok();
    assert!(out.stderr.contains("callback received"), "{}", out.stderr);
    assert_eq!(home.status("generic")["state"], "healthy");
}

/// The HTTP status curl saw for a GET of `url`, with `extra` arguments.
fn status_of(url: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// A web page (`<img src=…/callback>`) or a local process that reaches the callback first
/// cannot end the sign-in: a wrong or missing `state`, or a `Host` that is not the
/// redirect URI's, is answered 400 and the login keeps waiting for the real one.
#[test]
fn a_stray_callback_does_not_end_the_sign_in() {
    let (home, sim) = added("generic", "1", &[]);
    let login = Login::start(&home, "generic", &["--no-browser"]);
    let auth_url = login.authorization_url();
    let callback = query(&auth_url, "redirect_uri");
    let state = query(&auth_url, "state");
    let wrong_state = format!("{callback}?code=stray&state=another-sign-in");
    assert_eq!(status_of(&wrong_state, &[]), "400");
    assert_eq!(status_of(&format!("{callback}?code=stray"), &[]), "400");
    let right_state = format!("{callback}?code=stray&state={state}");
    let rebound = ["-H", "Host: attacker.example"];
    assert_eq!(status_of(&right_state, &rebound), "400");
    let ok = Command::new("curl")
        .args(["-fsSL", "-o", "/dev/null", auth_url.as_str()])
        .status()
        .unwrap();
    assert!(ok.success());
    let out = login.finish().ok();
    assert!(out.stderr.contains("callback received"), "{}", out.stderr);
    assert_eq!(home.status("generic")["state"], "healthy");
    assert_eq!(sim.stats()["totals"]["authorization_code_grants"], 1);
}

/// Starts a device login and returns it with the address that approves it.
fn device_login(home: &Home, name: &str, flags: &[&str]) -> (Login, String) {
    let login = Login::start(home, name, flags);
    let code = login.line_with("enter the code");
    assert!(code.contains("/device"), "{code}");
    let complete = login.line_with("user_code=");
    let url = complete
        .trim()
        .trim_start_matches("(or open ")
        .trim_end_matches(')')
        .to_string();
    (login, url)
}

#[test]
fn the_device_grant_signs_in_when_approved_elsewhere() {
    // GitHub offers the device grant; a 5-second interval lasts one.
    let (home, sim) = added("github", "5", &[]);
    let (login, approve) = device_login(&home, "github", &["--no-browser"]);
    assert!(get(&approve).contains("approved"));
    let out = login.finish().ok();
    assert!(out.stdout.contains("Authorized 'github'"), "{}", out.stdout);
    assert!(
        out.stderr.contains("device sign-in: approved"),
        "{}",
        out.stderr
    );
    assert_no_secrets(&out, &[]);
    let s = home.status("github");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["has_refresh_token"], true);
    let totals = &sim.stats()["totals"];
    assert_eq!(totals["device_code_grants"], 1);
    assert_eq!(totals["device_polls_too_fast"], 0);
    // The token refreshes like any other.
    home.run(&["refresh", "github"]).ok();
    assert_eq!(home.status("github")["token"]["generation"], 2);
}

#[test]
fn slow_down_lengthens_every_later_poll() {
    let (home, sim) = added("generic", "5", &["--device-flow"]);
    sim.faults(json!({"slow_down_polls": 1}));
    let started = Instant::now();
    let (login, approve) = device_login(&home, "generic", &["--no-browser"]);
    get(&approve);
    login.finish().ok();
    let totals = &sim.stats()["totals"];
    assert_eq!(totals["slow_down_responses"], 1);
    assert_eq!(
        totals["device_polls_too_fast"], 0,
        "after slow_down tether waits 5 s more: {totals}"
    );
    assert!(started.elapsed() >= Duration::from_secs(6));
}

#[test]
fn a_denied_device_sign_in_fails_clearly_and_stores_nothing() {
    let (home, sim) = added("github", "5", &[]);
    let (login, approve) = device_login(&home, "github", &["--no-browser"]);
    assert!(get(&format!("{approve}&deny=1")).contains("denied"));
    let why = "answered the login with 'access_denied'";
    assert_failed_without_token(&login.finish(), &home, "github", why);
    assert_eq!(sim.stats()["totals"]["device_denials"], 1);
}

#[test]
fn an_expired_device_code_fails_clearly() {
    // A 15-minute device code lasts two seconds.
    let (home, _sim) = added("github", "450", &[]);
    let (login, _approve) = device_login(&home, "github", &["--no-browser"]);
    let why = "the device code expired before the sign-in was approved";
    assert_failed_without_token(&login.finish(), &home, "github", why);
}

#[test]
fn device_against_a_server_without_the_grant_is_an_error() {
    let (home, sim) = added("generic", "1", &[]);
    let out = home.run(&["login", "generic", "--device", "--timeout", "5"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("does not offer the device authorization grant (RFC 8628)"),
        "{}",
        out.stderr
    );
    assert_eq!(sim.stats()["registrations"], 0, "nothing is registered");
}

#[test]
fn no_device_takes_the_paste_even_where_the_device_grant_is_offered() {
    let (home, sim) = added("github", "5", &[]);
    let mut login = Login::start(&home, "github", &["--no-browser", "--no-device"]);
    let location = redirect_of(&login.authorization_url());
    login.paste(&location);
    let out = login.finish().ok();
    assert!(out.stdout.contains("Authorized 'github'"), "{}", out.stdout);
    assert_eq!(sim.stats()["totals"]["device_authorizations"], 0);
}

#[test]
fn a_client_registered_without_the_device_grant_falls_back_to_the_paste() {
    let (home, sim) = added("github", "5", &[]);
    // Signed in once at a desktop: the registration holds no device grant.
    home.login("github").ok();
    let out = home.run(&["login", "github", "--device", "--timeout", "5"]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(out.stderr.contains("unauthorized_client"), "{}", out.stderr);
    assert!(
        out.stderr.contains("--reregister --device"),
        "{}",
        out.stderr
    );

    let mut login = Login::start(&home, "github", &["--no-browser"]);
    let location = redirect_of(&login.authorization_url());
    login.paste(&location);
    let out = login.finish().ok();
    assert!(
        out.stderr
            .contains("signing in through the browser instead"),
        "{}",
        out.stderr
    );
    assert_eq!(home.status("github")["token"]["generation"], 2);
    assert_eq!(sim.stats()["registrations"], 1, "no silent re-registration");
}
