//! The client the MCP conformance suite drives (`conformance client --command ...`): tether's
//! own discovery, registration, login, token engine and proxy against the suite's mock
//! servers — `initialize` → `tools/list` → `tools/call` sent, as any MCP client sends
//! them, to the connection's local endpoint, which forwards them with the engine's token.
//!
//! The suite appends the MCP URL as the last argument and sets `MCP_CONFORMANCE_SCENARIO`,
//! `MCP_CONFORMANCE_CONTEXT` (JSON, may carry a pre-registered `client_id`/`client_secret`)
//! and, from 0.2 on, `MCP_CONFORMANCE_PROTOCOL_VERSION` (2026-07-28 means the stateless
//! wire: no `initialize`, the version in a header and in every request's `_meta`).
//!
//! The proxy meets a 401 with one refresh and one retry; when the connection still cannot
//! authenticate it answers the JSON-RPC error that tells a user to sign in again, and this
//! client does what the user would: a new login (a new discovery: the server may have
//! moved to another authorization server). A 403 `insufficient_scope` becomes a recorded
//! step-up, and the new login asks for the union of the scopes. Three logins at most.
//! Exit 0 only when the tool call succeeded.
//!
//! Try it by hand: `cargo run --example conformance_client -- http://127.0.0.1:PORT/mcp`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use tether_core::config::ProxyConfig;
use tether_core::config::{Config, KeySourceChoice};
use tether_core::engine::{Engine, EngineOptions, ProxyStatus};
use tether_core::oauth::authorize::{self, Browser, LoginOptions, LoginStep, StepOutcome};
use tether_core::paths::Paths;
use tether_core::vault::{
    Auth, ClientRegistration, Connection, Store, Vault, VaultError, parse_upstream,
};

const NAME: &str = "conformance";
/// The MCP spec's cap on authorization attempts for one call.
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
    let http = tether_core::http::client();

    let mut logins = 0;
    login(&http, &vault, &mut logins).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let engine = Engine::start(
        vault.clone(),
        http.clone(),
        EngineOptions {
            schedule: false,
            browser: Browser::Fetch,
            proxy: ProxyStatus::Serving { addr },
        },
    )
    .await?;
    let config = ProxyConfig {
        bind: addr,
        ..ProxyConfig::default()
    };
    let proxy = tether_proxy::spawn(engine.clone(), config, listener)?;
    let (secret, _) = tether_core::access::endpoint_secret(&vault, NAME, "conformance").await?;
    engine.reload().await?;
    let session = Session {
        http: reqwest::Client::new(),
        url: format!("http://{addr}/s/{}/mcp", secret.expose()),
        version,
        session_id: None,
        next_id: 1,
    };
    let mut client = Client {
        http,
        vault,
        engine,
        session,
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
    proxy.stop(Duration::from_secs(2)).await;
    client.engine.shutdown();
    Ok(())
}

/// tether's side of one MCP session: the vault, the engine (whose proxy the session
/// talks to), and the logins spent so far.
struct Client {
    http: reqwest::Client,
    vault: Vault,
    engine: Engine,
    session: Session,
    logins: usize,
}

impl Client {
    /// One request through the proxy; when it answers that the connection must sign in
    /// again (a refreshed token refused, a dead grant, a step-up), a new login and the
    /// request once more.
    async fn request(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        loop {
            match self.session.call(method, params.clone()).await? {
                // A call that needed more scope started the sign-in asking for it (tether's
                // step-up, told as a tool result); the suite consents by itself, so the user's
                // part is to wait for it to end, then call again.
                Answer::Ok(result) if result["isError"] == true && self.engine.signing_in(NAME) => {
                    eprintln!("conformance client: {method}: tether is signing in again");
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                    while self.engine.signing_in(NAME) && std::time::Instant::now() < deadline {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                    self.engine.reload().await?;
                }
                Answer::Ok(result) => {
                    eprintln!("conformance client: {method} ok: {}", short(&result));
                    return Ok(result);
                }
                Answer::SignInAgain { diagnosis, message } => {
                    eprintln!(
                        "conformance client: {method}: tether says sign in again [{diagnosis}]: {message}"
                    );
                    login(&self.http, &self.vault, &mut self.logins).await?;
                    self.engine.reload().await?;
                }
            }
        }
    }

    async fn notify(&self, method: &str) -> anyhow::Result<()> {
        self.session.notify(method).await;
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
                .map(tether_core::secret::Secret::new),
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

/// tether's real login, following the authorization URL without a browser; a step-up the
/// proxy recorded is asked for by the login itself.
async fn login(http: &reqwest::Client, vault: &Vault, logins: &mut usize) -> anyhow::Result<()> {
    if *logins >= MAX_LOGINS {
        bail!("still refused after {MAX_LOGINS} authorizations: giving up");
    }
    *logins += 1;
    let options = LoginOptions {
        browser: Browser::Fetch,
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

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(160).collect()
}

enum Answer {
    Ok(Value),
    /// tether's JSON-RPC error for a connection that cannot authenticate (-32001).
    SignInAgain {
        diagnosis: String,
        message: String,
    },
}

/// The JSON-RPC error code tether answers with when a connection must sign in again.
const SIGN_IN_AGAIN: i64 = -32001;

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

    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Answer> {
        let id = self.next_id;
        self.next_id += 1;
        let params = self.params(method, params);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let res = self
            .http
            .post(&self.url)
            .headers(self.headers(method, &params))
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("{method}: no answer"))?;
        let status = res.status();
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
            if error["code"] == SIGN_IN_AGAIN {
                return Ok(Answer::SignInAgain {
                    diagnosis: error["data"]["diagnosis"]
                        .as_str()
                        .unwrap_or("-")
                        .to_string(),
                    message: error["message"].as_str().unwrap_or_default().to_string(),
                });
            }
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
    async fn notify(&self, method: &str) {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let _ = self
            .http
            .post(&self.url)
            .headers(self.headers(method, &Value::Null))
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
