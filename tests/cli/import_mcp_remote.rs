//! `tether import mcp-remote` against the real thing: mcp-remote 0.15.1 (a pinned test peer)
//! signs in to a `tether sim` and writes its store; tether imports it, refreshes with the
//! same client, and leaves every source file as it found it. The bad-input cases use a
//! store written here in the same format.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tether_core::import::servers::Invocation;

use crate::support::{Home, Run, Sim, peers};

/// A throwaway `$HOME` (for mcp-remote and for the client configs tether reads) and
/// mcp-remote's store inside it.
struct Machine {
    home: tempfile::TempDir,
}

impl Machine {
    fn new() -> Self {
        Self {
            home: tempfile::Builder::new()
                .prefix("tether-import-")
                .tempdir()
                .unwrap(),
        }
    }

    fn auth_dir(&self) -> PathBuf {
        self.home.path().join(".mcp-auth")
    }

    fn v1(&self) -> PathBuf {
        self.auth_dir().join("mcp-remote-v1")
    }

    /// `tether import mcp-remote ARGS --dir <store>`, with this machine's home and config
    /// folders, run from inside the home (so no project config of the caller is read).
    fn import(&self, tether: &Home, args: &[&str]) -> Run {
        let mut cmd = tether.cmd();
        cmd.args(["import", "mcp-remote"])
            .args(args)
            .arg("--dir")
            .arg(self.auth_dir())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env_remove("MCP_REMOTE_CONFIG_DIR")
            .current_dir(self.home.path());
        Run::of(cmd.output().unwrap())
    }

    /// Claude Desktop's config, launching mcp-remote for `url` the usual way.
    fn claude_desktop_runs(&self, url: &str) {
        let dir = self.home.path().join(".config/Claude");
        std::fs::create_dir_all(&dir).unwrap();
        let config = json!({"mcpServers": {"sim": {
            "command": "npx", "args": ["-y", "mcp-remote@0.15.1", url]
        }}});
        std::fs::write(dir.join("claude_desktop_config.json"), config.to_string()).unwrap();
    }

    /// Signs mcp-remote in to `sim`: its browser step is a script that fetches the
    /// authorization URL and follows the automatic consent to mcp-remote's callback.
    /// `None` when the Node peers are not installed.
    fn mcp_remote_signs_in(&self, sim: &Sim) -> Option<()> {
        let node = peers::require(&["mcp-remote"])?;
        let script = peers::dir().join("node_modules/mcp-remote/dist/proxy.js");
        let mut child = Command::new(node)
            .arg(script)
            .arg(&sim.mcp_url)
            .env("HOME", self.home.path())
            .env("MCP_REMOTE_CONFIG_DIR", self.auth_dir())
            .env("BROWSER", support::browser())
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "tether-test", "version": "1"}}});
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{initialize}").unwrap();
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let answered = rx.recv_timeout(Duration::from_secs(60));
        drop(stdin); // EOF: mcp-remote shuts down.
        let _ = child.kill();
        let _ = child.wait();
        let line = answered.expect("mcp-remote answered initialize after signing in");
        assert!(line.contains("\"result\""), "{line}");
        Some(())
    }

    fn files(&self) -> Vec<(PathBuf, Vec<u8>, SystemTime)> {
        let mut files: Vec<_> = support::files_under(&self.auth_dir())
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                let mtime = std::fs::metadata(&p).unwrap().modified().unwrap();
                (p, bytes, mtime)
            })
            .collect();
        files.sort();
        files
    }

    fn only(&self, suffix: &str) -> (PathBuf, Value) {
        let path = support::files_under(&self.v1())
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .unwrap_or_else(|| panic!("mcp-remote wrote no *{suffix}"));
        let doc = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        (path, doc)
    }
}

/// A simulator, and mcp-remote signed in to it; `None` without the Node peers.
fn signed_in() -> Option<(Sim, Machine)> {
    let sim = Sim::start("generic", "1");
    let machine = Machine::new();
    machine.mcp_remote_signs_in(&sim)?;
    Some((sim, machine))
}

/// The raw tokens mcp-remote stored, which no output may show.
fn raw_tokens(tokens: &Value) -> Vec<String> {
    ["access_token", "refresh_token"]
        .iter()
        .map(|k| tokens[k].as_str().unwrap().to_string())
        .collect()
}

fn masked(s: &str) -> String {
    tether_core::secret::mask(s)
}

#[track_caller]
fn assert_no_secret(out: &Run, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "a secret reached the output:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn an_mcp_remote_login_is_imported_refreshed_with_its_client_and_left_in_place() {
    let Some((sim, machine)) = signed_in() else {
        return;
    };
    let (tokens_file, tokens) = machine.only("_tokens.json");
    let (_, client) = machine.only("_client_info.json");
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let raw = raw_tokens(&tokens);
    let secrets: Vec<&str> = raw.iter().map(String::as_str).collect();
    // The file is named after the md5 of the URL, as tether computes it.
    assert!(tokens_file.to_string_lossy().ends_with(&format!(
        "{}_tokens.json",
        Invocation::plain(&sim.mcp_url).hash()
    )));
    let before = machine.files();
    machine.claude_desktop_runs(&sim.mcp_url);
    let home = Home::new();

    let out = machine.import(&home, &[]).ok();
    assert!(out.stdout.contains("imported as 'local'"), "{}", out.stdout);
    assert!(
        out.stdout.contains("claude_desktop_config.json"),
        "{}",
        out.stdout
    );
    assert_no_secret(&out, &secrets);

    let s = home.status("local");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["client_id"], masked(&client_id));
    assert_eq!(s["registrations"][0]["client_id"], masked(&client_id));
    assert_eq!(s["token"]["has_refresh_token"], true);
    assert_eq!(s["token"]["generation"], 1);
    assert!(s["expires_in_seconds"].as_i64().unwrap() > 3000, "{s}");
    let text = home.run(&["status", "local"]).ok();
    assert_no_secret(&text, &secrets);

    let out = home.run(&["refresh", "local"]).ok();
    assert!(out.stdout.contains("generation 2"), "{}", out.stdout);
    assert_no_secret(&out, &secrets);
    let stats = sim.stats();
    assert_eq!(stats["registrations"], 1, "no new registration: {stats}");
    let refreshed_by: Vec<&str> = stats["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["refresh_calls"] == 1)
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(refreshed_by, [client_id.as_str()]);

    let again = machine.import(&home, &["--json"]).ok();
    let report: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(report["entries"][0]["outcome"], "skipped");
    assert!(
        report["entries"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already imported")
    );
    assert_no_secret(&again, &secrets);
    assert_eq!(
        machine.files(),
        before,
        "mcp-remote's files must not change"
    );
}

#[test]
fn a_dry_run_writes_nothing_and_bad_entries_are_named_while_the_rest_imports() {
    let Some((sim, machine)) = signed_in() else {
        return;
    };
    let (tokens_file, tokens) = machine.only("_tokens.json");
    let (client_file, _) = machine.only("_client_info.json");
    let raw = raw_tokens(&tokens);
    let secrets: Vec<&str> = raw.iter().map(String::as_str).collect();
    // A login for a server nobody names, a malformed file, a token without its client.
    let unknown = "0123456789abcdef0123456789abcdef";
    let v1 = machine.v1();
    std::fs::copy(&tokens_file, v1.join(format!("{unknown}_tokens.json"))).unwrap();
    std::fs::copy(&client_file, v1.join(format!("{unknown}_client_info.json"))).unwrap();
    std::fs::write(
        v1.join("ffffffffffffffffffffffffffffffff_tokens.json"),
        "{not json",
    )
    .unwrap();
    let lonely = v1.join("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee_tokens.json");
    std::fs::copy(&tokens_file, &lonely).unwrap();
    let before = machine.files();
    let home = Home::new();

    let dry = machine.import(&home, &["--dry-run"]);
    assert_eq!(dry.status, 1, "{}\n{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout
            .contains(&format!("unknown server (hash {unknown})")),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("pass its URL: tether import mcp-remote URL")
    );
    assert!(
        dry.stdout
            .contains("ffffffffffffffffffffffffffffffff_tokens.json is not valid JSON")
    );
    assert!(
        dry.stdout
            .contains("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee_client_info.json beside it"),
        "{}",
        dry.stdout
    );
    assert_no_secret(&dry, &secrets);
    let dry = machine.import(&home, &[&sim.mcp_url, "--dry-run", "--name", "sim"]);
    assert!(
        dry.stdout.contains("would be imported as 'sim'"),
        "{}",
        dry.stdout
    );
    assert!(
        !home.vault_file().exists(),
        "a dry run must not write the vault"
    );

    let out = machine.import(&home, &[&sim.mcp_url, "--name", "sim", "--json"]);
    assert_eq!(
        out.status, 1,
        "the malformed files still need action: {}",
        out.stderr
    );
    assert_no_secret(&out, &secrets);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let outcomes: Vec<&str> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "imported"], "{report:#}");
    assert_eq!(home.status("sim")["state"], "healthy");
    assert_eq!(machine.files(), before);
}

/// A store in mcp-remote's format, for the cases that never reach a server.
fn written_store(machine: &Machine, urls: &[&str]) {
    std::fs::create_dir_all(machine.v1()).unwrap();
    for url in urls {
        let hash = Invocation::plain(url).hash();
        let tokens = json!({"access_token": "at_0123456789abcdef", "token_type": "Bearer",
            "expires_in": 3600, "expires_at": 4_102_444_800_000u64});
        let client = json!({"client_id": "client-0123456789",
            "redirect_uris": ["http://localhost:3335/oauth/callback"]});
        std::fs::write(
            machine.v1().join(format!("{hash}_tokens.json")),
            tokens.to_string(),
        )
        .unwrap();
        std::fs::write(
            machine.v1().join(format!("{hash}_client_info.json")),
            client.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn bad_input_is_named_with_its_fix() {
    let machine = Machine::new();
    let a = "https://a.example/mcp";
    let b = "https://b.example/mcp";
    written_store(&machine, &[a, b]);
    let home = Home::new();
    let cases: &[&[&str]] = &[
        &[a, b, "--name", "one"],
        &["--name", "Not Valid"],
        &["mcp.example.com/mcp"],
        &["http://remote.example/mcp"],
    ];
    let mut transcript = String::new();
    for args in cases {
        let out = machine.import(&home, args);
        assert_eq!(out.status, 2, "{args:?}: {}", out.stderr);
        transcript.push_str(&format!(
            "$ import mcp-remote {}\n{}\n",
            args.join(" "),
            out.stderr
        ));
    }
    let missing = Run::of(
        home.cmd()
            .args([
                "import",
                "mcp-remote",
                "--dir",
                "/nonexistent/tether-test/.mcp-auth",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(missing.status, 2);
    transcript.push_str(&format!(
        "$ import mcp-remote --dir /nonexistent/…\n{}",
        missing.stderr
    ));
    insta::assert_snapshot!(transcript);
}

#[test]
fn help_says_what_is_read() {
    let out = Home::new().run(&["import", "mcp-remote", "--help"]).ok();
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn an_empty_store_says_so() {
    let machine = Machine::new();
    std::fs::create_dir_all(machine.v1()).unwrap();
    let out = machine.import(&Home::new(), &[]).ok();
    assert!(out.stdout.contains("nothing to import"), "{}", out.stdout);
}

#[test]
fn a_login_whose_server_cannot_be_reached_is_reported_and_nothing_is_written() {
    let machine = Machine::new();
    // Port 9 (discard) on loopback: nothing answers.
    let url = "http://127.0.0.1:9/mcp";
    written_store(&machine, &[url]);
    let home = Home::new();
    let out = machine.import(&home, &[url]);
    assert_eq!(out.status, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("discovery for"), "{}", out.stdout);
    assert!(!out.stdout.contains("at_0123456789abcdef"));
    assert!(
        !home.vault_file().exists() || home.run(&["list", "--json"]).ok().stdout.trim() == "[]"
    );
}

#[test]
fn a_connection_waiting_for_its_login_takes_the_imported_one() {
    let Some((sim, machine)) = signed_in() else {
        return;
    };
    let home = Home::new();
    home.run(&["add", "work", &sim.mcp_url]).ok();
    // The URL comes from the connection itself: nothing on the command line, no config.
    let out = machine.import(&home, &[]).ok();
    assert!(out.stdout.contains("imported as 'work'"), "{}", out.stdout);
    assert!(
        out.stdout.contains("tether connection 'work'"),
        "{}",
        out.stdout
    );
    let s = home.status("work");
    assert_eq!(s["state"], "healthy");
    assert_eq!(s["token"]["generation"], 1);
    home.run(&["refresh", "work"]).ok();
    assert_eq!(sim.stats()["registrations"], 1);
}
