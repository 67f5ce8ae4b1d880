//! What a hostile neighbour or server tries, through the binary.
//!
//! The proxy port taken by someone else before tether starts: another local user's program
//! answering `/healthz` as tether does, or a tether over another vault. `serve` refuses to
//! start (and says who holds the port), `doctor` fails the proxy check, and `stdio` sends
//! that program nothing but the challenge — serving its session in-process instead.
//!
//! Terminal escapes in what servers say: they reach the screen escaped, never raw.

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

/// A program that answers every HTTP request like a tether's `/healthz`, and records the
/// request line of each.
struct Squatter {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Squatter {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = log.clone();
                std::thread::spawn(move || answer(stream, &log));
            }
        });
        Self { addr, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer(stream: std::net::TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    log.lock().unwrap().push(line.trim().to_string());
    // Read (and drop) the rest of the head.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
        header.clear();
    }
    let body = r#"{"status":"ok","service":"tether","version":"0.1.0","proof":"forged"}"#;
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn serve_refuses_a_port_held_by_an_impostor_and_says_who_holds_it() {
    let squatter = Squatter::start();
    let home = support::Home::new();
    let out = home.run(&["serve", "--bind", &squatter.addr]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{} is held by a program calling itself tether that cannot prove it holds this vault",
            squatter.addr
        )) && out.stderr.contains("--bind"),
        "{}",
        out.stderr
    );
    // Only the challenge was sent.
    let seen = squatter.requests();
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /healthz?challenge=")),
        "{seen:?}"
    );
}

#[test]
fn a_tether_over_another_vault_is_a_stranger_too() {
    let theirs = support::Home::new();
    let serve = support::Serve::start(&theirs);
    let addr = serve.base.trim_start_matches("http://").to_string();
    let ours = support::Home::new();
    let out = ours.run(&["serve", "--bind", &addr]);
    assert_eq!(out.status, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot prove it holds this vault"),
        "{}",
        out.stderr
    );
    // The same vault's tether is recognised as such.
    let again = theirs.run(&["serve", "--bind", &addr]);
    assert!(
        again
            .stderr
            .contains("another tether process already serves"),
        "{}",
        again.stderr
    );
    drop(serve);
}

#[test]
fn doctor_fails_the_proxy_check_when_an_impostor_holds_the_port() {
    let squatter = Squatter::start();
    let home = support::Home::new();
    home.run(&["add", "local", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let out = home
        .cmd()
        .args(["doctor", "--json"])
        .env("TETHER_BIND", &squatter.addr)
        .output()
        .unwrap();
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let proxy = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["subject"] == "proxy")
        .unwrap_or_else(|| panic!("{findings}"));
    assert_eq!(proxy["status"], "fail", "{proxy}");
    assert!(
        proxy["summary"]
            .as_str()
            .unwrap()
            .contains("cannot prove it holds this vault"),
        "{proxy}"
    );
}

#[test]
fn stdio_sends_an_impostor_nothing_and_serves_its_session_itself() {
    let (home, _sim) = support::signed_in("generic");
    let squatter = Squatter::start();
    let out = support::stdio_session(
        &home,
        "generic",
        &squatter.addr,
        &[
            support::STDIO_INITIALIZE,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot prove it holds this vault")
            && stderr.contains("serving this session in-process"),
        "{stderr}"
    );
    assert!(stdout.contains("tether-sim-generic"), "{stdout}");
    let seen = squatter.requests();
    assert!(
        seen.iter()
            .all(|r| r.starts_with("GET /healthz?challenge=")),
        "the impostor received more than a challenge: {seen:?}"
    );
}

/// An OSC 52 clipboard write, a bell, and a screen clear.
const EVIL: &str = "\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J";

#[tokio::test(flavor = "multi_thread")]
async fn escapes_in_metadata_and_errors_reach_the_terminal_escaped() {
    use crate::support::site::{Reply, Site, as_doc};
    let site = Site::start().await;
    let prm = site.url("/prm");
    site.post(
        "/mcp",
        Reply::unauthorized(&[&format!(r#"Bearer resource_metadata="{prm}""#)]),
    );
    let issuer = site.url("/as");
    site.get(
        "/prm",
        Reply::json(serde_json::json!({
            "resource": format!("{}{EVIL}", site.url("/mcp")),
            "authorization_servers": [issuer],
            "resource_name": format!("Evil{EVIL}"),
        })),
    );
    site.get(
        "/.well-known/oauth-authorization-server/as",
        Reply::json(as_doc(&issuer, &site.url(""))),
    );
    site.post(
        "/register",
        Reply::text(
            400,
            &serde_json::json!({
                "error": "invalid_client_metadata",
                "error_description": format!("refused{EVIL}"),
            })
            .to_string(),
        )
        .with("content-type", "application/json"),
    );
    let home = support::Home::new();
    let url = site.url("/mcp");
    let mut shown = String::new();
    for args in [
        &["add", "evil", url.as_str()][..],
        &["login", "evil", "--no-browser"],
        &["doctor", "evil"],
        &["doctor", "evil", "--json"],
        &["status", "evil"],
        &["status", "evil", "--json"],
        &["list"],
    ] {
        let out = home.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        for bytes in [&out.stdout, &out.stderr] {
            assert!(
                !bytes.iter().any(|b| *b == 0x1b || *b == 0x07),
                "{args:?} sent a raw control character to the terminal: {}",
                String::from_utf8_lossy(bytes)
            );
            shown.push_str(&String::from_utf8_lossy(bytes));
        }
    }
    assert!(
        shown.contains("\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J"),
        "the server's text is shown, escaped: {shown}"
    );
}
