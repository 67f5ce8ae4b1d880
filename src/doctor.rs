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

use crate::diagnosis::explain;
use crate::oauth::discovery;
use crate::oauth::refresh::{Credential, TokenManager};
use crate::vault::{
    Auth, Connection, ConnectionState, DiagnosisCode, Evidence, RegistrationStatus, Vault,
};

/// The subject of findings about client files; not a valid connection name (it has a
/// space), so it never mixes with a connection's findings.
const CLIENT_FILES: &str = "client files";

/// Clock differences beyond this break token lifetimes and are worth fixing.
const SKEW_WARN_SECS: i64 = 30;

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
    findings.push(if crate::serve::is_tether(proxy).await {
        Finding::new(
            "proxy",
            "reachable",
            Status::Ok,
            format!("tether serves http://{proxy}"),
        )
    } else {
        let mut f = Finding::new(
            "proxy",
            "reachable",
            Status::Warn,
            format!("no tether serves http://{proxy}: local clients cannot connect"),
        );
        f.remedy = Some("run `tether` (the terminal UI) or `tether serve`".to_string());
        f
    });
    let http = crate::http::client();
    let clients = client_findings(&store, only);
    for c in store.connections() {
        if only.is_some_and(|n| n != c.name.as_str()) {
            continue;
        }
        findings.extend(check_connection(vault, &http, c).await);
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
fn client_findings(store: &crate::vault::Store, only: Option<&str>) -> Vec<Finding> {
    use crate::clients::drift::{self, FileState};
    let Some(at) = crate::clients::Locations::from_env() else {
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

async fn check_connection(vault: &Vault, http: &reqwest::Client, c: &Connection) -> Vec<Finding> {
    let name = c.name.as_str();
    let mut out = vec![state_finding(c)];
    if let Auth::OAuth { .. } = c.auth {
        out.push(discovery_finding(http, c).await);
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

fn state_finding(c: &Connection) -> Finding {
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
                .with("resource", d.resource.clone())
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

/// The token against the upstream with a cheap MCP call, and the clock skew it reveals.
async fn upstream_findings(vault: &Vault, http: &reqwest::Client, c: &Connection) -> Vec<Finding> {
    let name = c.name.as_str();
    let manager = TokenManager::new(
        c,
        vault.clone(),
        http.clone(),
        Arc::new(tokio::sync::Notify::new()),
    );
    let current = match manager.credential().await {
        Ok(current) => current,
        Err(e) => {
            let mut f = Finding::new(name, "token", Status::Fail, e.to_string());
            if let Some(code) = e.diagnosis() {
                f = f.diagnosed(code, name);
            }
            return vec![f];
        }
    };
    let mut req = http
        .post(c.upstream.clone())
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "tether-doctor", "version": env!("CARGO_PKG_VERSION")}}
        }));
    req = match &current.credential {
        Credential::Bearer(t) => req.bearer_auth(t.expose()),
        Credential::Header { name, value } => req.header(name.as_str(), value.expose()),
        Credential::None => req,
    };
    let res = match req.send().await {
        Ok(res) => res,
        Err(e) => {
            return vec![
                Finding::new(
                    name,
                    "upstream",
                    Status::Fail,
                    format!("no answer: {}", crate::oauth::token::describe(&e)),
                )
                .diagnosed(DiagnosisCode::UpstreamUnreachable, name),
            ];
        }
    };
    let status = res.status();
    let mut out = Vec::new();
    let mut f = match status.as_u16() {
        200..=299 => Finding::new(
            name,
            "upstream",
            Status::Ok,
            "the upstream accepts tether's credential",
        ),
        401 => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses tether's credential (401)",
        )
        .diagnosed(DiagnosisCode::TokenEvicted, name),
        403 => Finding::new(
            name,
            "upstream",
            Status::Fail,
            "the upstream refuses the request (403)",
        )
        .diagnosed(DiagnosisCode::InsufficientScope, name),
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
    if let Some(exp) = current.expires_at {
        f = f.with("token expires", crate::view::relative(exp, Utc::now()));
    }
    out.push(f);
    if let Some(date) = res
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
    {
        let skew = (date.with_timezone(&Utc) - Utc::now()).num_seconds();
        let status = if skew.abs() > SKEW_WARN_SECS {
            Status::Warn
        } else {
            Status::Ok
        };
        let mut f = Finding::new(
            name,
            "clock",
            status,
            format!("clock skew against the upstream: {skew:+} s"),
        );
        if status == Status::Warn {
            f.remedy = Some(
                "synchronise this machine's clock (NTP): token lifetimes depend on it".to_string(),
            );
        }
        out.push(f);
    }
    out
}

/// `URL → status` (or the error, when no answer came).
fn tried_line(t: &crate::vault::TriedUrl) -> String {
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
