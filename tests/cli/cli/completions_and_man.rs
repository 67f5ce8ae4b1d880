//! `tether completions SHELL` and `tether man`: the scripts load in their shells and
//! complete tether's commands, the man page renders, a wrong shell names the choices, and
//! both end quietly when their reader goes away.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::Home;

/// `tether completions SHELL` written to a file in `home`.
fn script(home: &Home, shell: &str) -> std::path::PathBuf {
    let out = home.run(&["completions", shell]).ok();
    assert!(!out.stdout.is_empty(), "{shell}: empty script");
    let file = home.path().join(format!("tether.{shell}"));
    std::fs::write(&file, out.stdout).unwrap();
    file
}

/// `bash -c SCRIPT` with `file` as `$1`: its stdout, after asserting it succeeded.
fn bash(script: &str, file: &Path) -> String {
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script, "bash"])
        .arg(file)
        .output()
        .expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_completion_registers_and_completes_subcommands() {
    let home = Home::new();
    let file = script(&home, "bash");

    let registered = bash(r#"source "$1" && complete -p tether"#, &file);
    assert!(
        registered.contains("-F _tether ") && registered.trim_end().ends_with(" tether"),
        "{registered}"
    );

    // What bash does on `tether ser<TAB>`: the words so far, the one being completed, and
    // the function called with the command, that word and the one before it.
    let offered = bash(
        r#"source "$1"
        COMP_WORDS=(tether ser); COMP_CWORD=1; COMP_LINE="tether ser"; COMP_POINT=${#COMP_LINE}
        _tether tether ser tether
        printf '%s\n' "${COMPREPLY[@]}""#,
        &file,
    );
    let offered: Vec<&str> = offered.lines().collect();
    assert!(offered.contains(&"serve"), "{offered:?}");
    assert!(
        offered.iter().all(|word| word.starts_with("ser")),
        "{offered:?}"
    );
}

#[test]
fn zsh_and_fish_scripts_parse() {
    let home = Home::new();
    for (shell, names_tether) in [("zsh", "#compdef tether"), ("fish", "complete -c tether")] {
        let file = script(&home, shell);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains(names_tether), "{shell}: {text}");
        match Command::new(shell).arg("-n").arg(&file).output() {
            Ok(out) => assert!(out.status.success(), "{shell} -n: {out:?}"),
            // Not installed here: the script's content is all that can be checked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("run {shell}: {e}"),
        }
    }
}

#[test]
fn a_bad_shell_name_lists_the_choices() {
    let out = Home::new().run(&["completions", "tcsh"]);
    assert_eq!(out.status, 2, "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(
        out.stderr.contains("'tcsh'") && out.stderr.contains("[possible values: bash, zsh, fish]"),
        "{}",
        out.stderr
    );
}

#[test]
fn man_page_renders_every_command() {
    let home = Home::new();
    let page = home.path().join("tether.1");
    std::fs::write(&page, home.run(&["man"]).ok().stdout).unwrap();
    let Some(rendered) = render_man_page(&page) else {
        return;
    };
    for heading in ["NAME", "SYNOPSIS", "OPTIONS", "COMMANDS", "VERSION"] {
        assert!(
            rendered.lines().any(|line| line == heading),
            "no {heading}:\n{rendered}"
        );
    }
    let help = home.run(&["--help"]).ok().stdout;
    let commands = help
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help");
    for command in commands {
        // A group such as `import` has entries for its own subcommands instead.
        let entry = format!("tether {command}");
        let group = format!("{entry} ");
        assert!(
            rendered
                .lines()
                .any(|line| line.trim() == entry || line.trim().starts_with(&group)),
            "no entry for {entry}:\n{rendered}"
        );
    }
    assert!(rendered.contains("tether import mcp-remote"), "{rendered}");
}

/// `man -l FILE` as plain text, or `None` (skipped) where man-db is not installed, except
/// under `CI=true`, where .ci/run installs it and its absence is a failure.
fn render_man_page(page: &Path) -> Option<String> {
    let out = match Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let reason = "man is not installed (apt-get install man-db groff-base)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{reason}: .ci/run installs it before cargo test");
            }
            // Straight to stderr, past the test harness's capture, so the skip is seen.
            let _ = writeln!(std::io::stderr(), "skipped: {reason}");
            return None;
        }
        Err(e) => panic!("run man: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.is_empty(), "man -l: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `tether completions bash | head -0`, `tether man | head -0`: no panic, no backtrace.
#[test]
fn completions_and_man_end_quietly_when_their_reader_goes_away() {
    let home = Home::new();
    for args in [&["completions", "bash"][..], &["man"]] {
        let mut child = home
            .cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        // Killed by SIGPIPE's default action (13), as `ls | head -0` ends `ls`.
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {:?}",
            out.status
        );
    }
}
