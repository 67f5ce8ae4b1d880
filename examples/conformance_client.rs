//! The client the MCP conformance suite drives (`conformance client --command ...`): tether's
//! own discovery, registration, login and token engine against the suite's mock servers,
//! then `initialize` → `tools/list` → `tools/call` with the engine's token.
//!
//! The suite appends the MCP URL as the last argument and sets `MCP_CONFORMANCE_SCENARIO`,
//! `MCP_CONFORMANCE_CONTEXT` (JSON, may carry a pre-registered `client_id`/`client_secret`)
//! and, from 0.2 on, `MCP_CONFORMANCE_PROTOCOL_VERSION` (2026-07-28 means the stateless
//! wire: no `initialize`, the version in a header and in every request's `_meta`).
//!
//! A 401 gets one refresh, and a new login (a new discovery: the server may have moved to
//! another authorization server) if the refreshed token is refused too; a 403
//! `insufficient_scope` gets a step-up login with the union of the scopes asked so far and
//! the challenged ones. Three logins at most.
//! Exit 0 only when the tool call succeeded.
//!
//! Try it by hand: `cargo run --example conformance_client -- http://127.0.0.1:PORT/mcp`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use tether::config::{Config, KeySourceChoice};
use tether::engine::{Engine, EngineOptions, ProxyStatus};
use tether::oauth::authorize::{self, Browser, LoginOptions, LoginStep, StepOutcome};
use tether::oauth::refresh::{Credential, Trigger};
use tether::oauth::www_authenticate;
use tether::paths::Paths;
use tether::vault::{
    Auth, ClientRegistration, Connection, Store, Vault, VaultError, parse_upstream,
};

const NAME: &str = "conformance";
/// The MCP spec's cap on authorization attempts for one call (SPEC §A.9).
const MAX_LOGINS: usize = 3;
const STATELESS_VERSION: &str = "2026-07-28";
const STATEFUL_VERSION: &str = "2025-11-25";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => {
            eprintln!("conformance client: done");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("conformance client: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let url = std::env::args()
        .next_back()
        .filter(|a| a.starts_with("http"))
        .context("usage: conformance_client <MCP URL> (the suite appends it)")?;
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context: Value = std::env::var("MCP_CONFORMANCE_CONTEXT")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or(Value::Null);
    let version = std::env::var("MCP_CONFORMANCE_PROTOCOL_VERSION")
        .unwrap_or_else(|_| STATEFUL_VERSION.to_string());
    eprintln!("conformance client: scenario '{scenario}', protocol {version}, {url}");

    let home = tempfile::Builder::new()
        .prefix("tether-conformance-")
        .tempdir()?;
    let vault = throwaway_vault(home.path(), &url, &context)?;
    let http = tether::http::client();
    let session = Session {
        http: http.clone(),
        url: url.clone(),
        version,
        session_id: None,
        next_id: 1,
    };

    let mut logins = 0;
    login(&http, &vault, &[], &mut logins).await?;
    let engine = Engine::start(
        vault.clone(),
        http.clone(),
        EngineOptions {
            schedule: false,
            browser: Browser::Fetch,
            proxy: ProxyStatus::Off {
                reason: "conformance client".to_string(),
            },
        },
    )
    .await?;
    let mut client = Client {
        http,
        vault,
        engine,
        session,
        scopes: Vec::new(),
        logins,
    };
    if !client.session.stateless() {
        client.request("initialize", Value::Null).await?;
        client.notify("notifications/initialized").await?;
    }
    client.request("tools/list", json!({})).await?;
    client
        .request(
            "tools/call",
            json!({ "name": "test-tool", "arguments": {} }),
        )
        .await?;
    client.engine.shutdown();
    Ok(())
}

/// tether's side of one MCP session: the vault, the engine's tokens, and the logins
/// spent so far.
struct Client {
    http: reqwest::Client,
    vault: Vault,
    engine: Engine,
    session: Session,
    /// Scopes asked for by step-up so far.
    scopes: Vec<String>,
    logins: usize,
}

impl Client {
    /// One request with the engine's token, recovering the way a proxy would: a 401 gets
    /// a refresh, then a new login; a 403 `insufficient_scope` gets a step-up login.
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let mut refreshed = false;
        loop {
            let current = self.engine.credential(NAME).await?;
            let Credential::Bearer(token) = &current.credential else {
                bail!("the connection holds no bearer token");
            };
            match self
                .session
                .call(method, params.clone(), token.expose())
                .await?
            {
                Answer::Ok(result) => {
                    eprintln!("conformance client: {method} ok: {}", short(&result));
                    return Ok(result);
                }
                Answer::Unauthorized if !refreshed => {
                    // Expired or revoked: one refresh through the engine, then retry.
                    refreshed = true;
                    let manager = self.engine.manager(NAME).context("no token manager")?;
                    let seen = current.generation;
                    if let Err(e) = manager.refresh(Trigger::Rejected { seen }).await {
                        eprintln!("conformance client: refresh failed ({e}); logging in again");
                        self.login().await?;
                    }
                }
                Answer::Unauthorized => {
                    // A fresh token is refused too: the server may have moved to another
                    // authorization server, which only a new discovery finds.
                    eprintln!("conformance client: {method} refused a refreshed token");
                    refreshed = false;
                    self.login().await?;
                }
                Answer::Forbidden(challenge) => {
                    let wanted = challenge.and_then(|c| c.scope).unwrap_or_default();
                    self.scopes = union(&granted_scopes(&self.vault)?, &self.scopes, &wanted);
                    eprintln!(
                        "conformance client: {method} needs scope '{wanted}': step-up to '{}'",
                        self.scopes.join(" ")
                    );
                    self.login().await?;
                }
            }
        }
    }

    async fn login(&mut self) -> anyhow::Result<()> {
        login(&self.http, &self.vault, &self.scopes, &mut self.logins).await?;
        self.engine.reload().await?;
        Ok(())
    }

    async fn notify(&self, method: &str) -> anyhow::Result<()> {
        let current = self.engine.credential(NAME).await?;
        if let Credential::Bearer(token) = &current.credential {
            self.session.notify(method, token.expose()).await;
        }
        Ok(())
    }
}

/// A vault in a temporary folder holding one OAuth connection, with the suite's
/// pre-registered client when the context names one.
fn throwaway_vault(home: &std::path::Path, url: &str, context: &Value) -> anyhow::Result<Vault> {
    let mut config = Config::default();
    config.vault.key_source = KeySourceChoice::File;
    let vault = Vault::open(&Paths::under(home.to_path_buf()), &config)?;
    let upstream = parse_upstream(url)?;
    let now = chrono::Utc::now();
    let mut connection = Connection::new(
        NAME.parse()?,
        upstream,
        Auth::OAuth {
            scopes: Vec::new(),
            discovery: None,
        },
        now,
    );
    if let Some(client_id) = context.get("client_id").and_then(Value::as_str) {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))?
            .local_addr()?
            .port();
        connection.clients.push(ClientRegistration::preregistered(
            client_id.to_string(),
            context
                .get("client_secret")
                .and_then(Value::as_str)
                .map(tether::secret::Secret::new),
            format!("http://127.0.0.1:{port}/callback"),
            now,
        ));
    }
    vault.transact(|s: &mut Store| {
        s.push(connection);
        Ok::<_, VaultError>(())
    })?;
    Ok(vault)
}

/// tether's real login, following the authorization URL without a browser.
async fn login(
    http: &reqwest::Client,
    vault: &Vault,
    scopes: &[String],
    logins: &mut usize,
) -> anyhow::Result<()> {
    if *logins >= MAX_LOGINS {
        bail!("still refused after {MAX_LOGINS} authorizations: giving up");
    }
    *logins += 1;
    let options = LoginOptions {
        browser: Browser::Fetch,
        extra_scopes: scopes.to_vec(),
        timeout: Duration::from_secs(20),
        ..LoginOptions::default()
    };
    let progress: authorize::Progress = Arc::new(|step: LoginStep, outcome: StepOutcome| {
        if !matches!(outcome, StepOutcome::Running) {
            eprintln!("conformance client: login {step:?}: {outcome:?}");
        }
    });
    let outcome = authorize::login(http, vault, NAME, options, progress)
        .await
        .map_err(|e| anyhow!("login {}: {e} [{}]", *logins, e.diagnosis()))?;
    eprintln!(
        "conformance client: login {} ok (scope {:?})",
        *logins, outcome.scope
    );
    Ok(())
}

/// The scopes the stored login asked for.
fn granted_scopes(vault: &Vault) -> anyhow::Result<Vec<String>> {
    let store = vault.load()?;
    Ok(match store.get(NAME).map(|c| &c.auth) {
        Some(Auth::OAuth { scopes, .. }) => scopes.clone(),
        _ => Vec::new(),
    })
}

fn union(a: &[String], b: &[String], wanted: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in a
        .iter()
        .chain(b)
        .map(String::as_str)
        .chain(wanted.split_whitespace())
    {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(160).collect()
}

enum Answer {
    Ok(Value),
    Unauthorized,
    Forbidden(Option<www_authenticate::BearerChallenge>),
}

/// A minimal Streamable HTTP client: JSON or SSE answers, an optional session id, and the
/// stateless 2026-07-28 form (version header and `_meta` on every request).
struct Session {
    http: reqwest::Client,
    url: String,
    version: String,
    session_id: Option<String>,
    next_id: u64,
}

impl Session {
    fn stateless(&self) -> bool {
        self.version.as_str() >= STATELESS_VERSION
    }

    fn headers(&self, method: &str, params: &Value) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            ACCEPT,
            "application/json, text/event-stream".parse().unwrap(),
        );
        h.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        if method != "initialize"
            && let Ok(v) = self.version.parse()
        {
            h.insert("mcp-protocol-version", v);
        }
        if let Some(id) = self.session_id.as_ref().and_then(|s| s.parse().ok()) {
            h.insert("mcp-session-id", id);
        }
        if self.stateless() {
            if let Ok(m) = method.parse() {
                h.insert("mcp-method", m);
            }
            if let Some(name) = params.get("name").and_then(|n| n.as_str())
                && let Ok(n) = name.parse()
            {
                h.insert("mcp-name", n);
            }
        }
        h
    }

    fn params(&self, method: &str, params: Value) -> Value {
        if method == "initialize" {
            return json!({
                "protocolVersion": self.version,
                "capabilities": {},
                "clientInfo": { "name": "tether-conformance", "version": env!("CARGO_PKG_VERSION") },
            });
        }
        let mut params = if params.is_object() {
            params
        } else {
            json!({})
        };
        if self.stateless() {
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": self.version,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo": {
                    "name": "tether-conformance",
                    "version": env!("CARGO_PKG_VERSION"),
                },
            });
        }
        params
    }

    async fn call(&mut self, method: &str, params: Value, token: &str) -> anyhow::Result<Answer> {
        let id = self.next_id;
        self.next_id += 1;
        let params = self.params(method, params);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let res = self
            .http
            .post(&self.url)
            .headers(self.headers(method, &params))
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("{method}: no answer"))?;
        let status = res.status();
        let challenge = www_authenticate::bearer(res.headers());
        match status {
            StatusCode::UNAUTHORIZED => return Ok(Answer::Unauthorized),
            StatusCode::FORBIDDEN
                if challenge
                    .as_ref()
                    .is_some_and(|c| c.error.as_deref() == Some("insufficient_scope")) =>
            {
                return Ok(Answer::Forbidden(challenge));
            }
            _ => {}
        }
        if let Some(sid) = res
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(sid.to_string());
        }
        let sse = res
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = res.text().await?;
        if !status.is_success() {
            bail!(
                "{method}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            );
        }
        let message = if sse {
            sse_messages(&text)
                .into_iter()
                .find(|m| m.get("id") == Some(&json!(id)))
                .with_context(|| format!("{method}: no answer in the event stream"))?
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method}: not JSON"))?
        };
        if let Some(error) = message.get("error") {
            bail!("{method}: JSON-RPC error {error}");
        }
        if method == "initialize"
            && let Some(v) = message["result"]["protocolVersion"].as_str()
        {
            self.version = v.to_string();
        }
        Ok(Answer::Ok(message["result"].clone()))
    }

    /// A notification; its answer (202, or an error the next request will meet) is not
    /// needed.
    async fn notify(&self, method: &str, token: &str) {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let _ = self
            .http
            .post(&self.url)
            .headers(self.headers(method, &Value::Null))
            .bearer_auth(token)
            .body(body.to_string())
            .send()
            .await;
    }
}

/// The JSON messages in an SSE body (`data:` lines joined per event).
fn sse_messages(body: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for event in body.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if let Ok(v) = serde_json::from_str(&data.join("\n")) {
            out.push(v);
        }
    }
    out
}
