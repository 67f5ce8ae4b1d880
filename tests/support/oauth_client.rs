//! An OAuth client written for the tests alone, on plain reqwest (PKCE, registration,
//! authorization, token calls), and MCP requests, to drive the simulator in this process the
//! way a third-party client would. The tests pass it [`super::http`], which follows no
//! redirect.

use base64::Engine;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tether_sim::{Profile, SimHandle, SimOptions, start};

pub const REDIRECT: &str = "http://127.0.0.1:53682/callback";

pub async fn sim(profile: Profile) -> SimHandle {
    sim_with(SimOptions::new(profile)).await
}

pub async fn sim_with(opts: SimOptions) -> SimHandle {
    start(opts).await.expect("simulator starts")
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// (verifier, S256 challenge)
pub fn pkce() -> (String, String) {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let verifier = b64(&raw);
    let challenge = b64(&Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// An authorization-server endpoint under the issuer (which may have a path).
pub fn endpoint(sim: &SimHandle, name: &str) -> String {
    format!("{}/{name}", sim.issuer())
}

pub fn url(sim: &SimHandle, path: &str) -> String {
    let mut u = sim.base_url();
    u.set_path(path);
    u.to_string()
}

#[derive(Debug, Clone)]
pub struct TestClient {
    pub id: String,
    pub secret: Option<String>,
    pub method: String,
    pub registration: Value,
}

pub async fn register(http: &Client, sim: &SimHandle, method: &str) -> TestClient {
    register_for(http, sim, method, &["authorization_code", "refresh_token"]).await
}

/// A registration asking for these grant types.
pub async fn register_for(
    http: &Client,
    sim: &SimHandle,
    method: &str,
    grant_types: &[&str],
) -> TestClient {
    let resp = http
        .post(endpoint(sim, "register"))
        .json(&json!({
            "client_name": "sim test",
            "redirect_uris": [REDIRECT],
            "grant_types": grant_types,
            "response_types": ["code"],
            "token_endpoint_auth_method": method,
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(resp.status(), StatusCode::CREATED);
    let reg: Value = resp.json().await.expect("registration json");
    TestClient {
        id: reg["client_id"].as_str().expect("client_id").to_string(),
        secret: reg["client_secret"].as_str().map(str::to_string),
        method: reg["token_endpoint_auth_method"]
            .as_str()
            .expect("method")
            .to_string(),
        registration: reg,
    }
}

/// Query pairs of a URL, as a JSON object for easy asserts.
pub fn query(location: &str) -> Value {
    let u = url::Url::parse(location).expect("location parses");
    let map: serde_json::Map<String, Value> = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Value::Object(map)
}

/// GET /authorize with the given extra parameters; returns the raw response.
pub async fn authorize_raw(http: &Client, sim: &SimHandle, pairs: &[(&str, &str)]) -> Response {
    http.get(endpoint(sim, "authorize"))
        .query(pairs)
        .send()
        .await
        .expect("authorize")
}

/// A normal authorization; returns the code.
pub async fn authorize(
    http: &Client,
    sim: &SimHandle,
    client: &TestClient,
    challenge: &str,
    scope: Option<&str>,
) -> String {
    let mcp = sim.mcp_url().to_string();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
        ("resource", mcp.as_str()),
    ];
    if let Some(s) = scope {
        pairs.push(("scope", s));
    }
    let resp = authorize_raw(http, sim, &pairs).await;
    assert_eq!(resp.status(), StatusCode::FOUND, "authorize redirects");
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    let q = query(&location);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], sim.issuer().as_str());
    q["code"].as_str().expect("code").to_string()
}

/// POST /token with client authentication per the client's method.
pub async fn token_call(
    http: &Client,
    sim: &SimHandle,
    client: &TestClient,
    params: &[(&str, &str)],
) -> reqwest::Result<Response> {
    let mut form: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut req = http.post(endpoint(sim, "token"));
    match client.method.as_str() {
        "client_secret_basic" => {
            req = req.basic_auth(&client.id, client.secret.as_deref());
        }
        "client_secret_post" => {
            form.push(("client_id".into(), client.id.clone()));
            form.push((
                "client_secret".into(),
                client.secret.clone().expect("secret issued"),
            ));
        }
        _ => form.push(("client_id".into(), client.id.clone())),
    }
    req.form(&form).send().await
}

pub async fn exchange(
    http: &Client,
    sim: &SimHandle,
    client: &TestClient,
    code: &str,
    verifier: &str,
) -> Response {
    let mcp = sim.mcp_url().to_string();
    token_call(
        http,
        sim,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", &mcp),
        ],
    )
    .await
    .expect("token call")
}

/// Register-free login for an existing client: authorize + exchange, asserting success.
pub async fn login_as(
    http: &Client,
    sim: &SimHandle,
    client: &TestClient,
    scope: Option<&str>,
) -> Value {
    let (verifier, challenge) = pkce();
    let code = authorize(http, sim, client, &challenge, scope).await;
    let resp = exchange(http, sim, client, &code, &verifier).await;
    assert_eq!(resp.status(), StatusCode::OK, "code exchange succeeds");
    resp.json().await.expect("token json")
}

/// Register a public client and log in.
pub async fn login(http: &Client, sim: &SimHandle) -> (TestClient, Value) {
    let client = register(http, sim, "none").await;
    let tokens = login_as(http, sim, &client, None).await;
    (client, tokens)
}

pub async fn refresh(
    http: &Client,
    sim: &SimHandle,
    client: &TestClient,
    refresh_token: &str,
) -> reqwest::Result<Response> {
    let mcp = sim.mcp_url().to_string();
    token_call(
        http,
        sim,
        client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("resource", &mcp),
        ],
    )
    .await
}

/// (status, error code) of an OAuth error response.
pub async fn oauth_error(resp: Response) -> (StatusCode, String) {
    let status = resp.status();
    let body: Value = resp.json().await.expect("error json");
    (status, body["error"].as_str().unwrap_or("").to_string())
}

pub async fn stats(http: &Client, sim: &SimHandle) -> Value {
    http.get(url(sim, "/__sim/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json")
}

pub fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

/// A JSON-RPC POST to /mcp with a bearer token (if any) and optional session.
pub async fn mcp_post(
    http: &Client,
    sim: &SimHandle,
    token: Option<&str>,
    session: Option<&str>,
    accept: &str,
    body: &Value,
) -> Response {
    let mut req = http
        .post(sim.mcp_url())
        .header("accept", accept)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(sid) = session {
        req = req.header("mcp-session-id", sid);
    }
    req.send().await.expect("mcp post")
}

/// Initializes an MCP session (2025-11-25); returns the session id.
pub async fn mcp_session(http: &Client, sim: &SimHandle, token: &str) -> String {
    let resp = mcp_post(
        http,
        sim,
        Some(token),
        None,
        "application/json, text/event-stream",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "1"}}}),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_string()
}

/// Whether an access token is accepted by the MCP endpoint; on 401 returns the
/// WWW-Authenticate header.
pub async fn probe(http: &Client, sim: &SimHandle, token: &str) -> Result<(), String> {
    let resp = mcp_post(
        http,
        sim,
        Some(token),
        None,
        "application/json",
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2026-07-28"}}),
    )
    .await;
    match resp.status() {
        StatusCode::OK => Ok(()),
        StatusCode::UNAUTHORIZED => Err(resp.headers()["www-authenticate"]
            .to_str()
            .expect("ascii")
            .to_string()),
        other => panic!("unexpected status {other}"),
    }
}
