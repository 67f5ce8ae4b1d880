//! Browser clients: CORS on the MCP endpoints for origins in `[proxy] allowed_origins` —
//! preflights and answers as curl sees them, and a page in headless Chromium (Debian's
//! `chromium`) that lists tools through tether, while a page from an origin not listed is
//! stopped by the browser.

use std::path::PathBuf;
use std::process::Command;

use crate::support::site::{Reply, Site};
use crate::support::{Home, Serve, secret_for, signed_in};

/// A signed-in home whose `[proxy] allowed_origins` is `origins`, served.
fn served(origins: &[&str]) -> (Home, crate::support::Sim, Serve) {
    let (home, sim) = signed_in("generic");
    let list = origins
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        home.path().join("config.toml"),
        format!("[proxy]\nallowed_origins = [{list}]\n"),
    )
    .unwrap();
    let serve = Serve::start(&home);
    (home, sim, serve)
}

/// `curl -si` with `args`: the status and the headers (names lower-cased) of the answer.
fn curl(args: &[&str]) -> (u16, Vec<(String, String)>) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn no_cors(headers: &[(String, String)]) -> bool {
    !headers
        .iter()
        .any(|(k, _)| k.starts_with("access-control-"))
}

const APP: &str = "https://app.example.com";

fn preflight(url: &str, origin: &str) -> (u16, Vec<(String, String)>) {
    curl(&[
        "-X",
        "OPTIONS",
        url,
        "-H",
        &format!("Origin: {origin}"),
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: authorization, content-type, mcp-protocol-version",
    ])
}

#[test]
fn preflights_from_allowed_origins_are_answered_and_no_other() {
    let (home, _sim, serve) = served(&[APP]);
    let secret = secret_for(&home, "generic", "web");
    let by_secret = format!("{}/s/{secret}/mcp", serve.base);
    // A preflight carries no secret: it is answered alike for every endpoint, a
    // connection that does not exist included, so names cannot be probed with it.
    let mut answers = Vec::new();
    for url in [
        by_secret.clone(),
        format!("{}/c/generic/mcp", serve.base),
        format!("{}/c/no-such-name/mcp", serve.base),
    ] {
        let (status, headers) = preflight(&url, APP);
        assert_eq!(status, 204, "{headers:?}");
        assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
        assert_eq!(
            header(&headers, "access-control-allow-methods"),
            Some("POST, GET, DELETE, OPTIONS")
        );
        let allowed = header(&headers, "access-control-allow-headers").unwrap();
        for name in [
            "authorization",
            "content-type",
            "mcp-protocol-version",
            "mcp-session-id",
            "mcp-method",
            "mcp-name",
            "last-event-id",
        ] {
            assert!(allowed.split(", ").any(|a| a == name), "{name}: {allowed}");
        }
        assert!(header(&headers, "access-control-max-age").is_some());
        assert_eq!(header(&headers, "vary"), Some("Origin"));
        assert_eq!(header(&headers, "access-control-allow-credentials"), None);
        answers.push(
            headers
                .into_iter()
                .filter(|(k, _)| k != "date")
                .collect::<Vec<_>>(),
        );
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");

    // An origin not listed is refused as before, with nothing a browser would act on; a
    // loopback one passes the guard but is granted nothing.
    let (status, headers) = preflight(&by_secret, "https://evil.example");
    assert_eq!(status, 403);
    assert!(no_cors(&headers), "{headers:?}");
    let (_, headers) = preflight(&by_secret, "http://localhost:5173");
    assert!(no_cors(&headers), "{headers:?}");
}

#[test]
fn answers_to_allowed_origins_carry_cors_headers_and_others_none() {
    let (home, _sim, serve) = served(&[APP]);
    let secret = secret_for(&home, "generic", "web");
    let url = format!("{}/s/{secret}/mcp", serve.base);
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"page","version":"1"}}}"#;
    let post = |url: &str, origin: Option<&str>| {
        let mut args = vec![
            "-X".to_string(),
            "POST".into(),
            url.to_string(),
            "-H".into(),
            "content-type: application/json".into(),
            "-H".into(),
            "accept: application/json, text/event-stream".into(),
            "-d".into(),
            initialize.into(),
        ];
        if let Some(origin) = origin {
            args.extend(["-H".into(), format!("Origin: {origin}")]);
        }
        curl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };

    let (status, headers) = post(&url, Some(APP));
    assert_eq!(status, 200, "{headers:?}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&headers, "vary"), Some("Origin"));
    let exposed = header(&headers, "access-control-expose-headers").unwrap();
    assert!(exposed.contains("Mcp-Session-Id"), "{exposed}");
    assert!(exposed.contains("WWW-Authenticate"), "{exposed}");
    assert!(header(&headers, "mcp-session-id").is_some(), "{headers:?}");

    // A refusal is readable by the page too, so it can say why.
    let revoked = format!("{}/s/not-a-secret/mcp", serve.base);
    let (status, headers) = post(&revoked, Some(APP));
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(APP));

    // Clients that are not browsers see no CORS at all; other origins are refused bare.
    let (status, headers) = post(&url, None);
    assert_eq!(status, 200);
    assert!(no_cors(&headers), "{headers:?}");
    let (status, headers) = post(&url, Some("https://evil.example"));
    assert_eq!(status, 403);
    assert!(no_cors(&headers), "{headers:?}");
    let (status, headers) = post(&url, Some("http://localhost:5173"));
    assert_eq!(status, 200);
    assert!(no_cors(&headers), "{headers:?}");
}

/// Debian's `chromium`, or `None` (skip) when it is not installed — except under CI, where
/// `.ci/run` installs it and its absence is a failure.
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        let reason = "chromium is not installed (Debian: apt-get install chromium)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{reason}; .ci/run installs it");
        }
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "skipped: {reason}");
    }
    found
}

/// A page that initializes a session with tether at the endpoint in its URL's fragment
/// (`#<endpoint>|<secret>`, so the secret is in no served file and no dumped page), lists
/// the tools, and writes what happened into `#result`.
const PAGE: &str = r#"<!doctype html>
<html><body><pre id="result">pending</pre>
<script>
const [endpoint, secret] = decodeURIComponent(location.hash.slice(1)).split("|");
const headers = {
  "authorization": "Bearer " + secret,
  "content-type": "application/json",
  "accept": "application/json, text/event-stream",
  "mcp-protocol-version": "2025-06-18",
};
const rpc = async (body, session) => {
  const h = Object.assign({}, headers, session ? {"mcp-session-id": session} : {});
  const r = await fetch(endpoint, {method: "POST", headers: h, body: JSON.stringify(body)});
  const text = await r.text();
  const json = text.startsWith("{") ? JSON.parse(text)
    : JSON.parse(text.split("\n").find(l => l.startsWith("data:")).slice(5));
  return {session: r.headers.get("mcp-session-id"), json};
};
(async () => {
  const init = await rpc({jsonrpc: "2.0", id: 1, method: "initialize", params: {
    protocolVersion: "2025-06-18", capabilities: {}, clientInfo: {name: "page", version: "1"}}});
  await fetch(endpoint, {method: "POST", headers: Object.assign({}, headers,
    {"mcp-session-id": init.session}), body: JSON.stringify({jsonrpc: "2.0", method: "notifications/initialized"})});
  const list = await rpc({jsonrpc: "2.0", id: 2, method: "tools/list"}, init.session);
  const tools = list.json.result.tools.map(t => t.name).sort().join(",");
  document.getElementById("result").textContent =
    "session=" + (init.session ? "yes" : "no") + " tools=" + tools;
})().catch(e => { document.getElementById("result").textContent = "error: " + e; });
</script></body></html>"#;

/// What `#result` said after headless Chromium loaded `page` (the page's URL with the
/// fragment), or the whole dump when it has no result.
fn load_in_chromium(browser: &PathBuf, page: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(page)
        .env("HOME", profile.path())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split_once("<pre id=\"result\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(result, _)| result.to_string());
    result.unwrap_or_else(|| panic!("no result: {dom}\n{}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_from_an_allowed_origin_lists_tools_through_tether_in_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let allowed = Site::start().await;
    let other = Site::start().await;
    for site in [&allowed, &other] {
        site.get(
            "/",
            Reply::text(200, PAGE).with("content-type", "text/html; charset=utf-8"),
        );
    }
    let origin = allowed.base.clone();
    let (pages, other_page) = (allowed.url("/"), other.url("/"));
    let results = tokio::task::spawn_blocking(move || {
        let (home, _sim, serve) = served(&[&origin]);
        let secret = secret_for(&home, "generic", "browser");
        let fragment = format!("#{}/c/generic/mcp|{secret}", serve.base);
        let granted = load_in_chromium(&browser, &format!("{pages}{fragment}"));
        let refused = load_in_chromium(&browser, &format!("{other_page}{fragment}"));
        (granted, refused)
    })
    .await
    .unwrap();
    let (granted, refused) = results;
    assert_eq!(
        granted, "session=yes tools=admin_report,echo,progress,test_reconnection,whoami",
        "the page on the allowed origin"
    );
    // The other page's origin is a loopback one, which the guard lets through: it is the
    // browser that stops it, for want of CORS headers.
    assert!(refused.starts_with("error: TypeError"), "{refused}");
}
