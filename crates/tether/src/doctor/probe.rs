//! The cheap MCP call the upstream check makes: `initialize` with the connection's
//! credential, its session ended again so the check leaves nothing behind.

use chrono::{DateTime, Utc};

use tether_core::oauth::refresh::{Credential, Current};
use tether_core::oauth::www_authenticate;
use tether_core::vault::Connection;

/// The MCP revision the doctor's `initialize` asks for.
const PROBE_VERSION: &str = "2025-11-25";

/// What the cheap MCP call saw.
pub(super) struct Probe {
    pub(super) status: reqwest::StatusCode,
    /// Where a redirect answer pointed (not followed: the call carries the credential).
    pub(super) redirect: Option<String>,
    pub(super) challenge: www_authenticate::BearerChallenge,
    pub(super) date: Option<DateTime<Utc>>,
}

/// `initialize` with `current`'s credential; a session the upstream opens for it is
/// ended again (DELETE), so the check leaves nothing behind.
pub(super) async fn probe(
    http: &reqwest::Client,
    c: &Connection,
    current: &Current,
) -> Result<Probe, reqwest::Error> {
    let signed = |req: reqwest::RequestBuilder| match &current.credential {
        Credential::Bearer(t) => req.bearer_auth(t.expose()),
        Credential::Header { name, value } => req.header(name.as_str(), value.expose()),
        Credential::None => req,
    };
    let res = signed(http.post(c.upstream.clone()))
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": PROBE_VERSION, "capabilities": {},
                       "clientInfo": {"name": "tether-doctor", "version": env!("CARGO_PKG_VERSION")}}
        }))
        .send()
        .await?;
    let probe = Probe {
        status: res.status(),
        redirect: tether_core::http::redirect_target(&res),
        challenge: www_authenticate::bearer(res.headers()).unwrap_or_default(),
        date: res
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
            .map(|d| d.with_timezone(&Utc)),
    };
    if let Some(session) = res.headers().get("mcp-session-id").cloned() {
        drop(res);
        let ended = signed(http.delete(c.upstream.clone()))
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", PROBE_VERSION)
            .send()
            .await;
        if let Err(e) = ended {
            tracing::debug!("ending the doctor's MCP session failed: {e}");
        }
    }
    Ok(probe)
}
