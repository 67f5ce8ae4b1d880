//! `tether sim` and `tether serve` as child processes, stopped when dropped, and a session
//! through `tether stdio` as a command-launching MCP client runs it.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use super::{Home, bin};

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
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it at once (SIGKILL), as a crash would, and returns what it logged.
    pub fn kill_hard(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log.take().unwrap().join().unwrap()
    }

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

/// The first line a child printed on its (piped) stdout: the URL it serves.
fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}
