//! Helpers shared by the integration tests: run the real `tether` binary against a
//! throwaway home folder, isolated from the user's keyring and environment.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tether")
}

/// A stand-in browser (curl) that follows the automatic consent of a simulated provider
/// to tether's loopback callback; set it as `$BROWSER`.
pub fn browser() -> String {
    format!(
        "{}/../../tests/fixtures/fetch-browser",
        env!("CARGO_MANIFEST_DIR")
    )
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
            .env("TETHER_KEY_SOURCE", "file")
            .env_remove("TETHER_VAULT_KEY")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .env("RUST_BACKTRACE", "0");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(self.cmd().args(args).output().expect("run tether"))
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

/// A home with connection `profile` to a fresh simulator of that profile, signed in.
pub fn signed_in(profile: &str) -> (Home, Sim) {
    signed_in_at(profile, "1")
}

/// The same against a simulator whose lifetimes are divided by `time_scale`.
pub fn signed_in_at(profile: &str, time_scale: &str) -> (Home, Sim) {
    let sim = Sim::start(profile, time_scale);
    let home = Home::new();
    home.run(&["add", profile, &sim.mcp_url]).ok();
    Run::of(
        home.cmd()
            .args(["login", profile, "--timeout", "20"])
            .env("BROWSER", browser())
            .output()
            .unwrap(),
    )
    .ok();
    (home, sim)
}

/// A `tether sim` process, stopped when dropped.
pub struct Sim {
    child: Child,
    pub mcp_url: String,
    pub base: String,
}

impl Sim {
    pub fn start(profile: &str, time_scale: &str) -> Self {
        Self::start_with(profile, time_scale, &[])
    }

    /// A simulator with more `tether sim` options, e.g. `--device-flow`.
    pub fn start_with(profile: &str, time_scale: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args(["sim", "--profile", profile, "--time-scale", time_scale])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        let mcp_url = line.trim().to_string();
        let base = mcp_url.trim_end_matches("/mcp").to_string();
        Self {
            child,
            mcp_url,
            base,
        }
    }

    pub fn stats(&self) -> Value {
        let out = Command::new("curl")
            .args(["-fsS", &format!("{}/__sim/stats", self.base)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// An admin action without a body: `revoke-all` (a user revoking the app),
    /// `evict-access` (a token cap evicting every live access token).
    pub fn admin(&self, action: &str) {
        let ok = Command::new("curl")
            .args([
                "-fsS",
                "-X",
                "POST",
                &format!("{}/__sim/{action}", self.base),
            ])
            .status()
            .unwrap();
        assert!(ok.success(), "POST /__sim/{action} failed");
    }

    pub fn faults(&self, plan: Value) {
        let ok = Command::new("curl")
            .args([
                "-fsS",
                "-o",
                "/dev/null",
                "-H",
                "content-type: application/json",
            ])
            .args([
                "-d",
                &plan.to_string(),
                &format!("{}/__sim/faults", self.base),
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `tether serve` process on a free port; stopped (SIGTERM) when dropped. Its log is
/// drained continuously, as a terminal would.
pub struct Serve {
    child: Child,
    pub base: String,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    pub fn start(home: &Home) -> Self {
        Self::start_env(home, &[])
    }

    /// Started with `env` added to its environment.
    pub fn start_env(home: &Home, env: &[(&str, &str)]) -> Self {
        let mut child = home
            .cmd()
            .args(["serve", "--bind", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .env("RUST_LOG", "debug,hyper_util=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let line = first_line(&mut child);
        assert!(
            line.starts_with("http://127.0.0.1:"),
            "serve printed {line:?}"
        );
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        Self {
            child,
            base: line.trim().to_string(),
            log: Some(log),
        }
    }

    /// Asks it to stop (SIGTERM) without waiting.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Stops it and returns what it logged.
    pub fn stop(mut self) -> String {
        self.terminate();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status:?}");
        self.log.take().unwrap().join().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON-RPC `initialize` line a stdio client sends first.
pub const STDIO_INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;

/// Runs `tether stdio NAME --client desktop` with the proxy address `bind` as a
/// command-launching client does: `lines` on its stdin, then end of input; returns what it
/// printed and how it ended.
pub fn stdio_session<L: AsRef<str>>(home: &Home, name: &str, bind: &str, lines: &[L]) -> Output {
    use std::io::Write;
    let mut child = home
        .cmd()
        .args(["stdio", name, "--client", "desktop"])
        .env("TETHER_BIND", bind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{}", line.as_ref()).unwrap();
        }
    } // EOF ends the session
    child.wait_with_output().unwrap()
}

/// The secret of `client`'s endpoint for connection `name` (created on first use).
pub fn secret_for(home: &Home, name: &str, client: &str) -> String {
    let out = home.run(&["url", name, "--client", client]).ok().stdout;
    let line = out.lines().nth(1).unwrap();
    line.trim()
        .rsplit("/s/")
        .next()
        .unwrap()
        .trim_end_matches("/mcp")
        .to_string()
}

/// The first line a child printed on its (piped) stdout: the URL it serves.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
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
    let out = home
        .cmd()
        .args(["login", profile.as_str(), "--timeout", "20"])
        .env("BROWSER", browser())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (sim, home)
}
