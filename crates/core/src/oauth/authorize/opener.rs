//! Opening the authorization URL in the user's browser, started without tether's own
//! secrets in its environment.
//!
//! A started program inherits the environment of the process that starts it, and
//! tether's may hold the vault key (`TETHER_VAULT_KEY`); neither the browser nor anything
//! it runs has any use for it. So tether starts the opener itself: each `$BROWSER` entry
//! (read as the `webbrowser` crate and Python's `webbrowser` read it), else the desktop's
//! opener (`xdg-open`, `gio open`, `x-www-browser`), with those variables removed, never
//! through a shell, the URL one argument. On macOS without `$BROWSER`, the URL goes to
//! LaunchServices (the `webbrowser` crate), which starts the browser from launchd's
//! environment rather than tether's.

use std::process::{Command, Stdio};

use url::Url;

/// Environment variables that carry tether's own secrets, removed from the browser's: the
/// vault key, and the store's address and password (a PostgreSQL URL may hold one).
pub const SECRET_ENV: &[&str] = &[
    crate::vault::KEY_ENV,
    crate::config::STORE_ENV,
    "PGPASSWORD",
];

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("only http and https addresses are opened in a browser, not a '{0}' one")]
    NotWeb(String),
    /// What was tried, each with why it did not start.
    #[error("no browser could be started (tried {0})")]
    NoBrowser(String),
}

/// Opens `url` (http or https only) in the user's browser.
pub fn open(url: &Url) -> Result<(), OpenError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OpenError::NotWeb(url.scheme().to_string()));
    }
    let browser = std::env::var("BROWSER").unwrap_or_default();
    let mut commands = browser_commands(&browser, url.as_str());
    if commands.is_empty() && cfg!(target_os = "macos") {
        return webbrowser::open(url.as_str())
            .map_err(|e| OpenError::NoBrowser(format!("LaunchServices: {e}")));
    }
    commands.extend(desktop_openers(url.as_str()));
    let mut tried = Vec::new();
    for argv in &commands {
        match spawn(argv) {
            Ok(()) => return Ok(()),
            Err(e) => tried.push(format!("{} ({e})", argv[0])),
        }
    }
    Err(OpenError::NoBrowser(tried.join(", ")))
}

/// The commands `$BROWSER` names: `:`-separated entries, each a program and its
/// arguments split on whitespace, where `%s` is the URL, `%c` a colon and `%%` a percent
/// sign; an entry without `%s` gets the URL as its last argument.
fn browser_commands(browser: &str, url: &str) -> Vec<Vec<String>> {
    browser
        .split(':')
        .filter(|entry| !entry.trim().is_empty())
        .map(|entry| {
            let mut has_url = false;
            let mut argv: Vec<String> = entry
                .split_ascii_whitespace()
                .map(|word| expand(word, url, &mut has_url))
                .collect();
            if !has_url {
                argv.push(url.to_string());
            }
            argv
        })
        .collect()
}

/// One `$BROWSER` word with its field codes expanded, in a single pass so that text
/// from the URL is never read as a field code.
fn expand(word: &str, url: &str, has_url: &mut bool) -> String {
    let mut out = String::with_capacity(word.len());
    let mut chars = word.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => {
                out.push_str(url);
                *has_url = true;
            }
            Some('c') => out.push(':'),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// The desktop's own openers, in the order they are tried.
fn desktop_openers(url: &str) -> Vec<Vec<String>> {
    let with_url = |parts: &[&str]| {
        let mut argv: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        argv.push(url.to_string());
        argv
    };
    if cfg!(target_os = "macos") {
        vec![with_url(&["open"])]
    } else {
        vec![
            with_url(&["xdg-open"]),
            with_url(&["gio", "open"]),
            with_url(&["x-www-browser"]),
        ]
    }
}

/// Starts `argv` detached from the terminal, without tether's secrets in its environment.
fn spawn(argv: &[String]) -> std::io::Result<()> {
    let Some((program, args)) = argv.split_first() else {
        return Err(std::io::ErrorKind::InvalidInput.into());
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for var in SECRET_ENV {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn()?;
    // Reaped in the background: a long-running tether leaves no zombie per sign-in.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://as.example/authorize?a=1&b=%41";

    #[test]
    fn browser_entries_become_argument_lists_with_the_url_as_one_argument() {
        assert_eq!(
            browser_commands("firefox:chromium --new-window", URL),
            vec![
                vec!["firefox".to_string(), URL.to_string()],
                vec![
                    "chromium".to_string(),
                    "--new-window".to_string(),
                    URL.to_string()
                ],
            ]
        );
        assert_eq!(
            browser_commands("open -a Safari --url=%s%%c", URL),
            vec![vec![
                "open".to_string(),
                "-a".to_string(),
                "Safari".to_string(),
                format!("--url={URL}%c"),
            ]]
        );
        assert!(browser_commands(" : ", URL).is_empty());
    }

    #[test]
    fn only_web_addresses_are_opened() {
        let file = Url::parse("file:///etc/passwd").expect("URL");
        assert!(matches!(open(&file), Err(OpenError::NotWeb(s)) if s == "file"));
    }
}
