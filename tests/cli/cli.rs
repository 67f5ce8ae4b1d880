//! The command line as users meet it: `add`, `list`, `status`, `remove`, their bad-input
//! messages (snapshotted) and their exit codes.

#[path = "cli/completions_and_man.rs"]
mod completions_and_man;
#[path = "cli/rename.rs"]
mod rename;
#[path = "cli/service.rs"]
mod service;
use crate::support;

use crate::support::{Home, contains, files_under};

const API_KEY: &str = "tk_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

#[test]
fn add_list_status_remove_round_trip() {
    let home = Home::new();
    let out = home.run(&["list"]).ok();
    assert!(out.stdout.contains("No connections yet"), "{}", out.stdout);

    home.run(&["add", "linear", "https://mcp.linear.app/mcp"])
        .ok();
    home.run(&["add", "public", "http://127.0.0.1:9/mcp", "--no-auth"])
        .ok();
    let out = home
        .cmd()
        .args(["add", "todoist", "https://ai.todoist.net/mcp"])
        .args(["--api-key-env", "TODOIST_KEY", "--header", "X-API-Key"])
        .env("TODOIST_KEY", API_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let list = home.run(&["list"]).ok().stdout;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 4, "{list}");
    assert!(lines[1].starts_with("linear") && lines[1].contains("needs-login"));
    assert!(lines[2].starts_with("public") && lines[2].contains("none"));
    assert!(lines[3].starts_with("todoist") && lines[3].contains("api-key"));

    let json: serde_json::Value =
        serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
    let names: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["linear", "public", "todoist"]);

    let status: serde_json::Value = home.status("todoist");
    assert_eq!(status["api_key"]["header"], "X-API-Key");
    assert_eq!(status["api_key"]["key"], "tk_l…");
    assert_eq!(status["history"][0]["kind"], "added");

    home.run(&["remove", "public"]).ok();
    let json: serde_json::Value =
        serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
}

#[test]
fn an_api_key_never_reaches_disk_or_output_in_the_clear() {
    let home = Home::new();
    let out = home
        .cmd()
        .args(["add", "todoist", "https://ai.todoist.net/mcp"])
        .args(["--api-key-env", "TODOIST_KEY"])
        .env("TODOIST_KEY", API_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut outputs = String::from_utf8_lossy(&out.stdout).into_owned();
    outputs += &String::from_utf8_lossy(&out.stderr);
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status", "todoist"],
        &["status", "todoist", "--json"],
    ] {
        let run = home.run(args).ok();
        outputs += &run.stdout;
        outputs += &run.stderr;
    }
    // Any 8-character window of the key would be a leak, not only the whole key.
    for window in API_KEY.as_bytes().windows(8).skip(4) {
        assert!(
            !contains(outputs.as_bytes(), window),
            "output shows part of the key: {}",
            String::from_utf8_lossy(window)
        );
    }
    let files = files_under(home.path());
    assert!(files.len() >= 2, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !contains(&bytes, API_KEY.as_bytes()),
            "{} holds the API key in plaintext",
            file.display()
        );
    }
}

#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let nested = home.path().join("fresh");
    let run = home
        .cmd()
        .env("TETHER_HOME", &nested)
        .args(["add", "x", "https://e.example/mcp"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&nested), 0o700);
    for file in files_under(&nested) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

/// Every bad input exits with status 2 and one line naming the value and the fix.
#[test]
fn bad_input_messages() {
    let home = Home::new();
    home.run(&["add", "taken", "https://e.example/mcp"]).ok();
    let cases: &[&[&str]] = &[
        &["add", "Linear", "https://mcp.linear.app/mcp"],
        &["add", "has_underscore", "https://mcp.linear.app/mcp"],
        &["add", &"a".repeat(33), "https://mcp.linear.app/mcp"],
        &["add", "ok", "mcp.linear.app/mcp"],
        &["add", "ok", "http://mcp.linear.app/mcp"],
        &["add", "ok", "ftp://mcp.linear.app/mcp"],
        &["add", "ok", "https://user:pw@mcp.linear.app/mcp"],
        &["add", "taken", "https://e.example/mcp"],
        &[
            "add",
            "ok",
            "https://e.example/mcp",
            "--api-key-env",
            "TETHER_TEST_UNSET_VAR",
        ],
        &[
            "add",
            "ok",
            "https://e.example/mcp",
            "--api-key-env",
            "EMPTY_KEY",
        ],
        &[
            "add",
            "ok",
            "https://e.example/mcp",
            "--api-key-env",
            "SOME_KEY",
            "--header",
            "Bad Header",
        ],
        &["status", "missing"],
        &["remove", "missing"],
        &["config", "emacs", "taken"],
        &["config", "cursor", "missing"],
        &["config", "cursor", "taken", "--client", "Bad_Label"],
    ];
    let mut transcript = String::new();
    for args in cases {
        let out = home
            .cmd()
            .args(*args)
            .env("EMPTY_KEY", "  ")
            .env("SOME_KEY", "k")
            .env_remove("TETHER_TEST_UNSET_VAR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        transcript += &format!("$ tether {}\n{stderr}\n", args.join(" "));
    }
    insta::assert_snapshot!(transcript);
}

#[test]
fn a_bad_config_file_is_named() {
    let home = Home::new();
    std::fs::write(
        home.path().join("config.toml"),
        "[vault]\nkey_source = \"floppy\"\n",
    )
    .unwrap();
    let out = home
        .cmd()
        .env_remove("TETHER_KEY_SOURCE")
        .arg("list")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("config.toml") && stderr.contains("floppy"),
        "{stderr}"
    );
}

#[test]
fn help_lists_the_commands() {
    let home = Home::new();
    insta::assert_snapshot!(home.run(&["--help"]).ok().stdout);
}

#[test]
fn login_help_states_the_headless_flag_rules() {
    let home = Home::new();
    insta::assert_snapshot!(home.run(&["login", "--help"]).ok().stdout);
}

/// `tether list | head -1`: the reader leaves before tether has written, and every command
/// that prints must then end quietly — no panic, no backtrace on the user's terminal.
#[test]
fn commands_end_quietly_when_their_reader_goes_away() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let home = Home::new();
    for n in 0..3 {
        home.run(&[
            "add",
            &format!("c{n}"),
            "http://127.0.0.1:9/mcp",
            "--no-auth",
        ])
        .ok();
    }
    for args in [
        &["list"][..],
        &["list", "--json"],
        &["status", "c1"],
        &["--help"],
    ] {
        let mut child = home
            .cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before tether writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{args:?}: {stderr}"
        );
        assert!(
            out.status.success() || out.status.signal() == Some(SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}

/// Killed by the default action of SIGPIPE, as `ls | head -1` ends `ls` (signal 13 on Linux).
const SIGPIPE: i32 = 13;

/// `refreshes ok` is a lifetime count: the history keeps the newest 200 events, the
/// counters go on.
#[test]
fn refresh_counts_go_on_past_the_history_cap() {
    let (home, _sim) = support::signed_in("generic");
    let refreshes = 205;
    for _ in 0..refreshes {
        home.run(&["refresh", "generic"]).ok();
    }
    let list: serde_json::Value =
        serde_json::from_str(&home.run(&["list", "--json"]).ok().stdout).unwrap();
    assert_eq!(list[0]["refreshes_ok"], refreshes, "{list}");
    let status: serde_json::Value = home.status("generic");
    assert_eq!(status["history"].as_array().unwrap().len(), 200);
}
