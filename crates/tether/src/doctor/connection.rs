//! A connection's checks, in order: its recorded state (with the evidence of its diagnosis),
//! for OAuth the authorization server and the client registration, then the upstream.

use chrono::{DateTime, Utc};
use tether_core::diagnosis::explain;
use tether_core::forecast::{Level, Observed, forecast};
use tether_core::vault::{
    Auth, Connection, ConnectionState, DiagnosisCode, RegistrationStatus, Vault,
};

use super::authorization::{discovery_finding, registration_finding};
use super::upstream::upstream_findings;
use super::{Finding, Status};

/// `candidates`: other possible holders of the grant on this machine (`clients::holders`).
pub(super) async fn check_connection(
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

/// When the login will die, where a limit is known: a warning under a week, a failure
/// under a day, with the sign-in that renews it.
pub(super) fn forecast_finding(
    c: &Connection,
    observed: &Observed,
    now: DateTime<Utc>,
) -> Option<Finding> {
    let name = c.name.as_str();
    let f = forecast(c, observed, now)?;
    let (status, summary) = match f.level {
        Level::Ok => (
            Status::Ok,
            format!(
                "no known limit within a week ({} {})",
                f.reason,
                tether_core::summary::relative(f.until, now)
            ),
        ),
        Level::Warn => (Status::Warn, f.sentence()),
        Level::Error => (Status::Fail, f.sentence()),
    };
    let mut finding = Finding::new(name, "forecast", status, summary)
        .with("until", f.until.to_rfc3339())
        .with("cause", f.cause.as_str());
    if f.is_near() {
        finding.remedy = Some(format!("tether login {name}"));
    }
    Some(finding)
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
