//! tether as a systemd user service: `~/.config/systemd/user/tether.service` runs
//! `tether serve --service systemd` at login, restarts it when it fails, and — with
//! `Type=notify` and `WatchdogSec=` — knows when it is ready and restarts it when its proxy
//! stops answering its watchdog. Where no user manager runs (a container, a bare SSH
//! session), the unit is still written and the exact commands are printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::unit::{OnDisk, Spec, fingerprint};

pub const UNIT: &str = "tether.service";
/// How long the proxy may go without a keep-alive before systemd restarts it.
pub const WATCHDOG_SECS: u64 = 30;
const MARK: &str = "# tether-unit: ";

/// Where the unit lives: `$XDG_CONFIG_HOME/systemd/user/`, else `~/.config/systemd/user/`.
pub fn unit_path() -> anyhow::Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|home| PathBuf::from(home).join(".config"))
            .ok_or_else(|| {
                anyhow::anyhow!("cannot find your home folder: set HOME or XDG_CONFIG_HOME")
            })?,
    };
    Ok(config.join("systemd/user").join(UNIT))
}

/// One word of a command line or an assignment as systemd reads it: double-quoted, with
/// `\`, `"` escaped, `%` (specifiers) doubled and `$` (variables) doubled.
fn quote(word: &str) -> String {
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The unit tether writes for `spec`.
pub fn render(spec: &Spec) -> String {
    let mut exec = vec![quote(&spec.binary.to_string_lossy())];
    exec.extend(spec.arguments("systemd").iter().map(|a| quote(a)));
    let mut body = format!(
        "[Unit]\n\
         Description=tether: MCP connections authorized once, served to every client\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         NotifyAccess=main\n\
         ExecStart={}\n",
        exec.join(" ")
    );
    if let Some(home) = &spec.home {
        body += &format!(
            "Environment={}\n",
            quote(&format!("TETHER_HOME={}", home.to_string_lossy()))
        );
    }
    body += &format!(
        "Restart=on-failure\n\
         RestartSec=2\n\
         WatchdogSec={WATCHDOG_SECS}\n\
         TimeoutStopSec=15\n\
         NoNewPrivileges=yes\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    );
    format!(
        "# Written by `tether service install`; `tether service uninstall` removes it.\n\
         # tether keeps a copy of this file instead of overwriting it once it is edited.\n\
         {MARK}{}\n{body}",
        fingerprint(&body)
    )
}

/// Whether `text` is a unit tether wrote, unchanged since.
pub fn unchanged(text: &str) -> bool {
    let mut lines = text.splitn(4, '\n');
    let (Some(_), Some(_), Some(mark), Some(body)) =
        (lines.next(), lines.next(), lines.next(), lines.next())
    else {
        return false;
    };
    mark.strip_prefix(MARK) == Some(fingerprint(body).as_str())
}

pub fn on_disk(path: &Path) -> std::io::Result<OnDisk> {
    OnDisk::read(path, unchanged)
}

/// The `ExecStart=` words of a unit, unquoted (for `status` and the tests).
pub fn exec_start(text: &str) -> Option<Vec<String>> {
    let line = text.lines().find_map(|l| l.strip_prefix("ExecStart="))?;
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' {
            chars.next();
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
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        words.push(word);
    }
    Some(words)
}

/// Whether a systemd user manager runs for this user (it answers `systemctl --user`).
pub fn manager_running() -> bool {
    systemctl(&["show-environment"])
        .map(|out| out.status.success())
        .unwrap_or(false)
}

/// Runs `systemctl --user ARGS` with a time limit; its output.
pub fn systemctl(args: &[&str]) -> std::io::Result<std::process::Output> {
    let mut child = Command::new("systemctl")
        .arg("--user")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait()?.is_some() {
            return child.wait_with_output();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "systemctl did not answer within 20 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `systemctl --user ARGS`, failing with its own words.
pub fn run(args: &[&str]) -> anyhow::Result<String> {
    let out = systemctl(args)?;
    if !out.status.success() {
        anyhow::bail!(
            "`systemctl --user {}` failed: {}",
            args.join(" "),
            tether_core::printable::printable(String::from_utf8_lossy(&out.stderr).trim(), 300)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What systemd says about the unit: `KEY=value` lines of `systemctl --user show`.
pub fn show(keys: &[&str]) -> Option<std::collections::BTreeMap<String, String>> {
    let property = format!("--property={}", keys.join(","));
    let text = run(&["show", UNIT, &property]).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            binary: PathBuf::from("/opt/my tools/te\"ther%1$x"),
            home: Some(PathBuf::from("/home/ada/tether home")),
            bind: Some("127.0.0.1:9999".parse().unwrap()),
        }
    }

    #[test]
    fn the_unit_starts_this_binary_and_names_no_secret() {
        let text = render(&spec());
        assert!(text.contains("Type=notify\n"));
        assert!(text.contains("WatchdogSec=30\n"));
        assert!(text.contains("Restart=on-failure\n"));
        assert!(text.contains("Environment=\"TETHER_HOME=/home/ada/tether home\"\n"));
        assert!(!text.contains("TETHER_VAULT_KEY"));
        let words = exec_start(&text).unwrap();
        assert_eq!(
            words,
            [
                "/opt/my tools/te\"ther%1$x",
                "serve",
                "--service",
                "systemd",
                "--bind",
                "127.0.0.1:9999"
            ]
        );
    }

    #[test]
    fn an_edited_unit_is_told_apart() {
        let text = render(&spec());
        assert!(unchanged(&text));
        assert!(!unchanged(&text.replace("RestartSec=2", "RestartSec=5")));
        assert!(!unchanged("[Service]\nExecStart=/bin/true\n"));
    }
}
