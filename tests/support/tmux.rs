//! A program in a terminal of its own, for tests that drive a terminal UI as a user does:
//! a tmux server on a private socket (nothing of the user's tmux, and killed when dropped),
//! keys sent, the pane captured and read. `.ci/run` installs tmux; elsewhere a test without
//! it says it was skipped, but under `CI=true` a missing tmux is a failure.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// One program running in a tmux pane of its own server. The pane stays after the program
/// ends, so what it printed last can still be read.
pub struct Session {
    socket: String,
    /// The server's config file, kept until the server is gone.
    _config: tempfile::NamedTempFile,
}

impl Session {
    /// `tmux ARGS` against this session's server; what it printed.
    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane as it is on screen.
    pub fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "main"])
    }

    /// Presses each key (tmux key names: `Enter`, `Down`, `q`…), a quarter second apart.
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "main", k]);
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Presses the keys all at once, as one burst of input.
    pub fn burst(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `text` as it is (no key names), as one burst of input, and gives the program a
    /// quarter second to take it.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "main", "-l", text]);
        std::thread::sleep(Duration::from_millis(250));
    }

    /// Waits until the pane shows `text`, returning the pane.
    #[track_caller]
    pub fn wait_for(&self, text: &str, within: Duration) -> String {
        self.wait_until(&format!("'{text}'"), within, |pane| pane.contains(text))
    }

    /// Waits until `ready` holds for the pane (`what` names it for the failure), returning
    /// the pane.
    #[track_caller]
    pub fn wait_until(&self, what: &str, within: Duration, ready: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let pane = self.capture();
            if ready(&pane) {
                return pane;
            }
            assert!(
                start.elapsed() < within,
                "{what} never appeared; the pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Presses `key` and waits (10 s at most) for the program to end.
    #[track_caller]
    pub fn end_with(&self, key: &str) {
        self.keys(&[key]);
        let start = Instant::now();
        while self.alive() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(!self.alive(), "{key} did not end the program");
    }

    /// Whether the program is still running.
    pub fn alive(&self) -> bool {
        self.tmux(&["display-message", "-p", "-t", "main", "#{pane_dead}"])
            .trim()
            == "0"
    }
}

impl Session {
    /// Closes the terminal, as a user closing its window would, and waits until the program
    /// has gone; one that outlives the hangup for 5 s (Gemini CLI ignores it) is killed, with
    /// every process it started in its terminal.
    #[track_caller]
    pub fn close(self) {
        let pid = self.pane_pid();
        self.kill_server();
        let Some(pid) = pid else { return };
        if !gone(pid, Duration::from_secs(5)) {
            kill_group(pid);
            assert!(
                gone(pid, Duration::from_secs(5)),
                "the program outlived its terminal"
            );
        }
    }

    /// Stops the server, and removes its socket (tmux leaves it behind).
    fn kill_server(&self) {
        let socket = self.tmux(&["display-message", "-p", "#{socket_path}"]);
        self.tmux(&["kill-server"]);
        if !socket.trim().is_empty() {
            let _ = std::fs::remove_file(socket.trim());
        }
    }

    /// The process the pane runs; it leads the process group of all it starts.
    fn pane_pid(&self) -> Option<u32> {
        self.tmux(&["display-message", "-p", "-t", "main", "#{pane_pid}"])
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let pid = self.pane_pid();
        self.kill_server();
        if let Some(pid) = pid
            && !gone(pid, Duration::from_secs(2))
        {
            kill_group(pid);
        }
    }
}

/// Whether process `pid` has ended within `within`.
fn gone(pid: u32, within: Duration) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let start = Instant::now();
    while proc.exists() {
        if start.elapsed() > within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// SIGKILL to process group `pgid`: a pane's program and everything it started.
fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
}

/// Shell command `command` running in a terminal of `cols`×`rows`, or `None` (said)
/// without tmux. `test` names the server's socket.
pub fn shell(test: &str, size: (u16, u16), command: &str) -> Option<Session> {
    start(test, size, None, &["sh", "-c", command])
}

/// `cmd` (its program, arguments and folder) running in a terminal of `cols`×`rows` with
/// only the environment `cmd` sets, or `None` (said) without tmux.
pub fn program(test: &str, size: (u16, u16), cmd: &Command) -> Option<Session> {
    let mut argv = vec!["env".to_string(), "-i".to_string()];
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            argv.push(format!(
                "{}={}",
                key.to_string_lossy(),
                value.to_string_lossy()
            ));
        }
    }
    argv.push(cmd.get_program().to_string_lossy().into_owned());
    argv.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    start(test, size, cmd.get_current_dir(), &argv)
}

/// Whether tmux is installed; when not, says the test is skipped (a failure under CI).
pub fn available() -> bool {
    if Command::new("tmux").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "tmux is missing: .ci/run must install it"
    );
    // Straight to stderr, past the test harness's capture, so the skip is seen.
    let _ = writeln!(std::io::stderr(), "skipped: tmux is not installed");
    false
}

fn start(
    test: &str,
    (cols, rows): (u16, u16),
    folder: Option<&Path>,
    argv: &[&str],
) -> Option<Session> {
    if !available() {
        return None;
    }
    let mut config = tempfile::NamedTempFile::new().expect("a temp file");
    // No user config; the pane stays when its program ends, to be read.
    writeln!(config, "set -g remain-on-exit on").unwrap();
    let socket = format!("tether-{test}-{}", std::process::id());
    let mut tmux = Command::new("tmux");
    tmux.args(["-L", &socket, "-f"])
        .arg(config.path())
        .args(["new-session", "-d", "-s", "main"])
        .args(["-x", &cols.to_string(), "-y", &rows.to_string()]);
    if let Some(folder) = folder {
        tmux.arg("-c").arg(folder);
    }
    let status = tmux.arg("--").args(argv).status().expect("tmux runs");
    assert!(status.success(), "tmux did not start {argv:?}");
    Some(Session {
        socket,
        _config: config,
    })
}
