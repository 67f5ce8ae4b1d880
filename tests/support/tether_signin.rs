//! A client signing in to tether itself, as Claude Code or Codex does it over HTTP: it
//! registers, opens the authorization request (the user's browser lands on the consent
//! page), and redeems the code the page sends back with its PKCE verifier.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::http;

pub const VERIFIER: &str = "a-verifier-of-forty-three-characters-or-more-0123456789";
/// Where the client's browser returns: a loopback port nothing listens on.
pub const REDIRECT: &str = "http://127.0.0.1:49999/callback";

pub fn challenge() -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()))
}

/// The value of `key` in a URL's query.
pub fn query(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

/// A `value="…"` of the page's form field `name`.
pub fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("{page}")) + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

pub async fn get_json(url: &str) -> Value {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// Registers as `client_name` at tether on `base` (RFC 7591): its client id.
pub async fn register(base: &str, client_name: &str, redirect_uri: &str) -> String {
    let registered = http()
        .post(format!("{base}/oauth/register"))
        .json(&json!({"client_name": client_name, "redirect_uris": [redirect_uri]}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let registered: Value = registered.json().await.unwrap();
    assert_eq!(registered["token_endpoint_auth_method"], "none");
    registered["client_id"].as_str().unwrap().to_string()
}

/// The authorization request for connection `name` as the client's browser opens it: the
/// consent page's address.
pub async fn ask_for(base: &str, client_id: &str, name: &str) -> String {
    let url = url::Url::parse_with_params(
        &format!("{base}/oauth/authorize"),
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("state", "st-1"),
            ("code_challenge", &challenge()),
            ("code_challenge_method", "S256"),
            ("resource", &format!("{base}/c/{name}/mcp")),
        ],
    )
    .unwrap();
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let page = location(&r);
    assert!(
        page.starts_with(&format!("{base}/oauth/consent/")),
        "{page}"
    );
    page
}

/// The consent page and its form token.
pub async fn open_page(page: &str) -> (String, String) {
    let r = http().get(page).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let body = r.text().await.unwrap();
    let csrf = field(&body, "csrf");
    (body, csrf)
}

/// The page's own form, answered as the user's browser sends it.
pub async fn answer(base: &str, page: &str, csrf: &str, decision: &str) -> reqwest::Response {
    http()
        .post(page)
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", csrf), ("decision", decision)])
        .send()
        .await
        .unwrap()
}

/// Where the page sends the browser now it was answered (elsewhere): back to the client.
pub async fn page_redirect(page: &str) -> String {
    let r = http().get(page).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    location(&r)
}

pub async fn token(base: &str, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = http()
        .post(format!("{base}/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// Redeems `code` as the client that asked: the access token it is given.
pub async fn redeem(base: &str, client_id: &str, code: &str) -> String {
    let (status, granted) = token(
        base,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{granted}");
    granted["access_token"].as_str().unwrap().to_string()
}

/// An MCP `initialize` on connection `name` with `token`: its status.
pub async fn initialize_with(base: &str, name: &str, token: &str) -> StatusCode {
    http()
        .post(format!("{base}/c/{name}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test-client", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap()
        .status()
}
