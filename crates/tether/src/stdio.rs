//! `tether stdio NAME`: a stdio ↔ Streamable HTTP bridge for MCP clients that only launch
//! local commands (Claude Desktop's config, older tools). JSON-RPC lines on stdin go to the
//! local proxy — the running `tether serve`/TUI when one answers, else a proxy and engine
//! started in this process (the vault's locks keep that safe). Responses and server
//! notifications (JSON or SSE) go to stdout, one message per line; logs to stderr. EOF on
//! stdin ends the session cleanly (DELETE where the session protocol has one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::runtime::{self, Options, Running, open_vault};
use tether_core::config::Config;
use tether_core::paths::Paths;
use tether_core::presence::Presence;

/// How long in-flight requests may take to finish after stdin closes.
const DRAIN: Duration = Duration::from_secs(30);

/// The bridge runs in the environment of whatever launched it, and a desktop app (Claude
/// Desktop) passes none of the shell's: a key kept only in `TETHER_VAULT_KEY` is missing
/// there. Say so, and where to keep the key instead.
fn explain_missing_key(e: anyhow::Error) -> anyhow::Error {
    use tether_core::vault::{KEY_ENV, KeyError, VaultError};
    let missing = matches!(
        e.downcast_ref::<VaultError>(),
        Some(VaultError::Key(
            KeyError::MissingEnv | KeyError::MissingForExistingVault { .. }
        ))
    );
    if !missing || std::env::var_os(KEY_ENV).is_some() {
        return e;
    }
    let key_file = Paths::discover()
        .map(|p| format!("the key file {}", p.key_file().display()))
        .unwrap_or_else(|_| "the key file beside the vault".to_string());
    anyhow::anyhow!(
        "{e}. tether stdio has no {KEY_ENV} here: an app that launches it from the desktop \
         (Claude Desktop) does not pass your shell's environment. Keep the vault key in the OS \
         keyring or in {key_file} (mode 0600; key_source \"auto\" or \"file\"), then restart the app"
    )
}

/// What the bridge learned from the server, sent on every later request.
#[derive(Default)]
struct Session {
    id: Option<String>,
    protocol: Option<String>,
}

pub async fn run(name: &str, label: &str) -> anyhow::Result<()> {
    let vault = open_vault().map_err(explain_missing_key)?;
    let config = Config::load(&Paths::discover()?)?;
    let (secret, _) = tether_core::access::endpoint_secret(&vault, name, label).await?;
    let (base, _local) = proxy_base(vault, &config).await?;
    let endpoint = tether_core::access::path_endpoint(&base, &secret);
    let http = reqwest::Client::builder()
        .connect_timeout(tether_core::http::CONNECT_TIMEOUT)
        .build()?;
    let session = Arc::new(Mutex::new(Session::default()));
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(write_lines(out_rx));
    let mut tasks = tokio::task::JoinSet::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut listening = false;
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let method = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|m| Some(m.get("method")?.as_str()?.to_string()));
        let is_initialized = method.as_deref() == Some("notifications/initialized");
        let (h, e, s, out) = (
            http.clone(),
            endpoint.clone(),
            session.clone(),
            out_tx.clone(),
        );
        // The initialize answer carries the session id every later request needs.
        let is_initialize = method.as_deref() == Some("initialize");
        let limit = config.proxy.max_body_bytes;
        let task = tokio::spawn(async move { post(&h, &e, &s, line, limit, &out).await });
        if is_initialize {
            let _ = task.await;
        } else {
            tasks.spawn(async move {
                let _ = task.await;
            });
        }
        if is_initialized && !listening {
            listening = true;
            tasks.spawn(listen(
                http.clone(),
                endpoint.clone(),
                session.clone(),
                out_tx.clone(),
            ));
        }
    }
    let _ = tokio::time::timeout(DRAIN, async {
        while let Some(joined) = tasks.join_next().await {
            if joined.is_err() {
                break;
            }
            // The server-notification stream never ends by itself.
            if tasks.len() == usize::from(listening) {
                break;
            }
        }
    })
    .await;
    tasks.abort_all();
    end_session(&http, &endpoint, &session).await;
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// The running tether's proxy if one answers on the configured address, else one started
/// here on a free loopback port (returned so it lives as long as the bridge).
async fn proxy_base(
    vault: tether_core::vault::Vault,
    config: &Config,
) -> anyhow::Result<(String, Option<Running>)> {
    let addr = crate::serving::address(&vault, config.proxy.bind).await;
    match tether_core::presence::probe(addr, &vault).await {
        Presence::Ours => return Ok((format!("http://{addr}"), None)),
        Presence::Stranger(what) => {
            tether_core::say_err!(
                "tether stdio: warning: {}",
                tether_core::presence::stranger_on(addr, &what)
            );
        }
        Presence::Nobody => {}
    }
    let listener = runtime::any_loopback().await?;
    let local = listener.local_addr()?;
    let private = Options {
        publish: false,
        calls: Options::recording(config, false)?,
        ..Options::default()
    };
    let running = runtime::start(vault, &config.proxy, Ok(listener), private).await?;
    tether_core::say_err!(
        "tether stdio: no tether holding this vault serves {addr}; serving this session in-process"
    );
    Ok((format!("http://{local}"), Some(running)))
}

fn request(
    http: &reqwest::Client,
    method: reqwest::Method,
    endpoint: &str,
    session: &Mutex<Session>,
) -> reqwest::RequestBuilder {
    let mut req = http
        .request(method, endpoint)
        .header("accept", "application/json, text/event-stream");
    if let Ok(s) = session.lock() {
        if let Some(id) = &s.id {
            req = req.header("mcp-session-id", id);
        }
        if let Some(p) = &s.protocol {
            req = req.header("mcp-protocol-version", p);
        }
    }
    req
}

/// The headers an HTTP client repeats from the body (SEP-2243, required from 2026-07-28,
/// ignored before): `Mcp-Method`, and `Mcp-Name` for the tool or prompt name or resource
/// URI. A value that cannot travel as a plain header is left out.
fn standard_headers(message: &serde_json::Value) -> Vec<(&'static str, String)> {
    let method = message.get("method").and_then(|m| m.as_str());
    let params = message.get("params");
    let name = match method {
        Some("tools/call" | "prompts/get") => params.and_then(|p| p.get("name")),
        Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
            params.and_then(|p| p.get("uri"))
        }
        _ => None,
    };
    [
        ("mcp-method", method),
        ("mcp-name", name.and_then(|n| n.as_str())),
    ]
    .into_iter()
    .filter_map(|(header, value)| {
        let value = value?;
        let plain = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        (plain && !value.is_empty()).then(|| (header, value.to_string()))
    })
    .collect()
}

async fn post(
    http: &reqwest::Client,
    endpoint: &str,
    session: &Mutex<Session>,
    line: String,
    limit: usize,
    out: &mpsc::UnboundedSender<String>,
) {
    let message = serde_json::from_str::<serde_json::Value>(&line).ok();
    let id = message.as_ref().and_then(|v| v.get("id").cloned());
    if line.len() > limit {
        report_as(
            out,
            id,
            INVALID_REQUEST,
            &format!(
                "tether stdio: this message is {} bytes, over the local proxy's limit of {limit} bytes; not sent (raise [proxy] max_body_bytes in config.toml if it is meant to be this large)",
                line.len()
            ),
        );
        return;
    }
    let mut req = request(http, reqwest::Method::POST, endpoint, session)
        .header("content-type", "application/json");
    for (name, value) in message.as_ref().map(standard_headers).unwrap_or_default() {
        req = req.header(name, value);
    }
    let res = req.body(line).send().await;
    let res = match res {
        Ok(res) => res,
        Err(e) => {
            report(
                out,
                id,
                &format!(
                    "tether stdio: the local proxy did not answer ({})",
                    unsent(&e)
                ),
            );
            return;
        }
    };
    if let Some(sid) = res
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        && let Ok(mut s) = session.lock()
    {
        s.id = Some(sid.to_string());
    }
    if res.status() == reqwest::StatusCode::ACCEPTED {
        return;
    }
    relay(res, session, out, id).await;
}

/// What went wrong with a request the proxy did not answer, without its URL: the
/// endpoint's path is the client's secret.
fn unsent(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "could not connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "the connection broke off before an answer"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match causes.last() {
        Some(root) => format!("{what}: {}", tether_core::printable::printable(root, 200)),
        None => what.to_string(),
    }
}

/// Passes a response on: each SSE event's data, or the JSON body, as one line.
async fn relay(
    res: reqwest::Response,
    session: &Mutex<Session>,
    out: &mpsc::UnboundedSender<String>,
    id: Option<serde_json::Value>,
) {
    let status = res.status();
    let sse = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if sse {
        let mut events = res.bytes_stream().eventsource();
        while let Some(event) = events.next().await {
            match event {
                Ok(e) if !e.data.trim().is_empty() => emit(out, session, &e.data),
                Ok(_) => {}
                Err(e) => {
                    report(
                        out,
                        id.clone(),
                        &format!("tether stdio: the stream broke ({e})"),
                    );
                    return;
                }
            }
        }
        return;
    }
    match res.text().await {
        Ok(body) => match serde_json::from_str::<serde_json::Value>(&body) {
            // A JSON-RPC message (or a batch of them): passed on as it is.
            Ok(v) if v.get("jsonrpc").is_some() || v.is_array() => emit(out, session, &body),
            // Anything else (tether's own refusals carry a `message`) becomes the error
            // of the request it answers.
            parsed => {
                let said = parsed
                    .ok()
                    .and_then(|v| Some(v.get("message")?.as_str()?.to_string()))
                    .unwrap_or(body);
                report(
                    out,
                    id,
                    &format!(
                        "tether stdio: HTTP {status}: {}",
                        tether_core::printable::printable(&said, 300)
                    ),
                )
            }
        },
        Err(e) => report(
            out,
            id,
            &format!("tether stdio: the answer broke off ({e})"),
        ),
    }
}

/// Writes one JSON-RPC message as one line, noting the negotiated protocol version.
fn emit(out: &mpsc::UnboundedSender<String>, session: &Mutex<Session>, data: &str) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
        return;
    };
    if let Some(p) = value
        .pointer("/result/protocolVersion")
        .and_then(|p| p.as_str())
        && let Ok(mut s) = session.lock()
    {
        s.protocol = Some(p.to_string());
    }
    let _ = out.send(value.to_string());
}

/// A JSON-RPC error for a request the bridge could not deliver (nothing for notifications).
fn report(out: &mpsc::UnboundedSender<String>, id: Option<serde_json::Value>, message: &str) {
    report_as(out, id, tether_proxy::codes::UNREACHABLE.code, message);
}

/// JSON-RPC's own "invalid request": a message the bridge will not send at all.
const INVALID_REQUEST: i64 = -32600;

fn report_as(
    out: &mpsc::UnboundedSender<String>,
    id: Option<serde_json::Value>,
    code: i64,
    message: &str,
) {
    tether_core::say_err!("{message}");
    if let Some(id) = id {
        let error = serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        let _ = out.send(error.to_string());
    }
}

/// The server's own messages (GET stream), where the session protocol has one.
async fn listen(
    http: reqwest::Client,
    endpoint: String,
    session: Arc<Mutex<Session>>,
    out: mpsc::UnboundedSender<String>,
) {
    let Ok(res) = request(&http, reqwest::Method::GET, &endpoint, &session)
        .header("accept", "text/event-stream")
        .send()
        .await
    else {
        return;
    };
    if res.status().is_success() {
        relay(res, &session, &out, None).await;
    }
}

async fn end_session(http: &reqwest::Client, endpoint: &str, session: &Mutex<Session>) {
    let has_session = session.lock().map(|s| s.id.is_some()).unwrap_or(false);
    if has_session {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            request(http, reqwest::Method::DELETE, endpoint, session).send(),
        )
        .await;
    }
}

async fn write_lines(mut lines: mpsc::UnboundedReceiver<String>) {
    let mut stdout = tokio::io::stdout();
    while let Some(line) = lines.recv().await {
        if stdout.write_all(line.as_bytes()).await.is_err()
            || stdout.write_all(b"\n").await.is_err()
            || stdout.flush().await.is_err()
        {
            return;
        }
    }
}
