//! `tether doctor [NAME]`: the full check a user runs when something is wrong. The vault
//! and its key; the local proxy; and for each connection: its state, discovery re-run with
//! every URL and status, the authorization server's capabilities, the token tried against
//! the upstream with a cheap MCP call, the clock skew from the upstream's `Date` header,
//! orphaned registrations, and MCP clients on this machine that still reach an upstream
//! directly (drift). Every finding has a status, evidence and (where one
//! exists) a diagnosis code and remedy.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use tether_core::diagnosis::explain;
use tether_core::oauth::refresh::{AuthError, Credential, Current, TokenManager, Trigger};
use tether_core::oauth::{discovery, www_authenticate};
use tether_core::vault::{
    Auth, Connection, ConnectionState, DiagnosisCode, Evidence, RegistrationStatus, Vault,
};

/// The subject of findings about client files; not a valid connection name (it has a
/// space), so it never mixes with a connection's findings.
const CLIENT_FILES: &str = "client files";

/// Clock differences beyond this skew token lifetimes and are worth fixing…
const SKEW_WARN_SECS: i64 = 30;

/// …and beyond this, servers may refuse tokens as expired or not yet valid.
const SKEW_FAIL_SECS: i64 = 300;

/// The MCP revision the doctor's `initialize` asks for.
const PROBE_VERSION: &str = "2025-11-25";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `vault`, `proxy`, or a connection's name.
    pub subject: String,
    pub check: &'static str,
    pub status: Status,
    pub summary: String,
    pub diagnosis: Option<DiagnosisCode>,
    pub evidence: Vec<Evidence>,
    pub remedy: Option<String>,
}

impl Finding {
    fn new(subject: &str, check: &'static str, status: Status, summary: impl Into<String>) -> Self {
        Self {
            subject: subject.to_string(),
            check,
            status,
            summary: summary.into(),
            diagnosis: None,
            evidence: Vec::new(),
            remedy: None,
        }
    }

    fn diagnosed(mut self, code: DiagnosisCode, name: &str) -> Self {
        self.diagnosis = Some(code);
        let e = explain(code);
        self.remedy = Some(e.command_for(name).unwrap_or_else(|| e.remedy.to_string()));
        self
    }

    fn with(mut self, label: &str, value: impl Into<String>) -> Self {
        self.evidence.push(Evidence::new(label, value));
        self
    }
}

/// Runs every check (for one connection when `only` is given).
pub async fn run(vault: &Vault, proxy: std::net::SocketAddr, only: Option<&str>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let store = match vault.load_async().await {
        Ok(store) => {
            let mut f = Finding::new(
                "vault",
                "readable",
                Status::Ok,
                "the vault opens and decrypts",
            )
            .with("file", vault.location().display().to_string())
            .with("key", vault.key_source().describe())
            .with("connections", store.connections().len().to_string());
            if let Some(w) = vault.key_source().fallback_warning() {
                f.status = Status::Warn;
                f.summary = w;
            }
            findings.push(f);
            store
        }
        Err(e) => {
            findings.push(Finding::new(
                "vault",
                "readable",
                Status::Fail,
                e.to_string(),
            ));
            return findings;
        }
    };
    findings.push(proxy_finding(vault, proxy).await);
    let http = tether_core::http::client();
    let clients = client_findings(&store, only);
    for c in store.connections() {
        if only.is_some_and(|n| n != c.name.as_str()) {
            continue;
        }
        let candidates = tether_core::clients::holders::candidates(&store, c);
        findings.extend(check_connection(vault, &http, c, candidates).await);
        // Drift findings carry the connection as subject: shown with its other checks.
        findings.extend(
            clients
                .iter()
                .filter(|f| f.subject == c.name.as_str())
                .cloned(),
        );
    }
    findings.extend(clients.into_iter().filter(|f| f.subject == CLIENT_FILES));
    findings
}

/// Client entries that reach a connection's upstream directly (drift), and client files
/// that cannot be read. Never writes a client's file.
/// Who serves the proxy address: a tether holding this vault, nobody, or a stranger that
/// local clients' secrets would go to.
async fn proxy_finding(vault: &Vault, proxy: std::net::SocketAddr) -> Finding {
    use tether_core::presence::Presence;
    let (status, summary, remedy) = match tether_core::presence::probe(proxy, vault).await {
        Presence::Ours => (
            Status::Ok,
            format!("tether serves http://{proxy} and proved it holds this vault"),
            None,
        ),
        Presence::Nobody => (
            Status::Warn,
            format!("no tether serves http://{proxy}: local clients cannot connect"),
            Some("run `tether` (the terminal UI) or `tether serve`".to_string()),
        ),
        Presence::Stranger(what) => (
            Status::Fail,
            format!(
                "http://{proxy} is held by {what}: local clients configured with it send their secrets there"
            ),
            Some(format!(
                "stop whatever listens there (`ss -ltnp 'sport = :{}'` names it), or move tether with [proxy] bind in config.toml and run `tether config` again",
                proxy.port()
            )),
        ),
    };
    let mut f = Finding::new("proxy", "reachable", status, summary);
    f.remedy = remedy;
    f
}

fn client_findings(store: &tether_core::vault::Store, only: Option<&str>) -> Vec<Finding> {
    use tether_core::clients::drift::{self, FileState};
    let Some(at) = tether_core::clients::Locations::from_env() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for report in drift::scan(&at, store) {
        if report.state == FileState::Unreadable && only.is_none() {
            out.push(
                Finding::new(
                    CLIENT_FILES,
                    "readable",
                    Status::Warn,
                    format!("cannot read {}'s configuration", report.title),
                )
                .with("file", report.file.clone())
                .with("error", report.error.clone().unwrap_or_default()),
            );
        }
        for entry in report.drifting() {
            let connection = entry.connection.as_deref().unwrap_or_default();
            if only.is_some_and(|n| n != connection) {
                continue;
            }
            let mut f = Finding::new(
                connection,
                "clients",
                Status::Fail,
                format!(
                    "{} talks to the upstream directly, beside tether",
                    report.title
                ),
            )
            .with("client", report.client)
            .with("file", report.file.clone())
            .with("entry", entry.name.clone())
            .with("url", entry.target.clone());
            f.diagnosis = Some(DiagnosisCode::ClientDrift);
            f.remedy = entry.remedy.clone();
            out.push(f);
        }
    }
    out
}

/// `candidates`: other possible holders of the grant on this machine (`clients::holders`).
async fn check_connection(
    vault: &Vault,
    http: &reqwest::Client,
    c: &Connection,
    candidates: Vec<String>,
) -> Vec<Finding> {
    let name = c.name.as_str();
    let mut out = vec![state_finding(c, candidates)];
    if let Auth::OAuth { .. } = c.auth {
        out.push(discovery_finding(http, c).await);
        out.extend(registration_finding(http, c).await);
        let orphans = c
            .clients
            .iter()
            .filter(|r| r.status == RegistrationStatus::Orphan)
            .count();
        if orphans > 0 {
            out.push(
                Finding::new(
                    name,
                    "registrations",
                    Status::Warn,
                    format!("{orphans} orphaned client registration(s)"),
                )
                .diagnosed(DiagnosisCode::DcrOrphan, name),
            );
        }
    }
    if !matches!(
        c.state,
        ConnectionState::NeedsLogin | ConnectionState::NeedsReauth { .. }
    ) {
        out.extend(upstream_findings(vault, http, c).await);
    }
    out
}

fn state_finding(c: &Connection, candidates: Vec<String>) -> Finding {
    let name = c.name.as_str();
    match &c.state {
        ConnectionState::NeedsReauth { diagnosis, detail } => {
            let mut f = Finding::new(name, "state", Status::Fail, explain(*diagnosis).summary)
                .with("detail", detail.clone());
            // The evidence recorded when the failure was diagnosed (masked already).
            let diagnosed = c
                .history
                .iter()
                .rev()
                .find(|e| e.diagnosis == Some(*diagnosis));
            for line in diagnosed.map(|e| e.evidence.as_slice()).unwrap_or_default() {
                f = f.with(&line.label, line.value.clone());
            }
            if tether_core::clients::holders::relevant(*diagnosis) {
                for candidate in candidates {
                    f = f.with("candidate (not proven)", candidate);
                }
            }
            f.diagnosed(*diagnosis, name)
        }
        ConnectionState::NeedsLogin => {
            let mut f = Finding::new(name, "state", Status::Fail, "not authorized yet");
            f.remedy = Some(format!("tether login {name}"));
            f
        }
        ConnectionState::Degraded { why } => Finding::new(name, "state", Status::Warn, why.clone())
            .diagnosed(DiagnosisCode::UpstreamUnreachable, name),
        other => Finding::new(name, "state", Status::Ok, other.word()),
    }
}

/// The client the token belongs to (else the active one), read back from the server
/// where RFC 7592 allows: a client the server no longer knows, or whose registration
/// expired (Notion's do), cannot refresh — found before a refresh fails on it.
async fn registration_finding(http: &reqwest::Client, c: &Connection) -> Option<Finding> {
    use tether_core::oauth::registration::{self, AtServer};
    let name = c.name.as_str();
    let bound = c.token.as_ref().map(|t| t.client_id.as_str());
    let r = c
        .clients
        .iter()
        .find(|r| Some(r.client_id.as_str()) == bound)
        .or_else(|| {
            c.clients
                .iter()
                .find(|r| r.status == RegistrationStatus::Active)
        })?;
    let client = tether_core::secret::mask(&r.client_id);
    let now = Utc::now();
    let at_server = registration::read(http, r).await;
    let f = match &at_server {
        AtServer::Unreadable => return None,
        AtServer::Known { secret_expires_at } if at_server.lost(now) => Finding::new(
            name,
            "registration",
            Status::Fail,
            format!(
                "the server's registration of client {client} expired {}",
                secret_expires_at
                    .map(|at| tether_core::summary::relative(at, now))
                    .unwrap_or_default()
            ),
        )
        .diagnosed(DiagnosisCode::ClientRejected, name),
        AtServer::Known { secret_expires_at } => Finding::new(
            name,
            "registration",
            Status::Ok,
            match secret_expires_at {
                Some(at) => format!(
                    "the server knows client {client}; it expires {}",
                    tether_core::summary::relative(*at, now)
                ),
                None => format!("the server knows client {client}"),
            },
        ),
        AtServer::Gone(status) => Finding::new(
            name,
            "registration",
            Status::Fail,
            format!("the server no longer knows client {client} (HTTP {status})"),
        )
        .diagnosed(DiagnosisCode::ClientRejected, name),
        AtServer::Unknown(why) => Finding::new(
            name,
            "registration",
            Status::Warn,
            format!("client {client} could not be read back: {why}"),
        ),
    };
    // (Not the registration's URL: it names the client id in full.)
    Some(
        f.with("client", client)
            .with("asked", "RFC 7592 read of the registration"),
    )
}

/// Discovery re-run, with every URL tried and the authorization server's capabilities.
async fn discovery_finding(http: &reqwest::Client, c: &Connection) -> Finding {
    let name = c.name.as_str();
    match discovery::discover(http, &c.upstream).await {
        Ok(d) => {
            let m = &d.as_metadata;
            let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
            let listed = |list: &Option<Vec<String>>, item: &str| {
                list.as_ref().is_some_and(|l| l.iter().any(|x| x == item))
            };
            let mut f = Finding::new(
                name,
                "discovery",
                Status::Ok,
                format!("authorization server {}", d.issuer),
            );
            for t in &d.tried {
                f = f.with("tried", tried_line(t));
            }
            f = f
                .with(
                    "resource (RFC 8707, sent on every request)",
                    d.resource.clone(),
                )
                .with("PKCE S256", yes(m.supports_s256()))
                .with(
                    "iss in responses",
                    yes(m.authorization_response_iss_parameter_supported),
                )
                .with(
                    "refresh grant",
                    yes(m
                        .grant_types_supported
                        .as_ref()
                        .is_none_or(|g| g.iter().any(|x| x == "refresh_token"))),
                )
                .with(
                    "offline_access",
                    yes(listed(&m.scopes_supported, "offline_access")),
                )
                .with(
                    "dynamic registration",
                    yes(m.registration_endpoint.is_some()),
                );
            if let Some(t) = &c.token
                && t.issuer != d.issuer
            {
                f.status = Status::Fail;
                f.summary = format!(
                    "the authorization server changed from {} to {}: tokens and registrations do not carry over",
                    t.issuer, d.issuer
                );
                f = f.diagnosed(DiagnosisCode::ClientRejected, name);
            }
            f
        }
        Err(e) => {
            let mut f = Finding::new(name, "discovery", Status::Fail, e.to_string());
            for t in e.tried() {
                f = f.with("tried", tried_line(t));
            }
            f.diagnosed(e.code(), name)
        }
    }
}

/// What the cheap MCP call saw.
struct Probe {
    status: reqwest::StatusCode,
    /// Where a redirect answer pointed (not followed: the call carries the credential).
    redirect: Option<String>,
    challenge: www_authenticate::BearerChallenge,
    date: Option<DateTime<Utc>>,
}

/// `initialize` with `current`'s credential; a session the upstream opens for it is
/// ended again (DELETE), so the check leaves nothing behind.
async fn probe(
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

/// The token against the upstream with a cheap MCP call, and the clock skew it reveals.
/// A 401 is met as the proxy meets it: one forced refresh, and the call once more.
async fn upstream_findings(vault: &Vault, http: &reqwest::Client, c: &Connection) -> Vec<Finding> {
    let name = c.name.as_str();
    let manager = Arc::new(TokenManager::new(
        c,
        vault.clone(),
        tether_core::http::token_client(),
        Arc::new(tokio::sync::Notify::new()),
    ));
    let token_failed = |e: AuthError| {
        let mut f = Finding::new(name, "token", Status::Fail, e.to_string());
        if let Some(code) = e.diagnosis() {
            f = f.diagnosed(code, name);
        }
        vec![f]
    };
    let unreachable = |e: reqwest::Error| {
        vec![
            Finding::new(
                name,
                "upstream",
                Status::Fail,
                format!("no answer: {}", tether_core::oauth::token::describe(&e)),
            )
            .diagnosed(DiagnosisCode::UpstreamUnreachable, name),
        ]
    };
    let mut current = match manager.credential().await {
        Ok(current) => current,
        Err(e) => return token_failed(e),
    };
    let mut probed = match probe(http, c, &current).await {
        Ok(p) => p,
        Err(e) => return unreachable(e),
    };
    let oauth = matches!(c.auth, Auth::OAuth { .. });
    let mut evicted = None;
    if oauth && probed.status == reqwest::StatusCode::UNAUTHORIZED {
        let rejected = current.clone();
        current = match manager
            .refresh(Trigger::Rejected {
                seen: rejected.generation,
            })
            .await
        {
            Ok(fresh) => fresh,
            Err(e) => return token_failed(e),
        };
        let challenge = std::mem::take(&mut probed.challenge);
        probed = match probe(http, c, &current).await {
            Ok(p) => p,
            Err(e) => return unreachable(e),
        };
        if probed.status.is_success()
            && current.generation > rejected.generation
            && rejected.revoked_early()
        {
            let event = tether_core::oauth::refresh::eviction_event(
                &rejected,
                challenge.error_description.as_deref(),
            );
            tether_core::oauth::refresh::record(vault, name, event).await;
        }
        evicted = Some((rejected, challenge));
    }
    let status = probed.status;
    let mut f = match status.as_u16() {
        200..=299 => match &evicted {
            None => Finding::new(
                name,
                "upstream",
                Status::Ok,
                "the upstream accepts tether's credential",
            ),
            Some((rejected, _)) if !rejected.revoked_early() => Finding::new(
                name,
                "upstream",
                Status::Ok,
                "the token tether held had just run out (401); refreshed, the new one is accepted",
            ),
            Some((rejected, _)) => {
                let mut f = Finding::new(
                    name,
                    "upstream",
                    Status::Warn,
                    "the upstream revoked the token tether held early (401); refreshed, the new one is accepted",
                )
                .diagnosed(DiagnosisCode::TokenEvicted, name)
                .with("refused generation", rejected.generation.to_string());
                if let Some(exp) = rejected.expires_at {
                    f = f.with(
                        "refused token expires",
                        tether_core::summary::relative(exp, Utc::now()),
                    );
                }
                // Nothing to do: the refresh healed it.
                f.remedy = None;
                f
            }
        },
        401 if oauth => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses even a freshly refreshed token (401)",
        )
        .diagnosed(DiagnosisCode::InvalidGrantExpiredOrRevoked, name),
        401 if matches!(c.auth, Auth::ApiKey { .. }) => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                "the upstream rejects the API key (401)",
            )
            .diagnosed(DiagnosisCode::TokenEvicted, name);
            f.remedy = Some(format!(
                "replace the key: `tether remove {name}`, then `tether add {name} {} --api-key-env VAR`",
                c.upstream
            ));
            f
        }
        401 => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                "the upstream asks for authorization (401), and this connection was added without any",
            );
            f.remedy = Some(format!(
                "add it again with OAuth: `tether remove {name}`, then `tether add {name} {}` and `tether login {name}`",
                c.upstream
            ));
            f
        }
        403 if probed.challenge.error.as_deref() == Some("insufficient_scope") => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream wants a scope tether's token lacks (403 insufficient_scope)",
        )
        .diagnosed(DiagnosisCode::InsufficientScope, name),
        403 => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses tether's credential (403)",
        ),
        _ if let Some(target) = &probed.redirect => {
            let mut f = Finding::new(
                name,
                "upstream",
                Status::Fail,
                format!(
                    "the upstream answered with a redirect to '{target}', and tether does not send its credential to a redirect target"
                ),
            );
            f.remedy = Some(format!(
                "if '{target}' is the MCP endpoint, add the connection with it: `tether remove {name}`, then `tether add {name} URL`"
            ));
            f
        }
        s => Finding::new(
            name,
            "upstream",
            Status::Warn,
            format!("the upstream answered HTTP {s}"),
        ),
    };
    f = f
        .with("status", status.as_u16().to_string())
        .with("url", c.upstream.to_string());
    let challenges = evicted
        .as_ref()
        .map(|(_, challenge)| challenge)
        .into_iter()
        .chain((!status.is_success()).then_some(&probed.challenge));
    for challenge in challenges {
        if let Some(error) = &challenge.error {
            f = f.with("error", tether_core::printable::printable(error, 100));
        }
        if let Some(description) = &challenge.error_description {
            f = f.with(
                "error_description",
                tether_core::printable::printable(description, 200),
            );
        }
        if let Some(scope) = &challenge.scope {
            f = f.with("scope", tether_core::printable::printable(scope, 200));
        }
    }
    if let Some(exp) = current.expires_at {
        f = f.with(
            "token expires",
            tether_core::summary::relative(exp, Utc::now()),
        );
    }
    let mut out = vec![f];
    if let Some(date) = probed.date {
        out.push(skew_finding(name, (date - Utc::now()).num_seconds()));
    }
    out
}

/// The clock against the upstream's: beyond [`SKEW_WARN_SECS`] worth fixing, beyond
/// [`SKEW_FAIL_SECS`] (the leeway servers commonly allow) tokens may be refused as
/// expired or not yet valid.
fn skew_finding(name: &str, skew: i64) -> Finding {
    let status = match skew.abs() {
        s if s > SKEW_FAIL_SECS => Status::Fail,
        s if s > SKEW_WARN_SECS => Status::Warn,
        _ => Status::Ok,
    };
    let mut f = Finding::new(
        name,
        "clock",
        status,
        format!("clock skew against the upstream: {skew:+} s"),
    );
    if status != Status::Ok {
        f.remedy = Some(
            "synchronise this machine's clock (NTP): token lifetimes depend on it".to_string(),
        );
    }
    f
}

/// `URL → status` (or the error, when no answer came).
fn tried_line(t: &tether_core::vault::TriedUrl) -> String {
    let outcome = t
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| t.error.clone().unwrap_or_default());
    format!("{} → {outcome}", t.url)
}

/// Whether any finding needs the user to act.
pub fn needs_action(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Status::Fail)
}
