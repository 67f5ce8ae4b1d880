//! What the integration tests share, included by every test binary with
//! `#[path = "../support/mod.rs"] mod support;`.
//!
//! - here: the real `tether` binary against a throwaway home ([`Home`], [`Run`]), isolated
//!   from the user's keyring, config files and environment; homes signed in to a simulator;
//!   the tests' HTTP client; small checks (no token in the clear, files under a folder);
//! - [`processes`]: `tether sim` and `tether serve` as child processes, a `tether stdio`
//!   session (re-exported here);
//! - [`oauth_client`]: an OAuth and MCP client written for the tests alone, to drive the
//!   simulator the way a third-party client would;
//! - [`site`]: loopback servers that serve exactly the documents a test gives them;
//! - [`tether_signin`]: a client signing in to tether itself (register, the consent page,
//!   the code redeemed);
//! - [`postgres`]: a throwaway PostgreSQL cluster for the shared store;
//! - [`peers`]: the third-party peers `tests/peers/install.sh` installs, and what a test
//!   does without them;
//! - [`tmux`]: a program in a terminal of its own, driven by keys and read off the screen.
//!
//! Each binary uses part of it.
#![allow(dead_code, unused_imports)]

pub mod oauth_client;
pub mod peers;
pub mod postgres;
pub mod processes;
pub mod site;
pub mod tether_signin;
pub mod tmux;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tether_core::config::{Config, KeySourceChoice};
use tether_core::paths::Paths;
use tether_core::vault::Vault;

pub use processes::{STDIO_INITIALIZE, Serve, Sim, stdio_session};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

/// The repository's root: the tether package lives in `crates/tether`.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A stand-in browser (curl) that follows the automatic consent of a simulated provider
/// to tether's loopback callback; set it as `$BROWSER`.
pub fn browser() -> PathBuf {
    repo().join("tests/fixtures/fetch-browser")
}

/// The tests' own HTTP client: it never follows a redirect (a test looks at the 3xx
/// itself) and gives up after 30 s rather than hang the run.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// A JSON-RPC `tools/list` request.
pub fn list_tools() -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
}

/// A loopback port free right now, for a process that must be told its port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The vault under `home`, its key on file.
pub fn vault_at(home: &Path) -> Vault {
    let mut config = Config::default();
    config.vault.key_source = KeySourceChoice::File;
    Vault::open(&Paths::under(home.to_path_buf()), &config).unwrap()
}

/// The name the test harness knows test `name` of the module at `module` (its
/// `module_path!()`) by, to run that one test again in a child process: the path without
/// the binary's name.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// A fresh TETHER_HOME that is removed when dropped.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("tether-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn vault_file(&self) -> PathBuf {
        self.path().join("vault.tether")
    }

    /// The user's home folder as `tether` sees it (`$HOME`): where MCP clients' config
    /// files are looked for, so tests never read or write the real ones.
    pub fn user(&self) -> PathBuf {
        self.path().join("user")
    }

    /// `tether` with this home, the key on file, and no session bus, so tests never
    /// touch the keyring of the machine they run on.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(bin());
        cmd.env("TETHER_HOME", self.path())
            .env("HOME", self.user())
            .env("XDG_CONFIG_HOME", self.user().join(".config"))
            .env_remove("CODEX_HOME")
            .env_remove("COPILOT_HOME")
            .env("TETHER_KEY_SOURCE", "file")
            .env_remove("TETHER_VAULT_KEY")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .env("TETHER_NOTIFICATIONS", "0")
            .env("RUST_BACKTRACE", "0");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().expect("run tether"))
    }

    /// Connection `name` as `tether status NAME --json` shows it.
    pub fn status(&self, name: &str) -> Value {
        serde_json::from_str(&self.run(&["status", name, "--json"]).ok().stdout).unwrap()
    }

    /// `tether login NAME` with the stand-in browser, given 20 s; add arguments, or set
    /// another `BROWSER`, before running it.
    pub fn login_cmd(&self, name: &str) -> Command {
        let mut cmd = self.cmd();
        cmd.args(["login", name, "--timeout", "20"])
            .env("BROWSER", browser());
        cmd
    }

    /// `tether login NAME` with the stand-in browser.
    pub fn login(&self, name: &str) -> Run {
        Run::of(self.login_cmd(name).output().expect("run tether login"))
    }

    /// `tether login NAME` with this browser command instead of the stand-in.
    pub fn login_via(&self, name: &str, browser: impl AsRef<OsStr>) -> Run {
        Run::of(
            self.login_cmd(name)
                .env("BROWSER", browser)
                .output()
                .expect("run tether login"),
        )
    }
}

pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(out: Output) -> Self {
        Self {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.status, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A home with connection `profile` added (not signed in) to a fresh `tether sim` of that
/// profile, whose lifetimes are divided by `time_scale`, started with `sim_flags`.
pub fn added(profile: &str, time_scale: &str, sim_flags: &[&str]) -> (Home, Sim) {
    let sim = Sim::start_with(profile, time_scale, sim_flags);
    let home = Home::new();
    home.run(&["add", profile, &sim.mcp_url]).ok();
    (home, sim)
}

/// A home with connection `profile` to a fresh simulator of that profile, signed in.
pub fn signed_in(profile: &str) -> (Home, Sim) {
    signed_in_at(profile, "1")
}

/// The same against a simulator whose lifetimes are divided by `time_scale`.
pub fn signed_in_at(profile: &str, time_scale: &str) -> (Home, Sim) {
    let (home, sim) = added(profile, time_scale, &[]);
    let out = home.login(profile).ok();
    assert!(out.stdout.contains("Authorized"), "{}", out.stdout);
    (home, sim)
}

/// A simulated provider started in this process (every lifetime divided by
/// `time_scale`) and a home whose vault holds one connection to it, named after the
/// profile and signed in through `tether login` with the stand-in browser.
pub async fn signed_in_here(
    profile: tether_sim::Profile,
    time_scale: f64,
) -> (tether_sim::SimHandle, Home) {
    let sim = tether_sim::start(tether_sim::SimOptions {
        time_scale,
        ..tether_sim::SimOptions::new(profile)
    })
    .await
    .unwrap();
    let home = Home::new();
    home.run(&["add", profile.as_str(), sim.mcp_url().as_str()])
        .ok();
    home.login(profile.as_str()).ok();
    (sim, home)
}

/// The secret of `client`'s endpoint for connection `name` (created on first use).
pub fn secret_for(home: &Home, name: &str, client: &str) -> String {
    secret_in(&home.run(&["url", name, "--client", client]).ok().stdout)
}

/// The endpoint secret in what `tether url` printed.
pub fn secret_in(url_output: &str) -> String {
    let line = url_output.lines().nth(1).unwrap();
    line.trim()
        .rsplit("/s/")
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .to_string()
}

/// Clients calling `tools/list` through local endpoints every 20 ms until a deadline,
/// counting their calls and the refused ones.
pub struct Hammer {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    calls: std::sync::Arc<std::sync::atomic::AtomicU64>,
    refused: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Hammer {
    /// `per_endpoint` clients on each of `endpoints`, calling until `deadline`.
    pub fn start(endpoints: &[String], per_endpoint: usize, deadline: std::time::Instant) -> Self {
        use std::sync::atomic::Ordering;
        let http = reqwest::Client::new();
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let refused = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut tasks = Vec::new();
        for endpoint in endpoints {
            for _ in 0..per_endpoint {
                let (http, endpoint) = (http.clone(), endpoint.clone());
                let (calls, refused) = (calls.clone(), refused.clone());
                tasks.push(tokio::spawn(async move {
                    while std::time::Instant::now() < deadline {
                        if !tools_listed(&http, &endpoint).await {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                        calls.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }));
            }
        }
        Self {
            tasks,
            calls,
            refused,
        }
    }

    /// Waits for every client to pass the deadline: (calls, refused).
    pub async fn finish(self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        for t in self.tasks {
            t.await.unwrap();
        }
        (
            self.calls.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }
}

/// One `tools/list` through a local endpoint (the stateless protocol revision): whether it
/// came back with tools. A refusal is printed.
pub async fn tools_listed(http: &reqwest::Client, endpoint: &str) -> bool {
    let Ok(res) = http
        .post(endpoint)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/list")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
    else {
        return false;
    };
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let ok = status == 200 && body["result"]["tools"].is_array();
    if !ok {
        eprintln!("refused: {status} {body}");
    }
    ok
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Any token-shaped value (`<profile>_at_…`, `<profile>_rt_…`) beyond a masked prefix.
pub fn assert_no_tokens(text: &str) {
    for marker in ["_at_", "_rt_"] {
        for (i, _) in text.match_indices(marker) {
            let tail: String = text[i + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            assert!(tail.len() < 6, "a token leaked: …{marker}{tail}");
        }
    }
}
