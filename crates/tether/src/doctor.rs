//! `tether doctor [NAME]`: the full check a user runs when something is wrong. The vault
//! and its key; the local proxy; and for each connection: its state, discovery re-run with
//! every URL and status, the authorization server's capabilities, the token tried against
//! the upstream with a cheap MCP call, the clock skew from the upstream's `Date` header,
//! orphaned registrations, and MCP clients on this machine that still reach an upstream
//! directly (drift). Every finding has a status, evidence and (where one
//! exists) a diagnosis code and remedy.

use serde::Serialize;

use tether_core::diagnosis::explain;
use tether_core::vault::{DiagnosisCode, Evidence, Vault};

mod authorization;
mod clients;
mod connection;
mod probe;
mod proxy;
mod upstream;
mod vault;

use clients::{CLIENT_FILES, client_findings};
use connection::check_connection;
use proxy::proxy_finding;
use vault::vault_finding;

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
    let (readable, store) = vault_finding(vault).await;
    findings.push(readable);
    let Some(store) = store else {
        return findings;
    };
    findings.push(proxy_finding(vault, proxy).await);
    let http = tether_core::http::client();
    let clients = client_findings(&store, only);
    let observed = tether_core::forecast::observed(&store);
    for c in store.connections() {
        if only.is_some_and(|n| n != c.name.as_str()) {
            continue;
        }
        let candidates = tether_core::clients::holders::candidates(&store, c);
        findings.extend(check_connection(vault, &http, c, candidates).await);
        findings.extend(connection::forecast_finding(
            c,
            &observed,
            chrono::Utc::now(),
        ));
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

/// Whether any finding needs the user to act.
pub fn needs_action(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.status == Status::Fail)
}
